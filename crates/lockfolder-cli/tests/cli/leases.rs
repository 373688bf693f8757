//! `run --fencing`, `run --lease` and the filesystem refusal, with the real
//! binary. The debug build honours `LOCKFOLDER_FAULT`: `fs=NAME` makes the
//! folder look like an unknown FUSE filesystem, `renew` makes every lease
//! renewal fail (as when the file server is gone).

use crate::common::*;
use predicates::prelude::*;
use serde_json::Value;
use std::time::{Duration, Instant};

#[test]
fn fencing_tokens_reach_the_command_and_grow() {
    let (_t, d) = setup();
    let mut last = 0u64;
    for _ in 0..3 {
        let out = lockfolder()
            .arg("run")
            .arg("--fencing")
            .arg(&d)
            .args(["sh", "-c", "echo \"$LOCKFOLDER_FENCE\""])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let token: u64 = String::from_utf8(out).unwrap().trim().parse().unwrap();
        assert!(token > last, "{token} after {last}");
        last = token;
    }
    // Without --fencing the command gets no token (and an inherited one is
    // passed through untouched).
    lockfolder()
        .arg("run")
        .arg(&d)
        .args(["sh", "-c", "echo \"[$LOCKFOLDER_FENCE]\""])
        .env_remove("LOCKFOLDER_FENCE")
        .assert()
        .success()
        .stdout("[]\n");
}

#[test]
fn an_unproven_filesystem_is_refused_by_name_and_the_opt_in_works() {
    let (_t, d) = setup();
    lockfolder()
        .env("LOCKFOLDER_FAULT", "fs=fuse.lockfolder-test")
        .arg("run")
        .arg("-n")
        .arg(&d)
        .args(["echo", "must not run"])
        .assert()
        .code(78)
        .stdout("")
        .stderr(predicate::str::contains("fuse.lockfolder-test"))
        .stderr(predicate::str::contains("--allow-fs fuse.lockfolder-test"));
    // Opted in: the command runs, and its bid records the opt-in.
    let ds = d.to_str().unwrap();
    let inner = format!("\"{}\" status --json \"{ds}\"", bin().display());
    let out = lockfolder()
        .env("LOCKFOLDER_FAULT", "fs=fuse.lockfolder-test")
        .arg("run")
        .args(["--allow-fs", "fuse.lockfolder-test"])
        .arg(&d)
        .args(["sh", "-c", &inner])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let doc: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["filesystem"]["name"], "fuse.lockfolder-test");
    assert_eq!(
        doc["filesystem"]["accepted"], false,
        "status opts in to nothing"
    );
    let bid = doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "bid")
        .unwrap();
    assert_eq!(bid["allowed_fs"], "fuse.lockfolder-test");
    // The environment variable is the same opt-in.
    lockfolder()
        .env("LOCKFOLDER_FAULT", "fs=fuse.lockfolder-test")
        .env("LOCKFOLDER_ALLOW_FS", "fuse.lockfolder-test")
        .arg("run")
        .arg(&d)
        .arg("true")
        .assert()
        .success();
}

#[test]
fn a_lease_that_cannot_be_renewed_stops_the_command() {
    let (_t, d) = setup();
    let start = Instant::now();
    lockfolder()
        .env("LOCKFOLDER_FAULT", "renew")
        .arg("run")
        .args(["--lease", "1"])
        .arg(&d)
        .args(["sleep", "30"])
        .assert()
        .code(143)
        .stderr(predicate::str::contains("could not be renewed in time"));
    let took = start.elapsed();
    assert!(took < Duration::from_secs(15), "stopped after {took:?}");
    // A lease shorter than the minimum is a usage error.
    lockfolder()
        .arg("run")
        .args(["--lease", "0.5"])
        .arg(&d)
        .arg("true")
        .assert()
        .code(64);
}
