//! Looking at the folder: one listing, every entry inspected (by name first,
//! then, for bids, by content) and its writer judged, into plain facts the
//! decision rules (`decide.rs`) read.
//!
//! Nothing here removes anything or decides anything.

use crate::bid::BidRecord;
use crate::decide::{self, Class, Judged};
use crate::error::Result;
use crate::identity::{Claim, Verdict};
use crate::liveness::Judge;
use crate::names::{classify_name, NameKind, SideName, Token};
use crate::store::{Content, EntryType, Folder, RawEntry};
use std::collections::{HashMap, HashSet};

/// One inspected entry.
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    pub name: Vec<u8>,
    pub what: What,
    /// The judgement of its writer (entries that are not bids: live).
    pub verdict: Verdict,
}

/// What an entry is.
#[derive(Debug, Clone)]
pub(crate) enum What {
    Bid {
        token: Token,
        rec: Box<BidRecord>,
    },
    Side(SideName),
    /// Named like a bid, but its content is not one.
    Unreadable {
        note: String,
    },
    NotABid {
        note: String,
    },
    /// A filesystem's name for a deleted file still open (`.nfsXXXX`).
    Artefact,
    /// A fencing token's file.
    Fence(u64),
}

impl Seen {
    /// The claim to judge, for entries that name a writer.
    pub fn claim(&self) -> Option<Claim> {
        match &self.what {
            What::Bid { rec, .. } => Some(rec.claim()),
            What::Side(s) => Some(Claim::Side {
                pid: s.pid,
                key: s.owner.clone(),
            }),
            _ => None,
        }
    }

    /// The token that orders this entry among waiters (bids of our format
    /// and queue markers).
    pub fn key(&self) -> Option<decide::Key> {
        match &self.what {
            What::Bid { token, rec } if rec.is_native() => Some(key_of(token)),
            What::Side(s) if s.queue => Some(key_of(&s.token)),
            _ => None,
        }
    }

    pub fn is_marker(&self) -> bool {
        matches!(&self.what, What::Side(s) if s.queue)
    }

    pub fn stopped(&self) -> bool {
        matches!(self.verdict, Verdict::Live { stopped: true })
    }

    /// The entry as the rules see it. `markers`: the ages of the queue
    /// markers in the same listing; `expired`: this entry, a marker, has
    /// lost its turn.
    pub fn entry(&self, markers: &HashSet<[u8; 8]>, expired: bool) -> decide::Entry {
        let judged = match self.verdict {
            Verdict::Live { .. } => Judged::Live,
            Verdict::Stale(_) => Judged::Stale,
            Verdict::Unjudgeable(_) => Judged::Unjudgeable,
        };
        let class = match &self.what {
            What::Bid { token, rec } => Class::Bid {
                key: rec.is_native().then(|| key_of(token)),
                mode: rec.mode(),
                slots: rec.slots(),
                legacy: !rec.is_native(),
                queued: markers.contains(&token.age().0),
            },
            What::Side(s) if s.queue => Class::Marker {
                key: key_of(&s.token),
            },
            What::Side(_) => Class::Temp,
            What::Unreadable { .. } => Class::Unreadable,
            What::NotABid { .. } => Class::NotABid,
            // Fence files are bookkeeping of holders: nothing to the rules.
            What::Artefact | What::Fence(_) => Class::Artefact,
        };
        decide::Entry {
            class,
            judged,
            expired,
        }
    }
}

/// A token as the rules' order key.
pub(crate) fn key_of(t: &Token) -> decide::Key {
    u128::from_be_bytes(t.0)
}

/// What one contender already knows.
///
/// * Bid contents, by file name: a bid's name is used once and its content
///   is published whole, so what we read under a name stays true.
/// * Verdicts other than "stale", by the writer's claim (PID and the whole
///   identity), not by file name: every bid and queue marker a rival
///   publishes has a new name, but the same writer, and the verdict depends
///   on the claim alone. Remembering that a writer was alive (or
///   unjudgeable) can only err towards alive, the safe side. Each verdict
///   is trusted for at most [`VERDICT_MAX_AGE`]; a waiter re-judges the
///   entries it waits on whenever its re-check timer fires
///   ([`Cache::forget_claims`]) and everyone when a watched process exits
///   ([`Cache::forget_verdicts`]).
#[derive(Default)]
pub(crate) struct Cache {
    records: HashMap<Vec<u8>, BidRecord>,
    verdicts: Verdicts,
}

/// The longest a remembered "alive" verdict is trusted, here and across the
/// acquisitions of one `LockFolder` ([`Verdicts`] are handed on from one to
/// the next). The entries a waiter waits on are re-judged on every re-check
/// (100 ms), so a dead holder, or a dead waiter just ahead, is noticed by
/// the waiter it holds back no later than before. Others' entries are that
/// waiter's business: re-judging all of them on every re-check made each of
/// N waiters probe all N entries ten times a second (at 64 waiters, about
/// 600 probes per acquisition).
pub(crate) const VERDICT_MAX_AGE: std::time::Duration = crate::protocol::HANDOVER;

