//! The Linux rules: a process is named by boot id, PID namespace, PID and
//! start ticks (in the initial time namespace's terms); a 1.x bid by PID
//! and `CREATED` alone.

// Only the Linux backend judges by these rules (they are tested everywhere).
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

use super::{
    by_probe, hex_or_raw, LinuxOwner, Probe, RunState, StaleReason, Unjudgeable, Verdict,
    LEGACY_CLOCK_STEP_TOLERANCE,
};

/// What this Linux reader knows about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinuxLocal {
    pub host: String,
    pub machine_id: Option<String>,
    pub boot_id: String,
    pub boot_time: u64,
    pub pid_ns: u64,
    pub clk_tck: u64,
    /// Our time namespace's boottime offset, in whole ticks (rounded down).
    pub offset_ticks: u64,
    /// The offset is not a whole number of ticks (so ±1 tick).
    pub tick_slack: bool,
    /// We are in the initial PID namespace and can see every process of
    /// this kernel (no `hidepid` hiding others from us).
    pub sees_all: bool,
    /// The lock folder is on a filesystem only this kernel writes to (a
    /// local disk or tmpfs, not a network or cluster filesystem): an entry
    /// of another boot there cannot come from a machine running now.
    pub folder_local: bool,
}

impl LinuxLocal {
    /// Raw start ticks (as this reader's `/proc` shows them) in the initial
    /// time namespace's terms.
    pub fn normalize(&self, raw_ticks: u64) -> u64 {
        raw_ticks.saturating_sub(self.offset_ticks)
    }

    /// 1.0.2's `CREATED` for a process with these raw start ticks:
    /// `int(psutil create_time())` = `btime + ticks // CLK_TCK`. Time
    /// namespaces cancel out: inside one, both `btime` and the ticks move by
    /// the offset in opposite directions.
    pub fn created(&self, raw_ticks: u64) -> i64 {
        (self.boot_time + raw_ticks / self.clk_tck.max(1)) as i64
    }
}

/// One process of this kernel, from a reader that can see them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeenProcess {
    /// The PID in the process's own (innermost) PID namespace.
    pub inner_pid: u32,
    /// Its process group in its own PID namespace.
    pub inner_pgid: u32,
    /// Raw start ticks as the reader sees them.
    pub raw_ticks: u64,
    pub state: RunState,
    /// Inode of its PID namespace, where the reader may read it.
    pub pid_ns: Option<u64>,
}

/// The Linux facts the rules need, from `/proc` and `kill(2)` in the real
/// backend, from a table in tests.
pub(crate) trait LinuxProcs {
    fn probe(&self, pid: u32) -> Probe;
    /// Only `ESRCH` for the whole group says it is gone.
    fn group_gone(&self, pgid: u32) -> bool;
    /// Every process of this kernel (`None` if the scan failed anywhere: a
    /// proof needs all of them).
    fn all(&self) -> Option<Vec<SeenProcess>>;
}

fn ticks_match(a: u64, b: u64, slack: bool) -> bool {
    a == b || (slack && a.abs_diff(b) <= 1)
}

/// A bid or side file of another boot id: stale only if it is provably an
/// earlier boot of this very machine, on a folder no other machine writes.
fn linux_other_boot(
    me: &LinuxLocal,
    machine_id: Option<&str>,
    host: Option<&str>,
    boot_time: u64,
) -> Verdict {
    let same_machine = match (machine_id, me.machine_id.as_deref()) {
        (Some(a), Some(b)) => a == b,
        (None, None) => host.is_some_and(|h| h == me.host),
        _ => false,
    };
    if me.folder_local && same_machine && boot_time < me.boot_time {
        Verdict::Stale(StaleReason::Rebooted)
    } else {
        Verdict::Unjudgeable(Unjudgeable::OtherMachine)
    }
}

/// Judges a Linux identity. `group` is a process group that keeps the bid
/// alive after its owner exits.
pub(crate) fn judge_linux(
    pid: u32,
    o: &LinuxOwner,
    group: Option<u32>,
    host: Option<&str>,
    me: &LinuxLocal,
    procs: &dyn LinuxProcs,
) -> Verdict {
    if hex_or_raw(&o.boot_id) != hex_or_raw(&me.boot_id) {
        return linux_other_boot(me, o.machine_id.as_deref(), host, o.boot_time);
    }
    // The same kernel: the host name does not matter (it may have changed).
    let slack = o.tick_slack || me.tick_slack;
    judge_linux_process(pid, o.start_ticks, o.pid_ns, slack, group, me, procs)
}

