//! The model check, as CI runs it: the real protocol passes every property;
//! each mutant fails safety; the wedge and livelock detectors are shown to fire
//! on protocols known to wedge or livelock, so their silence means something.

use lockfolder_model::model::{Config, Flavor, Mode, Mutant, Reader};
use lockfolder_model::{check, configs, Checks, Report};

fn find(list: Vec<(&'static str, Config)>, name: &str) -> Config {
    list.into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| c)
        .expect("configuration")
}

/// A configuration of the protocol as committed.
fn committed(name: &str) -> Config {
    find(configs::real(), name)
}

fn assert_correct(name: &str, r: &Report) {
    if let Some(t) = &r.two_holders {
        panic!("{name}: two holders:\n{t}");
    }
    if let Some(w) = &r.wedge {
        panic!("{name}: contender {} wedged after:\n{}", w.proc, w.trace);
    }
    if let Some(l) = &r.livelock {
        panic!(
            "{name}: livelock ({} states) after:\n{}cycle: {:?}",
            l.component, l.trace, l.cycle
        );
    }
    if let Some(l) = &r.starvation {
        panic!(
            "{name}: starvation ({} states) after:\n{}cycle: {:?}",
            l.component, l.trace, l.cycle
        );
    }
    assert!(r.livelock_checked);
    assert!(r.wedge_checked > 0, "{name}: the wedge check ran no search");
    eprintln!(
        "{name}: {} states, {} transitions, depth {}, {:.1}s",
        r.states,
        r.transitions,
        r.depth,
        r.elapsed.as_secs_f64()
    );
}

#[test]
fn three_of_ours_with_non_atomic_listings_with_and_without_symmetry_reduction() {
    let full = committed("ours-3");
    assert!(!full.symmetry);
    let a = check(&full, Checks::all());
    assert_correct("ours-3", &a);
    assert!(a.states > 100_000, "suspiciously small: {}", a.states);
    // The same configuration reduced: the same verdicts; the reduced graph is
    // smaller, but by no more than the number of renamings (3! = 6), and its
    // shortest paths are as long.
    let b = check(
        &Config {
            symmetry: true,
            ..full
        },
        Checks::all(),
    );
    assert_safe_reduced("ours-3-sym", &b);
    assert!(
        b.states < a.states && a.states <= 6 * b.states,
        "full {} vs reduced {}",
        a.states,
        b.states
    );
    assert_eq!(a.depth, b.depth, "the same shortest paths");
}

#[test]
fn two_of_ours_with_crashes_restarts_and_listings_in_any_order() {
    let cfg = committed("ours-2-crashes");
    assert!(cfg.crashes >= 2 && !cfg.name_order);
    let r = check(&cfg, Checks::all());
    assert_correct("ours-2-crashes", &r);
}

#[test]
fn two_of_ours_and_one_1_0_2_contender() {
    let cfg = committed("ours-2+legacy-1");
    assert_eq!(cfg.flavors[2], Flavor::Legacy);
    assert!(cfg.crashes >= 1);
    let r = check(&cfg, Checks::all());
    assert_correct("ours-2+legacy-1", &r);
}

#[test]
fn mutant_f_marker_only_precedence_lets_two_waiters_keep_their_bids_forever() {
    // The rule of commit 873a589 (fixed in 1326e7e): a bid made us step back
    // only if its owner's queue marker was listed too. A waiter that found
    // the folder empty bids without a marker; a younger waiter queues and
    // bids; at step 30 the older keeps its bid (the rival is younger) and so
    // does the younger (a bid without a marker was taken for a holder's).
    let cfg = Config {
        give_up: false,
        ..Config::ours(2, 0)
    }
    .with(Mutant::MarkerOnlyPrecedence);
    let r = check(&cfg, Checks::all());
    assert!(r.two_holders.is_none() && r.wedge.is_none());
    let l = r.livelock.expect("the two-waiter deadlock");
    let last = l
        .trace
        .steps
        .last()
        .map(|(_, s)| s.clone())
        .expect("a trace");
    // Both contenders have their bids out, and only one has a marker.
    let bids = last
        .dir
        .iter()
        .filter(|e| e.kind == lockfolder_model::model::kind::BID)
        .count();
    let marks = last
        .marks
        .iter()
        .filter(|m| **m != lockfolder_model::model::NONE)
        .count();
    assert_eq!((bids, marks), (2, 1), "{last}");
    eprintln!("mutant f: livelock after:\n{}", l.trace);
}

