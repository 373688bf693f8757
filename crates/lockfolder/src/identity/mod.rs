//! Who wrote an entry, and the fail-closed rules that decide whether that
//! writer is provably gone (`linux.rs`, `portable.rs`). Pure: every fact about running processes comes
//! from a platform probe passed in (`liveness/<platform>.rs` supplies the
//! real ones), so the rules of every platform are unit-tested on any host.
//!
//! The rule (`docs/safety.md`): an entry is stale only on *proof* that its
//! process is gone. Anything we cannot check, or can only half check, is
//! alive; an identity written for another platform, kernel, host or PID
//! namespace that this reader cannot see into is *unjudgeable*, never dead.

use serde::{Deserialize, Serialize};
use std::fmt;

mod linux;
mod portable;
#[cfg(test)]
mod testing;

#[cfg_attr(not(target_os = "linux"), allow(unused_imports))]
pub(crate) use linux::{
    judge_legacy_linux, judge_linux, judge_linux_side, LinuxLocal, LinuxProcs, SeenProcess,
};
#[cfg_attr(target_os = "linux", allow(unused_imports))]
pub(crate) use portable::{
    judge_freebsd, judge_legacy_portable, judge_macos, judge_portable_side, judge_windows,
    PortableLocal, PortableProcs,
};

/// Why a bid or side file was judged stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StaleReason {
    /// No process has the PID any more.
    Gone,
    /// The PID now names a process that started at another time.
    PidReused,
    /// The process is a zombie all of whose threads have exited.
    Defunct,
    /// The bid was written on this machine during an earlier boot.
    Rebooted,
    /// Its PID namespace (a container) has no such process any more; proved
    /// by a reader that sees every process of this kernel.
    NamespaceGone,
    /// Its lease expired: not renewed within the period it promised.
    LeaseExpired,
}

impl fmt::Display for StaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StaleReason::Gone => "process gone",
            StaleReason::PidReused => "PID reused by another process",
            StaleReason::Defunct => "process exited (unreaped zombie)",
            StaleReason::Rebooted => "written before this machine last booted",
            StaleReason::NamespaceGone => "no such process left in its PID namespace",
            StaleReason::LeaseExpired => "lease expired",
        })
    }
}

/// Why an entry cannot be judged from here (it is then treated as alive).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unjudgeable {
    /// Written on another machine (another host, or a kernel that is not
    /// this one and not provably an earlier boot of it).
    OtherMachine,
    /// Written in a PID namespace this reader cannot see into (it is not in
    /// the initial PID namespace, or cannot see every process).
    OtherPidNamespace,
    /// A lockfolder 1.x bid whose PID may belong to a process of another PID
    /// namespace, which this reader cannot see.
    LegacyPidNamespace,
    /// Written by lockfolder on another operating system (named).
    OtherPlatform(String),
    /// A bid of a format version or kind this build does not know.
    UnknownFormat(String),
    /// This reader could not read its own identity, so it can prove nothing.
    NoLocalIdentity,
}

impl fmt::Display for Unjudgeable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unjudgeable::OtherMachine => f.write_str("written on another machine"),
            Unjudgeable::OtherPidNamespace => {
                f.write_str("written in a PID namespace whose processes this reader cannot see")
            }
            Unjudgeable::LegacyPidNamespace => f.write_str(
                "a lockfolder 1.x bid: its PID may belong to another PID namespace, \
                 which this reader cannot see",
            ),
            Unjudgeable::OtherPlatform(os) => write!(f, "written on {os}"),
            Unjudgeable::UnknownFormat(what) => write!(f, "unknown bid format ({what})"),
            Unjudgeable::NoLocalIdentity => {
                f.write_str("this process cannot read its own identity, so it proves nothing")
            }
        }
    }
}

/// The judgement of one entry's writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Its process runs (or we cannot prove it does not). `stopped`: it is
    /// alive but stopped (SIGSTOP, a debugger, a frozen container).
    Live { stopped: bool },
    /// Provably gone: may be removed by its unique name.
    Stale(StaleReason),
    /// Cannot be judged from here: treated as alive.
    Unjudgeable(Unjudgeable),
}

