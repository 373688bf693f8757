//! Crafted bids: the fail-closed judgement of who is alive.

use crate::util::{bids, dead_pid, on_another_machine, write_bid, TestFn};
use lockfolder::{BidRecord, LockFolder, Owner, StaleReason, State};

pub const TESTS: &[TestFn] = &[
    (
        "identity::live_pid_other_start_time_is_stale",
        live_pid_other_start_time_is_stale,
    ),
    ("identity::dead_pid_is_stale", dead_pid_is_stale),
    (
        "identity::other_machine_is_never_stale",
        other_machine_is_never_stale,
    ),
    (
        "identity::renamed_host_is_the_same_machine",
        renamed_host_is_the_same_machine,
    ),
    #[cfg(target_os = "linux")]
    (
        "identity::other_boot_same_machine_is_stale_on_a_local_folder",
        other_boot_same_machine_is_stale_on_a_local_folder,
    ),
    #[cfg(target_os = "linux")]
    (
        "identity::other_boot_without_proof_is_foreign",
        other_boot_without_proof_is_foreign,
    ),
    #[cfg(target_os = "linux")]
    (
        "identity::other_pid_namespace_is_judged_only_by_a_reader_that_sees_all",
        other_pid_namespace_is_judged_only_by_a_reader_that_sees_all,
    ),
    #[cfg(target_os = "linux")]
    (
        "identity::legacy_dead_pid_is_stale",
        legacy_dead_pid_is_stale,
    ),
    #[cfg(target_os = "linux")]
    (
        "identity::legacy_live_process_is_alive",
        legacy_live_process_is_alive,
    ),
    #[cfg(target_os = "linux")]
    (
        "identity::legacy_survives_clock_steps_within_the_bound",
        legacy_survives_clock_steps_within_the_bound,
    ),
    #[cfg(target_os = "linux")]
    (
        "identity::legacy_reused_pid_is_stale",
        legacy_reused_pid_is_stale,
    ),
    #[cfg(not(target_os = "linux"))]
    (
        "identity::legacy_bid_is_judged_by_a_probe_of_its_pid",
        legacy_bid_is_judged_by_a_probe_of_its_pid,
    ),
    (
        "identity::incomplete_identity_is_foreign",
        incomplete_identity_is_foreign,
    ),
    (
        "identity::clean_removes_only_stale",
        clean_removes_only_stale,
    ),
    // Checked against the formula of psutil where this suite runs.
    #[cfg(any(target_os = "linux", windows))]
    (
        "identity::our_bid_is_readable_by_1x_rules",
        our_bid_is_readable_by_1x_rules,
    ),
    #[cfg(unix)]
    (
        "identity::live_process_group_keeps_a_dead_owners_bid",
        live_process_group_keeps_a_dead_owners_bid,
    ),
];

/// A bid whose owner is gone but which names a process group that still has
/// a member is live; once the group is empty it is stale.
#[cfg(unix)]
fn live_process_group_keeps_a_dead_owners_bid() {
    use std::os::unix::process::CommandExt;
    let mut member = std::process::Command::new("sleep")
        .arg("30")
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = member.id();
    let mut rec = me();
    rec.pid = dead_pid();
    rec.group = Some(pgid);
    assert_eq!(judge(&rec), State::Live);
    member.kill().unwrap();
    member.wait().unwrap();
    assert!(matches!(judge(&rec), State::Stale(_)));
}

fn me() -> BidRecord {
    lockfolder::current_identity().unwrap()
}

/// The Linux identity of a crafted bid, to change.
#[cfg(target_os = "linux")]
fn linux(r: &mut BidRecord) -> &mut lockfolder::LinuxOwner {
    match r.owner.as_mut() {
        Some(Owner::Linux(o)) => o,
        other => panic!("not a Linux owner: {other:?}"),
    }
}

/// Moves the recorded start time of the owner by one unit of its platform
/// (a clock tick, 100 ns, 1 µs): the same PID, another process.
fn shift_start(r: &mut BidRecord) {
    match r.owner.as_mut() {
        Some(Owner::Linux(o)) => o.start_ticks += 1,
        Some(Owner::Windows(o)) => o.created += 1,
        Some(Owner::Macos(o)) => o.start_us += 1,
        Some(Owner::Freebsd(o)) => o.start_us += 1,
        other => panic!("no identity: {other:?}"),
    }
}

#[cfg(target_os = "linux")]
const OTHER_BOOT: &str = "00000000-0000-4000-8000-000000000000";

/// Writes `rec` as a bid, then checks what `holders()` says and whether a
/// `try_lock` gets through (which it must exactly when the bid is stale).
fn judge(rec: &BidRecord) -> State {
    let dir = tempfile::tempdir().unwrap();
    let name = write_bid(dir.path(), &rec.to_bytes());
    let lf = LockFolder::new(dir.path()).unwrap();
    let h = lf.holders().unwrap();
    assert_eq!(h.len(), 1);
    let state = h[0].state;
    assert_eq!(h[0].pid, Some(rec.pid));
    let got = lf.try_lock().unwrap();
    let present = bids(dir.path()).contains(&name);
    match state {
        State::Stale(_) => {
            assert!(got.is_some(), "a stale bid must not block");
            assert!(!present, "the stale bid is removed by its name");
        }
        _ => {
            assert!(got.is_none(), "a {state:?} bid must block");
            assert!(present, "a {state:?} bid is never removed");
        }
    }
    state
}

