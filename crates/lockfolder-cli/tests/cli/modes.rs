//! `--shared` and `--slots`: shared holders run together, an exclusive one
//! waits for them, a mismatched slot count is refused.

use crate::common::*;
use std::time::Duration;

/// A shell command that announces itself in `dir/NAME`, waits until `dir`
/// holds `want` announcements (proof that that many ran at once), then
/// leaves. Gives up after 10 s so a failure cannot hang the test.
fn rendezvous(dir: &std::path::Path, name: &str, want: usize) -> String {
    format!(
        "touch {d}/{name}; i=0; while [ $(ls {d} | wc -l) -lt {want} ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done; [ $i -lt 1000 ]",
        d = dir.display()
    )
}

#[test]
fn shared_holders_run_together_and_exclude_a_writer() {
    let (_t, d) = setup();
    let meet = _t.path().join("meet");
    std::fs::create_dir(&meet).unwrap();
    let ds = d.to_str().unwrap();
    let a_cmd = rendezvous(&meet, "a", 2);
    let b_cmd = rendezvous(&meet, "b", 2);
    let mut a = Bg::lockfolder(&["run", "-s", "-w", "10", ds, "-c", &a_cmd]);
    let mut b = Bg::lockfolder(&["run", "--shared", "-w", "10", ds, "-c", &b_cmd]);
    // While they hold it together, an exclusive attempt is refused.
    assert!(wait_until(Duration::from_secs(10), || std::fs::read_dir(
        &meet
    )
    .unwrap()
    .count()
        >= 1));
    lockfolder()
        .args(["run", "-n", ds, "--", "true"])
        .assert()
        .code(1);
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
        .map(|i| rendezvous(&meet, &i.to_string(), 2))
        .collect();
    let mut holders: Vec<Bg> = cmds
        .iter()
        .map(|c| Bg::lockfolder(&["run", "--slots", "2", "-w", "10", ds, "-c", c]))
        .collect();
    assert!(wait_until(Duration::from_secs(10), || std::fs::read_dir(
        &meet
    )
    .unwrap()
    .count()
        >= 1));
    // A third with the same count waits; another count is refused (65).
    lockfolder()
        .args(["run", "--slots", "3", "-w", "5", ds, "--", "true"])
        .assert()
        .code(65)
        .stderr(predicates::str::contains("slot"));
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
