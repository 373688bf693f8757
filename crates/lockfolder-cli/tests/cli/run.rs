//! `lockfolder run`: exit statuses, conflicts and timeouts, usage errors,
//! and the kill -9 safety of the launcher.

use crate::common::*;
use lockfolder::LockFolder;
use predicates::prelude::*;
use std::time::{Duration, Instant};

#[test]
fn help_and_version() {
    lockfolder()
        .arg("--help")
        .assert()
        .success()
        .stdout(predicate::str::contains("run").and(predicate::str::contains("status")))
        .stdout(predicate::str::contains("clean"));
    for sub in ["run", "status", "clean"] {
        lockfolder()
            .args([sub, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Examples:"))
            .stdout(predicate::str::contains(format!("lockfolder {sub}")));
    }
    lockfolder()
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn exit_status_is_passed_through_and_lock_released() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    lockfolder()
        .args(["run", ds, "--", "sh", "-c", "exit 7"])
        .assert()
        .code(7);
    assert_eq!(entries(&d), Vec::<String>::new(), "bid left behind");
    lockfolder()
        .args(["run", ds, "-c", "exit 3"])
        .assert()
        .code(3);
    lockfolder()
        .args(["run", ds, "--", "true"])
        .assert()
        .code(0);
    // The command runs while the lock is held: it sees the bid.
    let out = lockfolder()
        .args(["run", ds, "--", "ls", ds])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.trim_end().ends_with(".json"), "{out}");
    assert_eq!(entries(&d), Vec::<String>::new());
}

#[test]
fn bid_names_the_command_process() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    // The shell prints the PID recorded in the bid and its own PID ($$).
    let out = lockfolder()
        .args([
            "run",
            ds,
            "--label",
            "nightly",
            "-c",
            &format!("sed 's/.*\"PID\":\\([0-9]*\\).*/\\1/' '{ds}'/*.json; echo; echo $$"),
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    let nums: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(nums.len(), 2, "{out}");
    assert_eq!(nums[0], nums[1], "bid PID is not the command's PID: {out}");
}

#[test]
fn killed_by_signal_gives_128_plus_signo() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    lockfolder()
        .args(["run", ds, "-c", "kill -USR1 $$"])
        .assert()
        .code(128 + 10);
    lockfolder()
        .args(["run", ds, "-c", "kill -KILL $$"])
        .assert()
        .code(128 + 9);
    assert_eq!(entries(&d), Vec::<String>::new());
}

#[test]
fn command_not_found_and_not_executable() {
    let (t, d) = setup();
    let ds = d.to_str().unwrap();
    lockfolder()
        .args(["run", ds, "--", "no-such-command-lockfolder-test"])
        .assert()
        .code(127)
        .stderr(predicate::str::contains("command not found"))
        .stderr(predicate::str::contains(ds));
    let script = t.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    lockfolder()
        .args(["run", ds, "--", script.to_str().unwrap()])
        .assert()
        .code(126);
    // A directory is not a program either.
    lockfolder()
        .args(["run", ds, "--", t.path().to_str().unwrap()])
        .assert()
        .code(126);
    // execve itself fails (no interpreter): reported after the lock was taken.
    let bad = t.path().join("bad-interpreter.sh");
    std::fs::write(&bad, "#!/no/such/interpreter\n").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    lockfolder()
        .args(["run", ds, "--", bad.to_str().unwrap()])
        .assert()
        .code(127)
        .stderr(predicate::str::contains("cannot run"));
    assert_eq!(entries(&d), Vec::<String>::new());
}

#[test]
fn usage_errors_exit_64() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    lockfolder().args(["run", ds]).assert().code(64);
    lockfolder()
        .args(["run", "-w", "-1", ds, "--", "true"])
        .assert()
        .code(64);
    lockfolder()
        .args(["run", "-w", "soon", ds, "--", "true"])
        .assert()
        .code(64);
    lockfolder()
        .args(["run", "-E", "256", ds, "--", "true"])
        .assert()
        .code(64);
    lockfolder().args(["frobnicate"]).assert().code(64);
    let long = "x".repeat(lockfolder::MAX_LABEL_BYTES + 1);
    lockfolder()
        .args(["run", "--label", &long, ds, "--", "true"])
        .assert()
        .code(64);
}

#[test]
fn folder_that_is_a_file_cannot_be_created() {
    let (t, _d) = setup();
    let f = t.path().join("file");
    std::fs::write(&f, "x").unwrap();
    lockfolder()
        .args(["run", f.to_str().unwrap(), "--", "true"])
        .assert()
        .code(73)
        .stderr(predicate::str::contains(f.to_str().unwrap()));
}

