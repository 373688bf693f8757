//! Our own entries in the folder: writing a bid so that it appears whole
//! (step 20), deleting our bid or marker (steps 40 and 60), removing an
//! entry proven stale.

use crate::bid::{BidRecord, Mode, FORMAT_VERSION};
use crate::error::{Error, Op, Result};
use crate::liveness;
#[cfg(test)]
use crate::names::SideName;
use crate::names::{side_name, side_tail, Token};
use crate::scan::Cache;
use crate::shared::{now_unix, FsGate, Shared};

/// Removes a provably stale entry by its name. `Ok(false)` if it was already
/// gone.
pub(crate) fn remove_stale(shared: &Shared, name: &[u8], cache: &mut Cache) -> Result<bool> {
    cache.forget(name);
    shared
        .folder
        .remove(name)
        .map_err(|e| Error::io(Op::Remove, shared.path_of(name), e))
}

/// What every bid of one `LockFolder` from one process has in common: its
/// bytes around the publication time, and the tail of its temporary's name.
/// Serializing the identity (and encoding it into the temporary's name) was
/// most of the user-space time of an uncontended cycle.
pub(crate) struct BidTemplate {
    /// The identity it was made for: a fork (another PID) makes it anew.
    me: liveness::Me,
    head: Vec<u8>,
    tail: Vec<u8>,
    temp_tail: String,
}

/// Stands for the publication time while the template is made: as long as
/// any time, and found nowhere else in a bid (no other number is that large).
const MS_MARK: u64 = u64::MAX;

/// The bid's content for owner `owner` (ourselves unless the folder bids for
/// another process of ours), published now.
fn record(shared: &Shared, owner: &liveness::Me, published_ms: u64) -> BidRecord {
    BidRecord {
        pid: owner.pid,
        created: owner.created,
        version: Some(FORMAT_VERSION),
        host: Some(owner.host.clone()),
        owner: Some(owner.owner.clone()),
        unreadable_owner: None,
        group: shared.group,
        published_ms: Some(published_ms),
        mode: (shared.mode != Mode::Exclusive).then_some(shared.mode),
        slots: (shared.slots != 1).then_some(shared.slots),
        label: shared.label.clone(),
        command: shared.command.clone(),
        lease_ms: shared.lease.map(|l| l.as_millis() as u64),
        allowed_fs: match &shared.fs_gate {
            FsGate::OptedIn(name) => Some(name.clone()),
            _ => None,
        },
    }
}

impl BidTemplate {
    /// `None` if the mark is not found exactly once (then every bid is
    /// serialized whole, as before).
    fn new(shared: &Shared, me: &liveness::Me) -> Option<BidTemplate> {
        let bytes = record(shared, me, MS_MARK).to_bytes();
        let mark = MS_MARK.to_string();
        let at = bytes
            .windows(mark.len())
            .position(|w| w == mark.as_bytes())?;
        let rest = &bytes[at + mark.len()..];
        if rest.windows(mark.len()).any(|w| w == mark.as_bytes()) {
            return None;
        }
        Some(BidTemplate {
            me: me.clone(),
            head: bytes[..at].to_vec(),
            tail: rest.to_vec(),
            temp_tail: side_tail(me.pid, &me.key(), false),
        })
    }

    fn content(&self, published_ms: u64) -> Vec<u8> {
        let ms = published_ms.to_string();
        let mut v = Vec::with_capacity(self.head.len() + ms.len() + self.tail.len());
        v.extend_from_slice(&self.head);
        v.extend_from_slice(ms.as_bytes());
        v.extend_from_slice(&self.tail);
        v
    }
}

/// The content and temporary-name tail of a bid published now.
fn content_now(shared: &Shared, me: &liveness::Me) -> Result<(Vec<u8>, String)> {
    let now_ms = now_unix().as_millis() as u64;
    if let Some(pid) = shared.owner {
        let owner =
            liveness::of_pid(pid).map_err(|e| Error::io(Op::Identity, shared.folder.path(), e))?;
        return Ok((
            record(shared, &owner, now_ms).to_bytes(),
            side_tail(me.pid, &me.key(), false),
        ));
    }
    let mut cached = shared
        .bid_template
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if cached.as_ref().is_none_or(|t| t.me != *me) {
        *cached = BidTemplate::new(shared, me);
    }
    Ok(match cached.as_ref() {
        Some(t) => (t.content(now_ms), t.temp_tail.clone()),
        None => (
            record(shared, me, now_ms).to_bytes(),
            side_tail(me.pid, &me.key(), false),
        ),
    })
}

/// Step 20: write the bid under a temporary name, then move it into place
/// without replacing anything, so no reader ever sees it half-written.
pub(crate) fn bid(shared: &Shared, token: &mut Token) -> Result<String> {
    let path = shared.folder.path();
    let me = liveness::current().map_err(|e| Error::io(Op::Identity, path, e))?;
    let (content, temp_tail) = content_now(shared, &me)?;
    // A clash of 62 random bits is not expected; if it happens, draw again.
    // A temporary removed under us (as stale, by a reader that could not
    // see us) is written again.
    let mut attempts = 0;
    loop {
        let temp = side_name(token, &temp_tail);
        let name = token.bid_name();
        shared.folder.write_temp(&temp, &content)?;
        match shared.folder.publish(&temp, &name) {
            Ok(()) => return Ok(name),
            Err(e) => {
                let _ = shared.folder.remove(temp.as_bytes());
                attempts += 1;
                let retry = matches!(
                    e.kind(),
                    std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotFound
                );
                if retry && attempts < 3 {
                    *token = token.renew();
                    continue;
                }
                return Err(e);
            }
        }
    }
}

/// Deletes one of our own entries (bid or marker), forgetting it once gone.
/// A failure is reported with the path, and the name is kept so a later
/// attempt (or `Drop`) can retry.
pub(crate) fn remove_own(shared: &Shared, slot: &mut Option<String>) -> Result<()> {
    if let Some(name) = slot.as_deref() {
        shared
            .folder
            .remove(name.as_bytes())
            .map_err(|source| Error::WithdrawFailed {
                path: shared.path_of(name.as_bytes()),
                source,
            })?;
        *slot = None;
    }
    Ok(())
}

/// Steps 40 and 60: delete our bid by its name. `Ok(false)` if it had vanished.
pub(crate) fn delete_bid(shared: &Shared, name: &str) -> std::io::Result<bool> {
    shared.folder.remove(name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_gives_the_bytes_serde_gives() {
        let dir = tempfile::tempdir().unwrap();
        let lf = crate::LockFolder::builder(dir.path())
            .label("a label with 18446744073709551615 in it")
            .open()
            .unwrap();
        let shared = &lf.shared;
        let me = liveness::current().unwrap();
        // The label holds the mark: no template, whole serialization.
        assert!(BidTemplate::new(shared, &me).is_none());
        let plain = crate::LockFolder::new(dir.path()).unwrap();
        let t = BidTemplate::new(&plain.shared, &me).expect("a template");
        for ms in [0, 7, 1_796_195_906_123, u64::MAX - 1] {
            assert_eq!(t.content(ms), record(&plain.shared, &me, ms).to_bytes());
        }
        let token = Token::new(1);
        assert_eq!(
            side_name(&token, &t.temp_tail),
            SideName {
                token,
                pid: me.pid,
                owner: me.key(),
                queue: false
            }
            .file_name()
        );
    }
}
