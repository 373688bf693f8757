//! `lockfolder status` and `lockfolder clean`: look at a lock folder, and
//! remove what is provably stale. Neither creates a missing folder.

use crate::exit::{self, Context};
use lockfolder::{Holder, LockFolder, Role, State, Status};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Version of the JSON shape printed by `status --json`. Fields may be
/// added without changing it; removing or changing one bumps it.
const JSON_FORMAT: u32 = 1;

fn open(dir: &Path) -> Result<LockFolder, i32> {
    match LockFolder::builder(dir).create(false).open() {
        Ok(f) => Ok(f),
        Err(lockfolder::Error::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Err(exit::fail_at(dir, "no such lock folder", exit::NOINPUT))
        }
        Err(e) => Err(exit::fail(&e, Context::Inspect)),
    }
}

fn unix_seconds(t: Option<SystemTime>) -> Value {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(Value::Null, |d| json!(d.as_secs_f64()))
}

/// How old an entry is: since its bid was published, or (for 1.0.2 bids,
/// which do not record that) since its process started.
fn age(h: &Holder) -> Option<Duration> {
    h.acquired.or(h.started).and_then(|t| t.elapsed().ok())
}

fn stale_reason(h: &Holder) -> Option<String> {
    match h.state {
        State::Stale(r) => Some(r.to_string()),
        _ => None,
    }
}

pub fn entry_json(h: &Holder) -> Value {
    json!({
        "name": h.name.to_string_lossy(),
        "state": h.state.as_str(),
        "stale_reason": stale_reason(h),
        "kind": h.kind.as_str(),
        "blocks": h.blocks(),
        "pid": h.pid,
        "host": h.host,
        "started": unix_seconds(h.started),
        "acquired": unix_seconds(h.acquired),
        "waiting_since": unix_seconds(h.waiting_since),
        "age_seconds": age(h).map(|d| d.as_secs_f64()),
        "label": h.label,
        "command": h.command,
        "note": h.note,
        "mode": h.mode.map(|m| match m {
            lockfolder::Mode::Exclusive => "exclusive",
            lockfolder::Mode::Shared => "shared",
        }),
        "slots": h.slots,
        "role": h.role.as_str(),
        "stopped": h.stopped,
        "os": h.os,
        "group": h.group,
        "lease_seconds": h.lease.map(|l| l.as_secs_f64()),
        "renewed": unix_seconds(h.renewed),
        "allowed_fs": h.allowed_fs,
    })
}

fn filesystem_json(folder: &LockFolder) -> Value {
    let fs = folder.filesystem();
    let p = folder.filesystem_policy();
    json!({
        "name": fs.name,
        "kind": fs.kind.as_str(),
        "source": fs.source,
        "accepted": p.accepted,
        "opted_in": p.opted_in,
        "reason": p.reason,
    })
}

/// The first line of `status`: held or free, and whether a newcomer waits.
fn verdict(st: &Status) -> String {
    let holders: Vec<&Holder> = st
        .entries
        .iter()
        .filter(|h| h.role == Role::Holder)
        .collect();
    let waiters = st.entries.iter().filter(|h| h.role == Role::Waiter).count();
    let others = st
        .entries
        .iter()
        .filter(|h| h.blocks() && h.role == Role::None)
        .count();
    let mut s = match holders.first() {
        Some(h) if holders.len() == 1 => format!("held by {}", h.describe()),
        Some(_) => format!("held by {} holders", holders.len()),
        None if others > 0 => "blocked".to_owned(),
        None => "free".to_owned(),
    };
    if others > 0 {
        s.push_str(&format!(
            ", {others} entr{} that block{} it",
            if others == 1 { "y" } else { "ies" },
            if others == 1 { "s" } else { "" }
        ));
    }
    if waiters > 0 {
        s.push_str(&format!(
            ", {waiters} waiter{} queued",
            if waiters == 1 { "" } else { "s" }
        ));
    }
    s.push_str(if st.would_wait {
        "; a new acquisition would wait"
    } else {
        "; a new acquisition would get it now"
    });
    s
}

/// "3.2s", "4m05s", "2h03m", "3d04h".
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{:.1}s", d.as_secs_f64()),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// "pid 42, host h, age 3.2s, label "x", command `y`; process gone".
fn details(h: &Holder) -> String {
    let mut parts = Vec::new();
    if let Some(pid) = h.pid {
        parts.push(format!("pid {pid}"));
    }
    if let Some(host) = &h.host {
        parts.push(format!("host {host}"));
    }
    match (h.mode, h.slots) {
        (_, Some(n)) if n > 1 => parts.push(format!("{n} slots")),
        (Some(lockfolder::Mode::Shared), _) => parts.push("shared".to_owned()),
        _ => {}
    }
    if let Some(a) = age(h) {
        parts.push(format!("age {}", human_duration(a)));
    }
    if let Some(l) = &h.label {
        parts.push(format!("label {l:?}"));
    }
    if let Some(c) = &h.command {
        parts.push(format!("command `{c}`"));
    }
    let mut s = parts.join(", ");
    for why in [stale_reason(h), h.note.clone()].into_iter().flatten() {
        if !s.is_empty() {
            s.push_str("; ");
        }
        s.push_str(&why);
    }
    s
}