impl Verdict {
    pub(crate) const LIVE: Verdict = Verdict::Live { stopped: false };

    pub(crate) fn is_stale(&self) -> bool {
        matches!(self, Verdict::Stale(_))
    }
}

// ------------------------------------------------------------ identities

/// Whole seconds by which a lockfolder 1.x bid's `CREATED` may differ from
/// the creation time we compute now for a live process with its PID and
/// still be that process. 1.x computes `CREATED` as `btime + start`, and
/// `btime` moves with every wall-clock step (NTP, `date -s`), so a live 1.x
/// holder looks that much younger after a forward step, older after a
/// backward one. A process further off either way is not the bid's writer:
/// a reused PID belongs to a later process, and an earlier one (a host's
/// long-running daemon whose PID a container's 1.x holder also had) was
/// never it. Steps larger than this since a 1.x bid was written can make a
/// live 1.x holder look gone (`docs/safety.md`); our own bids do not depend
/// on the wall clock at all.
pub const LEGACY_CLOCK_STEP_TOLERANCE: i64 = 60;

/// The identity a bid records about its owner, by platform. The bid's `PID`
/// (and, for `lockfolder run`, its process group) are kept beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "os", rename_all = "lowercase")]
pub enum Owner {
    /// A Linux process.
    Linux(LinuxOwner),
    /// A Windows process.
    Windows(WindowsOwner),
    /// A macOS process.
    Macos(MacosOwner),
    /// A FreeBSD process.
    Freebsd(FreebsdOwner),
}

impl Owner {
    /// The platform's name as written in bids.
    pub fn os(&self) -> &'static str {
        match self {
            Owner::Linux(_) => "linux",
            Owner::Windows(_) => "windows",
            Owner::Macos(_) => "macos",
            Owner::Freebsd(_) => "freebsd",
        }
    }
}

/// A Linux process: start time in clock ticks since boot, on one kernel
/// (boot id) and in one PID namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinuxOwner {
    /// `/proc/sys/kernel/random/boot_id`: this kernel, this boot.
    pub boot_id: String,
    /// `/etc/machine-id`, where the host has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// `btime` of `/proc/stat` when the bid was written (Unix seconds).
    pub boot_time: u64,
    /// Inode of the owner's `/proc/self/ns/pid`.
    pub pid_ns: u64,
    /// Field 22 of `/proc/<pid>/stat`, in the *initial* time namespace's
    /// terms (the writer's time-namespace boottime offset taken off), so
    /// readers in any time namespace compare like with like.
    pub start_ticks: u64,
    /// Clock ticks per second of `start_ticks`.
    pub clk_tck: u64,
    /// The writer's boottime offset was not a whole number of ticks, so
    /// `start_ticks` may be one tick off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tick_slack: bool,
}

/// A Windows process: creation time (`GetProcessTimes`, 100 ns since 1601)
/// on one machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowsOwner {
    /// `HKLM\SOFTWARE\Microsoft\Cryptography\MachineGuid`.
    pub machine_guid: String,
    /// Creation time as a FILETIME (100 ns intervals since 1601-01-01 UTC).
    pub created: u64,
}

/// A macOS process: start time (`kinfo_proc.p_starttime`, µs since the
/// Unix epoch, fixed when the process starts) on one machine and boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacosOwner {
    /// The machine: the Hardware UUID from `gethostuuid()` (not
    /// `kern.uuid`, which names the kernel build and is shared by every Mac
    /// running it).
    pub host_uuid: String,
    /// `kern.bootsessionuuid`: this boot.
    pub boot_session: String,
    /// Start time in µs since the Unix epoch.
    pub start_us: u64,
}

