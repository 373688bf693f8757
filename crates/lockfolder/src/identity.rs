//! Process identity: what we write about ourselves, and the fail-closed
//! judgement of whether the process behind someone else's bid is gone.
//!
//! The rule (see `docs/safety.md`): a bid is stale only on *proof* that its
//! process is gone on this host. Anything we cannot check, or can only half
//! check, is alive.

use crate::bid::{BidRecord, Mode, TempName, FORMAT_VERSION};
use crate::sys::{self, HostContext, Probe, ProcessStamp};
use std::fmt;

/// Why a bid or temporary file was judged stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StaleReason {
    /// No process has the PID any more.
    Gone,
    /// The PID now names a process that started at another time.
    PidReused,
    /// The process is a zombie all of whose threads have exited.
    Defunct,
    /// The bid was written on this host during an earlier boot.
    Rebooted,
}

impl fmt::Display for StaleReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StaleReason::Gone => "process gone",
            StaleReason::PidReused => "PID reused by another process",
            StaleReason::Defunct => "process exited (unreaped zombie)",
            StaleReason::Rebooted => "written before the last reboot",
        })
    }
}

/// The judgement of one bid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Its process runs here (or we cannot prove it does not).
    Live,
    /// Written on another host or in another PID namespace: never judged.
    Foreign,
    /// Provably dead: may be removed by its unique name.
    Stale(StaleReason),
}

impl Verdict {
    /// The state reported to users for an entry with this verdict.
    pub(crate) fn state(self) -> crate::State {
        match self {
            Verdict::Live => crate::State::Live,
            Verdict::Foreign => crate::State::Foreign,
            Verdict::Stale(s) => crate::State::Stale(s),
        }
    }
}

/// Judges a bid. `ctx` is `None` when we could not read our own identity, in
/// which case nothing can be proven and every bid is live.
pub(crate) fn judge(rec: &BidRecord, ctx: Option<&HostContext>) -> Verdict {
    let Some(ctx) = ctx else {
        return Verdict::Live;
    };
    if !rec.is_native() {
        return judge_legacy(rec, ctx);
    }
    let (Some(host), Some(boot_id), Some(pid_ns), Some(ticks)) =
        (&rec.host, &rec.boot_id, rec.pid_ns, rec.start_ticks)
    else {
        // Our format but missing identity: ambiguous, so alive.
        return Verdict::Live;
    };
    if *host != ctx.host {
        return Verdict::Foreign;
    }
    if *boot_id != ctx.boot_id {
        return judge_other_boot(rec, ctx);
    }
    if pid_ns != ctx.pid_ns {
        return Verdict::Foreign;
    }
    match judge_process(ProcessStamp {
        pid: rec.pid,
        start_ticks: ticks,
    }) {
        // The owner is gone, but the bid also names a process group: it lives
        // while any member does (only ESRCH for the whole group proves none).
        Verdict::Stale(_) if rec.pgid.is_some_and(|g| !sys::group_gone(g)) => Verdict::Live,
        v => v,
    }
}

/// Same host name, another boot id. That is a previous boot of this machine
/// only if the machine ids agree (or neither side has one) and the bid's boot
/// began before ours; otherwise it may be another machine with the same name.
fn judge_other_boot(rec: &BidRecord, ctx: &HostContext) -> Verdict {
    let same_machine = rec.machine_id == ctx.machine_id;
    match rec.boot_time {
        Some(t) if same_machine && t < ctx.boot_time => Verdict::Stale(StaleReason::Rebooted),
        _ => Verdict::Foreign,
    }
}

/// A 1.0.2 bid: only `PID` and `CREATED` (whole seconds). It carries no host,
/// so it is judged as if written here, as 1.0.2 itself does.
fn judge_legacy(rec: &BidRecord, ctx: &HostContext) -> Verdict {
    match sys::probe(rec.pid) {
        Probe::Gone => Verdict::Stale(StaleReason::Gone),
        Probe::Unknown => Verdict::Live,
        Probe::Alive {
            start_ticks,
            defunct,
        } => {
            if (ctx.created(start_ticks) - rec.created).abs() > 1 {
                Verdict::Stale(StaleReason::PidReused)
            } else if defunct {
                Verdict::Stale(StaleReason::Defunct)
            } else {
                Verdict::Live
            }
        }
    }
}

/// A process of this host, boot and PID namespace.
pub(crate) fn judge_process(p: ProcessStamp) -> Verdict {
    match sys::probe(p.pid) {
        Probe::Gone => Verdict::Stale(StaleReason::Gone),
        Probe::Unknown => Verdict::Live,
        Probe::Alive {
            start_ticks,
            defunct,
        } => {
            if start_ticks != p.start_ticks {
                Verdict::Stale(StaleReason::PidReused)
            } else if defunct {
                Verdict::Stale(StaleReason::Defunct)
            } else {
                Verdict::Live
            }
        }
    }
}

/// Judges a temporary file by the identity in its name. Boot ids are random
/// per boot, so a matching boot id means this very kernel.
pub(crate) fn judge_temp(t: &TempName, ctx: Option<&HostContext>) -> Verdict {
    let Some(ctx) = ctx else {
        return Verdict::Live;
    };
    if t.boot_id != ctx.boot_id_hex() || t.pid_ns != ctx.pid_ns {
        return Verdict::Foreign;
    }
    judge_process(ProcessStamp {
        pid: t.pid,
        start_ticks: t.start_ticks,
    })
}

/// The process a bid names, if it can be watched from here (for waking when it
/// exits).
pub(crate) fn watchable(rec: &BidRecord, ctx: &HostContext) -> Option<ProcessStamp> {
    if rec.is_native() {
        let same = rec.host.as_deref() == Some(ctx.host.as_str())
            && rec.boot_id.as_deref() == Some(ctx.boot_id.as_str())
            && rec.pid_ns == Some(ctx.pid_ns);
        return same.then_some(ProcessStamp {
            pid: rec.pid,
            start_ticks: rec.start_ticks?,
        });
    }
    match sys::probe(rec.pid) {
        Probe::Alive { start_ticks, .. } if (ctx.created(start_ticks) - rec.created).abs() <= 1 => {
            Some(ProcessStamp {
                pid: rec.pid,
                start_ticks,
            })
        }
        _ => None,
    }
}

/// What we publish about a lock holder.
pub(crate) struct BidOptions<'a> {
    pub pgid: Option<u32>,
    pub mode: Mode,
    pub slots: u32,
    pub label: Option<&'a str>,
    pub command: Option<&'a str>,
}

/// The content of a bid for `owner`.
pub(crate) fn bid_record(
    owner: ProcessStamp,
    ctx: &HostContext,
    published_ms: u64,
    opts: &BidOptions<'_>,
) -> BidRecord {
    BidRecord {
        pid: owner.pid,
        created: ctx.created(owner.start_ticks),
        version: Some(FORMAT_VERSION),
        host: Some(ctx.host.clone()),
        machine_id: ctx.machine_id.clone(),
        boot_id: Some(ctx.boot_id.clone()),
        boot_time: Some(ctx.boot_time),
        pid_ns: Some(ctx.pid_ns),
        start_ticks: Some(owner.start_ticks),
        clk_tck: Some(ctx.clk_tck),
        published_ms: Some(published_ms),
        mode: (opts.mode != Mode::Exclusive).then_some(opts.mode),
        slots: (opts.slots != 1).then_some(opts.slots),
        label: opts.label.map(str::to_owned),
        command: opts.command.map(str::to_owned),
        pgid: opts.pgid,
    }
}
