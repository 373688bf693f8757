//! The queue can never be stopped: a waiter that does not take its turn
//! (stopped, of a previous boot, of a machine nobody here can judge) loses
//! it; `status` tells holders from waiters and names what a newcomer would
//! wait for; an operator can remove what no proof can settle.

use crate::util::{dead_pid, names, on_another_machine, side_name, spawn, write_bid, TestFn};
use lockfolder::{EntryKind, Error, LockFolder, Role, State, Token};
use std::time::{Duration, Instant};

pub const TESTS: &[TestFn] = &[
    (
        "queue::unjudgeable_marker_loses_its_turn",
        unjudgeable_marker_loses_its_turn,
    ),
    #[cfg(target_os = "linux")]
    (
        "queue::previous_boot_marker_is_stale",
        previous_boot_marker_is_stale,
    ),
    #[cfg(unix)]
    (
        "queue::stopped_waiter_loses_its_turn",
        stopped_waiter_loses_its_turn,
    ),
    (
        "queue::status_tells_holders_from_waiters",
        status_tells_holders_from_waiters,
    ),
    (
        "queue::timeout_names_the_waiter_ahead",
        timeout_names_the_waiter_ahead,
    ),
    (
        "queue::remove_forced_removes_only_what_no_proof_settles",
        remove_forced_removes_only_what_no_proof_settles,
    ),
    (
        "queue::huge_timeouts_do_not_overflow",
        huge_timeouts_do_not_overflow,
    ),
];

const T: Duration = Duration::from_secs(10);

fn me() -> lockfolder::BidRecord {
    lockfolder::current_identity().unwrap()
}

/// Our identity with another boot id, booted `shift` seconds from ours.
#[cfg(target_os = "linux")]
fn other_boot(shift: i64) -> lockfolder::BidRecord {
    let mut r = me();
    if let Some(lockfolder::Owner::Linux(o)) = r.owner.as_mut() {
        o.boot_id = "00000000-0000-4000-8000-000000000000".into();
        o.boot_time = o.boot_time.saturating_add_signed(shift);
    }
    r
}

/// Our identity as written on a machine nobody here can judge (on Linux:
/// another boot id that claims a later boot, so not our past).
fn elsewhere() -> lockfolder::BidRecord {
    let mut r = me();
    on_another_machine(&mut r);
    r
}

/// An age token from an hour ago: older than any waiter of this test.
fn old_token() -> Token {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    Token::new((now - Duration::from_secs(3600)).as_nanos())
}

fn marker(dir: &std::path::Path, pid: u32, like: &lockfolder::BidRecord) -> String {
    let name = side_name(&old_token(), pid, like, "wait");
    std::fs::write(dir.join(&name), b"").unwrap();
    name
}

fn unjudgeable_marker_loses_its_turn() {
    // A queue marker of a machine nobody here can judge (another boot id that
    // claims a later boot: not our past), older than us, lock free.
    let dir = tempfile::tempdir().unwrap();
    let name = marker(dir.path(), 42, &elsewhere());
    let lf = LockFolder::new(dir.path()).unwrap();
    let st = lf.status().unwrap();
    let h = st
        .entries
        .iter()
        .find(|h| h.name.to_str() == Some(&name))
        .unwrap();
    assert_eq!(h.kind, EntryKind::QueueMarker);
    assert_eq!(h.state, State::Foreign);
    assert_eq!(h.role, Role::Waiter);
    assert!(
        h.note.as_deref().unwrap().contains("loses its turn"),
        "{h:?}"
    );
    assert!(!st.would_wait, "it will lose its turn: a newcomer gets in");
    let start = Instant::now();
    let g = lf
        .lock_timeout(T)
        .expect("the marker cannot stop the queue");
    let took = start.elapsed();
    assert!(
        took >= lockfolder::HANDOVER,
        "it kept its turn for {took:?}"
    );
    g.release().unwrap();
    assert!(
        names(dir.path()).contains(&name),
        "never removed: unjudgeable"
    );
}

#[cfg(target_os = "linux")]
fn previous_boot_marker_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let name = marker(dir.path(), 42, &other_boot(-3600));
    let lf = LockFolder::new(dir.path()).unwrap();
    let st = lf.status().unwrap();
    assert!(matches!(st.entries[0].state, State::Stale(_)), "{st:?}");
    let removed = lf.clean().unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].name.to_str(), Some(name.as_str()));
    let g = lf.lock_timeout(T).unwrap();
    g.release().unwrap();
}

#[cfg(unix)]
fn signal(pid: u32, sig: rustix::process::Signal) {
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid as i32).unwrap(), sig)
        .unwrap();
}

