//! Signals sent to `lockfolder run`: forwarded to the command while it runs
//! (the lock is released only after it exits); while waiting, they cancel
//! the wait and leave no bid.

use crate::common::*;
use std::time::Duration;

#[test]
fn sigterm_is_forwarded_and_lock_held_until_command_exits() {
    let (t, d) = setup();
    let ds = d.to_str().unwrap();
    let ready = t.path().join("ready");
    let got = t.path().join("got");
    let script = format!(
        "trap 'echo TERM > \"{got}\"; sleep 0.5; exit 143' TERM; touch '{ready}'; \
         while :; do sleep 0.05; done",
        got = got.display(),
        ready = ready.display()
    );
    let mut l = Bg::lockfolder(&["run", ds, "-c", &script]);
    assert!(wait_until(Duration::from_secs(10), || ready.exists()));
    send(l.pid(), "TERM");
    assert!(
        wait_until(Duration::from_secs(5), || got.exists()),
        "the command never saw SIGTERM"
    );
    // The command is still handling the signal: the lock is still held.
    lockfolder().args(["status", "-q", ds]).assert().code(1);
    let st = l.wait_for(Duration::from_secs(10));
    assert_eq!(st.code(), Some(143), "{}", l.stderr());
    assert_eq!(std::fs::read_to_string(&got).unwrap(), "TERM\n");
    assert_eq!(entries(&d), Vec::<String>::new());
}

#[test]
fn sighup_kills_a_plain_command_with_129() {
    let (t, d) = setup();
    let ds = d.to_str().unwrap();
    let ready = t.path().join("ready");
    let script = format!("touch '{}'; exec sleep 30", ready.display());
    let mut l = Bg::lockfolder(&["run", ds, "-c", &script]);
    assert!(wait_until(Duration::from_secs(10), || ready.exists()));
    // The shell has exec'd sleep once the bid's process runs `sleep`.
    assert!(wait_until(Duration::from_secs(5), || {
        bids(&d).first().is_some_and(|b| {
            let pid = bid_pid(&d, b);
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
        })
    }));
    send(l.pid(), "HUP");
    let st = l.wait_for(Duration::from_secs(10));
    assert_eq!(st.code(), Some(128 + 1), "{}", l.stderr());
    assert_eq!(entries(&d), Vec::<String>::new());
}

#[test]
fn sigint_while_waiting_leaves_no_bid() {
    let (t, d) = setup();
    let ds = d.to_str().unwrap();
    let ran = t.path().join("ran");
    let (mut w, gated) = queued_waiter(&d, &ran);
    send(w.pid(), "INT");
    let st = w.wait_for(Duration::from_secs(5));
    assert_eq!(st.code(), Some(130));
    let err = w.stderr();
    assert!(err.contains("SIGINT") && err.contains(ds), "{err}");
    assert_eq!(entries(&d), vec!["blocker.txt".to_owned()]);
    assert!(!alive(gated), "gated child left running");
    assert_never_ran(&d, &ran);
}

#[test]
fn sigterm_while_waiting_for_a_live_holder() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    let held = lockfolder::LockFolder::new(&d).unwrap().lock().unwrap();
    let mut w = Bg::lockfolder(&["run", ds, "--", "true"]);
    std::thread::sleep(Duration::from_millis(300));
    send(w.pid(), "TERM");
    let st = w.wait_for(Duration::from_secs(5));
    assert_eq!(st.code(), Some(143));
    let mine = held
        .bid_path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(entries(&d), vec![mine]);
}
