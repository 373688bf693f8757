//! The configurations checked in CI, by name.

use crate::model::{Config, Flavor, Mutant, Reader};

/// Configurations of the real protocol, which must pass every check.
///
/// Bounds (chosen to keep `cargo test -p lockfolder-model` well under two
/// minutes on two shared cores): three of ours with one crash and restart;
/// two of ours and a 1.0.2 contender with two. `cargo run -p lockfolder-model
/// --release -- --crashes 2` checks both with two (about a minute and a half).
pub fn real() -> Vec<(&'static str, Config)> {
    vec![
        ("ours-3", Config::ours(3, 1)),
        (
            "ours-2+legacy-1",
            Config {
                flavors: vec![Flavor::Ours, Flavor::Ours, Flavor::Legacy],
                ..Config::ours(3, 2)
            },
        ),
    ]
}

/// The mutants, each of which must be caught, with the configuration used.
pub fn mutants() -> Vec<(&'static str, Config)> {
    let base = Config::ours(3, 1);
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
