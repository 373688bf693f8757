//! `lockfolder run`, `status` and `clean` on Windows, with `cmd.exe` as the
//! command: exit statuses, the gate (a suspended child in a job object), and
//! the options refused by name.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn code(args: &[&str]) -> (i32, String) {
    let out = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run lockfolder");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    (out.status.code().expect("exit code"), err)
}

/// A file that is not a bid: it blocks the lock, and a waiter keeps its
/// own bid while it waits.
fn block(d: &Path) {
    std::fs::create_dir_all(d).unwrap();
    std::fs::write(d.join("blocker.txt"), "not a bid").unwrap();
}

#[test]
fn the_commands_exit_status_comes_back_and_the_lock_is_free_after() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    assert_eq!(code(&["run", ds, "--", "cmd", "/c", "exit 7"]).0, 7);
    assert_eq!(code(&["run", ds, "--", "cmd", "/c", "exit 0"]).0, 0);
    assert!(bids(&d).is_empty(), "a bid was left: {:?}", entries(&d));
    assert_eq!(code(&["status", ds]).0, 0);
}

// The scripts given to `cmd /c` hold no quotes: std quotes arguments the
// way C programs parse them, which cmd.exe does not; the temporary paths
// have no spaces.

#[test]
fn the_command_sees_the_lock_held_in_its_own_name() {
    let (t, d) = setup();
    let ds = d.to_str().unwrap();
    let out = t.path().join("status.txt");
    // The command runs `lockfolder status` on its own folder: held (1).
    let inner = format!("{} status {ds} > {}", bin().display(), out.display());
    let (c, err) = code(&["run", ds, "--", "cmd", "/c", &inner]);
    assert_eq!(c, 1, "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains("held"), "status said: {text}");
}

#[test]
fn missing_and_unrunnable_commands_give_127_and_126() {
    let (t, d) = setup();
    let ds = d.to_str().unwrap();
    let (c, err) = code(&["run", ds, "--", "no-such-command-here"]);
    assert_eq!(c, 127, "{err}");
    let text = t.path().join("notes.txt");
    std::fs::write(&text, "not a program").unwrap();
    let (c, err) = code(&["run", ds, "--", text.to_str().unwrap()]);
    assert_eq!(c, 126, "{err}");
    assert!(bids(&d).is_empty());
}

#[test]
fn process_groups_and_fencing_are_refused_by_name() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    for (args, name) in [
        (&["--hold-while", "group"][..], "--hold-while group"),
        (&["--fencing"][..], "--fencing"),
        (&["--lease", "5"][..], "--lease"),
    ] {
        let mut a = vec!["run"];
        a.extend_from_slice(args);
        a.extend_from_slice(&[ds, "--", "cmd", "/c", "exit 0"]);
        let (c, err) = code(&a);
        assert_eq!(c, 71, "{a:?}: {err}");
        assert!(err.contains(name), "{a:?}: {err}");
    }
    assert!(bids(&d).is_empty());
}

#[test]
fn a_held_lock_gives_the_conflict_code() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    block(&d);
    assert_eq!(code(&["run", "-n", ds, "--", "cmd", "/c", "exit 0"]).0, 1);
    assert_eq!(
        code(&["run", "-n", "-E", "9", ds, "--", "cmd", "/c", "exit 0"]).0,
        9
    );
    assert_eq!(
        code(&["run", "-w", "0.3", ds, "--", "cmd", "/c", "exit 0"]).0,
        1
    );
    assert_eq!(code(&["status", ds]).0, 1);
    std::fs::remove_file(d.join("blocker.txt")).unwrap();
    assert_eq!(code(&["run", "-n", ds, "--", "cmd", "/c", "exit 3"]).0, 3);
}

/// A launcher killed while it waits: its suspended child must go with it
/// (the job object), or its bid would stay live for ever; and the command
/// must never run.
#[test]
fn a_launcher_killed_while_waiting_leaves_nothing_running() {
    let (t, d) = setup();
    let ds = d.to_str().unwrap();
    let ran = t.path().join("ran.txt");
    block(&d);
    let echo = format!("echo ran > {}", ran.display());
    let mut w = Bg::lockfolder(&["run", ds, "--", "cmd", "/c", &echo]);
    assert!(
        wait_until(Duration::from_secs(20), || bids(&d).len() == 1),
        "the waiter never queued a bid"
    );
    let gated = bid_pid(&d, &bids(&d)[0]);
    assert_ne!(gated, w.pid(), "the bid names the child, not the launcher");
    w.child.kill().unwrap();
    w.wait_for(Duration::from_secs(20));
    std::fs::remove_file(d.join("blocker.txt")).unwrap();
    // The waiter's bid is stale once its child is gone: the lock is free.
    assert!(
        wait_until(Duration::from_secs(20), || try_run_cmd(ds) == 0),
        "the killed waiter's child kept the lock"
    );
    assert!(!ran.exists(), "the command ran without the lock");
}

/// A launcher killed after "go": the command runs on, and the lock stays
/// with it until it exits. The command is a second `lockfolder run`
/// queued behind a blocker in another folder: it runs until the test
/// removes that blocker, without a sleep loop.
#[test]
fn a_launcher_killed_while_the_command_runs_leaves_the_lock_with_it() {
    let (t, d) = setup();
    let ds = d.to_str().unwrap();
    let gate = t.path().join("gate");
    block(&gate);
    let exe = bin();
    let mut h = Bg::lockfolder(&[
        "run",
        ds,
        "--",
        exe.to_str().unwrap(),
        "run",
        "-q",
        "-w",
        "60",
        gate.to_str().unwrap(),
        "--",
        "cmd",
        "/c",
        "exit 0",
    ]);
    assert!(
        wait_until(Duration::from_secs(20), || bids(&gate).len() == 1),
        "the command never started"
    );
    h.child.kill().unwrap();
    h.wait_for(Duration::from_secs(20));
    assert_eq!(try_run_cmd(ds), 1, "the lock left with the launcher");
    std::fs::remove_file(gate.join("blocker.txt")).unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || try_run_cmd(ds) == 0),
        "the lock was not free after the command exited"
    );
}

/// `lockfolder run -n -q DIR -- cmd /c exit 0`: 0 if the lock was free.
fn try_run_cmd(ds: &str) -> i32 {
    code(&["run", "-n", "-q", ds, "--", "cmd", "/c", "exit 0"]).0
}

#[test]
fn clean_removes_a_stale_bid_of_a_killed_waiter() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    block(&d);
    let mut w = Bg::lockfolder(&["run", ds, "--", "cmd", "/c", "exit 0"]);
    assert!(
        wait_until(Duration::from_secs(20), || bids(&d).len() == 1),
        "the waiter never queued a bid"
    );
    w.child.kill().unwrap();
    w.wait_for(Duration::from_secs(20));
    assert!(
        wait_until(Duration::from_secs(20), || {
            code(&["clean", ds]).0 == 0 && bids(&d).is_empty()
        }),
        "clean left {:?}",
        entries(&d)
    );
}
