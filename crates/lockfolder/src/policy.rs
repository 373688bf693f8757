//! Where the lock may be used: which filesystems give the one property the
//! protocol rests on (a listing that begins after our own publish shows
//! every entry published before it), on what evidence, and which are
//! refused unless the user opts in by name. `docs/safety.md` has the table
//! and the evidence behind each row.

use crate::fsinfo::{Filesystem, FsKind};

/// Environment variable naming filesystems the user accepts although
/// lockfolder has no evidence for them: a comma-separated list of names as
/// [`Filesystem::name`] gives them (`cifs,fuse.rclone`), or `*` for any.
pub const ALLOW_FS_ENV: &str = "LOCKFOLDER_ALLOW_FS";

/// The policy's answer for a lock folder's filesystem, for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct FsPolicy {
    /// Whether bidding there is allowed.
    pub accepted: bool,
    /// Accepted only because the user opted in by name.
    pub opted_in: bool,
    /// Why (the evidence, or why it is not shown safe).
    pub reason: &'static str,
}

/// What the policy says about a filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Safe, and why.
    Accepted(&'static str),
    /// Not shown safe: refused unless opted in, and why.
    Refused(&'static str),
}

/// The policy for one filesystem (before any opt-in).
pub(crate) fn judge(fs: &Filesystem) -> Verdict {
    let name = fs.name.as_str();
    match fs.kind {
        FsKind::Local => {
            Verdict::Accepted("a local filesystem: one kernel's directory, fresh to every listing")
        }
        FsKind::Network if name.starts_with("nfs") => {
            if fs.has_option("nocto") {
                Verdict::Refused(
                    "NFS mounted with nocto: opens no longer revalidate, and listings were \
                     seen stale for 30 s; not shown safe",
                )
            } else {
                Verdict::Accepted(
                    "NFS with close-to-open consistency: a client that has just changed the \
                     folder lists it fresh (0 misses in 400 trials, 0 overlaps in storms)",
                )
            }
        }
        FsKind::Fuse => match name {
            "fuse.glusterfs" => Verdict::Accepted(
                "GlusterFS: a client that has just changed the folder lists it fresh \
                 (0 misses in 64 trials, 0 overlaps in 1,843 acquisitions)",
            ),
            "fuse.sshfs" => Verdict::Accepted(
                "sshfs: it drops its directory cache on its own changes \
                 (0 misses in 116 trials, 0 overlaps in 3,143 acquisitions)",
            ),
            "fuse.rclone" => Verdict::Refused(
                "rclone: its directory cache hides new entries for minutes, even after \
                 its own changes",
            ),
            _ => Verdict::Refused("a FUSE filesystem lockfolder has no evidence for"),
        },
        FsKind::Network => Verdict::Refused(
            "a network filesystem lockfolder has no evidence for (its client may cache \
             listings)",
        ),
        FsKind::Cluster => Verdict::Refused("a cluster filesystem lockfolder has no evidence for"),
        FsKind::Unknown => Verdict::Refused("a filesystem this build cannot identify"),
    }
}

/// The policy with the opt-ins applied.
pub(crate) fn decide(fs: &Filesystem, builder: &[String]) -> FsPolicy {
    match judge(fs) {
        Verdict::Accepted(reason) => FsPolicy {
            accepted: true,
            opted_in: false,
            reason,
        },
        Verdict::Refused(reason) => {
            let opted_in = opted_in(fs, builder);
            FsPolicy {
                accepted: opted_in,
                opted_in,
                reason,
            }
        }
    }
}

/// Whether the user opted in to `fs`, through the builder or the
/// environment.
pub(crate) fn opted_in(fs: &Filesystem, builder: &[String]) -> bool {
    let env = std::env::var(ALLOW_FS_ENV).unwrap_or_default();
    builder
        .iter()
        .map(String::as_str)
        .chain(env.split(',').map(str::trim))
        .any(|n| n == "*" || (!n.is_empty() && n == fs.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs(name: &str, kind: FsKind, options: &[&str]) -> Filesystem {
        let mut f = Filesystem::unknown(name);
        f.kind = kind;
        f.options = options.iter().map(|o| (*o).to_owned()).collect();
        f
    }

    #[test]
    fn table() {
        let ok = |f: &Filesystem| matches!(judge(f), Verdict::Accepted(_));
        assert!(ok(&fs("ext4", FsKind::Local, &[])));
        assert!(ok(&fs("nfs4", FsKind::Network, &["rw", "vers=4.2"])));
        assert!(!ok(&fs("nfs", FsKind::Network, &["rw", "nocto"])));
        assert!(ok(&fs("fuse.sshfs", FsKind::Fuse, &[])));
        assert!(ok(&fs("fuse.glusterfs", FsKind::Fuse, &[])));
        assert!(!ok(&fs("fuse.rclone", FsKind::Fuse, &[])));
        assert!(!ok(&fs("fuse.mystery", FsKind::Fuse, &[])));
        assert!(!ok(&fs("cifs", FsKind::Network, &[])));
        assert!(!ok(&fs("gfs2", FsKind::Cluster, &[])));
        assert!(!ok(&fs("unknown (magic 0x1)", FsKind::Unknown, &[])));
    }

    #[test]
    fn opt_in_by_name() {
        let f = fs("cifs", FsKind::Network, &[]);
        assert!(opted_in(&f, &["cifs".to_owned()]));
        assert!(opted_in(&f, &["*".to_owned()]));
        assert!(!opted_in(&f, &["fuse.rclone".to_owned(), String::new()]));
    }
}