fn live_pid_other_start_time_is_stale() {
    let mut r = me();
    shift_start(&mut r);
    assert_eq!(judge(&r), State::Stale(StaleReason::PidReused));
    // The same bid with the true start ticks is alive.
    assert_eq!(judge(&me()), State::Live);
}

fn dead_pid_is_stale() {
    let mut r = me();
    r.pid = dead_pid();
    assert_gone(judge(&r));
}

/// A bid whose process has exited and been reaped is stale: `Gone`. On
/// Windows the exited process's object may outlive our handle (another
/// handle to it is open, as wine keeps one): then it opens, has exited, and
/// its creation time is not the bid's, which is `PidReused`.
fn assert_gone(state: State) {
    #[cfg(windows)]
    let ok = matches!(
        state,
        State::Stale(StaleReason::Gone | StaleReason::PidReused)
    );
    #[cfg(not(windows))]
    let ok = state == State::Stale(StaleReason::Gone);
    assert!(ok, "{state:?}");
}

fn other_machine_is_never_stale() {
    // Another kernel (boot id) and another machine id (or MachineGuid, or
    // host UUID): another machine.
    let mut r = me();
    r.pid = dead_pid();
    on_another_machine(&mut r);
    assert_eq!(judge(&r), State::Foreign);
}

fn renamed_host_is_the_same_machine() {
    // The host name changed (DHCP, cloud-init) but the kernel is ours: the
    // bid is judged like any other.
    let mut r = me();
    r.host = Some("before-the-rename".into());
    assert_eq!(judge(&r), State::Live);
    r.pid = dead_pid();
    assert_gone(judge(&r));
}

#[cfg(target_os = "linux")]
fn other_boot_same_machine_is_stale_on_a_local_folder() {
    let mut r = me();
    linux(&mut r).boot_id = OTHER_BOOT.into();
    linux(&mut r).boot_time -= 3600;
    // The test folder is on a local filesystem, written by this kernel alone.
    assert_eq!(judge(&r), State::Stale(StaleReason::Rebooted));
}

#[cfg(target_os = "linux")]
fn other_boot_without_proof_is_foreign() {
    // Another boot id that claims to have booted after us, or a machine id
    // that differs: a different machine, not our past.
    let mut r = me();
    linux(&mut r).boot_id = OTHER_BOOT.into();
    linux(&mut r).boot_time += 3600;
    assert_eq!(judge(&r), State::Foreign);
    let mut r = me();
    linux(&mut r).boot_id = OTHER_BOOT.into();
    linux(&mut r).boot_time -= 3600;
    linux(&mut r).machine_id = Some("another-machine".into());
    assert_eq!(judge(&r), State::Foreign);
}

#[cfg(target_os = "linux")]
fn other_pid_namespace_is_judged_only_by_a_reader_that_sees_all() {
    // A bid of a PID namespace of this kernel with no such process left.
    // The tests run in the initial PID namespace as root in CI, where every
    // process can be seen: then that proves the owner gone. Anywhere else
    // nothing can be proven and the bid stays.
    let mut r = me();
    linux(&mut r).pid_ns += 1;
    r.pid = dead_pid();
    let sees_all = is_initial_pid_namespace() && rustix::process::geteuid().is_root();
    let want = if sees_all {
        State::Stale(StaleReason::NamespaceGone)
    } else {
        State::Foreign
    };
    assert_eq!(judge(&r), want);
}

#[cfg(target_os = "linux")]
fn is_initial_pid_namespace() -> bool {
    std::fs::read_link("/proc/self/ns/pid")
        .map(|l| l.to_string_lossy() == "pid:[4026531836]")
        .unwrap_or(false)
}

#[cfg(target_os = "linux")]
fn legacy(pid: u32, created: i64) -> BidRecord {
    BidRecord {
        pid,
        created,
        ..Default::default()
    }
}

#[cfg(target_os = "linux")]
fn legacy_dead_pid_is_stale() {
    if !is_initial_pid_namespace() {
        // Its PID could be another namespace's: unjudgeable here.
        assert_eq!(judge(&legacy(dead_pid(), 1_700_000_000)), State::Foreign);
        return;
    }
    assert_eq!(
        judge(&legacy(dead_pid(), 1_700_000_000)),
        State::Stale(StaleReason::Gone)
    );
}

#[cfg(target_os = "linux")]
fn legacy_live_process_is_alive() {
    let r = me();
    assert_eq!(judge(&legacy(r.pid, r.created)), State::Live);
    assert_eq!(judge(&legacy(r.pid, r.created + 1)), State::Live);
}