/// A FreeBSD process: start time in µs since boot (`ki_start` minus
/// `kern.boottime`, both read together, so a clock step does not move it)
/// on one machine and boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreebsdOwner {
    /// `kern.hostuuid`: the machine.
    pub host_uuid: String,
    /// `kern.boottime` when the bid was written (µs since the epoch).
    pub boot_time_us: u64,
    /// Start time in µs since boot.
    pub start_us: u64,
}

/// The compact form of an owner's identity carried in side-file names
/// (`names.rs`), enough to judge a side file without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OwnerKey {
    Linux {
        start_ticks: u64,
        pid_ns: u64,
        /// 32 lowercase hex digits (the boot id without hyphens).
        boot_id: String,
        boot_time: u64,
    },
    Windows {
        created: u64,
        /// 32 lowercase hex digits (the machine GUID without hyphens).
        machine: String,
    },
    Macos {
        start_us: u64,
        /// 32 lowercase hex digits (the boot session UUID without hyphens).
        boot_session: String,
    },
    Freebsd {
        start_us: u64,
        /// 32 lowercase hex digits (the host UUID without hyphens).
        host: String,
    },
    /// A platform letter this build does not know.
    Unknown(char),
}

pub(crate) fn hex32(s: &str) -> Option<String> {
    let h: String = s.chars().filter(|c| *c != '-').collect();
    (h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(h)
}

pub(crate) fn hex_or_raw(s: &str) -> String {
    hex32(&s.to_ascii_lowercase()).unwrap_or_else(|| {
        // Not a UUID: keep only what is safe in a file name.
        let word: String = s
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(32)
            .collect::<String>()
            .to_ascii_lowercase();
        if word.is_empty() {
            "none".to_owned()
        } else {
            word
        }
    })
}

impl OwnerKey {
    /// The key for a full owner identity.
    pub fn of(owner: &Owner) -> OwnerKey {
        match owner {
            Owner::Linux(o) => OwnerKey::Linux {
                start_ticks: o.start_ticks,
                pid_ns: o.pid_ns,
                boot_id: hex_or_raw(&o.boot_id),
                boot_time: o.boot_time,
            },
            Owner::Windows(o) => OwnerKey::Windows {
                created: o.created,
                machine: hex_or_raw(&o.machine_guid),
            },
            Owner::Macos(o) => OwnerKey::Macos {
                start_us: o.start_us,
                boot_session: hex_or_raw(&o.boot_session),
            },
            Owner::Freebsd(o) => OwnerKey::Freebsd {
                start_us: o.start_us,
                host: hex_or_raw(&o.host_uuid),
            },
        }
    }

    /// `L<ticks>.<pid_ns>.<boot id>.<boot time>`, `W<created>.<machine>`,
    /// `M<start>.<boot session>`, `F<start>.<host>`.
    pub fn encode(&self) -> String {
        match self {
            OwnerKey::Linux {
                start_ticks,
                pid_ns,
                boot_id,
                boot_time,
            } => format!("L{start_ticks}.{pid_ns}.{boot_id}.{boot_time}"),
            OwnerKey::Windows { created, machine } => format!("W{created}.{machine}"),
            OwnerKey::Macos {
                start_us,
                boot_session,
            } => format!("M{start_us}.{boot_session}"),
            OwnerKey::Freebsd { start_us, host } => format!("F{start_us}.{host}"),
            OwnerKey::Unknown(c) => format!("{c}"),
        }
    }

    /// Parses [`OwnerKey::encode`]'s output. A key of a platform this build
    /// does not know parses as `Unknown` (it is then unjudgeable).
    pub fn decode(s: &str) -> Option<OwnerKey> {
        use crate::names::parse_decimal as num;
        let mut chars = s.chars();
        let tag = chars.next()?;
        let rest = chars.as_str();
        let fields: Vec<&str> = rest.split('.').collect();
        let word = |f: &str| {
            (!f.is_empty()
                && f.len() <= 32
                && f.bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase()))
            .then(|| f.to_owned())
        };
        Some(match (tag, fields.as_slice()) {
            ('L', [t, ns, b, bt]) => OwnerKey::Linux {
                start_ticks: num(t)?,
                pid_ns: num(ns)?,
                boot_id: hex32(b)?,
                boot_time: num(bt)?,
            },
            ('W', [c, m]) => OwnerKey::Windows {
                created: num(c)?,
                machine: word(m)?,
            },
            ('M', [st, b]) => OwnerKey::Macos {
                start_us: num(st)?,
                boot_session: word(b)?,
            },
            ('F', [st, h]) => OwnerKey::Freebsd {
                start_us: num(st)?,
                host: word(h)?,
            },
            ('L' | 'W' | 'M' | 'F', _) => return None,
            (c, _) if c.is_ascii_uppercase() && rest.bytes().all(|b| b != b'/') => {
                OwnerKey::Unknown(c)
            }
            _ => return None,
        })
    }
}

