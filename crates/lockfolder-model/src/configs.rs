//! The configurations checked, by name: [`real`] in CI, [`by_hand`] too big
//! for CI, and [`mutants`] with the world each is caught in. `docs/model.md`
//! gives their state counts and times.

use crate::model::{Config, Flavor, Listings, Publish, Timing, World};
use lockfolder::decide::Mutant;
use lockfolder::Mode;

/// Listings in name order, symmetry-reduced.
fn reduced(cfg: Config) -> Config {
    Config {
        name_order: true,
        symmetry: true,
        ..cfg
    }
}

/// Three contenders fit CI only with listings in name order, symmetry
/// reduction and prompt timing.
fn three(cfg: Config) -> Config {
    Config {
        timing: Timing::Prompt,
        ..reduced(cfg)
    }
}

/// The same configuration in another world.
fn world(cfg: Config, world: World) -> Config {
    cfg.in_world(world)
}

/// Configurations of the shipped rules checked in CI. Each must be safe and
/// never hold a contender back; livelock and starvation are asked where
/// they apply (see `tests/model.rs` for what is expected of each).
pub fn real() -> Vec<(&'static str, Config)> {
    vec![
        ("ours-2-crashes", Config::ours(2, 2)),
        ("ours-3", three(Config::ours(3, 0))),
        ("shared-2+excl-1", readers_and_writer(0)),
        ("slots-2-of-3", semaphore(0)),
        (
            "shared-1+excl-1-crash",
            Config {
                modes: vec![Mode::Shared, Mode::Exclusive],
                ..Config::ours(2, 1)
            },
        ),
        ("ours-2+legacy-1", legacy(0)),
        (
            "ours-1+try-1-crash",
            Config {
                flavors: vec![Flavor::Ours, Flavor::Try],
                ..Config::ours(2, 1)
            },
        ),
        ("stops-ours-2", stops(2)),
        ("container-ours-1+1", container(2, 1)),
        ("reboot-unjudgeable-ours-2", reboot(2, 0)),
        ("oracle-cannot-tell-ours-2", oracle(1)),
        (
            "nfs-fresh-after-own-change-ours-2",
            fresh_after_own_change(2),
        ),
        ("name-before-content-ours-2", name_before_content(2)),
        (
            "ours-2-crash-prompt",
            Config {
                timing: Timing::Prompt,
                ..Config::ours(2, 1)
            },
        ),
        (
            "ours-2-crash-keep-forever",
            Config {
                timing: Timing::PromptKeepForever,
                ..Config::ours(2, 1)
            },
        ),
    ]
}

/// Bigger configurations of the shipped rules, for
/// `cargo run -p lockfolder-model --release -- --by-hand` (up to 2.1 GB and
/// a minute or two each).
pub fn by_hand() -> Vec<(&'static str, Config)> {
    vec![
        (
            "ours-3-any-timing",
            Config {
                max_states: 12_000_000,
                ..reduced(Config::ours(3, 0))
            },
        ),
        (
            "container-ours-2+1",
            Config {
                max_states: 12_000_000,
                ..container(3, 0)
            },
        ),
        (
            "stops-1-ours-3",
            Config {
                max_states: 12_000_000,
                crashes: 0,
                stops: 1,
                ..three(stops(3))
            },
        ),
        (
            "ours-2-crashes-prompt",
            Config {
                timing: Timing::Prompt,
                ..Config::ours(2, 2)
            },
        ),
    ]
}

/// Two of ours (interchangeable) and a 1.0.2 contender, which knows no
/// queue and does not give up, with `crashes` crashes.
pub fn legacy(crashes: u8) -> Config {
    reduced(Config {
        flavors: vec![Flavor::Ours, Flavor::Ours, Flavor::Legacy],
        give_up: false,
        ..Config::ours(3, crashes)
    })
}

/// Two shared contenders and one exclusive.
pub fn readers_and_writer(crashes: u8) -> Config {
    three(Config {
        modes: vec![Mode::Shared, Mode::Shared, Mode::Exclusive],
        ..Config::ours(3, crashes)
    })
}

/// Three contenders on a semaphore of two slots.
pub fn semaphore(crashes: u8) -> Config {
    three(Config {
        slots: 2,
        ..Config::ours(3, crashes)
    })
}

/// `n` of ours, any of which may be stopped for ever (two stops), one
/// crash.
pub fn stops(n: usize) -> Config {
    Config {
        stops: 2,
        ..Config::ours(n, 1)
    }
}