fn judge_linux_process(
    pid: u32,
    start_ticks: u64,
    pid_ns: u64,
    slack: bool,
    group: Option<u32>,
    me: &LinuxLocal,
    procs: &dyn LinuxProcs,
) -> Verdict {
    if pid_ns == me.pid_ns {
        let v = by_probe(procs.probe(pid), |raw| {
            ticks_match(me.normalize(raw), start_ticks, slack)
        });
        return match v {
            // The owner is gone, but its process group still has members.
            Verdict::Stale(_) if group.is_some_and(|g| !procs.group_gone(g)) => Verdict::LIVE,
            v => v,
        };
    }
    // Another PID namespace of this kernel (a container). Only a reader that
    // sees every process can prove that none of them is the owner; PID and
    // start time together name it, so a reused namespace inode cannot fool
    // the search.
    if !me.sees_all {
        return Verdict::Unjudgeable(Unjudgeable::OtherPidNamespace);
    }
    let Some(all) = procs.all() else {
        return Verdict::Unjudgeable(Unjudgeable::OtherPidNamespace);
    };
    let in_ns = |p: &SeenProcess| p.pid_ns.is_none_or(|n| n == pid_ns);
    let owner = all.iter().find(|p| {
        p.inner_pid == pid
            && in_ns(p)
            && ticks_match(me.normalize(p.raw_ticks), start_ticks, slack)
            && p.state != RunState::Exited
    });
    if let Some(p) = owner {
        return Verdict::Live {
            stopped: p.state == RunState::Stopped,
        };
    }
    if let Some(g) = group {
        if all
            .iter()
            .any(|p| p.inner_pgid == g && in_ns(p) && p.state != RunState::Exited)
        {
            return Verdict::LIVE;
        }
    }
    Verdict::Stale(StaleReason::NamespaceGone)
}

/// Whether a live process whose creation time we compute as `now` may be the
/// writer of a 1.x bid that says `created` (see
/// [`LEGACY_CLOCK_STEP_TOLERANCE`]).
pub(crate) fn legacy_may_be_owner(now: i64, created: i64) -> bool {
    now.saturating_sub(created).unsigned_abs() <= LEGACY_CLOCK_STEP_TOLERANCE.unsigned_abs()
}

/// Judges a lockfolder 1.x bid (only `PID` and `CREATED`) on Linux. It
/// names no host and no namespace: it is judged as written on this machine
/// (as 1.0.2 itself does), and a "dead" verdict needs a reader that can see
/// every PID namespace, since its PID may be another namespace's.
pub(crate) fn judge_legacy_linux(
    pid: u32,
    created: i64,
    me: &LinuxLocal,
    procs: &dyn LinuxProcs,
) -> Verdict {
    let here = procs.probe(pid);
    match here {
        Probe::Unknown => return Verdict::LIVE,
        Probe::Alive { start, .. } if legacy_may_be_owner(me.created(start), created) => {
            return by_probe(here, |_| true);
        }
        _ => {}
    }
    if !me.sees_all {
        return Verdict::Unjudgeable(Unjudgeable::LegacyPidNamespace);
    }
    let Some(all) = procs.all() else {
        return Verdict::Unjudgeable(Unjudgeable::LegacyPidNamespace);
    };
    let elsewhere = all.iter().find(|p| {
        p.inner_pid == pid
            && p.state != RunState::Exited
            && legacy_may_be_owner(me.created(p.raw_ticks), created)
    });
    match elsewhere {
        Some(p) => Verdict::Live {
            stopped: p.state == RunState::Stopped,
        },
        None if here == Probe::Gone => Verdict::Stale(StaleReason::Gone),
        None => Verdict::Stale(StaleReason::PidReused),
    }
}

