//! `lockfolder status` and `lockfolder clean` on a folder holding a live, a
//! stale, a foreign and a junk entry.

use crate::common::*;
use lockfolder::LockFolder;
use predicates::prelude::*;
use serde_json::Value;
use std::path::Path;

const STALE: &str = "01900000-0000-7000-8000-000000000002.json";
const FOREIGN: &str = "01900000-0000-7000-8000-000000000003.json";
const JUNK: &str = "notes.txt";

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Writes a stale bid (the PID of a child we started and reaped), a bid
/// from another host, and a file that is not a bid.
fn craft(d: &Path) -> u32 {
    std::fs::create_dir_all(d).unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();

    let mut stale = lockfolder::current_identity().unwrap();
    stale.pid = dead_pid;
    stale.published_ms = Some(now_ms() - 90_000);
    stale.label = Some("crashed job".into());
    std::fs::write(d.join(STALE), stale.to_bytes()).unwrap();

    // Another machine: another kernel (boot id) and machine id.
    let mut foreign = lockfolder::current_identity().unwrap();
    foreign.host = Some("elsewhere.invalid".into());
    if let Some(lockfolder::Owner::Linux(o)) = foreign.owner.as_mut() {
        o.boot_id = "00000000-0000-4000-8000-000000000000".into();
        o.machine_id = Some("another-machine".into());
    }
    foreign.pid = 4242;
    foreign.published_ms = Some(now_ms());
    std::fs::write(d.join(FOREIGN), foreign.to_bytes()).unwrap();

    std::fs::write(d.join(JUNK), "remember the milk").unwrap();
    dead_pid
}

fn status_json(ds: &str) -> Value {
    let out = lockfolder()
        .args(["status", "--json", ds])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).expect("status --json prints JSON")
}

fn entry<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no entry {name} in {doc:#}"))
}

#[test]
fn status_and_clean_with_live_stale_foreign_and_junk() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    // The live entry: this test process holds the lock, with a label.
    let live = LockFolder::builder(&d)
        .label("the test itself")
        .open()
        .unwrap()
        .lock()
        .unwrap();
    let live_name = live
        .bid_path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let dead_pid = craft(&d);

    let doc = status_json(ds);
    assert_eq!(doc["format"], 1);
    assert_eq!(doc["folder"], ds);
    assert_eq!(doc["locked"], true);
    assert_eq!(doc["entries"].as_array().unwrap().len(), 4, "{doc:#}");
    let e = entry(&doc, &live_name);
    assert_eq!(e["state"], "live");
    assert_eq!(e["kind"], "bid");
    assert_eq!(e["blocks"], true);
    assert_eq!(e["pid"], std::process::id());
    assert_eq!(e["label"], "the test itself");
    assert_eq!(e["mode"], "exclusive");
    assert!(e["age_seconds"].as_f64().unwrap() >= 0.0);
    assert!(e["acquired"].as_f64().unwrap() > 1.6e9);
    let e = entry(&doc, STALE);
    assert_eq!(e["state"], "stale");
    assert_eq!(e["stale_reason"], "process gone");
    assert_eq!(e["blocks"], false);
    assert_eq!(e["pid"], dead_pid);
    assert_eq!(e["label"], "crashed job");
    let age = e["age_seconds"].as_f64().unwrap();
    assert!((89.0..200.0).contains(&age), "age {age}");
    let e = entry(&doc, FOREIGN);
    assert_eq!(e["state"], "foreign");
    assert_eq!(e["host"], "elsewhere.invalid");
    assert_eq!(e["pid"], 4242);
    let e = entry(&doc, JUNK);
    assert_eq!(e["state"], "not-a-bid");
    assert_eq!(e["kind"], "other");
    assert_eq!(e["pid"], Value::Null);
    assert_eq!(e["blocks"], true);

    let text = lockfolder()
        .args(["status", ds])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.starts_with(&format!(
            "{ds}: held by 2 holders, 1 entry that blocks it; a new acquisition would wait"
        )),
        "{text}"
    );
    assert!(text.contains("filesystem "), "{text}");
    assert!(text.contains("waits for "), "{text}");
    for (name, state) in [
        (live_name.as_str(), "live"),
        (STALE, "stale"),
        (FOREIGN, "foreign"),
        (JUNK, "not-a-bid"),
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"));
        assert!(line.trim_start().starts_with(state), "{line}");
    }
    assert!(text.contains("label \"the test itself\""), "{text}");
    assert!(text.contains("host elsewhere.invalid"), "{text}");

    // clean --dry-run names the stale bid only and removes nothing.
    lockfolder()
        .args(["clean", "--dry-run", ds])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("would remove {STALE}")))
        .stdout(predicate::str::contains(FOREIGN).not())
        .stdout(predicate::str::contains(JUNK).not())
        .stdout(predicate::str::contains(live_name.as_str()).not());
    assert_eq!(entries(&d).len(), 4);

    // clean removes the stale bid only.
    lockfolder()
        .args(["clean", ds])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("removed {STALE}")))
        .stdout(predicate::str::contains(FOREIGN).not())
        .stdout(predicate::str::contains(JUNK).not());
    let mut expect = vec![live_name.clone(), FOREIGN.to_owned(), JUNK.to_owned()];
    expect.sort();
    assert_eq!(entries(&d), expect);
    lockfolder()
        .args(["clean", ds])
        .assert()
        .success()
        .stdout("nothing to remove\n");

    // --force: refused for a file that is not a bid and for a live local
    // bid (exit 77, nothing removed); done for the foreign bid.
    lockfolder()
        .args(["clean", "--force", JUNK, ds])
        .assert()
        .code(77)
        .stderr(predicate::str::contains("refused"));
    lockfolder()
        .args(["clean", "--force", live_name.as_str(), ds])
        .assert()
        .code(77)
        .stderr(predicate::str::contains("alive"));
    assert_eq!(entries(&d), expect);
    lockfolder()
        .args(["clean", "--force", FOREIGN, ds])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "removed by force {FOREIGN}"
        )));
    let mut expect = vec![live_name.clone(), JUNK.to_owned()];
    expect.sort();
    assert_eq!(entries(&d), expect);

    // Released, the junk file still blocks the lock.
    live.release().unwrap();
    lockfolder()
        .args(["status", "-q", ds])
        .assert()
        .code(1)
        .stdout("");
    std::fs::remove_file(d.join(JUNK)).unwrap();
    lockfolder()
        .args(["status", ds])
        .assert()
        .code(0)
        .stdout(predicate::str::starts_with(format!(
            "{ds}: free; a new acquisition would get it now\n"
        )));
    let doc: Value = serde_json::from_slice(
        &lockfolder()
            .args(["status", "--json", ds])
            .assert()
            .code(0)
            .get_output()
            .stdout,
    )
    .unwrap();
    assert_eq!(doc["locked"], false);
    assert_eq!(doc["entries"], serde_json::json!([]));
}

#[test]
fn missing_folder_is_reported_not_created() {
    let (_t, d) = setup();
    let ds = d.to_str().unwrap();
    lockfolder()
        .args(["status", ds])
        .assert()
        .code(66)
        .stderr(predicate::str::contains(ds))
        .stderr(predicate::str::contains("no such lock folder"));
    lockfolder().args(["clean", ds]).assert().code(66);
    lockfolder()
        .args(["status", "--json", ds])
        .assert()
        .code(66);
    assert!(!d.exists(), "status or clean created the folder");
}