/// `n - 1` of ours on the host and one of ours in a container nobody else
/// can see into (every verdict across the boundary is unjudgeable, alive or
/// dead), with `crashes` crashes: a dead container leaves entries no rule
/// can judge.
pub fn container(n: usize, crashes: u8) -> Config {
    let mut foreign = vec![false; n];
    foreign[n - 1] = true;
    let cfg = Config {
        foreign,
        ..Config::ours(n, crashes)
    };
    if n > 2 {
        three(cfg)
    } else {
        cfg
    }
}

/// `n` of ours and a reboot after which the previous boot's entries are
/// unjudgeable for ever, with `crashes` crashes; listings in name order (in
/// any order the leftovers multiply the listings' interleavings beyond 8
/// million states).
pub fn reboot(n: usize, crashes: u8) -> Config {
    world(
        Config {
            reboots: 1,
            name_order: true,
            ..Config::ours(n, crashes)
        },
        World {
            reboot_leaves_unjudgeable: true,
            ..World::LOCAL
        },
    )
}

/// Two of ours whose liveness probe may answer "cannot tell" for a live
/// owner on any read, with `crashes` crashes.
pub fn oracle(crashes: u8) -> Config {
    world(
        Config::ours(2, crashes),
        World {
            oracle_may_not_tell: true,
            ..World::LOCAL
        },
    )
}

/// `n` of ours on a store whose listings may be stale except right after
/// the contender's own change (NFS close-to-open); one crash.
pub fn fresh_after_own_change(n: usize) -> Config {
    world(
        Config::ours(n, 1),
        World {
            listings: Listings::CachedUntilOwnChange,
            ..World::LOCAL
        },
    )
}

/// `n` of ours whose bids are written in place (name first, content after);
/// one crash.
pub fn name_before_content(n: usize) -> Config {
    world(
        Config::ours(n, 1),
        World {
            publish: Publish::NameBeforeContent,
            ..World::LOCAL
        },
    )
}

/// What checking a mutant must find.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// A state that breaks safety.
    Unsafe,
    /// A contender held back for ever by what is no legitimate blocker.
    HeldBack,
    /// The same, with the other contenders only crashing (never stopped) in
    /// the held-back projections.
    HeldBackAfterCrashes,
    /// A fair cycle in which nobody ever holds.
    Livelock,
}

/// The mutants of the rules and the faults of the world, each of which must
/// be caught, with the configuration that catches it and what it must find.
pub fn mutants() -> Vec<(&'static str, Config, Expect)> {
    let three_crash = three(Config::ours(3, 1));
    vec![
        (
            "a-unjudgeable-is-dead-container",
            container(2, 0).with(Mutant::UnjudgeableIsDead),
            Expect::Unsafe,
        ),
        (
            "a-unjudgeable-is-dead-oracle",
            oracle(0).with(Mutant::UnjudgeableIsDead),
            Expect::Unsafe,
        ),
        (
            "b-reader-removes-unreadable",
            name_before_content(2).with(Mutant::RemoveUnreadable),
            Expect::Unsafe,
        ),
        (
            "c-cached-listings",
            world(
                Config::ours(2, 0),
                World {
                    listings: Listings::Cached,
                    ..World::LOCAL
                },
            ),
            Expect::Unsafe,
        ),
        (
            "d-fixed-names",
            world(
                three_crash.clone(),
                World {
                    fixed_names: true,
                    ..World::LOCAL
                },
            ),
            Expect::Unsafe,
        ),
        (
            "e-lowest-enters-at-once",
            three_crash.with(Mutant::LowestEntersAtOnce),
            Expect::Unsafe,
        ),
        (
            "f-marker-only-precedence",
            Config {
                give_up: false,
                name_order: true,
                timing: Timing::PromptKeepForever,
                ..Config::ours(2, 0)
            }
            .with(Mutant::MarkerOnlyPrecedence),
            Expect::Livelock,
        ),
        (
            "g-shared-ignores-exclusive",
            readers_and_writer(1).with(Mutant::SharedIgnoresExclusive),
            Expect::Unsafe,
        ),
        (
            "h-semaphore-forgets-own-bid",
            semaphore(1).with(Mutant::SemaphoreForgetsOwnBid),
            Expect::Unsafe,
        ),
        (
            "i-markers-never-expire",
            Config {
                name_order: true,
                ..Config::ours(2, 0)
            }
            .with(Mutant::MarkersNeverExpire),
            Expect::HeldBack,
        ),
        (
            "i-markers-never-expire-reboot",
            reboot(2, 0).with(Mutant::MarkersNeverExpire),
            Expect::HeldBackAfterCrashes,
        ),
        (
            "symmetric-withdraw",
            Config {
                timing: Timing::PromptKeepForever,
                ..Config::ours(2, 0)
            }
            .with(Mutant::SymmetricWithdraw),
            Expect::Livelock,
        ),
    ]
}