/// What a reader knows about an entry's writer: who it claims to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    /// A bid in our format.
    Bid {
        pid: u32,
        owner: Owner,
        group: Option<u32>,
    },
    /// A lockfolder 1.x bid: only `PID` and `CREATED`.
    Legacy { pid: u32, created: i64 },
    /// A side file, by the identity in its name.
    Side { pid: u32, key: OwnerKey },
    /// A bid of a format or platform this build cannot read.
    Unreadable(Unjudgeable),
}

/// How a process looks to a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunState {
    Running,
    /// Stopped or traced (`T`, `t`): alive, but it may never move again.
    Stopped,
    /// A zombie every thread of which has exited: it can never run again.
    Exited,
}

/// What a platform found out about a PID in the reader's own namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Probe {
    /// No process has this PID (only an authoritative "no such process"
    /// answer gives this: `ESRCH`, or Windows' invalid-parameter).
    Gone,
    /// A process has it. `start` is in the platform's unit (Linux: raw
    /// ticks; Windows: FILETIME; macOS: µs since the epoch; FreeBSD: µs
    /// since boot).
    Alive { start: u64, state: RunState },
    /// Could not tell (permissions, hidden `/proc`, a race): alive.
    Unknown,
}

/// A verdict from a probe of a PID in our own namespace against the start
/// time a bid records (`matches` compares the start values).
pub(crate) fn by_probe(p: Probe, matches: impl Fn(u64) -> bool) -> Verdict {
    match p {
        Probe::Gone => Verdict::Stale(StaleReason::Gone),
        Probe::Unknown => Verdict::LIVE,
        Probe::Alive { start, state } => {
            if !matches(start) {
                Verdict::Stale(StaleReason::PidReused)
            } else {
                match state {
                    RunState::Exited => Verdict::Stale(StaleReason::Defunct),
                    RunState::Stopped => Verdict::Live { stopped: true },
                    RunState::Running => Verdict::LIVE,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_keys_round_trip() {
        let owners = [
            Owner::Linux(owner(500, 4026531836)),
            Owner::Windows(WindowsOwner {
                machine_guid: "9A2F0C1E-0000-4000-8000-00000000ABCD".into(),
                created: 133_000_000_000_000_000,
            }),
            Owner::Macos(MacosOwner {
                host_uuid: "x".into(),
                boot_session: "aaaaaaaa-2222-3333-4444-555555555555".into(),
                start_us: 1,
            }),
            Owner::Freebsd(FreebsdOwner {
                host_uuid: "11111111-2222-3333-4444-555555555555".into(),
                boot_time_us: 5,
                start_us: 7,
            }),
        ];
        for o in &owners {
            let k = OwnerKey::of(o);
            assert_eq!(OwnerKey::decode(&k.encode()), Some(k.clone()), "{o:?}");
        }
        assert_eq!(OwnerKey::decode("Z1.2"), Some(OwnerKey::Unknown('Z')));
        assert_eq!(OwnerKey::decode("L1.2"), None);
        assert_eq!(OwnerKey::decode(""), None);
        assert_eq!(OwnerKey::decode("l1.2.3.4"), None);
    }
    fn owner(ticks: u64, ns: u64) -> LinuxOwner {
        testing::owner(ticks, ns)
    }
}
