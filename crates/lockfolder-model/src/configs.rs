//! The configurations checked in CI, by name.
//!
//! Bounds (measured to keep `cargo test -p lockfolder-model` under two
//! minutes on two shared cores; see `docs/model.md`):
//!
//! * `ours-3`: three of ours, no crash, listings in name order;
//! * `ours-2-crashes`: two of ours, two crashes and restarts, listings in any
//!   order (the most general listing model);
//! * `ours-2+legacy-1`: two of ours and a 1.0.2 contender, one crash and
//!   restart, listings in name order, no giving up.
//!
//! * `ours-3-crash-sym`: three of ours, one crash and restart, listings in
//!   name order, symmetry-reduced (safety and no-wedge only).
//!
//! Three of ours with a crash does not fit the budget without symmetry
//! reduction; three of ours with listings in any order does not fit with it.

use crate::model::{Config, Flavor, Mutant, Reader};

/// Configurations of the protocol as committed (1326e7e and later), which
/// must pass every check.
pub fn real() -> Vec<(&'static str, Config)> {
    vec![
        (
            "ours-3",
            Config {
                name_order: true,
                ..Config::ours(3, 0)
            },
        ),
        ("ours-2-crashes", Config::ours(2, 2)),
        (
            "ours-3-crash-sym",
            Config {
                name_order: true,
                symmetry: true,
                ..Config::ours(3, 1)
            },
        ),
        (
            "ours-2+legacy-1",
            Config {
                flavors: vec![Flavor::Ours, Flavor::Ours, Flavor::Legacy],
                name_order: true,
                give_up: false,
                ..Config::ours(3, 1)
            },
        ),
    ]
}

/// The mutants, each of which must be caught, with the configuration used:
/// three of ours, one crash and restart, listings in name order.
pub fn mutants() -> Vec<(&'static str, Config)> {
    let base = Config {
        name_order: true,
        symmetry: true,
        ..Config::ours(3, 1)
    };
    vec![
        (
            "a-live-judged-dead",
            base.clone().with(Mutant::LiveJudgedDead),
        ),
        (
            "b-name-before-content",
            base.clone().with(Mutant::NameBeforeContent(Reader::Delete)),
        ),
        ("c-stale-snapshot", base.clone().with(Mutant::StaleSnapshot)),
        ("d-fixed-name", base.clone().with(Mutant::FixedName)),
        (
            "e-lowest-enters-at-once",
            base.with(Mutant::LowestEntersAtOnce),
        ),
    ]
}
