//! Linux: the filesystem magic from `fstatfs` on the open folder, then its
//! mount in `/proc/self/mountinfo` for the type name, source and options
//! (every FUSE filesystem has one magic; its subtype, such as
//! `fuse.sshfs`, is only in mountinfo).

use super::{Filesystem, FsKind};
use rustix::fd::AsFd;
use std::path::Path;

/// Magic numbers of `statfs(2)` `f_type` (from the kernel's
/// `include/uapi/linux/magic.h` and the filesystems' own headers).
const TABLE: &[(u64, &str, FsKind)] = &[
    (0xEF53, "ext4", FsKind::Local),
    (0x5846_5342, "xfs", FsKind::Local),
    (0x9123_683E, "btrfs", FsKind::Local),
    (0x0102_1994, "tmpfs", FsKind::Local),
    (0x8584_58f6, "ramfs", FsKind::Local),
    (0xF2F5_2010, "f2fs", FsKind::Local),
    (0x2FC1_2FC1, "zfs", FsKind::Local),
    (0xCA45_1A4E, "bcachefs", FsKind::Local),
    (0x794C_7630, "overlay", FsKind::Local),
    (0x5265_4973, "reiserfs", FsKind::Local),
    (0x3153_464a, "jfs", FsKind::Local),
    (0x3434, "nilfs", FsKind::Local),
    (0x4d44, "vfat", FsKind::Local),
    (0x2011_BAB0, "exfat", FsKind::Local),
    (0x7366_746e, "ntfs3", FsKind::Local),
    (0x482b, "hfsplus", FsKind::Local),
    (0x6969, "nfs", FsKind::Network),
    (0xFE53_4D42, "smb2", FsKind::Network),
    (0xFF53_4D42, "cifs", FsKind::Network),
    (0x517B, "smb", FsKind::Network),
    (0x00C3_6400, "ceph", FsKind::Network),
    (0x5346_414F, "afs", FsKind::Network),
    (0x6B41_4653, "afs", FsKind::Network),
    (0x7375_7245, "coda", FsKind::Network),
    (0x0102_1997, "9p", FsKind::Network),
    (0x0BD0_0BD0, "lustre", FsKind::Network),
    (0x2003_0528, "orangefs", FsKind::Network),
    (0x7461_636f, "ocfs2", FsKind::Cluster),
    (0x0116_1970, "gfs2", FsKind::Cluster),
    (0x4750_4653, "gpfs", FsKind::Cluster),
    (0x6573_5546, "fuse", FsKind::Fuse),
];

pub(crate) fn identify<F: AsFd>(dir: &F, path: &Path) -> Filesystem {
    let Ok(st) = rustix::fs::fstatfs(dir) else {
        return Filesystem::unknown("unknown (fstatfs failed)");
    };
    let magic = st.f_type as u64 & 0xFFFF_FFFF;
    let (name, kind) = TABLE.iter().find(|(m, _, _)| *m == magic).map_or_else(
        || (format!("unknown (magic {magic:#x})"), FsKind::Unknown),
        |(_, n, k)| ((*n).to_owned(), *k),
    );
    let mut fs = Filesystem {
        name,
        kind,
        source: None,
        options: Vec::new(),
    };
    let dev = rustix::fs::fstat(dir).ok().map(|s| {
        (
            rustix::fs::major(s.st_dev as _),
            rustix::fs::minor(s.st_dev as _),
        )
    });
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if let Some(m) = dev.and_then(|dev| find_mount(&mountinfo, dev, &canonical)) {
        // The mount's own type name is more precise (nfs4, fuse.sshfs,
        // ext3 under the ext4 magic); keep the magic's family.
        if kind != FsKind::Unknown || m.fstype.starts_with("fuse") {
            fs.name = m.fstype.clone();
        }
        if kind == FsKind::Unknown && m.fstype.starts_with("fuse") {
            fs.kind = FsKind::Fuse;
        }
        fs.source = Some(m.source);
        fs.options = m.options;
    }
    fs
}

/// One line of mountinfo, the fields we use.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    pub mount_point: String,
    pub fstype: String,
    pub source: String,
    pub options: Vec<String>,
}

/// Mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        if let (b'\\', Some(d)) = (b[i], octal) {
            let v =
                u16::from(d[0] - b'0') * 64 + u16::from(d[1] - b'0') * 8 + u16::from(d[2] - b'0');
            if let Ok(v) = u8::try_from(v) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses one mountinfo line: `id parent maj:min root mountpoint options
/// [optional fields] - fstype source superoptions`.
pub(crate) fn parse_line(line: &str) -> Option<((u32, u32), Mount)> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let _id = l.next()?;
    let _parent = l.next()?;
    let (maj, min) = l.next()?.split_once(':')?;
    let _root = l.next()?;
    let mount_point = unescape(l.next()?);
    let per_mount = l.next()?;
    let mut r = right.split(' ');
    let fstype = r.next()?.to_owned();
    let source = unescape(r.next()?);
    let super_opts = r.next().unwrap_or("");
    let options = per_mount
        .split(',')
        .chain(super_opts.split(','))
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    Some((
        (maj.parse().ok()?, min.parse().ok()?),
        Mount {
            mount_point,
            fstype,
            source,
            options,
        },
    ))
}

/// The mount of device `dev` whose mount point is the longest prefix of
/// `path` (bind mounts give one device several mount points).
pub(crate) fn find_mount(mountinfo: &str, dev: (u32, u32), path: &Path) -> Option<Mount> {
    mountinfo
        .lines()
        .filter_map(parse_line)
        .filter(|(d, m)| *d == dev && path.starts_with(&m.mount_point))
        .map(|(_, m)| m)
        .max_by_key(|m| m.mount_point.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse() {
        let l = r"36 35 0:52 / /mnt/a\040b rw,relatime shared:1 - nfs4 srv:/export rw,vers=4.2,nocto,lookupcache=none";
        let (dev, m) = parse_line(l).unwrap();
        assert_eq!(dev, (0, 52));
        assert_eq!(m.mount_point, "/mnt/a b");
        assert_eq!(m.fstype, "nfs4");
        assert_eq!(m.source, "srv:/export");
        assert!(m.options.iter().any(|o| o == "nocto"));
        assert!(m.options.iter().any(|o| o == "relatime"));
        let info = format!("{l}\n40 35 0:52 /sub /srv rw - nfs4 srv:/export/sub rw\n");
        let m = find_mount(&info, (0, 52), Path::new("/mnt/a b/lock")).unwrap();
        assert_eq!(m.mount_point, "/mnt/a b");
        assert!(find_mount(&info, (0, 53), Path::new("/mnt/a b/lock")).is_none());
        assert!(parse_line("garbage").is_none());
    }

    #[test]
    fn this_machines_temp_dir_is_identified() {
        let dir = tempfile::tempdir().unwrap();
        let fd = std::fs::File::open(dir.path()).unwrap();
        let fs = identify(&fd, dir.path());
        assert!(!fs.name.is_empty());
        assert_ne!(fs.kind, FsKind::Unknown, "{fs:?}");
    }
}
