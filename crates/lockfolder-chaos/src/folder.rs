//! The one place where the chaos crate opens a lock folder.
//!
//! Every worker, the leftover check and the multi-host storm come through
//! [`open`], so that a filesystem policy of the core has exactly one place
//! to be wired in. The core is about to refuse network and other unsafe
//! filesystems by default, with an opt-in (planned: a builder call such as
//! `lockfolder::Builder::allow_filesystem(...)`, or the `LOCKFOLDER_ALLOW_FS`
//! environment variable). The network-filesystem beds
//! (`scripts/lanes/netfs/`) storm such folders on purpose, to measure what
//! happens there: when that opt-in lands, pass it here, driven by
//! [`ALLOW_FS_ENV`] so that a bed can choose per run between "refuses by
//! name" and "stormed anyway". `lockfolder run` (the CLI storm) reads the
//! same environment variable itself, since it is inherited.

use lockfolder::LockFolder;
use std::path::Path;

/// The environment variable the beds set to opt in to a filesystem the core
/// would refuse. Nothing reads it yet: see the module comment.
pub const ALLOW_FS_ENV: &str = "LOCKFOLDER_ALLOW_FS";

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
    // Wire the filesystem opt-in here (see above).
    b.open()
}
