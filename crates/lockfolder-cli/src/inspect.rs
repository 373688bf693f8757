//! `lockfolder status` and `lockfolder clean`: look at a lock folder, and
//! remove what is provably stale. Neither creates a missing folder.

use crate::exit::{self, Context};
use lockfolder::{Holder, LockFolder, State};
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
    })
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

/// One line of `status`: state, kind, name, details.
fn entry_line(h: &Holder) -> String {
    format!(
        "  {:<9} {:<10} {}  {}",
        h.state.as_str(),
        h.kind.as_str(),
        h.name.to_string_lossy(),
        details(h)
    )
    .trim_end()
    .to_owned()
}

/// `lockfolder status DIR [--json] [-q]`.
pub fn status(dir: &Path, as_json: bool, quiet: bool) -> i32 {
    let folder = match open(dir) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let mut holders = match folder.holders() {
        Ok(h) => h,
        Err(e) => return exit::fail(&e, Context::Inspect),
    };
    // Bid names start with when their contender began waiting: name order is
    // queue order, and the output is stable.
    holders.sort_by(|a, b| a.name.cmp(&b.name));
    let blocking = holders.iter().filter(|h| h.blocks()).count();
    let locked = blocking > 0;
    let code = if locked { exit::HELD } else { exit::OK };
    let mut out = exit::Output::new();
    if as_json {
        let doc = json!({
            "format": JSON_FORMAT,
            "folder": dir.to_string_lossy(),
            "locked": locked,
            "entries": holders.iter().map(entry_json).collect::<Vec<_>>(),
        });
        out.line(format_args!("{doc:#}"));
    } else if !quiet {
        let verdict = if locked {
            format!(
                "locked ({blocking} blocking entr{})",
                if blocking == 1 { "y" } else { "ies" }
            )
        } else {
            "free".to_owned()
        };
        out.line(format_args!("{}: {verdict}", dir.display()));
        for h in &holders {
            out.line(entry_line(h));
        }
    }
    out.finish(code)
}

/// `lockfolder clean DIR [--dry-run]`.
pub fn clean(dir: &Path, dry_run: bool) -> i32 {
    let folder = match open(dir) {
        Ok(f) => f,
        Err(code) => return code,
    };
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