/// 1.0.2's `CREATED` moves with wall-clock steps: a live 1.0.2 holder looks
/// younger by the size of a forward step, older after a backward one; steps
/// up to the stated bound keep it alive.
#[cfg(target_os = "linux")]
fn legacy_survives_clock_steps_within_the_bound() {
    let r = me();
    let step = lockfolder::LEGACY_CLOCK_STEP_TOLERANCE;
    assert_eq!(judge(&legacy(r.pid, r.created - 3)), State::Live);
    assert_eq!(judge(&legacy(r.pid, r.created - step)), State::Live);
    assert_eq!(judge(&legacy(r.pid, r.created + 3)), State::Live);
    assert_eq!(judge(&legacy(r.pid, r.created + step)), State::Live);
}

#[cfg(target_os = "linux")]
fn legacy_reused_pid_is_stale() {
    let r = me();
    let step = lockfolder::LEGACY_CLOCK_STEP_TOLERANCE;
    if !is_initial_pid_namespace() {
        return;
    }
    assert_eq!(
        judge(&legacy(r.pid, r.created - step - 40)),
        State::Stale(StaleReason::PidReused)
    );
    // A process far older than the bid never wrote it either.
    assert_eq!(
        judge(&legacy(r.pid, r.created + step + 40)),
        State::Stale(StaleReason::PidReused)
    );
}

fn incomplete_identity_is_foreign() {
    // Our format, but no owner: ambiguous, so never judged, even though the
    // PID is dead.
    let mut r = me();
    r.pid = dead_pid();
    r.owner = None;
    assert_eq!(judge(&r), State::Foreign);
}

fn clean_removes_only_stale() {
    let dir = tempfile::tempdir().unwrap();
    let mut stale = me();
    stale.pid = dead_pid();
    let mut foreign = me();
    on_another_machine(&mut foreign);
    let stale_name = write_bid(dir.path(), &stale.to_bytes());
    let live_name = write_bid(dir.path(), &me().to_bytes());
    let foreign_name = write_bid(dir.path(), &foreign.to_bytes());
    let junk_name = write_bid(dir.path(), b"junk");
    let lf = LockFolder::new(dir.path()).unwrap();
    let removed = lf.clean().unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].name.to_str(), Some(stale_name.as_str()));
    let mut left = bids(dir.path());
    left.sort();
    let mut want = vec![live_name, foreign_name, junk_name];
    want.sort();
    assert_eq!(left, want);
    assert!(lf.clean().unwrap().is_empty(), "clean is idempotent");
}

/// Off Linux a 1.0.2 bid is judged by a probe of its PID (since 2f15cb6):
/// a PID with no process is gone, our own PID with our `CREATED` is alive.
#[cfg(not(target_os = "linux"))]
fn legacy_bid_is_judged_by_a_probe_of_its_pid() {
    let dead = BidRecord {
        pid: dead_pid(),
        created: 1_700_000_000,
        ..Default::default()
    };
    assert_gone(judge(&dead));
    let r = me();
    let live = BidRecord {
        pid: r.pid,
        created: r.created,
        ..Default::default()
    };
    assert_eq!(judge(&live), State::Live);
}

#[cfg(windows)]
fn our_bid_is_readable_by_1x_rules() {
    // lockfolder 1.0.2 reads PID and CREATED and compares CREATED with
    // int(psutil.Process(pid).create_time()), which psutil 7.2.2 computes
    // from GetProcessTimes as (double)(FILETIME - 116444736000000000) / 1e7.
    let dir = tempfile::tempdir().unwrap();
    let lf = LockFolder::new(dir.path()).unwrap();
    let g = lf.try_lock().unwrap().unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(g.bid_path()).unwrap()).unwrap();
    let pid = v.get("PID").and_then(|p| p.as_u64()).unwrap();
    let created = v.get("CREATED").and_then(|p| p.as_i64()).unwrap();
    assert_eq!(pid, u64::from(std::process::id()));
    let (filetime, _, running) = crate::util::windows::times(std::process::id()).unwrap();
    assert!(running);
    let psutil = ((filetime - 116_444_736_000_000_000) as f64 / 10_000_000.0) as i64;
    assert_eq!(created, psutil);
    // And it is this process's start, give or take the test's run time.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(created <= now && now - created < 3600, "{created} vs {now}");
    g.release().unwrap();
}

#[cfg(target_os = "linux")]
fn our_bid_is_readable_by_1x_rules() {
    // lockfolder 1.0.2 reads PID and CREATED and compares CREATED with
    // int(psutil.Process(pid).create_time()) = btime + start_ticks / CLK_TCK.
    let dir = tempfile::tempdir().unwrap();
    let lf = LockFolder::new(dir.path()).unwrap();
    let g = lf.try_lock().unwrap().unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(g.bid_path()).unwrap()).unwrap();
    let pid = v.get("PID").and_then(|p| p.as_u64()).unwrap();
    let created = v.get("CREATED").and_then(|p| p.as_i64()).unwrap();
    assert_eq!(pid, u64::from(std::process::id()));
    assert_eq!(created, crate::child::legacy_created());
    g.release().unwrap();
}
