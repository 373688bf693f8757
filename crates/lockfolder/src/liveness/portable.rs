//! The judge shared by Windows, macOS and FreeBSD, the platforms whose
//! process start times (100 ns, 1 µs) name a process on their own: it
//! routes each claim to its rule in `identity/portable.rs`, with the facts
//! of the platform's probe. The platform files supply the probe and what
//! this process knows about its machine.

#![cfg_attr(all(test, target_os = "linux"), allow(dead_code))]

use crate::identity::{
    self, hex_or_raw, Claim, Owner, OwnerKey, PortableLocal, PortableProcs, Unjudgeable, Verdict,
};

/// Judges the claims of one listing on a portable platform.
pub(crate) struct Judge<P> {
    /// `None` if this process could not read its own identity: then
    /// nothing can be proven.
    pub local: Option<PortableLocal>,
    pub procs: P,
}

impl<P: PortableProcs> Judge<P> {
    pub fn judge(&self, claim: &Claim) -> Verdict {
        if let Claim::Unreadable(why) = claim {
            return Verdict::Unjudgeable(why.clone());
        }
        let Some(me) = &self.local else {
            return Verdict::Unjudgeable(Unjudgeable::NoLocalIdentity);
        };
        match claim {
            Claim::Bid { pid, owner, group } => match owner {
                Owner::Windows(o) => identity::judge_windows(*pid, o, me, &self.procs),
                Owner::Macos(o) => identity::judge_macos(*pid, o, *group, me, &self.procs),
                Owner::Freebsd(o) => identity::judge_freebsd(*pid, o, *group, me, &self.procs),
                Owner::Linux(_) => Verdict::Unjudgeable(Unjudgeable::OtherPlatform("linux".into())),
            },
            Claim::Legacy { pid, created } => {
                identity::judge_legacy_portable(*pid, *created, &self.procs)
            }
            Claim::Side { pid, key } => identity::judge_portable_side(*pid, key, me, &self.procs),
            Claim::Unreadable(why) => Verdict::Unjudgeable(why.clone()),
        }
    }

