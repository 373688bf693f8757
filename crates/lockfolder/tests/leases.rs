//! Leases and fencing tokens: how a lock on a folder shared between
//! machines recovers from a machine that died, and how a holder learns it
//! lost the lock. Different machines are played by sibling PID namespaces,
//! which cannot see each other's processes (so only the lease can judge).

use crate::util::{names, on_another_machine, write_bid, TestFn};
#[cfg(target_os = "linux")]
use crate::util::{namespaces_available, spawn_in};
use lockfolder::{LockFolder, StaleReason, State};
#[cfg(target_os = "linux")]
use std::time::Instant;
use std::time::{Duration, SystemTime};

pub const TESTS: &[TestFn] = &[
    (
        "leases::a_lease_lapses_by_the_file_servers_clock",
        a_lease_lapses_by_the_file_servers_clock,
    ),
    // Hosts are played by sibling PID namespaces.
    #[cfg(target_os = "linux")]
    (
        "leases::renewals_hold_the_lock_and_a_dead_hosts_lease_lapses",
        renewals_hold_the_lock_and_a_dead_hosts_lease_lapses,
    ),
    #[cfg(target_os = "linux")]
    (
        "leases::a_holder_that_cannot_renew_learns_it_before_anyone_enters",
        a_holder_that_cannot_renew_learns_it_before_anyone_enters,
    ),
    ("leases::fencing_tokens_grow", fencing_tokens_grow),
];

#[cfg(target_os = "linux")]
const T: Duration = Duration::from_secs(20);
#[cfg(target_os = "linux")]
const PID_NS: &[&str] = &["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];

/// A bid of a machine nobody here can judge, under a lease of `ms`.
fn foreign_lease_bid(dir: &std::path::Path, ms: u64) -> String {
    let mut r = lockfolder::current_identity().unwrap();
    on_another_machine(&mut r);
    r.lease_ms = Some(ms);
    write_bid(dir, &r.to_bytes())
}

fn a_lease_lapses_by_the_file_servers_clock() {
    let dir = tempfile::tempdir().unwrap();
    let name = foreign_lease_bid(dir.path(), 1000);
    let lf = LockFolder::new(dir.path()).unwrap();
    // Freshly renewed: it holds.
    assert!(lf.try_lock().unwrap().is_none());
    let h = lf.holders().unwrap().remove(0);
    assert_eq!(h.state, State::Foreign);
    assert_eq!(h.lease, Some(Duration::from_millis(1000)));
    assert!(h.renewed.is_some());
    assert!(names(dir.path()).contains(&name));
    // Last renewed (by the filesystem's clock) five seconds ago: lapsed.
    let f = std::fs::File::options()
        .write(true)
        .open(dir.path().join(&name))
        .unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(5))
        .unwrap();
    drop(f);
    let g = lf
        .try_lock()
        .unwrap()
        .expect("a lapsed lease does not hold");
    assert!(!names(dir.path()).contains(&name), "removed by its name");
    g.release().unwrap();
    // clean judges leases too (it writes a probe file for the clock).
    let name = foreign_lease_bid(dir.path(), 1000);
    let f = std::fs::File::options()
        .write(true)
        .open(dir.path().join(&name))
        .unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(5))
        .unwrap();
    drop(f);
    let removed = lf.clean().unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].state, State::Stale(StaleReason::LeaseExpired));
    assert_eq!(names(dir.path()), Vec::<String>::new(), "nothing left");
}

#[cfg(target_os = "linux")]
fn field(line: &str, i: usize) -> u128 {
    line.split_whitespace().nth(i).unwrap().parse().unwrap()
}

#[cfg(target_os = "linux")]
fn renewals_hold_the_lock_and_a_dead_hosts_lease_lapses() {
    if !namespaces_available(&PID_NS[1..]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let mut holder = spawn_in(PID_NS, "lease-hold", &[d, "1000"]);
    holder.expect("LOCKED", T);
    // Another "host": it cannot see the holder, so only the lease judges.
    for _ in 0..3 {
        let other = spawn_in(PID_NS, "try", &[d]);
        other.expect("BUSY", T);
        other.finish(T);
        std::thread::sleep(Duration::from_millis(800));
    }
    // The holder's whole host dies.
    holder.kill9();
    holder.reap();
    let died = Instant::now();
    let waiter = spawn_in(PID_NS, "fenced-wait", &[d, "15000"]);
    waiter.expect("WAITING", T);
    let got = waiter.line(T);
    assert!(got.starts_with("GOT"), "{got}");
    let took = died.elapsed();
    // Lease 1 s + 5 % margin, plus the waiter's re-check period and a
    // loaded machine's slack.
    assert!(took < Duration::from_secs(8), "took over after {took:?}");
    waiter.finish(T);
}

#[cfg(target_os = "linux")]
fn a_holder_that_cannot_renew_learns_it_before_anyone_enters() {
    if !namespaces_available(&PID_NS[1..]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // Every renewal of this holder fails (as when its file server is
    // unreachable), but it keeps running.
    let exe = std::env::current_exe().unwrap();
    let mut cmd = std::process::Command::new(PID_NS[0]);
    cmd.args(&PID_NS[1..])
        .arg(&exe)
        .env("LF_ROLE", "lease-hold")
        .env("LF_ARGS", format!("{d}\u{1f}1000"))
        .env("LOCKFOLDER_FAULT", "renew");
    let mut holder = crate::util::spawn_cmd(cmd);
    let locked = holder.expect("LOCKED", T);
    let first_fence = field(&locked, 1);
    let waiter = spawn_in(PID_NS, "fenced-wait", &[d, "15000"]);
    waiter.expect("WAITING", T);
    let lost = holder.expect("LOST", T);
    let got = waiter.line(T);
    assert!(got.starts_with("GOT"), "{got}");
    assert!(
        field(&lost, 1) < field(&got, 2),
        "the holder learned it lost the lock ({lost}) before the successor entered ({got})"
    );
    assert!(
        field(&got, 1) > first_fence,
        "the successor's fencing token is larger: {got} after {locked}"
    );
    waiter.finish(T);
    drop(holder.stdin.take());
    holder.expect("RELEASED lost", T);
}

fn fencing_tokens_grow() {
    let dir = tempfile::tempdir().unwrap();
    let lf = LockFolder::builder(dir.path())
        .fencing(true)
        .open()
        .unwrap();
    let mut last = 0;
    for _ in 0..12 {
        let g = lf.try_lock().unwrap().unwrap();
        let t = g.fencing_token().unwrap();
        assert!(t > last, "{t} after {last}");
        last = t;
        g.release().unwrap();
    }
    let fences: Vec<String> = names(dir.path())
        .into_iter()
        .filter(|n| n.starts_with(".lockfolder-fence-"))
        .collect();
    assert!(
        !fences.is_empty() && fences.len() <= 2,
        "old fence files are tidied: {fences:?}"
    );
    // A lock without fencing draws none.
    let plain = LockFolder::new(dir.path()).unwrap();
    assert_eq!(plain.try_lock().unwrap().unwrap().fencing_token(), None);
}
