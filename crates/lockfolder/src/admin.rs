//! The folder at one moment, and the operations an administrator runs on
//! it: `status` (what a newcomer would wait for), `clean` (remove what is
//! provably stale), `challenge` (1.x), `remove_forced` (what no proof can
//! settle). All built on the same judgement as the protocol.

use crate::decide::{self, Me, Role as Part, Rules, Tally};
use crate::error::{Error, Op, Result};
use crate::fsinfo::Filesystem;
use crate::identity::Verdict;
use crate::names::{classify_name, NameKind};
use crate::publish::remove_stale;
use crate::report::{describe, Holder};
use crate::scan::{self, Cache, Seen, ServerClock, What};
use crate::shared::Shared;
use crate::store::RawEntry;

/// A lock folder at one moment.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Status {
    /// Every entry, in name order (which is queue order for our bids and
    /// markers: names begin with the waiter's age).
    pub entries: Vec<Holder>,
    /// Whether a new blocking acquisition would have to wait now (the lock
    /// is held, or live waiters are queued ahead of it).
    pub would_wait: bool,
    /// What it would wait for: the entries that keep it out, then the
    /// waiters it would queue behind. Empty when `would_wait` is false.
    pub blockers: Vec<Holder>,
    /// The filesystem the folder lives on.
    pub filesystem: Filesystem,
}

impl Status {
    /// Whether anything holds or blocks the lock (queued waiters aside).
    pub fn held(&self) -> bool {
        self.entries.iter().any(Holder::blocks)
    }
}

fn listing(shared: &Shared) -> Result<Vec<Seen>> {
    // Nothing is written here, so there is no server clock to judge leases
    // by: a bid under a lease whose owner nobody can judge shows as foreign,
    // with the time of its last renewal.
    let mut clock = ServerClock::none();
    scan::list(
        &shared.folder,
        true,
        &shared.judge(),
        &mut Cache::default(),
        &mut clock,
    )
}

/// Every entry of the folder, judged, nothing removed.
pub(crate) fn status(shared: &Shared) -> Result<Status> {
    let seen = listing(shared)?;
    let markers = scan::marker_ages(&seen);
    // A newcomer is younger than every waiter already queued.
    let me = Me {
        age: decide::Key::MAX,
        token: decide::Key::MAX,
        mode: shared.mode,
        slots: shared.slots,
        waiting: true,
        may_keep: true,
    };
    let mut parts = Vec::new();
    for s in &seen {
        // A stopped or unjudgeable waiter loses its turn within HANDOVER.
        let expired =
            s.is_marker() && (s.stopped() || matches!(s.verdict, Verdict::Unjudgeable(_)));
        let part = decide::role(&me, &s.entry(&markers, expired), &Rules::REAL)
            .unwrap_or(Part::Rival { older: false });
        parts.push(part);
    }
    let tally = Tally::of(parts.iter().copied());
    let would_wait = decide::newcomer_waits(&tally, &me, &Rules::REAL);
    let full = tally.blocked(&me, &Rules::REAL);
    let mut entries = Vec::with_capacity(seen.len());
    let mut blockers = Vec::new();
    let mut queued = Vec::new();
    for (s, part) in seen.iter().zip(parts) {
        let h = describe(shared, s, &markers);
        match part {
            Part::Rival { .. } if would_wait => blockers.push(h.clone()),
            Part::Peer { .. } if would_wait && full => blockers.push(h.clone()),
            Part::Ahead if would_wait => queued.push(h.clone()),
            _ => {}
        }
        entries.push(h);
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    queued.sort_by(|a, b| a.name.cmp(&b.name));
    blockers.extend(queued);
    Ok(Status {
        entries,
        would_wait,
        blockers,
        filesystem: shared.folder.filesystem().clone(),
    })
}

/// Removes stale bids and side files, and says which.
pub(crate) fn clean(shared: &Shared) -> Result<Vec<Holder>> {
    let mut cache = Cache::default();
    // A probe file of ours gives the server's clock, to judge leases by.
    let probe = clock_probe(shared);
    let mut clock = match &probe {
        Some(name) => ServerClock::from_own(name, false),
        None => ServerClock::none(),
    };
    let listed = scan::list(
        &shared.folder,
        true,
        &shared.judge(),
        &mut cache,
        &mut clock,
    );
    if let Some(name) = &probe {
        let _ = shared.folder.remove(name.as_bytes());
    }
    let seen = listed?;
    let markers = scan::marker_ages(&seen);
    let mut removed = Vec::new();
    for s in &seen {
        let removable = s.verdict.is_stale() && matches!(s.what, What::Bid { .. } | What::Side(_));
        if removable && remove_stale(shared, &s.name, &mut cache)? {
            removed.push(describe(shared, s, &markers));
        }
    }
    Ok(removed)
}

/// Writes a temporary file of ours (a side file: never a rival) whose
/// modification time is the file server's clock.
fn clock_probe(shared: &Shared) -> Option<String> {
    let me = crate::liveness::current().ok()?;
    let name = crate::names::SideName {
        token: crate::names::Token::new(crate::shared::now_unix().as_nanos()),
        pid: me.pid,
        owner: me.key(),
        queue: false,
    }
    .file_name();
    shared.folder.write_temp(&name, b"").ok()?;
    Some(name)
}

fn inspect_one(shared: &Shared, name: &[u8]) -> Result<Option<Seen>> {
    let kind = match shared.folder.lstat_type(name) {
        Ok(k) => k,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(Op::ReadEntry, shared.path_of(name), e)),
    };
    let raw = RawEntry {
        name: name.to_vec(),
        kind,
    };
    Ok(scan::inspect(
        &shared.folder,
        &raw,
        &shared.judge(),
        &mut Cache::default(),
    ))
}

