//! `--shared` and `--slots`: shared holders run together, an exclusive one
//! waits for them, a mismatched slot count is refused.

use crate::common::*;
use std::time::Duration;

/// A shell command that announces itself in `dir/NAME`, then stays inside
/// until the test creates `dir/go` (at most 10 s, so a failure cannot hang).
fn announce_and_hold(dir: &std::path::Path, name: &str) -> String {
    format!(
        "touch {d}/{name}; i=0; while [ ! -e {d}/go ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done",
        d = dir.display()
    )
}

/// Waits until `n` holders have announced themselves: proof that `n` hold
/// the lock at the same time.
fn inside(meet: &std::path::Path, n: usize) -> bool {
    wait_until(Duration::from_secs(10), || {
        std::fs::read_dir(meet).unwrap().count() >= n
    })
}

#[test]
fn shared_holders_run_together_and_exclude_a_writer() {
    let (_t, d) = setup();
    let meet = _t.path().join("meet");
    std::fs::create_dir(&meet).unwrap();
    let ds = d.to_str().unwrap();
    let a_cmd = announce_and_hold(&meet, "a");
    let b_cmd = announce_and_hold(&meet, "b");
    let mut a = Bg::lockfolder(&["run", "-s", "-w", "10", ds, "-c", &a_cmd]);
    let mut b = Bg::lockfolder(&["run", "--shared", "-w", "10", ds, "-c", &b_cmd]);
    // Both shared holders are inside at once; an exclusive attempt is refused.
    assert!(inside(&meet, 2), "two shared holders at once");
    lockfolder()
        .args(["run", "-n", ds, "--", "true"])
        .assert()
        .code(1);
    std::fs::write(meet.join("go"), b"").unwrap();
    assert!(
        a.wait_for(Duration::from_secs(15)).success(),
        "{}",
        a.stderr()
    );
    assert!(
        b.wait_for(Duration::from_secs(15)).success(),
        "{}",
        b.stderr()
    );
    lockfolder()
        .args(["run", "-n", ds, "--", "true"])
        .assert()
        .code(0);
}

#[test]
fn slots_admit_n_and_refuse_a_mismatch() {
    let (_t, d) = setup();
    let meet = _t.path().join("meet");
    std::fs::create_dir(&meet).unwrap();
    let ds = d.to_str().unwrap();
    let cmds: Vec<String> = (0..2)
        .map(|i| announce_and_hold(&meet, &i.to_string()))
        .collect();
    let mut holders: Vec<Bg> = cmds
        .iter()
        .map(|c| Bg::lockfolder(&["run", "--slots", "2", "-w", "10", ds, "-c", c]))
        .collect();
    assert!(
        inside(&meet, 2),
        "two holders of a 2-slot semaphore at once"
    );
    // Another count is refused (65); a third with the same count is busy.
    lockfolder()
        .args(["run", "--slots", "3", "-w", "5", ds, "--", "true"])
        .assert()
        .code(65)
        .stderr(predicates::str::contains("slot"));
    lockfolder()
        .args(["run", "--slots", "2", "-n", ds, "--", "true"])
        .assert()
        .code(1);
    std::fs::write(meet.join("go"), b"").unwrap();
    for h in &mut holders {
        assert!(
            h.wait_for(Duration::from_secs(15)).success(),
            "{}",
            h.stderr()
        );
    }
    lockfolder()
        .args(["run", "--slots", "2", "-n", ds, "--", "true"])
        .assert()
        .code(0);
    lockfolder()
        .args(["run", "--slots", "0", ds, "--", "true"])
        .assert()
        .code(64);
    lockfolder()
        .args(["run", "-s", "--slots", "2", ds, "--", "true"])
        .assert()
        .code(64);
}
