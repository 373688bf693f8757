//! Our own entries in the folder: writing a bid so that it appears whole
//! (step 20), deleting our bid or marker (steps 40 and 60), removing an
//! entry proven stale.

use crate::bid::{BidRecord, Mode, FORMAT_VERSION};
use crate::error::{Error, Op, Result};
use crate::liveness;
use crate::names::{SideName, Token};
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

/// Step 20: write the bid under a temporary name, then move it into place
/// without replacing anything, so no reader ever sees it half-written.
pub(crate) fn bid(shared: &Shared, token: &mut Token) -> Result<String> {
    let path = shared.folder.path();
    let ident = |e| Error::io(Op::Identity, path, e);
    let me = liveness::current().map_err(ident)?;
    let owner = match shared.owner {
        Some(pid) => liveness::of_pid(pid).map_err(ident)?,
        None => me.clone(),
    };
    let content = BidRecord {
        pid: owner.pid,
        created: owner.created,
        version: Some(FORMAT_VERSION),
        host: Some(owner.host.clone()),
        owner: Some(owner.owner.clone()),
        unreadable_owner: None,
        group: shared.group,
        published_ms: Some(now_unix().as_millis() as u64),
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
    .to_bytes();
    // A clash of 62 random bits is not expected; if it happens, draw again.
    // A temporary removed under us (as stale, by a reader that could not
    // see us) is written again.
    let mut attempts = 0;
    loop {
        let temp = SideName {
            token: *token,
            pid: me.pid,
            owner: me.key(),
            queue: false,
        }
        .file_name();
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
