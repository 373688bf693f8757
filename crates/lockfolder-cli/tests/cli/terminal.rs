//! The command gets the terminal while it runs (it is in a process group of
//! its own): it can read from it, and Ctrl-Z stops it and gives control
//! back to the shell, which can continue it with `fg`. A real pseudo
//! terminal, made by script(1).

use crate::common::*;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `sh -c SCRIPT` on a new pseudo terminal (script(1)); `feed` gets
/// the terminal's input side and the folder `$M` where the script leaves
/// files. Returns what the terminal showed and the exit status.
fn on_a_terminal(
    script: &str,
    feed: impl FnOnce(&mut dyn Write, &std::path::Path),
) -> (String, Option<i32>) {
    let t = tempfile::tempdir().unwrap();
    let m = t.path().join("m");
    std::fs::create_dir(&m).unwrap();
    let mut child = Command::new("timeout")
        .args(["30", "script", "-qec"])
        .arg(format!("sh -c '{script}'"))
        .arg("/dev/null")
        .env("LF", bin())
        .env("D", t.path().join("lock"))
        .env("M", &m)
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("script(1) is needed (util-linux)");
    let mut input = child.stdin.take().unwrap();
    feed(&mut input, &m);
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    drop(input);
    let st = child.wait().unwrap();
    (out, st.code())
}

fn ready(m: &std::path::Path) {
    assert!(
        wait_until(Duration::from_secs(10), || m.join("ready").exists()),
        "the command never started"
    );
    // Let it reach its `read`.
    std::thread::sleep(Duration::from_millis(200));
}

/// The command's group is the terminal's foreground group from its start
/// (a command of a background group that reads the terminal is stopped
/// with SIGTTIN), and it reads what is typed.
#[test]
fn a_command_can_read_the_terminal() {
    let (out, code) = on_a_terminal(
        r#""$LF" run "$D" -- sh -c "ps -o pgid=,tpgid= -p \$\$ > \"\$M/groups\"; touch \"\$M/ready\"; read x; echo got:\$x""#,
        |input, m| {
            ready(m);
            let groups = std::fs::read_to_string(m.join("groups")).unwrap();
            let g: Vec<&str> = groups.split_whitespace().collect();
            assert_eq!(g.len(), 2, "{groups}");
            assert_eq!(g[0], g[1], "not the terminal's foreground group: {groups}");
            input.write_all(b"hello\n").unwrap();
        },
    );
    assert!(out.contains("got:hello"), "{out}");
    assert_eq!(code, Some(0), "{out}");
}

/// Ctrl-Z stops the command; lockfolder takes the terminal back and stops
/// too, so the shell (with job control, `set -m`) regains control; `fg`
/// continues both and the command reads the terminal again.
#[test]
fn ctrl_z_then_fg() {
    let (out, code) = on_a_terminal(
        r#"set -m; "$LF" run "$D" -- sh -c "touch \"\$M/ready\"; read x; echo got:\$x"; echo stopped:$?; touch "$M/stopped"; fg; echo done:$?"#,
        |input, m| {
            ready(m);
            input.write_all(b"\x1a").unwrap();
            input.flush().unwrap();
            assert!(
                wait_until(Duration::from_secs(10), || m.join("stopped").exists()),
                "the shell never regained control"
            );
            input.write_all(b"hello\n").unwrap();
        },
    );
    assert!(out.contains("stopped:148"), "{out}");
    assert!(out.contains("got:hello"), "{out}");
    assert!(out.contains("done:0"), "{out}");
    assert_eq!(code, Some(0), "{out}");
}