#[test]
fn nonblock_and_timeout_with_a_held_lock() {
    let (t, d) = setup();
    let ds = d.to_str().unwrap();
    let ran = t.path().join("ran");
    let rs = ran.to_str().unwrap();
    let held = LockFolder::new(&d).unwrap().lock().unwrap();
    let me = std::process::id().to_string();

    lockfolder()
        .args(["run", "-n", ds, "--", "touch", rs])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("PID {me}")))
        .stderr(predicate::str::contains(ds));
    lockfolder()
        .args(["run", "-n", "-E", "42", ds, "--", "touch", rs])
        .assert()
        .code(42);
    lockfolder()
        .args(["run", "-w", "0", "-E", "7", "-q", ds, "--", "touch", rs])
        .assert()
        .code(7)
        .stderr(predicate::str::is_empty());
    let start = Instant::now();
    lockfolder()
        .args(["run", "-w", "0.5", "-E", "9", ds, "--", "touch", rs])
        .assert()
        .code(9)
        .stderr(predicate::str::contains("timed out"))
        .stderr(predicate::str::contains(format!("PID {me}")));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(500),
        "gave up early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "gave up late: {took:?}");
    assert!(!ran.exists(), "the command ran although the lock was held");
    // Only the holder's bid is left: the waiters withdrew.
    assert_eq!(
        entries(&d),
        vec![held
            .bid_path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()]
    );

    // A waiter gets in once the holder releases.
    let mut waiter = Bg::lockfolder(&["run", "-w", "10", "-v", ds, "--", "touch", rs]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!ran.exists());
    held.release().unwrap();
    let st = waiter.wait_for(Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "{}", waiter.stderr());
    assert!(ran.exists());
    assert!(waiter.stderr().contains("lock taken after"));
    assert_eq!(entries(&d), Vec::<String>::new());
}

/// The central safety claim: kill -9 of the launcher while its
/// command runs must not let a second `lockfolder run` in before that
/// command has ended.
#[test]
fn kill_9_of_launcher_keeps_the_lock_with_the_command() {
    let (t, d) = setup();
    let ds = d.to_str().unwrap();
    let log = t.path().join("log");
    let marker = t.path().join("first-running");
    let first_cmd = format!(
        "touch '{m}'; echo start1 >> '{l}'; sleep 1.5; echo end1 >> '{l}'; rm '{m}'",
        m = marker.display(),
        l = log.display()
    );
    let mut first = Bg::lockfolder(&["run", ds, "-c", &first_cmd]);
    assert!(
        wait_until(Duration::from_secs(10), || marker.exists()),
        "first command did not start"
    );
    let bid = bids(&d);
    assert_eq!(bid.len(), 1);
    let command_pid = bid_pid(&d, &bid[0]);
    assert_ne!(
        command_pid,
        first.pid(),
        "bid names the launcher, not the command"
    );

    send(first.pid(), "KILL");
    first.wait_for(Duration::from_secs(5));
    assert!(
        marker.exists(),
        "first command ended too early for the test"
    );
    assert!(alive(command_pid), "the command died with its launcher");

    let second_cmd = format!(
        "test -e '{m}' && echo OVERLAP >> '{l}'; echo start2 >> '{l}'",
        m = marker.display(),
        l = log.display()
    );
    let mut second = Bg::lockfolder(&["run", "-w", "10", ds, "-c", &second_cmd]);
    let st = second.wait_for(Duration::from_secs(15));
    assert_eq!(st.code(), Some(0), "{}", second.stderr());
    let log = std::fs::read_to_string(&log).unwrap();
    assert_eq!(log, "start1\nend1\nstart2\n", "second holder got in early");
    assert!(!alive(command_pid));
    assert_eq!(bids(&d), Vec::<String>::new());
}

/// kill -9 of the launcher while it is still waiting: the gated child never
/// runs the command, and its bid becomes stale.
#[test]
fn kill_9_while_waiting_never_runs_the_command() {
    let (t, d) = setup();
    let ds = d.to_str().unwrap();
    let ran = t.path().join("ran");
    let (mut w, gated) = queued_waiter(&d, &ran);
    send(w.pid(), "KILL");
    w.wait_for(Duration::from_secs(5));
    assert!(
        wait_until(Duration::from_secs(5), || !alive(gated)),
        "gated child outlived its launcher"
    );
    assert_never_ran(&d, &ran);
    // The orphaned bid is stale: `status` says free, `clean` removes it.
    lockfolder().args(["status", ds]).assert().code(0);
    lockfolder()
        .args(["clean", ds])
        .assert()
        .success()
        .stdout(predicate::str::contains("removed"));
    assert_eq!(entries(&d), Vec::<String>::new());
}
