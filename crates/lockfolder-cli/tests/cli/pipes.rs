//! A closed pipe is normal shell use (`lockfolder status DIR | head -1`):
//! the tool exits quietly with the status the command would have had,
//! never with a panic (exit 101).

use crate::common::*;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Fills `d` with `n` files that are not bids: each blocks the lock and
/// gets a line of its own in `status`.
fn junk(d: &Path, n: usize) {
    std::fs::create_dir_all(d).unwrap();
    for i in 0..n {
        std::fs::write(d.join(format!("junk-{i:05}.txt")), "x").unwrap();
    }
}

/// Fills `d` with `n` stale bids (the PID of a child we started and reaped).
fn stale_bids(d: &Path, n: usize) {
    std::fs::create_dir_all(d).unwrap();
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let mut rec = lockfolder::current_identity().unwrap();
    rec.pid = dead;
    rec.label = Some("a label long enough to make the clean output lines long".into());
    let body = rec.to_bytes();
    for i in 0..n {
        let name = format!("01900000-0000-7000-8000-{i:012}.json");
        std::fs::write(d.join(name), &body).unwrap();
    }
}

fn assert_no_panic(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(!err.contains("Broken pipe"), "{err}");
}

/// Runs `lockfolder ARGS` with standard output on a pipe nobody reads.
fn stdout_closed(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .output()
        .expect("run lockfolder")
}

#[test]
fn status_and_clean_into_a_closed_pipe() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    junk(&d, 3);
    for args in [vec!["status", ds], vec!["status", "--json", ds]] {
        let out = stdout_closed(&args);
        assert_no_panic(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: held, so 1");
    }
    std::fs::remove_dir_all(&d).unwrap();
    stale_bids(&d, 3);
    let out = stdout_closed(&["clean", ds]);
    assert_no_panic(&out);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(bids(&d), Vec::<String>::new(), "clean removed the bids");
}

/// The shell's own pipes, with more output than a pipe buffer holds, so
/// the writer is still writing when `head` exits.
fn piped_into_head(cmd: &str, head: &str, d: &Path) -> (i32, String) {
    let script = format!(
        "\"$LF\" {cmd} \"$D\" 2>\"$D.err\" | {head} >/dev/null; echo \"${{PIPESTATUS[0]}}\""
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .env("LF", bin())
        .env("D", d)
        .output()
        .expect("run bash");
    let code = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let err = std::fs::read_to_string(d.with_extension("err")).unwrap_or_default();
    (code, err)
}

#[test]
fn status_and_clean_piped_into_head() {
    let (_t, d) = setup();
    junk(&d, 2000);
    let (code, err) = piped_into_head("status", "head -1", &d);
    assert_eq!((code, err.as_str()), (1, ""), "status | head -1");
    let (code, err) = piped_into_head("status --json", "head -c 10", &d);
    assert_eq!((code, err.as_str()), (1, ""), "status --json | head -c 10");
    std::fs::remove_dir_all(&d).unwrap();
    stale_bids(&d, 2000);
    let (code, err) = piped_into_head("clean", "head -1", &d);
    assert_eq!((code, err.as_str()), (0, ""), "clean | head -1");
    assert_eq!(bids(&d), Vec::<String>::new(), "clean removed every bid");
}

#[test]
fn run_with_stderr_on_a_closed_pipe() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    let held = lockfolder::LockFolder::new(&d).unwrap().lock().unwrap();
    for (args, want) in [
        (vec!["run", "-n", ds, "--", "true"], 1),
        (vec!["run", "-n", "-E", "42", ds, "--", "true"], 42),
        (vec!["run", "-w", "0.2", ds, "--", "true"], 1),
        (
            vec!["run", ds, "--", "no-such-command-lockfolder-test"],
            127,
        ),
        (vec!["run", "-w", "soon", ds, "--", "true"], 64),
    ] {
        let st = Command::new(bin())
            .args(&args)
            .stdin(Stdio::null())
            .stderr(closed_pipe())
            .status()
            .expect("run lockfolder");
        assert_eq!(st.code(), Some(want), "{args:?}");
    }
    held.release().unwrap();
}
