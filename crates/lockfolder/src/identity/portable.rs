#![cfg_attr(target_os = "linux", allow(dead_code))]

//! The rules of the platforms whose process start times name a process on
//! their own (Windows: 100 ns; macOS and FreeBSD: 1 µs): same machine, then
//! a probe of the PID settles it.

use super::{
    by_probe, hex_or_raw, FreebsdOwner, MacosOwner, OwnerKey, Probe, StaleReason, Unjudgeable,
    Verdict, WindowsOwner,
};

/// What a Windows, macOS or FreeBSD reader knows about itself: its machine
/// (and boot, where the platform names one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortableLocal {
    pub os: &'static str,
    pub host: String,
    /// MachineGuid / the macOS Hardware UUID (`gethostuuid`) / kern.hostuuid.
    pub machine: String,
    /// macOS: kern.bootsessionuuid. Empty where the platform has none.
    pub boot: String,
}

/// A platform whose process start times are fine-grained enough (100 ns, 1
/// µs) to name a process on their own: a probe of the PID settles it.
pub(crate) trait PortableProcs {
    fn probe(&self, pid: u32) -> Probe;
    fn group_gone(&self, pgid: u32) -> bool;
    /// lockfolder 1.0.2's `CREATED` (psutil's `int(create_time())`) for the
    /// process `pid` whose probe said it started at `start`.
    fn created(&self, pid: u32, start: u64) -> Option<i64>;
}

/// Judges a lockfolder 1.x bid (only `PID` and `CREATED`) on Windows,
/// macOS and FreeBSD. It names no machine: it is judged as written on this
/// one (as 1.0.2 itself does). These platforms give no PID namespaces to a
/// process (FreeBSD's jails hide processes; its probe then never answers
/// "gone"), so a probe of the PID settles it, with 1.x's clock-step
/// tolerance on `CREATED` (`LEGACY_CLOCK_STEP_TOLERANCE`).
pub(crate) fn judge_legacy_portable(pid: u32, created: i64, procs: &dyn PortableProcs) -> Verdict {
    match procs.probe(pid) {
        Probe::Unknown => Verdict::LIVE,
        Probe::Gone => Verdict::Stale(StaleReason::Gone),
        p @ Probe::Alive { start, .. } => match procs.created(pid, start) {
            None => Verdict::LIVE,
            Some(now) if super::linux::legacy_may_be_owner(now, created) => {
                match by_probe(p, |_| true) {
                    // Windows: an exited process whose handle still opens.
                    Verdict::Stale(StaleReason::Defunct) => Verdict::Stale(StaleReason::Gone),
                    v => v,
                }
            }
            Some(_) => Verdict::Stale(StaleReason::PidReused),
        },
    }
}

/// Judges a Windows identity: same machine, then PID + creation time.
/// `OpenProcess` succeeding is no proof of life (it opens exited processes
/// whose handles remain): the probe reports those as `Exited`.
pub(crate) fn judge_windows(
    pid: u32,
    o: &WindowsOwner,
    me: &PortableLocal,
    procs: &dyn PortableProcs,
) -> Verdict {
    if me.os != "windows" {
        return Verdict::Unjudgeable(Unjudgeable::OtherPlatform("windows".into()));
    }
    if hex_or_raw(&o.machine_guid) != hex_or_raw(&me.machine) {
        return Verdict::Unjudgeable(Unjudgeable::OtherMachine);
    }
    match by_probe(procs.probe(pid), |created| created == o.created) {
        Verdict::Stale(StaleReason::Defunct) => Verdict::Stale(StaleReason::Gone),
        v => v,
    }
}

/// Judges a macOS identity. Start times are wall-clock µs fixed at start, so
/// a process of an earlier boot can only be gone or have a reused PID.
pub(crate) fn judge_macos(
    pid: u32,
    o: &MacosOwner,
    group: Option<u32>,
    me: &PortableLocal,
    procs: &dyn PortableProcs,
) -> Verdict {
    if me.os != "macos" {
        return Verdict::Unjudgeable(Unjudgeable::OtherPlatform("macos".into()));
    }
    if hex_or_raw(&o.host_uuid) != hex_or_raw(&me.machine) {
        return Verdict::Unjudgeable(Unjudgeable::OtherMachine);
    }
    let v = by_probe(procs.probe(pid), |start| start == o.start_us);
    if hex_or_raw(&o.boot_session) != hex_or_raw(&me.boot) {
        // Another boot of this machine: its process cannot still run; a
        // live PID is another process.
        return match v {
            Verdict::Stale(r) => Verdict::Stale(r),
            _ => Verdict::Stale(StaleReason::Rebooted),
        };
    }
    match v {
        Verdict::Stale(_) if group.is_some_and(|g| !procs.group_gone(g)) => Verdict::LIVE,
        v => v,
    }
}