/// Remembered verdicts, by the PID of the claim, then the whole claim, each
/// with when it was judged.
#[derive(Default)]
pub(crate) struct Verdicts {
    by_pid: HashMap<u32, Vec<(Claim, Verdict, std::time::Instant)>>,
}

fn claim_pid(claim: &Claim) -> Option<u32> {
    match claim {
        Claim::Bid { pid, .. } | Claim::Legacy { pid, .. } | Claim::Side { pid, .. } => Some(*pid),
        Claim::Unreadable(_) => None,
    }
}

impl Cache {
    pub fn forget_verdicts(&mut self) {
        self.verdicts = Verdicts::default();
    }

    /// Forgets the verdicts on these claims (the entries a waiter waits on).
    pub fn forget_claims<'a>(&mut self, claims: impl IntoIterator<Item = &'a Claim>) {
        for c in claims {
            if let Some(l) = claim_pid(c).and_then(|p| self.verdicts.by_pid.get_mut(&p)) {
                l.retain(|(k, _, _)| k != c);
            }
        }
    }

    pub fn forget(&mut self, name: &[u8]) {
        self.records.remove(name);
    }

    /// Takes the verdicts an earlier acquisition left (each is still only
    /// trusted while younger than [`VERDICT_MAX_AGE`]).
    pub fn adopt(&mut self, v: Verdicts) {
        self.verdicts = v;
    }

    /// Hands the verdicts on to the next acquisition.
    pub fn take_verdicts(&mut self) -> Verdicts {
        std::mem::take(&mut self.verdicts)
    }

    fn verdict(&mut self, claim: &Claim, judge: impl FnOnce() -> Verdict) -> Verdict {
        let Some(pid) = claim_pid(claim) else {
            return judge();
        };
        let list = self.verdicts.by_pid.entry(pid).or_default();
        list.retain(|(_, _, t)| t.elapsed() < VERDICT_MAX_AGE);
        if let Some((_, v, _)) = list.iter().find(|(c, _, _)| c == claim) {
            return v.clone();
        }
        let v = judge();
        if !v.is_stale() {
            list.push((claim.clone(), v.clone(), std::time::Instant::now()));
        }
        v
    }
}

/// The file server's clock, as far as a reader can know it: the
/// modification time of a file of its own that it has just written (or
/// touched). Read at most once per listing, and only if a lease needs it.
pub(crate) struct ServerClock {
    /// Our own freshest file: our bid (just published) or our queue marker
    /// (touched before being read).
    own: Option<(Vec<u8>, bool)>,
    now: Option<Option<std::time::SystemTime>>,
}

impl ServerClock {
    /// No file of ours to read the server's time from.
    pub fn none() -> ServerClock {
        ServerClock {
            own: None,
            now: None,
        }
    }

    /// From our own file `name`; `touch`: stamp it first (a marker written
    /// long ago).
    pub fn from_own(name: &str, touch: bool) -> ServerClock {
        ServerClock {
            own: Some((name.as_bytes().to_vec(), touch)),
            now: None,
        }
    }

    fn now(&mut self, folder: &Folder) -> Option<std::time::SystemTime> {
        if let Some(n) = self.now {
            return n;
        }
        let n = self.own.as_ref().and_then(|(name, touch)| {
            if *touch {
                folder.touch(name).ok()?;
            }
            folder.fresh_mtime(name).ok()
        });
        self.now = Some(n);
        n
    }
}

/// Lists the folder and inspects every entry. With `verify`, first makes
/// sure the path still names the folder we hold open (the deciding listing
/// does). Entries that vanish meanwhile are left out.
pub(crate) fn list(
    folder: &Folder,
    verify: bool,
    judge: &Judge,
    cache: &mut Cache,
    clock: &mut ServerClock,
) -> Result<Vec<Seen>> {
    list_but(folder, verify, judge, cache, clock, &[], false).map(|(seen, _)| seen)
}

/// [`list`], leaving out the entries named in `own` (ours: nothing to
/// inspect or judge), and saying which of them were listed. With
/// `skip_artefacts`, filesystem artefacts (`.nfsXXXX`, `.fuse_hiddenXXXX`)
/// are left out by name too: they never block, are never judged and never
/// removed, so a contender's decision does not need them, and a folder full
/// of them costs it the listing only.
pub(crate) fn list_but(
    folder: &Folder,
    verify: bool,
    judge: &Judge,
    cache: &mut Cache,
    clock: &mut ServerClock,
    own: &[&[u8]],
    skip_artefacts: bool,
) -> Result<(Vec<Seen>, Vec<bool>)> {
    let raw = folder.list(verify)?;
    let mut out = Vec::with_capacity(raw.len());
    let mut present = vec![false; own.len()];
    for r in &raw {
        if let Some(i) = own.iter().position(|o| *o == r.name.as_slice()) {
            present[i] = true;
            continue;
        }
        if skip_artefacts && crate::names::is_artefact(&r.name) {
            continue;
        }
        if let Some(mut s) = inspect(folder, r, judge, cache) {
            judge_lease(folder, &mut s, clock);
            out.push(s);
        }
    }
    Ok((out, present))
}

