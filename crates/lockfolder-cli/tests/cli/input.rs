//! Hostile input through real processes (the parser itself is fuzzed in the
//! unit tests), and the command line people expect from flock(1).

use crate::common::*;
use predicates::prelude::*;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Every status the manual documents as a number (the rest are the
/// command's own, 128+N or the -E code).
const DOCUMENTED: &[i32] = &[0, 1, 64, 65, 66, 70, 71, 73, 74, 77, 126, 127];

fn code_of(args: &[OsString]) -> (i32, String) {
    let out = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run lockfolder");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    (out.status.code().expect("exited"), err)
}

#[test]
fn a_far_deadline_waits_instead_of_panicking() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    let held = lockfolder::LockFolder::new(&d).unwrap().lock().unwrap();
    for w in ["1e19", "1e300", "18446744073709551615.5"] {
        let mut l = Bg::lockfolder(&["run", "-w", w, ds, "--", "true"]);
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            l.child.try_wait().unwrap().is_none(),
            "-w {w} gave up: {}",
            l.stderr()
        );
        send(l.pid(), "TERM");
        let st = l.wait_for(Duration::from_secs(5));
        assert_eq!(st.code(), Some(128 + 15), "-w {w}");
        assert!(!l.stderr().contains("panicked"));
    }
    held.release().unwrap();
}

#[test]
fn unusable_timeouts_are_usage_errors() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    for w in [
        "NaN", "nan", "inf", "-inf", "infinity", "-1", "-0", "1e400", "", "5s",
    ] {
        let (code, err) = code_of(&["run", "-w", w, ds, "--", "true"].map(OsString::from));
        assert_eq!(code, 64, "-w {w:?}: {err}");
    }
    assert!(!d.exists(), "a refused command line created the folder");
}

#[test]
fn odd_values_for_every_subcommand_end_with_a_documented_status() {
    let (t, d) = setup();
    let ds = d.to_str().unwrap();
    let bad = OsString::from_vec(vec![b'x', 0xff, 0xfe]);
    let bad_path = t.path().join(&bad).into_os_string();
    let long = OsString::from(format!("{}/{}", t.path().display(), "y".repeat(5000)));
    let o = |s: &str| OsString::from(s);
    let cases: Vec<Vec<OsString>> = vec![
        vec![o("status"), o("")],
        vec![o("status"), bad_path.clone()],
        vec![o("status"), long.clone()],
        vec![o("status"), o("--json"), long.clone()],
        vec![o("clean"), o("")],
        vec![o("clean"), bad_path.clone()],
        vec![o("clean"), o("--dry-run"), long.clone()],
        vec![o("run"), o(""), o("true")],
        vec![o("run"), long.clone(), o("true")],
        vec![o("run"), o("--label"), bad.clone(), o(ds), o("true")],
        vec![o("run"), o("-E"), o("99999"), o(ds), o("true")],
        vec![o("run"), o("-E"), o("-1"), o(ds), o("true")],
        vec![o("run"), o("--slots"), o("4294967296"), o(ds), o("true")],
        vec![o("run"), o("--slots"), o("-1"), o(ds), o("true")],
        vec![o("run"), o("--hold-while"), o("forever"), o(ds), o("true")],
        vec![o("run"), o("--hold-while"), bad.clone(), o(ds), o("true")],
        vec![o("run"), o(ds), o("")],
        vec![o("run"), o(ds), bad.clone()],
        vec![o("run"), o(ds), o("-c"), o("")],
        vec![o("run"), o(ds), o("true"), bad.clone()],
        vec![bad.clone()],
        vec![o("run"), bad],
    ];
    for args in cases {
        let (code, err) = code_of(&args);
        assert!(
            DOCUMENTED.contains(&code),
            "{args:?} gave {code}, which is not documented: {err}"
        );
    }
}

#[test]
fn the_command_needs_no_double_dash() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    // Options after the command's name are the command's.
    lockfolder()
        .args(["run", "-q", ds, "echo", "-n", "-w", "5", "--label", "x"])
        .assert()
        .success()
        .stdout("-w 5 --label x");
    lockfolder()
        .args(["run", ds, "sh", "-c", "exit 9"])
        .assert()
        .code(9);
    lockfolder()
        .args(["run", "-n", "-w", "5", ds, "true"])
        .assert()
        .code(64)
        .stderr(predicate::str::contains("cannot be used with"));
    assert_eq!(entries(&d), Vec::<String>::new());
}

#[test]
fn every_help_text_lists_the_exit_statuses() {
    let help = |args: &[&str]| {
        String::from_utf8(
            lockfolder()
                .args(args)
                .assert()
                .success()
                .get_output()
                .stdout
                .clone(),
        )
        .unwrap()
    };
    let top = help(&["--help"]);
    let run = help(&["run", "--help"]);
    let all = [
        "64", "65", "66", "71", "73", "74", "77", "126", "127", "128+N",
    ];
    let for_run: Vec<&str> = all.iter().copied().filter(|&c| c != "66").collect();
    for (name, text, codes) in [("top", &top, &all[..]), ("run", &run, &for_run[..])] {
        for code in codes {
            assert!(
                text.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{code} "))),
                "{name} --help lacks exit status {code}:\n{text}"
            );
        }
    }
    for sub in ["status", "clean"] {
        let text = help(&[sub, "--help"]);
        for code in ["0", "1", "64", "66", "74", "77"] {
            assert!(
                text.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{code} "))),
                "{sub} --help lacks exit status {code}:\n{text}"
            );
        }
    }
    assert!(top.contains("man lockfolder"), "{top}");
    for text in [&top, &run] {
        assert!(!text.contains("docs/"), "help points into the repository");
    }
}
