//! macOS and FreeBSD: `fstatfs` on the open folder gives the file system's
//! type name (`f_fstypename`: apfs, ufs, zfs, nfs, smbfs, macfuse, ...),
//! where it is mounted from, and the mount's flags, whose `MNT_LOCAL` says
//! whether the kernel counts it as local. No `unsafe` here: rustix wraps
//! the call and returns libc's `statfs`.

use super::{kinds, Filesystem};
use rustix::fd::AsFd;
use std::path::Path;

fn c_chars(chars: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub(crate) fn identify<F: AsFd>(dir: &F, _path: &Path) -> Filesystem {
    let Ok(st) = rustix::fs::fstatfs(dir) else {
        return Filesystem::unknown("unknown (fstatfs failed)");
    };
    let name = c_chars(&st.f_fstypename);
    // `f_flags` is 32 bits on macOS and 64 on FreeBSD; MNT_LOCAL is 0x1000
    // on both.
    #[allow(clippy::unnecessary_cast)]
    let local = (st.f_flags as u64) & (libc::MNT_LOCAL as u64) != 0;
    Filesystem {
        kind: kinds::bsd(&name, local),
        name,
        source: Some(c_chars(&st.f_mntfromname)).filter(|s| !s.is_empty()),
        // The one mount flag that matters here.
        options: if local {
            vec!["local".to_owned()]
        } else {
            Vec::new()
        },
    }
}