#[test]
fn ages_in_any_order_still_safe_and_live_but_not_fair() {
    // Wall clocks can step back, so a later waiter may carry an older age.
    // Safety, no wedge and no livelock must not depend on the order of ages;
    // first-come-first-served does: if every newcomer may jump the queue, a
    // waiter can be overtaken forever, and the checker must say so.
    let cfg = Config {
        any_age_order: true,
        ..Config::ours(2, 1)
    };
    let r = check(&cfg, Checks::all());
    assert!(r.two_holders.is_none(), "two holders");
    assert!(r.wedge.is_none(), "wedge");
    assert!(r.wedge_checked > 0);
    assert!(r.livelock_checked && r.livelock.is_none(), "livelock");
    let s = r.starvation.expect("queue jumping can starve a waiter");
    assert!(!s.cycle.is_empty());
}

fn assert_caught(name: &str) {
    let (_, cfg) = configs::mutants()
        .into_iter()
        .find(|(n, _)| *n == name)
        .expect("mutant");
    let r = check(&cfg, Checks::safety());
    let trace = r
        .two_holders
        .unwrap_or_else(|| panic!("{name}: not caught in {} states", r.states));
    let last = &trace.steps.last().expect("a non-empty trace").1;
    assert_eq!(last.holders(), 2);
    assert!(last.violates(&cfg));
    eprintln!(
        "{name}: counterexample in {} steps:\n{trace}",
        trace.steps.len()
    );
}

#[test]
fn mutant_a_live_process_judged_dead_gives_two_holders() {
    assert_caught("a-live-judged-dead");
}

#[test]
fn mutant_b_name_before_content_with_deleting_readers_gives_two_holders() {
    assert_caught("b-name-before-content");
}

#[test]
fn mutant_c_cached_listing_gives_two_holders() {
    assert_caught("c-stale-snapshot");
}

#[test]
fn mutant_d_removal_by_fixed_name_gives_two_holders() {
    assert_caught("d-fixed-name");
}

#[test]
fn mutant_e_lowest_token_entering_at_once_gives_two_holders() {
    assert_caught("e-lowest-enters-at-once");
}

#[test]
fn name_before_content_readers_that_skip_stay_safe() {
    // protocol-facts: readers that ignore a half-written bid are still safe.
    let cfg = Config::ours(2, 1).with(Mutant::NameBeforeContent(Reader::Skip));
    let r = check(&cfg, Checks::all());
    assert_correct("b-skip", &r);
}

#[test]
fn name_before_content_readers_that_honour_it_wedge() {
    // ... but honouring a half-written bid whose writer died locks everyone
    // out forever: the wedge detector must say so.
    let cfg = Config::ours(2, 1).with(Mutant::NameBeforeContent(Reader::Honour));
    let r = check(&cfg, Checks::all());
    assert!(r.two_holders.is_none());
    let w = r.wedge.expect("a wedge");
    let last = w
        .trace
        .steps
        .last()
        .map(|(_, s)| s.clone())
        .unwrap_or(w.trace.initial);
    assert!(
        last.dir
            .iter()
            .any(|e| e.kind == lockfolder_model::model::kind::EMPTY),
        "the wedge is an empty bid left behind: {last}"
    );
}

#[test]
fn seed_symmetric_withdrawal_livelocks() {
    // Everyone who sees a rival withdraws: two contenders can bid, see each
    // other and withdraw forever. The livelock detector must find it.
    let cfg = Config::ours(2, 0).with(Mutant::SymmetricWithdraw);
    let r = check(&cfg, Checks::all());
    assert!(r.two_holders.is_none());
    let l = r.livelock.expect("a livelock");
    assert!(!l.cycle.is_empty());
    // One contender can also keep entering while the other always withdraws:
    // the starvation detector must find that too.
    assert!(r.starvation.is_some(), "symmetric withdrawal starves");
    // And so do two 1.0.2 contenders.
    let cfg = Config {
        flavors: vec![Flavor::Legacy; 2],
        ..Config::ours(2, 0)
    };
    let r = check(&cfg, Checks::all());
    assert!(r.two_holders.is_none());
    assert!(r.livelock.is_some(), "1.0.2 against itself livelocks");
}

/// Safety and no-wedge (the liveness checks beyond that need the un-reduced
/// graph).
fn assert_safe_reduced(name: &str, r: &Report) {
    if let Some(t) = &r.two_holders {
        panic!("{name}: two holders:\n{t}");
    }
    if let Some(w) = &r.wedge {
        panic!("{name}: contender {} wedged after:\n{}", w.proc, w.trace);
    }
    assert!(r.wedge_checked > 0, "{name}: the wedge check ran no search");
    eprintln!(
        "{name}: {} states (reduced), {} transitions, {:.1}s",
        r.states,
        r.transitions,
        r.elapsed.as_secs_f64()
    );
}