/// A bid whose owner nobody here can judge, but which carries a lease, is
/// stale once its lease has lapsed by the server's clock. Never cached: the
/// owner renews it.
fn judge_lease(folder: &Folder, s: &mut Seen, clock: &mut ServerClock) {
    let What::Bid { rec, .. } = &s.what else {
        return;
    };
    let (Some(ms), Verdict::Unjudgeable(_)) = (rec.lease_ms, &s.verdict) else {
        return;
    };
    let Some(server_now) = clock.now(folder) else {
        return;
    };
    let Ok(renewed) = folder.fresh_mtime(&s.name) else {
        return;
    };
    if crate::lease::expired(std::time::Duration::from_millis(ms), renewed, server_now) {
        s.verdict = Verdict::Stale(crate::identity::StaleReason::LeaseExpired);
    }
}

impl Seen {
    /// A bid nobody can judge that carries a lease: it may expire.
    pub fn has_unjudged_lease(&self) -> bool {
        matches!(
            (&self.what, &self.verdict),
            (What::Bid { rec, .. }, Verdict::Unjudgeable(_)) if rec.lease_ms.is_some()
        )
    }
}

/// Looks at one entry without ever following a symlink, opening a FIFO or
/// reading more than a bid's size cap. `None`: it vanished.
pub(crate) fn inspect(
    folder: &Folder,
    raw: &RawEntry,
    judge: &Judge,
    cache: &mut Cache,
) -> Option<Seen> {
    let not_a_bid = |note: String| Seen {
        name: raw.name.clone(),
        what: What::NotABid { note },
        verdict: Verdict::LIVE,
    };
    let unreadable = |note: String| Seen {
        name: raw.name.clone(),
        what: What::Unreadable { note },
        verdict: Verdict::LIVE,
    };
    match classify_name(&raw.name) {
        NameKind::Fence(n) => Some(Seen {
            name: raw.name.clone(),
            what: What::Fence(n),
            verdict: Verdict::LIVE,
        }),
        NameKind::Artefact => Some(Seen {
            name: raw.name.clone(),
            what: What::Artefact,
            verdict: Verdict::LIVE,
        }),
        NameKind::Side(side) => {
            let claim = Claim::Side {
                pid: side.pid,
                key: side.owner.clone(),
            };
            let verdict = cache.verdict(&claim, || judge.judge(&claim));
            Some(Seen {
                name: raw.name.clone(),
                what: What::Side(side),
                verdict,
            })
        }
        NameKind::Other => {
            let kind = match raw.kind {
                EntryType::Unknown => folder.lstat_type(&raw.name),
                k => Ok(k),
            };
            match kind {
                Ok(k) => Some(not_a_bid(format!(
                    "{} that is not named like a bid",
                    k.describe()
                ))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => Some(not_a_bid(format!("unreadable: {e}"))),
            }
        }
        NameKind::Bid(token) => {
            // On a network filesystem a listing made without a change of our
            // own may still show a bid deleted elsewhere (a stale directory
            // cache); opening it is fresh (close-to-open), so re-read it
            // instead of trusting what we read under that name before, and
            // a deleted one counts as gone instead of holding the queue.
            let cached = match folder.filesystem().single_kernel() {
                true => cache.records.get(&raw.name),
                false => None,
            };
            let rec = match cached {
                Some(rec) => rec.clone(),
                None => match folder.read_entry(&raw.name) {
                    Content::Vanished => return None,
                    Content::NotRegular(t) => {
                        return Some(not_a_bid(format!("{} named like a bid", t.describe())))
                    }
                    Content::TooLarge(n) => {
                        return Some(unreadable(format!("too large for a bid ({n} bytes)")))
                    }
                    Content::Unreadable(e) => return Some(unreadable(format!("unreadable: {e}"))),
                    Content::Bytes(b) => match BidRecord::parse(&b) {
                        Some(rec) => {
                            cache.records.insert(raw.name.clone(), rec.clone());
                            rec
                        }
                        None if b.is_empty() => return Some(unreadable("empty file".to_owned())),
                        None => return Some(unreadable("content is not a bid".to_owned())),
                    },
                },
            };
            let claim = rec.claim();
            let verdict = cache.verdict(&claim, || judge.judge(&claim));
            Some(Seen {
                name: raw.name.clone(),
                what: What::Bid {
                    token,
                    rec: Box::new(rec),
                },
                verdict,
            })
        }
    }
}

/// The ages of the queue markers of a listing.
pub(crate) fn marker_ages(seen: &[Seen]) -> HashSet<[u8; 8]> {
    seen.iter()
        .filter_map(|s| match &s.what {
            What::Side(side) if side.queue => Some(side.token.age().0),
            _ => None,
        })
        .collect()
}
