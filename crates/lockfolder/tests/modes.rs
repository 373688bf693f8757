//! Shared (reader/writer) locks and counting semaphores, with real processes.

use crate::util::{names, spawn, TestFn};
use lockfolder::{Error, LockFolder};
use std::time::{Duration, Instant};

pub const TESTS: &[TestFn] = &[
    (
        "modes::readers_share_a_writer_excludes",
        readers_share_a_writer_excludes,
    ),
    (
        "modes::writer_is_not_starved_by_readers",
        writer_is_not_starved_by_readers,
    ),
    (
        "modes::slots_are_never_exceeded_with_kill9",
        slots_are_never_exceeded_with_kill9,
    ),
    (
        "modes::mismatched_slots_are_refused",
        mismatched_slots_are_refused,
    ),
];

const T: Duration = Duration::from_secs(10);

/// Waits for an `occupy` child to finish and returns the most holders it saw
/// inside at once.
fn most_inside(p: crate::util::Proc) -> usize {
    let line = p.line(Duration::from_secs(30));
    assert!(line.starts_with("DONE"), "{line}");
    let most = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert_eq!(p.finish(T), 0);
    most
}

fn readers_share_a_writer_excludes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let readers: Vec<_> = (0..3).map(|_| spawn("hold", &[d, "shared"])).collect();
    for r in &readers {
        r.expect("LOCKED", T);
    }
    // Three shared holders at once; a writer cannot get in, a reader can.
    let writer = LockFolder::new(d).unwrap();
    assert!(writer.try_lock().unwrap().is_none());
    spawn("try", &[d, "shared"]).expect("GOT", T);
    spawn("try", &[d, "exclusive"]).expect("BUSY", T);
    for r in readers {
        assert_eq!(r.finish(T), 0);
    }
    let g = writer
        .try_lock()
        .unwrap()
        .expect("free once the readers left");
    spawn("try", &[d, "shared"]).expect("BUSY", T);
    g.release().unwrap();
}

fn writer_is_not_starved_by_readers() {
    // Four reader processes keep the lock continuously shared (their holds
    // overlap). A writer that starts waiting must still get in, well within
    // the readers' run time.
    let dir = tempfile::tempdir().unwrap();
    let occ = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = occ.path().to_str().unwrap();
    let readers: Vec<_> = (0..4)
        .map(|_| spawn("occupy", &[d, o, "shared", "6"]))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let writer = LockFolder::new(d).unwrap();
    let start = Instant::now();
    let g = writer
        .lock_timeout(Duration::from_secs(5))
        .expect("the writer gets in while readers keep coming");
    let waited = start.elapsed();
    assert_eq!(
        names(occ.path()).len(),
        0,
        "no reader inside with the writer"
    );
    g.release().unwrap();
    let mut most = 0;
    for r in readers {
        most = most.max(most_inside(r));
    }
    assert!(
        most >= 2,
        "readers did share the lock (most at once: {most})"
    );
    assert!(waited < Duration::from_secs(5), "writer waited {waited:?}");
}

fn slots_are_never_exceeded_with_kill9() {
    let dir = tempfile::tempdir().unwrap();
    let occ = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = occ.path().to_str().unwrap();
    let mut workers: Vec<_> = (0..6)
        .map(|_| spawn("occupy", &[d, o, "slots=3", "4"]))
        .collect();
    // Kill a worker every 300 ms and start a replacement, for 3 s and at
    // least 5 times (starting a process is slow under wine).
    let until = Instant::now() + Duration::from_secs(3);
    let mut kills = 0;
    let mut i = 0;
    while kills < 5 || Instant::now() < until {
        std::thread::sleep(Duration::from_millis(300));
        i = (i + 1) % workers.len();
        workers[i].kill9();
        workers[i].reap();
        kills += 1;
        workers[i] = spawn("occupy", &[d, o, "slots=3", "2"]);
    }
    let mut most = 0;
    for w in workers {
        most = most.max(most_inside(w));
    }
    assert!(
        most >= 2,
        "holders did overlap up to the slot count (most: {most})"
    );
    assert!(most <= 3);
    // Killed workers' bids were stale and are gone; their occupancy markers
    // (named by PID) may remain and are ignored.
    let lf = LockFolder::builder(d).slots(3).open().unwrap();
    lf.clean().unwrap();
    assert!(!lf.is_locked().unwrap());
}

fn mismatched_slots_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let three = LockFolder::builder(d).slots(3).open().unwrap();
    let g = three.try_lock().unwrap().unwrap();
    for other in [
        LockFolder::builder(d).slots(2).open().unwrap(),
        LockFolder::new(d).unwrap(),
    ] {
        let err = other.try_lock().unwrap_err();
        match &err {
            Error::SlotsMismatch { ours, theirs, .. } => {
                assert_eq!(*theirs, 3);
                assert_eq!(*ours, other.slots());
            }
            e => panic!("expected SlotsMismatch, got {e:?}"),
        }
        assert!(err.to_string().contains("slot"), "{err}");
    }
    assert_eq!(
        names(dir.path()).len(),
        1,
        "the refused attempts left nothing"
    );
    g.release().unwrap();
    assert!(LockFolder::builder(d).slots(0).open().is_err());
    assert!(LockFolder::builder(d).slots(2).shared(true).open().is_err());
}
