//! The one place where the chaos crate opens a lock folder.
//!
//! Every worker, the leftover check and the multi-host storm come through
//! [`open`]. The core refuses filesystems it has no evidence for unless
//! opted in by name; it reads the opt-in from [`ALLOW_FS_ENV`] itself, so a
//! bed chooses per run between "refused by name" and "stormed anyway" by
//! setting that variable (inherited by every worker, and by `lockfolder
//! run` in the CLI storm). [`LEASE_ENV`] makes every worker hold its bids
//! under a lease, for storms between "hosts" that cannot judge each other.

use lockfolder::LockFolder;
use std::path::Path;

/// The environment variable the beds set to opt in to a filesystem the core
/// would refuse (read by the core).
pub const ALLOW_FS_ENV: &str = lockfolder::ALLOW_FS_ENV;

/// Milliseconds of lease for every worker's bids (unset: no lease).
pub const LEASE_ENV: &str = "LOCKFOLDER_STORM_LEASE_MS";

/// Opens an existing lock folder (it is never created here: a lock folder
/// made through one mount must be the one every other mount sees).
///
/// # Errors
///
/// Whatever the core's `open` says, naming the path.
pub fn open(path: &Path, label: Option<&str>) -> Result<LockFolder, lockfolder::Error> {
    let mut b = LockFolder::builder(path).create(false);
    if let Some(label) = label {
        b = b.label(label);
    }
    if let Some(ms) = std::env::var(LEASE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        b = b.lease(std::time::Duration::from_millis(ms));
    }
    b.open()
}
