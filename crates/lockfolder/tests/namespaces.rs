//! Holders and waiters in other namespaces of this kernel: time namespaces
//! (the kernel shows start times shifted by the *reader's* boottime offset)
//! and PID namespaces (containers), including a container killed as a
//! whole. These need `unshare` (root); see `util::namespaces_available`.

use crate::util::{bids, names, namespaces_available, spawn, spawn_in, Proc, TestFn};
use lockfolder::{LockFolder, State};
use std::time::{Duration, Instant};

pub const TESTS: &[TestFn] = &[
    (
        "namespaces::holder_in_a_time_namespace_is_live_from_outside",
        holder_in_a_time_namespace_is_live_from_outside,
    ),
    (
        "namespaces::holder_outside_is_live_from_a_time_namespace",
        holder_outside_is_live_from_a_time_namespace,
    ),
    (
        "namespaces::no_overlap_across_time_namespaces",
        no_overlap_across_time_namespaces,
    ),
    (
        "namespaces::container_holder_is_live_then_stale_once_killed",
        container_holder_is_live_then_stale_once_killed,
    ),
    (
        "namespaces::legacy_holder_in_a_container_is_live_then_stale",
        legacy_holder_in_a_container_is_live_then_stale,
    ),
    (
        "namespaces::dead_containers_queue_marker_does_not_stop_the_queue",
        dead_containers_queue_marker_does_not_stop_the_queue,
    ),
];

const T: Duration = Duration::from_secs(10);
const TIME_NS: &[&str] = &["unshare", "--time", "--boottime", "100000"];
/// A PID namespace of its own, killed with the `unshare` process.
const PID_NS: &[&str] = &["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];

fn only_bid_state(lf: &LockFolder) -> State {
    let hs = lf.holders().unwrap();
    let bids: Vec<_> = hs
        .iter()
        .filter(|h| {
            h.kind == lockfolder::EntryKind::Bid || h.kind == lockfolder::EntryKind::LegacyBid
        })
        .collect();
    assert_eq!(bids.len(), 1, "{hs:?}");
    bids[0].state
}

/// Whether this test process can see every process of the kernel (initial
/// PID namespace, root): only then can a dead container be proven dead.
fn sees_all() -> bool {
    std::fs::read_link("/proc/self/ns/pid").is_ok_and(|l| l.to_string_lossy() == "pid:[4026531836]")
        && rustix::process::geteuid().is_root()
}

fn holder_in_a_time_namespace_is_live_from_outside() {
    if !namespaces_available(&TIME_NS[1..]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let holder = spawn_in(TIME_NS, "hold", &[d]);
    holder.expect("LOCKED", T);
    let lf = LockFolder::new(d).unwrap();
    assert_eq!(only_bid_state(&lf), State::Live);
    assert!(
        lf.try_lock().unwrap().is_none(),
        "a live holder keeps us out"
    );
    assert_eq!(bids(dir.path()).len(), 1, "and its bid stays");
    assert_eq!(holder.finish(T), 0);
}

fn holder_outside_is_live_from_a_time_namespace() {
    if !namespaces_available(&TIME_NS[1..]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let holder = spawn("hold", &[d]);
    holder.expect("LOCKED", T);
    let inside = spawn_in(TIME_NS, "try", &[d]);
    inside.expect("BUSY", T);
    assert_eq!(inside.finish(T), 0);
    let waiter = spawn_in(TIME_NS, "wait", &[d, "300"]);
    waiter.expect("WAITING", T);
    let line = waiter.line(T);
    assert!(line.starts_with("ERR"), "must not get a held lock: {line}");
    assert_eq!(waiter.finish(T), 0);
    assert_eq!(bids(dir.path()).len(), 1, "the holder's bid stays");
    assert_eq!(holder.finish(T), 0);
}

fn no_overlap_across_time_namespaces() {
    if !namespaces_available(&TIME_NS[1..]) {
        return;
    }
    let lock = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (l, w) = (lock.path().to_str().unwrap(), work.path().to_str().unwrap());
    let mut procs: Vec<Proc> = Vec::new();
    for i in 0..6 {
        let prefix: &[&str] = if i % 2 == 0 { TIME_NS } else { &[] };
        procs.push(spawn_in(prefix, "stress", &[l, w, "100"]));
    }
    for p in &procs {
        let line = p.line(Duration::from_secs(120));
        assert_eq!(line, "DONE", "overlap or failure: {line}");
    }
    for p in procs {
        assert_eq!(p.finish(T), 0);
    }
    let count = std::fs::read_to_string(work.path().join("counter")).unwrap();
    assert_eq!(count.trim(), "600", "lost updates");
}

/// Polls until `cond` or the deadline.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

fn kill_container(mut p: Proc) {
    p.kill9();
    p.reap();
}

fn container_holder_is_live_then_stale_once_killed() {
    if !namespaces_available(&PID_NS[1..]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let holder = spawn_in(PID_NS, "hold", &[d]);
    holder.expect("LOCKED", T);
    let lf = LockFolder::new(d).unwrap();
    let live = only_bid_state(&lf);
    assert!(matches!(live, State::Live | State::Foreign), "{live:?}");
    assert!(lf.try_lock().unwrap().is_none());
    kill_container(holder);
    if sees_all() {
        // No process of that namespace is left: proven dead.
        assert!(
            eventually(T, || matches!(only_bid_state(&lf), State::Stale(_))),
            "{:?}",
            lf.holders()
        );
        let g = lf
            .try_lock()
            .unwrap()
            .expect("the dead container's bid is removed");
        g.release().unwrap();
        assert_eq!(names(dir.path()), Vec::<String>::new());
    } else {
        assert_eq!(only_bid_state(&lf), State::Foreign);
    }
}

fn legacy_holder_in_a_container_is_live_then_stale() {
    if !namespaces_available(&PID_NS[1..]) || !sees_all() {
        // A 1.x bid names no namespace: from inside a PID namespace (or
        // without sight of every process) it is unjudgeable; the crafted
        // tests in identity.rs cover that.
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // A 1.0.2 holder that is PID 1 of its container: our PID 1 is another,
    // much older process.
    let holder = spawn_in(PID_NS, "legacy-hold", &[d]);
    holder.expect("LOCKED", T);
    let lf = LockFolder::new(d).unwrap();
    assert_eq!(only_bid_state(&lf), State::Live);
    assert!(
        lf.try_lock().unwrap().is_none(),
        "a live 1.0.2 holder keeps us out"
    );
    assert_eq!(
        bids(dir.path()).len(),
        1,
        "its bid is never removed while it lives"
    );
    kill_container(holder);
    assert!(
        eventually(T, || matches!(only_bid_state(&lf), State::Stale(_))),
        "{:?}",
        lf.holders()
    );
}

fn dead_containers_queue_marker_does_not_stop_the_queue() {
    if !namespaces_available(&PID_NS[1..]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let lf = LockFolder::new(d).unwrap();
    let held = lf.try_lock().unwrap().unwrap();
    let waiter = spawn_in(PID_NS, "queue", &[d, "60000"]);
    waiter.expect("QUEUED", T);
    kill_container(waiter);
    held.release().unwrap();
    // The marker of a waiter that is gone (proven, or past its hand-over
    // time when it cannot be judged) must not hold the next waiter back.
    let start = Instant::now();
    let g = lf
        .lock_timeout(Duration::from_secs(10))
        .expect("a dead container's marker does not stop the queue");
    assert!(start.elapsed() < Duration::from_secs(10));
    g.release().unwrap();
}