#[test]
fn three_of_ours_with_a_crash_and_restart_symmetry_reduced() {
    let cfg = committed("ours-3-crash-sym");
    assert!(cfg.symmetry && cfg.crashes >= 1 && cfg.flavors.len() == 3);
    let r = check(&cfg, Checks::all());
    assert_safe_reduced("ours-3-crash-sym", &r);
    assert!(r.states > 1_000_000, "suspiciously small: {}", r.states);
}

#[test]
fn symmetry_reduction_catches_a_mutant_as_fast() {
    // Both searches find two holders, after the same number of steps (BFS
    // finds a shortest counterexample either way).
    let full = Config {
        name_order: true,
        ..Config::ours(3, 0)
    }
    .with(Mutant::LiveJudgedDead);
    let reduced = Config {
        symmetry: true,
        ..full.clone()
    };
    let a = check(&full, Checks::safety());
    let b = check(&reduced, Checks::safety());
    let (ta, tb) = (
        a.two_holders.expect("caught without reduction"),
        b.two_holders.expect("caught with reduction"),
    );
    assert_eq!(ta.steps.len(), tb.steps.len());
    assert!(b.states < a.states);
    eprintln!(
        "mutant a: {} states without reduction, {} with",
        a.states, b.states
    );
}

#[test]
fn the_state_cap_fails_loudly() {
    let cfg = Config {
        max_states: 1_000,
        ..Config::ours(2, 1)
    };
    let r = std::panic::catch_unwind(|| check(&cfg, Checks::safety()));
    let msg = r.expect_err("the cap must stop the search");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("state cap exceeded"), "{msg}");
}

#[test]
fn two_readers_and_a_writer() {
    let cfg = committed("shared-2+excl-1");
    assert_eq!(
        cfg.modes,
        vec![Mode::Shared, Mode::Shared, Mode::Exclusive],
        "two shared, one exclusive"
    );
    let r = check(&cfg, Checks::all());
    assert_safe_reduced("shared-2+excl-1", &r);
    assert_eq!(r.max_holders, 2, "the two readers never held together");
    assert!(r.states > 100_000, "suspiciously small: {}", r.states);
}

#[test]
fn a_reader_and_a_writer_with_crashes_and_listings_in_any_order() {
    let cfg = committed("shared-1+excl-1-crashes");
    assert!(!cfg.symmetry && !cfg.name_order && cfg.crashes >= 2);
    let r = check(&cfg, Checks::all());
    assert_correct("shared-1+excl-1-crashes", &r);
}

#[test]
fn readers_hold_together() {
    // The check is not vacuous: two readers do reach the critical section
    // together (and the safety predicate allows it).
    let cfg = Config {
        modes: vec![Mode::Shared, Mode::Shared],
        give_up: false,
        ..Config::ours(2, 0)
    };
    let r = check(&cfg, Checks::all());
    assert_correct("shared-2", &r);
    assert_eq!(r.max_holders, 2, "two readers never held together");
    let mut both = cfg.clone();
    both.modes = vec![Mode::Shared, Mode::Exclusive];
    let r = check(&both, Checks::all());
    assert_correct("shared-1+excl-1", &r);
    assert_eq!(r.max_holders, 1, "a writer never holds with the reader");
}

#[test]
fn three_on_a_semaphore_of_two() {
    let cfg = committed("slots-2-of-3");
    assert_eq!(cfg.slots, 2);
    let r = check(&cfg, Checks::all());
    assert_safe_reduced("slots-2-of-3", &r);
    assert!(r.states > 100_000, "suspiciously small: {}", r.states);
    assert_eq!(r.max_holders, 2, "two slots never both taken");
}

#[test]
fn mutant_g_shared_contender_ignoring_exclusive_bids_gives_a_writer_with_a_reader() {
    assert_caught("g-shared-ignores-exclusive");
}

#[test]
fn mutant_h_semaphore_forgetting_its_own_bid_gives_n_plus_one_holders() {
    let (_, cfg) = configs::mutants()
        .into_iter()
        .find(|(n, _)| *n == "h-semaphore-forgets-own-bid")
        .expect("mutant");
    let r = check(&cfg, Checks::safety());
    let t = r.two_holders.expect("caught");
    let last = &t.steps.last().expect("a trace").1;
    assert_eq!(last.holders(), usize::from(cfg.slots) + 1, "{t}");
    eprintln!("mutant h: {} steps:\n{t}", t.steps.len());
}
