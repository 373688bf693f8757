//! The kill storm, run against the real binaries.
//!
//! Each test starts `lockfolder-storm storm`, which kills its own workers
//! with SIGKILL for a while and then checks for overlaps, a wedged lock and
//! leftovers; its summary line is parsed and checked here too, so a storm
//! that killed nobody or acquired nothing cannot pass. The storms take both
//! cores of a small CI machine, so they run one at a time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const STORM: &str = env!("CARGO_BIN_EXE_lockfolder-storm");

struct Outcome {
    success: bool,
    fields: HashMap<String, String>,
    stderr: String,
}

impl Outcome {
    fn num(&self, key: &str) -> f64 {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in the summary: {:?}", self.fields))
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a number: {:?}", self.fields[key]))
    }
}

/// Runs a storm and parses its summary line. The storm's own deadline is
/// `seconds` plus at most ~17 s of checks; a hung storm is killed at 3× that.
fn storm(seconds: u32, extra: &[&str]) -> Outcome {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    // A failed storm keeps its arena for a post-mortem: make it inside a
    // folder the test removes.
    let base = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(STORM)
        .args(["storm", "--seconds", &seconds.to_string(), "--dir"])
        .arg(base.path())
        .args(extra)
        .stdout(std::process::Stdio::piped())
        // Workers write to the same stderr; a pipe nobody reads until the
        // end could fill up and stall them, so it goes to a file.
        .stderr(std::fs::File::create(base.path().join("stderr")).expect("stderr file"))
        .spawn()
        .expect("start lockfolder-storm");
    let limit = Duration::from_secs(u64::from(seconds) * 3 + 60);
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lockfolder-storm did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().expect("storm output");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = std::fs::read_to_string(base.path().join("stderr")).unwrap_or_default();
    // Only the end matters; a failed mutant storm writes thousands of lines.
    let stderr = stderr[stderr.len().saturating_sub(4000)..].to_owned();
    let line = stdout
        .lines()
        .find(|l| l.starts_with("lockfolder-storm: "))
        .unwrap_or_else(|| panic!("no summary line; stdout {stdout:?} stderr {stderr:?}"));
    eprintln!("{line}");
    let fields = line
        .split_ascii_whitespace()
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Outcome {
        success: out.status.success(),
        fields,
        stderr,
    }
}

fn assert_clean_storm(o: &Outcome, min_acquisitions: f64) {
    assert!(o.success, "storm failed:\n{}", o.stderr);
    assert_eq!(o.num("overlaps"), 0.0, "{}", o.stderr);
    assert_eq!(o.num("lost_updates"), 0.0, "{}", o.stderr);
    assert_eq!(o.num("wedged"), 0.0, "{}", o.stderr);
    assert_eq!(o.num("leftovers"), 0.0, "{}", o.stderr);
    assert_eq!(o.num("unexpected_exits"), 0.0, "{}", o.stderr);
    assert_eq!(o.num("worker_errors"), 0.0, "{}", o.stderr);
    assert!(o.num("max_wake_after_stop_ms") <= 1000.0);
    assert!(o.num("kills") >= 20.0, "too few kills to mean anything");
    assert!(
        o.num("acquisitions") >= min_acquisitions,
        "too few acquisitions"
    );
}

#[test]
fn library_storm_20s_no_overlap_no_wedge_no_leftovers() {
    let o = storm(20, &[]);
    assert_clean_storm(&o, 200.0);
    assert!(o.num("kills_worker") > 0.0);
    assert!(
        o.num("kills_on_bid") > 0.0,
        "no kill landed right after a bid"
    );
    assert!(
        o.num("kills_on_marker") > 0.0,
        "no kill landed in a critical section"
    );
}

/// The checks can fail: without the lock the same storm must see overlaps.
#[test]
fn storm_without_the_lock_is_caught() {
    let o = storm(3, &["--mutant-no-lock"]);
    assert!(!o.success, "a storm without a lock passed");
    assert!(
        o.num("overlaps") + o.num("lost_updates") > 0.0,
        "no overlap detected without a lock"
    );
}

/// The `lockfolder` binary for the CLI storm: `$LOCKFOLDER_BIN` if set,
/// else built here with the cargo running this test, into the same target
/// folder and profile as `lockfolder-storm`, else the one beside it.
fn lockfolder_cli() -> PathBuf {
    if let Some(p) = std::env::var_os("LOCKFOLDER_BIN") {
        return PathBuf::from(p);
    }
    let storm = Path::new(STORM);
    let profile_dir = storm.parent().expect("bin dir");
    let sibling = profile_dir.join("lockfolder");
    let target_dir = profile_dir.parent().expect("target dir");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args([
            "build",
            "--quiet",
            "-p",
            "lockfolder-cli",
            "--bin",
            "lockfolder",
        ])
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            build.arg("--release");
        }
        Some(other) => {
            build.args(["--profile", other]);
        }
    }
    match build.status() {
        Ok(s) if s.success() => {}
        other => eprintln!(
            "building lockfolder-cli: {other:?}; using {}",
            sibling.display()
        ),
    }
    assert!(
        sibling.is_file(),
        "no lockfolder binary at {} (set LOCKFOLDER_BIN)",
        sibling.display()
    );
    sibling
}

#[test]
fn cli_storm_15s_kills_launchers_and_commands() {
    let cli = lockfolder_cli();
    let o = storm(15, &["--cli", cli.to_str().expect("utf-8 path")]);
    assert_clean_storm(&o, 100.0);
    assert!(o.num("kills_launcher") > 0.0, "no launcher was killed");
    assert!(o.num("kills_command") > 0.0, "no command was killed");
}