/// One line of `status`: state, kind, role, name, details.
fn entry_line(h: &Holder) -> String {
    let role = match (h.role, h.stopped) {
        (Role::None, _) => "-".to_owned(),
        (r, true) => format!("{}(stopped)", r.as_str()),
        (r, false) => r.as_str().to_owned(),
    };
    format!(
        "  {:<9} {:<12} {:<15} {}  {}",
        h.state.as_str(),
        h.kind.as_str(),
        role,
        h.name.to_string_lossy(),
        details(h)
    )
    .trim_end()
    .to_owned()
}

/// `lockfolder status DIR [--json] [-q]`. Exit 0 when a new blocking
/// acquisition would get the lock at once, 1 when it would wait (the lock
/// is held, or live waiters are queued ahead of it).
pub fn status(dir: &Path, as_json: bool, quiet: bool) -> i32 {
    let folder = match open(dir) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let st = match folder.status() {
        Ok(st) => st,
        Err(e) => return exit::fail(&e, Context::Inspect),
    };
    let code = if st.would_wait { exit::HELD } else { exit::OK };
    let mut out = exit::Output::new();
    if as_json {
        let doc = json!({
            "format": JSON_FORMAT,
            "folder": dir.to_string_lossy(),
            "locked": st.held(),
            "would_wait": st.would_wait,
            "blockers": st.blockers.iter().map(|h| h.name.to_string_lossy()).collect::<Vec<_>>(),
            "filesystem": filesystem_json(&folder),
            "entries": st.entries.iter().map(entry_json).collect::<Vec<_>>(),
        });
        out.line(format_args!("{doc:#}"));
    } else if !quiet {
        out.line(format_args!("{}: {}", dir.display(), verdict(&st)));
        let p = folder.filesystem_policy();
        out.line(format_args!(
            "  filesystem {}: {}{} ({})",
            folder.filesystem(),
            if p.accepted { "accepted" } else { "REFUSED" },
            if p.opted_in { " by opt-in" } else { "" },
            p.reason
        ));
        for h in &st.entries {
            out.line(entry_line(h));
        }
        for (i, h) in st.blockers.iter().enumerate() {
            let what = if h.role == Role::Waiter {
                "queued ahead"
            } else {
                "keeps it out"
            };
            out.line(format_args!(
                "  {} {}: {} ({what})",
                if i == 0 { "waits for" } else { "     then" },
                h.name.to_string_lossy(),
                h.describe()
            ));
        }
    }
    out.finish(code)
}

/// `lockfolder clean DIR --force ENTRY...`: removes what an operator
/// names, for what no proof can settle; refuses what is not a bid and the
/// bid of a process this machine sees alive.
fn clean_forced(folder: &LockFolder, names: &[std::ffi::OsString]) -> i32 {
    let mut out = exit::Output::new();
    for name in names {
        match folder.remove_forced(name) {
            Ok(h) => out.line(format_args!(
                "removed by force {} ({} {}: {})",
                h.name.to_string_lossy(),
                h.state.as_str(),
                h.kind.as_str(),
                details(&h)
            )),
            Err(e) => {
                let code = exit::fail(&e, Context::Inspect);
                return out.finish(code);
            }
        }
    }
    out.finish(exit::OK)
}

/// `lockfolder clean DIR [--dry-run] [--force ENTRY...]`.
pub fn clean(dir: &Path, dry_run: bool, force: &[std::ffi::OsString]) -> i32 {
    let folder = match open(dir) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if !force.is_empty() {
        return clean_forced(&folder, force);
    }
    let (verb, result) = if dry_run {
        (
            "would remove",
            folder.holders().map(|hs| {
                hs.into_iter()
                    .filter(|h| matches!(h.state, State::Stale(_)))
                    .collect::<Vec<_>>()
            }),
        )
    } else {
        ("removed", folder.clean())
    };
    match result {
        Ok(removed) => {
            let mut out = exit::Output::new();
            for h in &removed {
                out.line(format_args!(
                    "{verb} {} ({} {}: {})",
                    h.name.to_string_lossy(),
                    h.state.as_str(),
                    h.kind.as_str(),
                    details(h)
                ));
            }
            if removed.is_empty() {
                out.line("nothing to remove");
            }
            out.finish(exit::OK)
        }
        Err(e) => exit::fail(&e, Context::Inspect),
    }
}
