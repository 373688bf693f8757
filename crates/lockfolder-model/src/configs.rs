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
//!   name order, symmetry-reduced (safety and no-wedge only);
//! * `shared-2+excl-1`: two readers and a writer, no crash, name order,
//!   symmetry-reduced; `shared-1+excl-1-crashes`: a reader and a writer,
//!   two crashes, any order, un-reduced (all properties);
//! * `slots-2-of-3`: three contenders on two slots, no crash, name order,
//!   symmetry-reduced.
//!
//! With one crash, `shared-2+excl-1` (7.2 million reduced states) and
//! `slots-2-of-3` (6.3 million) take about 45 s each: run them with
//! `cargo run -p lockfolder-model --release -- --crashes 1 --max-states 8000000`.
//!
//! Three of ours with a crash does not fit the budget without symmetry
//! reduction; three of ours with listings in any order does not fit with it.

use crate::model::{Config, Flavor, Mode, Mutant, Reader};

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
        ("shared-2+excl-1", readers_and_writer(0)),
        ("slots-2-of-3", semaphore(0)),
        (
            "shared-1+excl-1-crashes",
            Config {
                modes: vec![Mode::Shared, Mode::Exclusive],
                ..Config::ours(2, 2)
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

/// Two shared contenders and one exclusive, listings in name order, the two
/// readers interchangeable (symmetry-reduced).
pub fn readers_and_writer(crashes: u8) -> Config {
    Config {
        modes: vec![Mode::Shared, Mode::Shared, Mode::Exclusive],
        name_order: true,
        symmetry: true,
        ..Config::ours(3, crashes)
    }
}

/// Three contenders on a semaphore of two slots, listings in name order,
/// symmetry-reduced.
pub fn semaphore(crashes: u8) -> Config {
    Config {
        slots: 2,
        name_order: true,
        symmetry: true,
        ..Config::ours(3, crashes)
    }
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
        (
            "g-shared-ignores-exclusive",
            readers_and_writer(1).with(Mutant::SharedIgnoresExclusive),
        ),
        (
            "h-semaphore-forgets-own-bid",
            semaphore(1).with(Mutant::SemaphoreForgetsOwnBid),
        ),
    ]
}