/// Judges one entry by name and removes it if it is a stale bid or side
/// file (1.0.2's `challenge`). `Ok(true)` if it was stale and is now gone.
pub(crate) fn challenge(shared: &Shared, name: &[u8]) -> Result<bool> {
    match inspect_one(shared, name)? {
        Some(s) if s.verdict.is_stale() && matches!(s.what, What::Bid { .. } | What::Side(_)) => {
            remove_stale(shared, name, &mut Cache::default())
        }
        _ => Ok(false),
    }
}

/// Removes one entry an operator names, for the cases no proof can settle
/// (a container killed as a whole, a host gone for good, a 1.0.2 bid left
/// empty by a crash). Only entries named like bids or side files are
/// removed, never other files; and never the bid of a process this machine
/// can see alive.
pub(crate) fn remove_forced(shared: &Shared, name: &[u8]) -> Result<Holder> {
    let path = shared.path_of(name);
    let refuse = |why: String| Error::Refused {
        path: path.clone(),
        why,
    };
    if matches!(
        classify_name(name),
        NameKind::Other | NameKind::Artefact | NameKind::Fence(_)
    ) {
        return Err(refuse(
            "not named like a bid or a lockfolder side file; lockfolder never removes other \
             files (remove it yourself if you are sure)"
                .to_owned(),
        ));
    }
    let Some(s) = inspect_one(shared, name)? else {
        return Err(Error::io(
            Op::ReadEntry,
            path,
            std::io::Error::from(std::io::ErrorKind::NotFound),
        ));
    };
    let markers = scan::marker_ages(std::slice::from_ref(&s));
    let h = describe(shared, &s, &markers);
    match (&s.what, &s.verdict) {
        (What::NotABid { note }, _) => Err(refuse(format!("not a regular file ({note})"))),
        (_, Verdict::Live { .. }) if !matches!(s.what, What::Unreadable { .. }) => {
            Err(refuse(format!(
                "its process is alive on this machine, or cannot be proven dead ({})",
                h.describe()
            )))
        }
        _ => {
            shared
                .folder
                .remove(name)
                .map_err(|e| Error::io(Op::Remove, shared.path_of(name), e))?;
            Ok(h)
        }
    }
}