#[cfg(unix)]
fn stopped_waiter_loses_its_turn() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let lf = LockFolder::new(d).unwrap();
    let held = lf.try_lock().unwrap().unwrap();
    let first = spawn("queue", &[d, "60000"]);
    first.expect("QUEUED", T);
    signal(first.pid(), rustix::process::Signal::STOP);
    let second = spawn("queue", &[d, "60000"]);
    second.expect("QUEUED", T);
    let end = Instant::now() + T;
    let mut st = lf.status().unwrap();
    while !st.entries.iter().any(|h| h.stopped) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
        st = lf.status().unwrap();
    }
    let stopped: Vec<_> = st.entries.iter().filter(|h| h.stopped).collect();
    assert_eq!(stopped.len(), 1, "{st:?}");
    assert_eq!(stopped[0].pid, Some(first.pid()));
    assert_eq!(stopped[0].role, Role::Waiter);
    held.release().unwrap();
    // The stopped head of the queue cannot take its turn; the next waiter
    // gets the lock instead of waiting for it to be continued.
    second.expect("GOT", T);
    signal(first.pid(), rustix::process::Signal::CONT);
    assert_eq!(second.finish(T), 0);
    first.expect("GOT", T);
    assert_eq!(first.finish(T), 0);
    assert_eq!(names(dir.path()), Vec::<String>::new());
}

fn status_tells_holders_from_waiters() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let holder = spawn("hold", &[d]);
    holder.expect("LOCKED", T);
    let waiter = spawn("queue", &[d, "60000"]);
    waiter.expect("QUEUED", T);
    let lf = LockFolder::new(d).unwrap();
    let st = lf.status().unwrap();
    assert!(st.would_wait && st.held(), "{st:?}");
    let by_pid = |pid| st.entries.iter().find(|h| h.pid == Some(pid)).unwrap();
    assert_eq!(by_pid(holder.pid()).role, Role::Holder);
    assert_eq!(by_pid(waiter.pid()).role, Role::Waiter);
    assert_eq!(by_pid(waiter.pid()).kind, EntryKind::QueueMarker);
    let blockers: Vec<_> = st.blockers.iter().map(|h| h.pid).collect();
    assert_eq!(blockers, vec![Some(holder.pid()), Some(waiter.pid())]);
    #[cfg(unix)]
    {
        // A holder stopped inside its critical section is shown as such (once
        // the signal has taken effect).
        signal(holder.pid(), rustix::process::Signal::STOP);
        let stopped = |lf: &LockFolder| {
            let st = lf.status().unwrap();
            let h = st
                .entries
                .iter()
                .find(|h| h.pid == Some(holder.pid()))
                .unwrap()
                .clone();
            (h.stopped && h.describe().contains("stopped"), h)
        };
        let end = Instant::now() + T;
        while !stopped(&lf).0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        let (ok, h) = stopped(&lf);
        assert!(ok, "{h:?}");
        signal(holder.pid(), rustix::process::Signal::CONT);
    }
    assert_eq!(holder.finish(T), 0);
    waiter.expect("GOT", T);
    assert_eq!(waiter.finish(T), 0);
    let st = lf.status().unwrap();
    assert!(!st.would_wait && st.entries.is_empty(), "{st:?}");
}

fn timeout_names_the_waiter_ahead() {
    // A live, running waiter ahead of us (a marker with our own identity and
    // an older age) and a free lock: we defer to it, and a short timeout
    // says so instead of "held by nothing".
    let dir = tempfile::tempdir().unwrap();
    marker(dir.path(), std::process::id(), &me());
    let lf = LockFolder::new(dir.path()).unwrap();
    let err = lf.lock_timeout(Duration::from_millis(200)).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("queued ahead of us"), "{msg}");
    assert!(msg.contains(&std::process::id().to_string()), "{msg}");
}

fn remove_forced_removes_only_what_no_proof_settles() {
    let dir = tempfile::tempdir().unwrap();
    let lf = LockFolder::new(dir.path()).unwrap();
    // A live bid of this machine: refused.
    let g = lf.try_lock().unwrap().unwrap();
    let own = g.bid_path().file_name().unwrap().to_owned();
    let err = lf.remove_forced(&own).unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    g.release().unwrap();
    // A file that is not a bid: refused, untouched.
    std::fs::write(dir.path().join("notes.txt"), "keep").unwrap();
    assert!(matches!(
        lf.remove_forced("notes.txt"),
        Err(Error::Refused { .. })
    ));
    // A bid of another machine, and a 1.x-named bid left empty: removed.
    let mut foreign = elsewhere();
    foreign.pid = dead_pid();
    let f = write_bid(dir.path(), &foreign.to_bytes());
    let empty = write_bid(dir.path(), b"");
    let h = lf.remove_forced(&f).unwrap();
    assert_eq!(h.state, State::Foreign);
    lf.remove_forced(&empty).unwrap();
    assert_eq!(names(dir.path()), vec!["notes.txt".to_owned()]);
    let err = lf.remove_forced(&f).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

fn huge_timeouts_do_not_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let lf = LockFolder::new(d).unwrap();
    let g = lf.lock_timeout(Duration::MAX).unwrap();
    g.release().unwrap();
    let holder = spawn("hold", &[d]);
    holder.expect("LOCKED", T);
    let pid = holder.pid();
    let t = std::thread::spawn(move || lf.lock_timeout(Duration::MAX).map(|g| g.release()));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(holder.finish(T), 0, "holder {pid}");
    t.join().unwrap().unwrap().unwrap();
}