    /// The process to watch for exit, with its start in this platform's
    /// probe unit, when the claim names a process of this machine (and, on
    /// macOS, of this boot).
    pub fn watch_target(&self, claim: &Claim) -> Option<(u32, u64)> {
        let me = self.local.as_ref()?;
        let machine = hex_or_raw(&me.machine);
        let boot = hex_or_raw(&me.boot);
        match claim {
            Claim::Bid { pid, owner, .. } => match owner {
                Owner::Windows(o)
                    if me.os == "windows" && hex_or_raw(&o.machine_guid) == machine =>
                {
                    Some((*pid, o.created))
                }
                Owner::Macos(o)
                    if me.os == "macos"
                        && hex_or_raw(&o.host_uuid) == machine
                        && hex_or_raw(&o.boot_session) == boot =>
                {
                    Some((*pid, o.start_us))
                }
                Owner::Freebsd(o) if me.os == "freebsd" && hex_or_raw(&o.host_uuid) == machine => {
                    Some((*pid, o.start_us))
                }
                _ => None,
            },
            Claim::Side { pid, key } => match key {
                OwnerKey::Windows {
                    created,
                    machine: m,
                } if me.os == "windows" && *m == machine => Some((*pid, *created)),
                OwnerKey::Macos {
                    start_us,
                    boot_session,
                } if me.os == "macos" && *boot_session == boot => Some((*pid, *start_us)),
                OwnerKey::Freebsd { start_us, host } if me.os == "freebsd" && *host == machine => {
                    Some((*pid, *start_us))
                }
                _ => None,
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{MacosOwner, Probe, RunState, StaleReason, WindowsOwner};
    use std::collections::HashMap;

    #[derive(Default)]
    struct Procs(HashMap<u32, Probe>, Vec<u32>);

    impl PortableProcs for Procs {
        fn probe(&self, pid: u32) -> Probe {
            self.0.get(&pid).copied().unwrap_or(Probe::Gone)
        }
        fn group_gone(&self, pgid: u32) -> bool {
            !self.1.contains(&pgid)
        }
        /// Starts are whole seconds in these tests.
        fn created(&self, _pid: u32, start: u64) -> Option<i64> {
            i64::try_from(start).ok()
        }
    }

    const GUID: &str = "9A2F0C1E-0000-4000-8000-00000000ABCD";

    fn windows() -> Judge<Procs> {
        let mut p = Procs::default();
        p.0.insert(
            8,
            Probe::Alive {
                start: 1234,
                state: RunState::Running,
            },
        );
        p.0.insert(
            9,
            Probe::Alive {
                start: 99,
                state: RunState::Exited,
            },
        );
        p.0.insert(10, Probe::Unknown);
        Judge {
            local: Some(PortableLocal {
                os: "windows",
                host: "h".into(),
                machine: GUID.to_ascii_lowercase(),
                boot: String::new(),
            }),
            procs: p,
        }
    }

    fn bid(pid: u32, created: u64) -> Claim {
        Claim::Bid {
            pid,
            owner: Owner::Windows(WindowsOwner {
                machine_guid: GUID.into(),
                created,
            }),
            group: None,
        }
    }

    #[test]
    fn routes_each_claim_to_its_rule() {
        let j = windows();
        assert_eq!(j.judge(&bid(8, 1234)), Verdict::LIVE);
        assert_eq!(j.judge(&bid(8, 1)), Verdict::Stale(StaleReason::PidReused));
        assert_eq!(j.judge(&bid(9, 99)), Verdict::Stale(StaleReason::Gone));
        assert_eq!(j.judge(&bid(7, 99)), Verdict::Stale(StaleReason::Gone));
        assert_eq!(j.judge(&bid(10, 5)), Verdict::LIVE, "a doubt is alive");
        // 1.x bids: a probe of the PID settles it, within the clock-step
        // tolerance on CREATED.
        let legacy = |pid, created| Claim::Legacy { pid, created };
        assert_eq!(j.judge(&legacy(7, 1)), Verdict::Stale(StaleReason::Gone));
        assert_eq!(j.judge(&legacy(8, 1234)), Verdict::LIVE);
        assert_eq!(
            j.judge(&legacy(8, 1234 - 30)),
            Verdict::LIVE,
            "a clock step"
        );
        assert_eq!(
            j.judge(&legacy(8, 1234 - 1000)),
            Verdict::Stale(StaleReason::PidReused)
        );
        assert_eq!(j.judge(&legacy(9, 99)), Verdict::Stale(StaleReason::Gone));
        assert_eq!(j.judge(&legacy(10, 5)), Verdict::LIVE, "a doubt is alive");
        let mac = Claim::Bid {
            pid: 7,
            owner: Owner::Macos(MacosOwner {
                host_uuid: GUID.into(),
                boot_session: GUID.into(),
                start_us: 1,
            }),
            group: None,
        };
        assert_eq!(
            j.judge(&mac),
            Verdict::Unjudgeable(Unjudgeable::OtherPlatform("macos".into()))
        );
        let side = Claim::Side {
            pid: 7,
            key: OwnerKey::of(&Owner::Windows(WindowsOwner {
                machine_guid: GUID.into(),
                created: 5,
            })),
        };
        assert_eq!(j.judge(&side), Verdict::Stale(StaleReason::Gone));
        let blind = Judge {
            local: None,
            procs: Procs::default(),
        };
        assert_eq!(
            blind.judge(&bid(7, 1)),
            Verdict::Unjudgeable(Unjudgeable::NoLocalIdentity)
        );
    }

    #[test]
    fn watches_only_processes_of_this_machine() {
        let j = windows();
        assert_eq!(j.watch_target(&bid(8, 1234)), Some((8, 1234)));
        let other = Claim::Bid {
            pid: 8,
            owner: Owner::Windows(WindowsOwner {
                machine_guid: "elsewhere".into(),
                created: 1234,
            }),
            group: None,
        };
        assert_eq!(j.watch_target(&other), None);
        let side = Claim::Side {
            pid: 8,
            key: OwnerKey::of(&Owner::Windows(WindowsOwner {
                machine_guid: GUID.into(),
                created: 1234,
            })),
        };
        assert_eq!(j.watch_target(&side), Some((8, 1234)));
        assert_eq!(j.watch_target(&Claim::Legacy { pid: 8, created: 1 }), None);
    }
}
