//! Processes and threads contending for one folder.

use crate::util::{bids, names, spawn, TestFn};
use lockfolder::{LockFolder, State};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const TESTS: &[TestFn] = &[
    ("contention::two_processes_exclude", two_processes_exclude),
    (
        "contention::kill9_holder_is_recovered",
        kill9_holder_is_recovered,
    ),
    (
        "contention::unreaped_dead_holder_is_recovered",
        unreaped_dead_holder_is_recovered,
    ),
    ("contention::stress_8_processes", stress_8_processes),
    (
        "contention::threads_exclude_each_other",
        threads_exclude_each_other,
    ),
    ("contention::lost_lock_is_an_error", lost_lock_is_an_error),
];

const T: Duration = Duration::from_secs(10);

fn two_processes_exclude() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let holder = spawn("hold", &[d]);
    holder.expect("LOCKED", T);
    let lf = LockFolder::new(d).unwrap();
    assert!(lf.try_lock().unwrap().is_none(), "held by the child");
    spawn("try", &[d]).expect("BUSY", T);
    assert!(lf.is_locked().unwrap());
    assert_eq!(bids(dir.path()).len(), 1, "busy attempts leave no bid");
    assert_eq!(holder.finish(T), 0);
    let g = lf.try_lock().unwrap().expect("free after release");
    spawn("try", &[d]).expect("BUSY", T);
    g.release().unwrap();
    let last = spawn("try", &[d]);
    last.expect("GOT", T);
    assert_eq!(last.finish(T), 0);
    assert_eq!(names(dir.path()), Vec::<String>::new());
}

fn kill9_holder_is_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let mut holder = spawn("hold", &[d]);
    holder.expect("LOCKED", T);
    let stale_bid = bids(dir.path());
    assert_eq!(stale_bid.len(), 1);
    holder.kill9();
    holder.reap();
    let lf = LockFolder::new(d).unwrap();
    let h = lf.holders().unwrap();
    assert_eq!(h.len(), 1);
    assert!(matches!(h[0].state, State::Stale(_)), "{:?}", h[0].state);
    let g = lf.lock_timeout(Duration::from_secs(2)).expect("recovered");
    let now = bids(dir.path());
    assert_eq!(now.len(), 1);
    assert_ne!(
        now, stale_bid,
        "the stale bid was removed, ours is in place"
    );
    g.release().unwrap();
}

#[cfg(windows)]
fn unreaped_dead_holder_is_recovered() {
    // A holder killed while we keep its process handle open: OpenProcess
    // still succeeds on it and its creation time still matches, yet it has
    // exited. A handle is not proof of life.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let mut holder = spawn("hold", &[d]);
    holder.expect("LOCKED", T);
    holder.kill9();
    // Wait for the exit without closing the handle (`Child` keeps it open
    // until dropped; `try_wait` does not close it).
    for _ in 0..500 {
        if holder.child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let (_, _, running) = crate::util::windows::times(holder.pid())
        .expect("the exited process can still be opened while a handle is held");
    assert!(!running);
    let lf = LockFolder::new(d).unwrap();
    let h = lf.holders().unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].state, State::Stale(lockfolder::StaleReason::Gone));
    let g = lf
        .lock_timeout(Duration::from_secs(2))
        .expect("an exited holder is stale");
    g.release().unwrap();
    holder.reap();
}

#[cfg(unix)]
fn unreaped_dead_holder_is_recovered() {
    // A holder killed but never reaped is a zombie: its PID exists and its
    // start time still matches, yet it can never run again.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let mut holder = spawn("hold", &[d]);
    holder.expect("LOCKED", T);
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(holder.pid() as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    // Wait until the kernel shows it as a zombie, without reaping it.
    let stat = format!("/proc/{}/stat", holder.pid());
    for _ in 0..500 {
        let s = std::fs::read_to_string(&stat).unwrap_or_default();
        if s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let lf = LockFolder::new(d).unwrap();
    let g = lf
        .lock_timeout(Duration::from_secs(2))
        .expect("zombie holder is stale");
    g.release().unwrap();
    holder.reap();
}

/// Acquisitions per stress worker: 500, or 150 on Windows, whose test runs
/// under wine here, where every call is a round trip to the wine server
/// (eight processes manage about 20 acquisitions a second on two cores).
#[cfg(not(windows))]
const STRESS_ROUNDS: u64 = 500;
#[cfg(windows)]
const STRESS_ROUNDS: u64 = 150;

fn stress_8_processes() {
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let w = work.path().to_str().unwrap();
    let rounds = STRESS_ROUNDS.to_string();
    let workers: Vec<_> = (0..8).map(|_| spawn("stress", &[d, w, &rounds])).collect();
    for p in &workers {
        let line = p.line(Duration::from_secs(120));
        assert_eq!(line, "DONE", "worker {} reported {line}", p.pid());
    }
    for p in workers {
        assert_eq!(p.finish(T), 0);
    }
    let count: u64 = std::fs::read_to_string(work.path().join("counter"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(count, 8 * STRESS_ROUNDS, "no lost update, so no overlap");
    assert_eq!(
        names(dir.path()),
        Vec::<String>::new(),
        "nothing left behind"
    );
}

fn threads_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let lf = LockFolder::new(dir.path()).unwrap();
    let inside = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU32::new(0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let lf = lf.clone();
            let inside = inside.clone();
            let total = total.clone();
            std::thread::spawn(move || {
                for _ in 0..100 {
                    let g = lf.lock().unwrap();
                    assert!(!inside.swap(true, Ordering::SeqCst), "two threads inside");
                    total.fetch_add(1, Ordering::SeqCst);
                    std::thread::yield_now();
                    inside.store(false, Ordering::SeqCst);
                    g.release().unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(total.load(Ordering::SeqCst), 400);
    assert_eq!(names(dir.path()), Vec::<String>::new());
}

/// Every public handle can cross threads (a compile-time check that
/// `LockFolder` is `Send + Sync`, and so are its guard, waiter and token).
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<LockFolder>();
    send_sync::<lockfolder::LockGuard>();
    send_sync::<lockfolder::Waiter>();
    send_sync::<lockfolder::CancelToken>();
};

fn lost_lock_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let lf = LockFolder::new(dir.path()).unwrap();
    let g = lf.try_lock().unwrap().unwrap();
    assert!(g.is_held().unwrap());
    std::fs::remove_file(g.bid_path()).unwrap();
    assert!(!g.is_held().unwrap());
    let err = g.release().unwrap_err();
    assert!(matches!(err, lockfolder::Error::LockLost { .. }), "{err:?}");
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}
