//! Windows: the volume's file system name (`GetVolumeInformationByHandleW`:
//! NTFS, ReFS, FAT32, exFAT, ...) and whether the folder is remote, by three
//! independent signs, any of which makes it a network folder: the handle's
//! final path is a UNC path (`\\?\UNC\server\share`), its drive is
//! `DRIVE_REMOTE` (a mapped SMB share), or the handle has remote protocol
//! information (`FileRemoteProtocolInfo` answers only for remote files).

#![allow(unsafe_code)]

use super::{kinds, Filesystem};
use std::fs::File;
use std::os::windows::io::AsRawHandle;
use std::path::Path;
use windows_sys::Win32::Storage::FileSystem::{
    FileRemoteProtocolInfo, GetDriveTypeW, GetFileInformationByHandleEx, GetFinalPathNameByHandleW,
    GetVolumeInformationByHandleW, FILE_NAME_NORMALIZED, FILE_REMOTE_PROTOCOL_INFO,
    VOLUME_NAME_DOS,
};
use windows_sys::Win32::System::WindowsProgramming::{
    DRIVE_CDROM, DRIVE_FIXED, DRIVE_RAMDISK, DRIVE_REMOTE, DRIVE_REMOVABLE,
};

fn file_system_name(dir: &File) -> Option<String> {
    let mut name = [0u16; 64];
    // SAFETY: `dir` is an open handle; `name` is writable for its length;
    // the other outputs are not asked for (null, 0).
    let ok = unsafe {
        GetVolumeInformationByHandleW(
            dir.as_raw_handle(),
            std::ptr::null_mut(),
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            name.as_mut_ptr(),
            name.len() as u32,
        )
    };
    if ok == 0 {
        return None;
    }
    let end = name.iter().position(|c| *c == 0).unwrap_or(name.len());
    Some(String::from_utf16_lossy(&name[..end]))
}

fn final_path(dir: &File) -> Option<String> {
    let mut buf = vec![0u16; 32 * 1024];
    // SAFETY: `dir` is an open handle; `buf` is writable for its length.
    let n = unsafe {
        GetFinalPathNameByHandleW(
            dir.as_raw_handle(),
            buf.as_mut_ptr(),
            buf.len() as u32,
            FILE_NAME_NORMALIZED | VOLUME_NAME_DOS,
        )
    } as usize;
    (n > 0 && n < buf.len()).then(|| String::from_utf16_lossy(&buf[..n]))
}

fn has_remote_protocol(dir: &File) -> bool {
    // SAFETY: all-zero bytes are a valid FILE_REMOTE_PROTOCOL_INFO.
    let mut info: FILE_REMOTE_PROTOCOL_INFO = unsafe { std::mem::zeroed() };
    // SAFETY: `dir` is an open handle; `info` is writable for its size.
    let ok = unsafe {
        GetFileInformationByHandleEx(
            dir.as_raw_handle(),
            FileRemoteProtocolInfo,
            (&mut info as *mut FILE_REMOTE_PROTOCOL_INFO).cast(),
            std::mem::size_of::<FILE_REMOTE_PROTOCOL_INFO>() as u32,
        )
    };
    ok != 0
}

/// `Some(true)` for drive types of this machine's own disks,
/// `Some(false)` for `DRIVE_REMOTE`, `None` when unknown.
fn drive_is_local(root: &str) -> Option<bool> {
    let w: Vec<u16> = root.encode_utf16().chain(std::iter::once(0)).collect();
    // SAFETY: `w` is a NUL-terminated wide string.
    match unsafe { GetDriveTypeW(w.as_ptr()) } {
        DRIVE_FIXED | DRIVE_REMOVABLE | DRIVE_RAMDISK | DRIVE_CDROM => Some(true),
        DRIVE_REMOTE => Some(false),
        _ => None,
    }
}

pub(crate) fn identify(dir: &File, path: &Path) -> Filesystem {
    let name = file_system_name(dir).unwrap_or_else(|| "unknown".to_owned());
    let final_path = final_path(dir).unwrap_or_else(|| path.display().to_string());
    let plain = final_path.strip_prefix(r"\\?\").unwrap_or(&final_path);
    let (unc, source) = match plain.strip_prefix(r"UNC\") {
        Some(rest) => {
            let share: Vec<&str> = rest.splitn(3, '\\').take(2).collect();
            (true, Some(format!(r"\\{}", share.join(r"\"))))
        }
        None => (false, plain.get(..3).map(str::to_owned)),
    };
    let drive_local = match (&source, unc) {
        (Some(root), false) if root.ends_with(":\\") => drive_is_local(root),
        (_, true) => Some(false),
        _ => None,
    };
    let remote = unc || has_remote_protocol(dir);
    Filesystem {
        kind: kinds::windows(&name, drive_local, remote),
        name,
        source,
        options: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::windows::fs::OpenOptionsExt;

    #[test]
    fn this_machines_temp_dir_is_identified() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(windows_sys::Win32::Storage::FileSystem::FILE_FLAG_BACKUP_SEMANTICS)
            .open(dir.path())
            .unwrap();
        let fs = identify(&f, dir.path());
        assert!(!fs.name.is_empty());
        assert_eq!(fs.kind, crate::FsKind::Local, "{fs:?}");
        assert!(fs.source.is_some(), "{fs:?}");
    }
}