/// Judges a Linux side file by the identity in its name.
pub(crate) fn judge_linux_side(
    pid: u32,
    start_ticks: u64,
    pid_ns: u64,
    boot_id: &str,
    boot_time: u64,
    me: &LinuxLocal,
    procs: &dyn LinuxProcs,
) -> Verdict {
    if boot_id != hex_or_raw(&me.boot_id) {
        // A side file never makes anyone enter or stay out, so the weaker
        // proof of an earlier boot (no machine id in the name) is enough:
        // at worst a live writer on another machine loses its place or has
        // to write its bid again.
        return if me.folder_local && boot_time < me.boot_time {
            Verdict::Stale(StaleReason::Rebooted)
        } else {
            Verdict::Unjudgeable(Unjudgeable::OtherMachine)
        };
    }
    judge_linux_process(pid, start_ticks, pid_ns, true, None, me, procs)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn linux_same_namespace() {
        let me = local();
        let mut t = Table::default();
        t.here.insert(5, alive(500));
        let v = |ticks, t: &Table| judge_linux(5, &owner(ticks, 10), None, Some("h"), &me, t);
        assert_eq!(v(500, &t), Verdict::LIVE);
        assert_eq!(v(499, &t), Verdict::Stale(StaleReason::PidReused));
        let v9 = judge_linux(9, &owner(500, 10), None, Some("h"), &me, &t);
        assert_eq!(v9, Verdict::Stale(StaleReason::Gone));
        t.here.insert(
            5,
            Probe::Alive {
                start: 500,
                state: RunState::Stopped,
            },
        );
        assert_eq!(v(500, &t), Verdict::Live { stopped: true });
        t.here.insert(5, Probe::Unknown);
        assert_eq!(v(1, &t), Verdict::LIVE, "a doubt is alive");
    }

    #[test]
    fn linux_time_namespace_offsets_cancel() {
        // The owner, outside any time namespace, wrote 500. A reader inside
        // one with a boottime offset of 100000 s sees the owner's raw start
        // as 500 + 10^7 ticks.
        let mut me = local();
        me.offset_ticks = 100_000 * 100;
        let mut t = Table::default();
        t.here.insert(5, alive(500 + 10_000_000));
        assert_eq!(
            judge_linux(5, &owner(500, 10), None, None, &me, &t),
            Verdict::LIVE
        );
        // A non-whole offset makes both sides tolerate one tick.
        me.tick_slack = true;
        t.here.insert(5, alive(501 + 10_000_000));
        assert_eq!(
            judge_linux(5, &owner(500, 10), None, None, &me, &t),
            Verdict::LIVE
        );
        t.here.insert(5, alive(502 + 10_000_000));
        assert_eq!(
            judge_linux(5, &owner(500, 10), None, None, &me, &t),
            Verdict::Stale(StaleReason::PidReused)
        );
    }

    #[test]
    fn linux_group_keeps_a_dead_owner_alive() {
        let me = local();
        let mut t = Table::default();
        t.groups.push(77);
        assert_eq!(
            judge_linux(5, &owner(500, 10), Some(77), None, &me, &t),
            Verdict::LIVE
        );
        t.groups.clear();
        assert_eq!(
            judge_linux(5, &owner(500, 10), Some(77), None, &me, &t),
            Verdict::Stale(StaleReason::Gone)
        );
    }

    #[test]
    fn linux_other_namespace_needs_a_reader_that_sees_all() {
        let mut me = local();
        let seen = |pid, ticks, ns| SeenProcess {
            inner_pid: pid,
            inner_pgid: pid,
            raw_ticks: ticks,
            state: RunState::Running,
            pid_ns: ns,
        };
        let t = Table {
            all: Some(vec![seen(1, 500, Some(20)), seen(1, 900, Some(30))]),
            ..Default::default()
        };
        // PID 1 of namespace 20 started at 500: alive.
        assert_eq!(
            judge_linux(1, &owner(500, 20), None, None, &me, &t),
            Verdict::LIVE
        );
        // PID 1 of namespace 21 (gone, or its inode reused by 30): stale.
        assert_eq!(
            judge_linux(1, &owner(500, 21), None, None, &me, &t),
            Verdict::Stale(StaleReason::NamespaceGone)
        );
        // A reader that cannot read namespace inodes compares PID and start.
        let blind = Table {
            all: Some(vec![seen(1, 500, None)]),
            ..Default::default()
        };
        assert_eq!(
            judge_linux(1, &owner(500, 21), None, None, &me, &blind),
            Verdict::LIVE
        );
        me.sees_all = false;
        assert_eq!(
            judge_linux(1, &owner(500, 21), None, None, &me, &t),
            Verdict::Unjudgeable(Unjudgeable::OtherPidNamespace)
        );
    }

    #[test]
    fn linux_host_rename_is_the_same_kernel() {
        let me = local();
        let mut t = Table::default();
        t.here.insert(5, alive(500));
        assert_eq!(
            judge_linux(5, &owner(500, 10), None, Some("old-name"), &me, &t),
            Verdict::LIVE
        );
        assert_eq!(
            judge_linux(6, &owner(500, 10), None, Some("old-name"), &me, &t),
            Verdict::Stale(StaleReason::Gone)
        );
    }

    #[test]
    fn linux_other_boot() {
        let mut me = local();
        let t = Table::default();
        let mut o = owner(500, 10);
        o.boot_id = "1f6a0e2c-8e7d-4c1e-9a55-2b8c6e3f1d20".into();
        o.boot_time = me.boot_time - 10;
        assert_eq!(
            judge_linux(5, &o, None, Some("h"), &me, &t),
            Verdict::Stale(StaleReason::Rebooted)
        );
        // A later boot time, another machine id, or a shared filesystem: no proof.
        o.boot_time = me.boot_time + 10;
        assert!(matches!(
            judge_linux(5, &o, None, Some("h"), &me, &t),
            Verdict::Unjudgeable(_)
        ));
        o.boot_time = me.boot_time - 10;
        o.machine_id = Some("other".into());
        assert!(matches!(
            judge_linux(5, &o, None, Some("h"), &me, &t),
            Verdict::Unjudgeable(_)
        ));
        o.machine_id = Some("m".into());
        me.folder_local = false;
        assert!(matches!(
            judge_linux(5, &o, None, Some("h"), &me, &t),
            Verdict::Unjudgeable(_)
        ));
    }

    #[test]
    fn legacy_rules() {
        let me = local();
        // CREATED of a process started at raw tick 500: btime + 5.
        let created = me.created(500);
        let mut t = Table::default();
        t.here.insert(5, alive(500));
        t.all = Some(vec![SeenProcess {
            inner_pid: 5,
            inner_pgid: 5,
            raw_ticks: 500,
            state: RunState::Running,
            pid_ns: Some(10),
        }]);
        assert_eq!(judge_legacy_linux(5, created, &me, &t), Verdict::LIVE);
        // A forward clock step of 3 s since the bid was written: alive.
        assert_eq!(judge_legacy_linux(5, created - 3, &me, &t), Verdict::LIVE);
        // A backward step within the bound: alive; far beyond: another process.
        assert_eq!(judge_legacy_linux(5, created + 3, &me, &t), Verdict::LIVE);
        assert_eq!(
            judge_legacy_linux(5, created + 100_000, &me, &t),
            Verdict::Stale(StaleReason::PidReused)
        );
        // A process that started well after the bid: reused.
        assert_eq!(
            judge_legacy_linux(5, created - LEGACY_CLOCK_STEP_TOLERANCE - 1, &me, &t),
            Verdict::Stale(StaleReason::PidReused)
        );
        assert_eq!(
            judge_legacy_linux(6, created, &me, &t),
            Verdict::Stale(StaleReason::Gone)
        );
    }

    #[test]
    fn legacy_pid_of_a_container_is_found_or_unjudgeable() {
        let mut me = local();
        let created = me.created(100_000);
        // Our PID 1 is init (started at tick 1); the 1.0.2 holder is PID 1 of
        // a container, started 1000 s later.
        let mut t = Table::default();
        t.here.insert(1, alive(1));
        t.all = Some(vec![
            SeenProcess {
                inner_pid: 1,
                inner_pgid: 1,
                raw_ticks: 1,
                state: RunState::Running,
                pid_ns: Some(10),
            },
            SeenProcess {
                inner_pid: 1,
                inner_pgid: 1,
                raw_ticks: 100_000,
                state: RunState::Running,
                pid_ns: Some(20),
            },
        ]);
        assert_eq!(judge_legacy_linux(1, created, &me, &t), Verdict::LIVE);
        t.all.as_mut().unwrap().pop();
        assert_eq!(
            judge_legacy_linux(1, created, &me, &t),
            Verdict::Stale(StaleReason::PidReused)
        );
        me.sees_all = false;
        assert_eq!(
            judge_legacy_linux(1, created, &me, &t),
            Verdict::Unjudgeable(Unjudgeable::LegacyPidNamespace)
        );
    }

    #[test]
    fn side_files() {
        let me = local();
        let mut t = Table::default();
        t.here.insert(5, alive(500));
        let hex = hex_or_raw(BOOT);
        let j = |pid, boot: &str, bt| judge_linux_side(pid, 500, 10, boot, bt, &me, &t);
        assert_eq!(j(5, &hex, me.boot_time), Verdict::LIVE);
        assert_eq!(j(6, &hex, me.boot_time), Verdict::Stale(StaleReason::Gone));
        let other = "1f6a0e2c8e7d4c1e9a552b8c6e3f1d20";
        assert_eq!(
            j(5, other, me.boot_time - 1),
            Verdict::Stale(StaleReason::Rebooted)
        );
        assert!(matches!(
            j(5, other, me.boot_time + 1),
            Verdict::Unjudgeable(_)
        ));
    }
}