/// Judges a FreeBSD identity (start in µs since boot, so a PID of another
/// boot with the very same µs is the one thing it cannot tell apart: it
/// errs towards alive).
pub(crate) fn judge_freebsd(
    pid: u32,
    o: &FreebsdOwner,
    group: Option<u32>,
    me: &PortableLocal,
    procs: &dyn PortableProcs,
) -> Verdict {
    if me.os != "freebsd" {
        return Verdict::Unjudgeable(Unjudgeable::OtherPlatform("freebsd".into()));
    }
    if hex_or_raw(&o.host_uuid) != hex_or_raw(&me.machine) {
        return Verdict::Unjudgeable(Unjudgeable::OtherMachine);
    }
    match by_probe(procs.probe(pid), |start| start == o.start_us) {
        Verdict::Stale(_) if group.is_some_and(|g| !procs.group_gone(g)) => Verdict::LIVE,
        v => v,
    }
}

/// Judges a side file of a portable platform by its name.
pub(crate) fn judge_portable_side(
    pid: u32,
    key: &OwnerKey,
    me: &PortableLocal,
    procs: &dyn PortableProcs,
) -> Verdict {
    let (os, machine_or_boot, start) = match key {
        OwnerKey::Windows { created, machine } => ("windows", machine, *created),
        OwnerKey::Macos {
            start_us,
            boot_session,
        } => ("macos", boot_session, *start_us),
        OwnerKey::Freebsd { start_us, host } => ("freebsd", host, *start_us),
        OwnerKey::Linux { .. } => {
            return Verdict::Unjudgeable(Unjudgeable::OtherPlatform("linux".into()))
        }
        OwnerKey::Unknown(c) => {
            return Verdict::Unjudgeable(Unjudgeable::UnknownFormat(format!(
                "side file of platform '{c}'"
            )))
        }
    };
    if os != me.os {
        return Verdict::Unjudgeable(Unjudgeable::OtherPlatform(os.into()));
    }
    let here = if os == "macos" { &me.boot } else { &me.machine };
    if *machine_or_boot != hex_or_raw(here) {
        return Verdict::Unjudgeable(Unjudgeable::OtherMachine);
    }
    match by_probe(procs.probe(pid), |s| s == start) {
        Verdict::Stale(StaleReason::Defunct) => Verdict::Stale(StaleReason::Gone),
        v => v,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::RunState;
    use super::*;

    #[test]
    fn portable_platforms() {
        let win = PortableLocal {
            os: "windows",
            host: "h".into(),
            machine: "9a2f0c1e-0000-4000-8000-00000000abcd".into(),
            boot: String::new(),
        };
        let mut t = Table::default();
        t.here.insert(8, alive(1234));
        t.here.insert(
            9,
            Probe::Alive {
                start: 99,
                state: RunState::Exited,
            },
        );
        let o = |created| WindowsOwner {
            machine_guid: "9A2F0C1E-0000-4000-8000-00000000ABCD".into(),
            created,
        };
        assert_eq!(judge_windows(8, &o(1234), &win, &t), Verdict::LIVE);
        assert_eq!(
            judge_windows(8, &o(1235), &win, &t),
            Verdict::Stale(StaleReason::PidReused)
        );
        assert_eq!(
            judge_windows(9, &o(99), &win, &t),
            Verdict::Stale(StaleReason::Gone),
            "an exited process that still has handles is gone"
        );
        let other = WindowsOwner {
            machine_guid: "other".into(),
            created: 1234,
        };
        assert_eq!(
            judge_windows(8, &other, &win, &t),
            Verdict::Unjudgeable(Unjudgeable::OtherMachine)
        );
        let mac = PortableLocal {
            os: "macos",
            host: "h".into(),
            machine: "11111111-2222-3333-4444-555555555555".into(),
            boot: "aaaaaaaa-2222-3333-4444-555555555555".into(),
        };
        let m = |start, boot: &str| MacosOwner {
            host_uuid: mac.machine.clone(),
            boot_session: boot.into(),
            start_us: start,
        };
        assert_eq!(
            judge_macos(8, &m(1234, &mac.boot), None, &mac, &t),
            Verdict::LIVE
        );
        assert_eq!(
            judge_macos(
                8,
                &m(1234, "bbbbbbbb-2222-3333-4444-555555555555"),
                None,
                &mac,
                &t
            ),
            Verdict::Stale(StaleReason::Rebooted)
        );
        assert_eq!(
            judge_windows(8, &o(1234), &mac, &t),
            Verdict::Unjudgeable(Unjudgeable::OtherPlatform("windows".into()))
        );
        let bsd = PortableLocal {
            os: "freebsd",
            host: "h".into(),
            machine: "11111111-2222-3333-4444-555555555555".into(),
            boot: String::new(),
        };
        let f = FreebsdOwner {
            host_uuid: bsd.machine.clone(),
            boot_time_us: 1,
            start_us: 1234,
        };
        assert_eq!(judge_freebsd(8, &f, None, &bsd, &t), Verdict::LIVE);
        assert_eq!(
            judge_freebsd(7, &f, None, &bsd, &t),
            Verdict::Stale(StaleReason::Gone)
        );
    }
}
