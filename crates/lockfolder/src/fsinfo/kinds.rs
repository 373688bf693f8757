//! Which file system type names are local, network or FUSE, for the
//! platforms whose kernels report a name and a locality bit (macOS and
//! FreeBSD: `f_fstypename` and `MNT_LOCAL`; Windows: the volume's file
//! system name and the drive type). Pure, so it is tested on every host.
//!
//! A filesystem is `Local` only when the platform itself says so; names
//! alone never make one local.

// Each platform uses its own half.
#![cfg_attr(not(test), allow(dead_code))]

use super::FsKind;

/// Type names of network filesystems on macOS and FreeBSD (`mount -t`).
const BSD_NETWORK: &[&str] = &[
    "nfs", "oldnfs", "smbfs", "afpfs", "webdav", "cifs", "ftp", "p9fs", "9p",
];

/// macOS and FreeBSD: `name` is `f_fstypename`, `local` the mount's
/// `MNT_LOCAL` flag. FUSE mounts come first (macFUSE can be mounted with
/// `-o local`, and anything may be behind it), then the network names (a
/// network filesystem never is local, whatever its flags say), then the
/// kernel's own word.
pub(crate) fn bsd(name: &str, local: bool) -> FsKind {
    let n = name.to_ascii_lowercase();
    if n.starts_with("fuse") || n.starts_with("macfuse") || n.starts_with("osxfuse") {
        return FsKind::Fuse;
    }
    if BSD_NETWORK.contains(&n.as_str()) {
        return FsKind::Network;
    }
    if local {
        FsKind::Local
    } else {
        FsKind::Unknown
    }
}

/// File systems of Windows' own drivers that live on a disk of this machine.
const WINDOWS_LOCAL: &[&str] = &["NTFS", "REFS", "FAT", "FAT32", "EXFAT", "CDFS", "UDF"];

/// Windows: `name` is the volume's file system name
/// (`GetVolumeInformationByHandleW`), `drive_local` whether the drive type
/// is a local one (fixed, removable, RAM disk, optical; `None` when the
/// type is unknown), `remote` whether the system says the folder is remote
/// (a UNC path, a `DRIVE_REMOTE` drive, or remote protocol information for
/// the handle). User-mode file systems (WinFsp, Dokan, which also serve
/// sshfs and cloud drives) count as FUSE.
pub(crate) fn windows(name: &str, drive_local: Option<bool>, remote: bool) -> FsKind {
    let n = name.to_ascii_uppercase();
    if remote || drive_local == Some(false) {
        return FsKind::Network;
    }
    if n.starts_with("FUSE") || n.starts_with("WINFSP") || n.starts_with("DOKAN") {
        return FsKind::Fuse;
    }
    match drive_local {
        Some(true) if WINDOWS_LOCAL.contains(&n.as_str()) => FsKind::Local,
        _ => FsKind::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bsd_names() {
        assert_eq!(bsd("apfs", true), FsKind::Local);
        assert_eq!(bsd("ufs", true), FsKind::Local);
        assert_eq!(bsd("zfs", true), FsKind::Local);
        assert_eq!(bsd("apfs", false), FsKind::Unknown, "no MNT_LOCAL");
        assert_eq!(bsd("nfs", true), FsKind::Network, "never local");
        assert_eq!(bsd("smbfs", false), FsKind::Network);
        assert_eq!(bsd("macfuse", true), FsKind::Fuse);
        assert_eq!(bsd("fusefs.sshfs", false), FsKind::Fuse);
        assert_eq!(bsd("osxfuse", true), FsKind::Fuse);
    }

    #[test]
    fn windows_names() {
        assert_eq!(windows("NTFS", Some(true), false), FsKind::Local);
        assert_eq!(windows("ReFS", Some(true), false), FsKind::Local);
        assert_eq!(windows("FAT32", Some(true), false), FsKind::Local);
        assert_eq!(windows("NTFS", Some(true), true), FsKind::Network);
        assert_eq!(windows("NTFS", Some(false), false), FsKind::Network);
        assert_eq!(windows("NTFS", None, false), FsKind::Unknown);
        assert_eq!(windows("FUSE-sshfs", Some(true), false), FsKind::Fuse);
        assert_eq!(windows("Dokan", Some(true), false), FsKind::Fuse);
        assert_eq!(windows("SomethingElse", Some(true), false), FsKind::Unknown);
    }
}
