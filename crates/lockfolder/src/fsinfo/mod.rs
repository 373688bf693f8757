//! What filesystem the lock folder lives on, because the protocol's safety
//! rests on a property of the filesystem (a listing made after our own
//! publish is fresh) that local filesystems guarantee and network ones may
//! not. Identified once, when the folder is opened.
//!
//! `linux.rs`: the `statfs` magic and mountinfo. `bsd.rs` (macOS and
//! FreeBSD): `fstatfs`'s type name and `MNT_LOCAL`. `windows.rs`: the
//! volume's file system name and whether the volume is remote. `kinds.rs`:
//! which of those names are local, network or FUSE (pure, tested
//! everywhere). `other.rs`: unknown, never local.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::identify;

#[cfg(any(target_os = "macos", target_os = "freebsd"))]
mod bsd;
#[cfg(any(target_os = "macos", target_os = "freebsd"))]
pub(crate) use bsd::identify;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::identify;

#[cfg(any(test, target_os = "macos", target_os = "freebsd", windows))]
mod kinds;

#[cfg(not(any(
    target_os = "linux",
    target_os = "macos",
    target_os = "freebsd",
    windows
)))]
mod other;
#[cfg(not(any(
    target_os = "linux",
    target_os = "macos",
    target_os = "freebsd",
    windows
)))]
pub(crate) use other::identify;

/// The broad family of a filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FsKind {
    /// A filesystem of this kernel alone (a local disk, tmpfs).
    Local,
    /// A network filesystem (NFS, SMB/CIFS, Ceph, AFS, 9P, ...).
    Network,
    /// A cluster filesystem on shared block storage (OCFS2, GFS2, GPFS).
    Cluster,
    /// A FUSE filesystem (sshfs, GlusterFS, rclone, ...): anything may be
    /// behind it.
    Fuse,
    /// Not known to this build.
    Unknown,
}

impl FsKind {
    /// `local`, `network`, `cluster`, `fuse`, `unknown`.
    pub fn as_str(&self) -> &'static str {
        match self {
            FsKind::Local => "local",
            FsKind::Network => "network",
            FsKind::Cluster => "cluster",
            FsKind::Fuse => "fuse",
            FsKind::Unknown => "unknown",
        }
    }
}

/// The filesystem a lock folder lives on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Filesystem {
    /// Its type as the system names it: `ext4`, `tmpfs`, `nfs4`,
    /// `fuse.sshfs`, `cifs`, ...
    pub name: String,
    /// Its family.
    pub kind: FsKind,
    /// Where it comes from (`server:/export`, a device), if known.
    pub source: Option<String>,
    /// Its mount options (per mount and per superblock), if known.
    pub options: Vec<String>,
}

impl Filesystem {
    #[cfg_attr(windows, allow(dead_code))]
    pub(crate) fn unknown(name: &str) -> Filesystem {
        Filesystem {
            name: name.to_owned(),
            kind: FsKind::Unknown,
            source: None,
            options: Vec::new(),
        }
    }

    /// A FUSE filesystem of this name (the tests' stand-in for one
    /// lockfolder has no evidence for).
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    pub(crate) fn pretend_fuse(name: &str) -> Filesystem {
        Filesystem {
            name: name.to_owned(),
            kind: FsKind::Fuse,
            source: Some("LOCKFOLDER_FAULT".to_owned()),
            options: Vec::new(),
        }
    }

    /// Whether only this kernel writes to it: entries of another boot found
    /// there cannot come from a machine running now.
    pub(crate) fn single_kernel(&self) -> bool {
        self.kind == FsKind::Local
    }

    /// Whether a mount option is set (`nocto`, `lookupcache=none`, ...).
    pub fn has_option(&self, opt: &str) -> bool {
        self.options.iter().any(|o| o == opt)
    }
}

impl std::fmt::Display for Filesystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.name, self.kind.as_str())?;
        if let Some(s) = &self.source {
            write!(f, " from {s}")?;
        }
        Ok(())
    }
}

pub(crate) type FsInfo = Filesystem;
