//! The folder on Windows, with the guarantees `unix.rs` gives:
//!
//! * **The folder stays the folder.** It is held open without
//!   `FILE_SHARE_DELETE`, so while a `LockFolder` is open nobody can rename
//!   or delete it (or a folder above it), and every operation by path names
//!   the same directory. Its identity (volume serial and file id) is checked
//!   anyway before each listing that decides, as on Unix.
//! * **Listings are fresh.** Each one enumerates a new handle on the folder
//!   (`ReOpenFile` of the one we hold), as `unix.rs` opens `.` anew: a
//!   handle that has been enumerated may answer from what it read then, even
//!   when asked to restart (wine does). Before each listing that decides,
//!   the path is checked to still name our folder.
//! * **Publishing never replaces.** `std::fs::rename` passes
//!   `MOVEFILE_REPLACE_EXISTING` and would overwrite a bid; `MoveFileExW`
//!   without flags fails with `ERROR_ALREADY_EXISTS` instead.
//! * **Reading never trusts.** A bid is opened with full sharing (so a
//!   reader never stops a writer from renaming or deleting it), without
//!   following reparse points (`FILE_FLAG_OPEN_REPARSE_POINT`); directories
//!   and reparse points are not bids, and the size is capped.
//! * **Transient refusals are retried, briefly.** Antivirus scanners and
//!   indexers open new files without sharing, and a file deleted while
//!   someone has it open is "delete pending" (it keeps its name, every open
//!   is refused with access denied, and the name cannot be created again)
//!   until the last handle closes. Sharing and access errors are retried for
//!   about 30 ms; a bid still unreadable then is reported as such (it blocks
//!   like a live bid, never stale). Removal is retried every few ms for up
//!   to 5 s: Python (so lockfolder 1.0.2) opens files without
//!   `FILE_SHARE_DELETE`, and while it reads a bid nobody can delete it. See `docs/safety.md` on why a
//!   delete-pending bid cannot wedge the lock for long.
//! * **Removal is immediate where the file system allows**: POSIX delete
//!   semantics (`FILE_DISPOSITION_FLAG_POSIX_SEMANTICS`, NTFS on Windows 10
//!   1709 and later) take the name away at once even while others have the
//!   file open; elsewhere the classic delete-on-close applies.
//!
//! Names: bids and side files are ASCII, so the byte names of the rest of
//! the crate are their UTF-8, which maps 1:1 onto UTF-16. A listed name
//! that is not valid UTF-16 is passed on as WTF-8 bytes, which are not
//! UTF-8 and so never parse as a bid (it blocks as "not named like a bid").

#![allow(unsafe_code)]

use super::{Content, EntryType, RawEntry};
use crate::error::{Error, Op, Result};
use crate::fault;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::mem::{offset_of, size_of};
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle};
use std::path::{Path, PathBuf};
use std::time::Duration;
use windows_sys::Win32::Foundation::{
    ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS, ERROR_FILE_EXISTS, ERROR_INVALID_FUNCTION,
    ERROR_INVALID_PARAMETER, ERROR_LOCK_VIOLATION, ERROR_NOT_SUPPORTED, ERROR_NO_MORE_FILES,
    ERROR_SHARING_VIOLATION, GENERIC_READ, INVALID_HANDLE_VALUE,
};
use windows_sys::Win32::Storage::FileSystem::{
    FileBasicInfo, FileDispositionInfo, FileDispositionInfoEx, FileIdBothDirectoryInfo,
    FileIdBothDirectoryRestartInfo, FileIdInfo, FileStandardInfo, GetFileAttributesW,
    GetFileInformationByHandle, GetFileInformationByHandleEx, MoveFileExW, ReOpenFile,
    SetFileInformationByHandle, BY_HANDLE_FILE_INFORMATION, DELETE, FILE_ATTRIBUTE_DEVICE,
    FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_REPARSE_POINT, FILE_BASIC_INFO,
    FILE_DISPOSITION_FLAG_DELETE, FILE_DISPOSITION_FLAG_IGNORE_READONLY_ATTRIBUTE,
    FILE_DISPOSITION_FLAG_POSIX_SEMANTICS, FILE_DISPOSITION_INFO, FILE_DISPOSITION_INFO_EX,
    FILE_FLAG_BACKUP_SEMANTICS, FILE_FLAG_OPEN_REPARSE_POINT, FILE_ID_BOTH_DIR_INFO, FILE_ID_INFO,
    FILE_READ_ATTRIBUTES, FILE_SHARE_DELETE, FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_STANDARD_INFO,
    FILE_WRITE_ATTRIBUTES, INVALID_FILE_ATTRIBUTES,
};

/// Sharing that never gets in another process's way.
const SHARE_ALL: u32 = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;

/// Pauses between attempts at an operation refused for a reason that
/// passes (sharing violation, access denied while a scanner or a
/// delete-pending handle has the file): about 30 ms in all.
const RETRY_PAUSES_MS: [u64; 5] = [1, 2, 4, 8, 16];

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(|c| c as u32),
        Some(ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION | ERROR_ACCESS_DENIED)
    )
}

/// Removal waits longer, and tries often: a contender must be able to
/// delete its own bid (withdraw, release) and a stale one, and the usual
/// reason it cannot is a reader that opened the file without
/// `FILE_SHARE_DELETE`: Python's `open()` (the C runtime's `_SH_DENYNO`),
/// hence every lockfolder 1.0.2 process reading the bid, or a scanner. No
/// single read lasts long, but a few 1.0.2 processes polling the folder keep
/// a bid open most of the time: under wine, three of them let a delete
/// through only after 15 ms (median) and up to 1.1 s of retrying every
/// millisecond, and the mixed run saw `release` fail after 30 ms, then after
/// 15 growing pauses (2 s), leaving the bid in place while its owner lived.
/// So: every 1-8 ms, for up to 5 s. Waiting is safe; the bid only keeps
/// others out a little longer.
const REMOVE_RETRY_FOR: Duration = Duration::from_secs(5);
const REMOVE_RETRY_PAUSE_MAX_MS: u64 = 8;

/// Runs `op`, retrying briefly while it fails transiently.
fn retrying<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut pauses = RETRY_PAUSES_MS.iter();
    loop {
        match op() {
            Err(e) if is_transient(&e) => match pauses.next() {
                Some(ms) => std::thread::sleep(Duration::from_millis(*ms)),
                None => return Err(e),
            },
            r => return r,
        }
    }
}

/// Runs `op`, retrying every few milliseconds while it fails transiently,
/// until `budget` has passed.
fn retrying_for<T>(budget: Duration, mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let start = std::time::Instant::now();
    let mut pause = 1;
    loop {
        match op() {
            Err(e) if is_transient(&e) && start.elapsed() < budget => {
                std::thread::sleep(Duration::from_millis(pause));
                pause = (pause * 2).min(REMOVE_RETRY_PAUSE_MAX_MS);
            }
            r => return r,
        }
    }
}

/// The identity of an open file: volume serial number and file id (128
/// bits where the file system has them, as ReFS does).
type FileId = (u64, u128);

fn file_id(f: &File) -> io::Result<FileId> {
    let mut info = FILE_ID_INFO::default();
    // SAFETY: `f` is an open handle; `info` is writable for its size.
    let ok = unsafe {
        GetFileInformationByHandleEx(
            f.as_raw_handle(),
            FileIdInfo,
            (&mut info as *mut FILE_ID_INFO).cast(),
            size_of::<FILE_ID_INFO>() as u32,
        )
    };
    if ok != 0 {
        return Ok((
            info.VolumeSerialNumber,
            u128::from_le_bytes(info.FileId.Identifier),
        ));
    }
    // Before Windows 8, and where the file system does not answer: the
    // 32-bit volume serial and 64-bit file index.
    // SAFETY: all-zero bytes are a valid BY_HANDLE_FILE_INFORMATION.
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: `f` is an open handle; `info` is writable.
    if unsafe { GetFileInformationByHandle(f.as_raw_handle(), &mut info) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((
        u64::from(info.dwVolumeSerialNumber),
        (u128::from(info.nFileIndexHigh) << 32) | u128::from(info.nFileIndexLow),
    ))
}

/// The attributes and size of an open file, from the handle (the cheap
/// queries: `GetFileInformationByHandle`, which std's `metadata` uses, also
/// looks up the volume).
fn attributes_and_size(f: &File) -> io::Result<(u32, u64)> {
    let mut basic = FILE_BASIC_INFO::default();
    // SAFETY: `f` is an open handle; `basic` is writable for its size.
    let ok = unsafe {
        GetFileInformationByHandleEx(
            f.as_raw_handle(),
            FileBasicInfo,
            (&mut basic as *mut FILE_BASIC_INFO).cast(),
            size_of::<FILE_BASIC_INFO>() as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    let mut standard = FILE_STANDARD_INFO::default();
    // SAFETY: as above, with a FILE_STANDARD_INFO.
    let ok = unsafe {
        GetFileInformationByHandleEx(
            f.as_raw_handle(),
            FileStandardInfo,
            (&mut standard as *mut FILE_STANDARD_INFO).cast(),
            size_of::<FILE_STANDARD_INFO>() as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((basic.FileAttributes, standard.EndOfFile.max(0) as u64))
}

/// The attributes of the entry at `path` itself (a reparse point is not
/// followed).
fn attributes_at(path: &Path) -> io::Result<u32> {
    let w = verbatim_wide(path);
    // SAFETY: `w` is a NUL-terminated wide path.
    let a = unsafe { GetFileAttributesW(w.as_ptr()) };
    if a == INVALID_FILE_ATTRIBUTES {
        return Err(io::Error::last_os_error());
    }
    Ok(a)
}

/// A FILETIME (100 ns since 1601) as a `SystemTime`.
fn filetime_to_system(ft: i64) -> std::time::SystemTime {
    /// 1601-01-01 to 1970-01-01, in 100 ns.
    const EPOCH: i64 = 116_444_736_000_000_000;
    let since = ft.saturating_sub(EPOCH);
    let d = Duration::from_nanos(since.unsigned_abs().saturating_mul(100));
    if since >= 0 {
        std::time::UNIX_EPOCH + d
    } else {
        std::time::UNIX_EPOCH - d
    }
}

fn kind_of(attributes: u32) -> EntryType {
    if attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
        // Symbolic links, junctions, and every other reparse point.
        EntryType::Symlink
    } else if attributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
        EntryType::Dir
    } else if attributes & FILE_ATTRIBUTE_DEVICE != 0 {
        EntryType::Device
    } else {
        EntryType::File
    }
}

/// `path` as a NUL-terminated wide string in its `\\?\` form, so that
/// paths longer than `MAX_PATH` work with the calls std does not make for
/// us. `path` must be absolute.
pub(crate) fn verbatim_wide(path: &Path) -> Vec<u16> {
    let w: Vec<u16> = path.as_os_str().encode_wide().collect();
    let bs = u16::from(b'\\');
    let q = u16::from(b'?');
    let mut out: Vec<u16> = Vec::with_capacity(w.len() + 8);
    if w.starts_with(&[bs, bs, q, bs]) || w.starts_with(&[bs, bs, u16::from(b'.'), bs]) {
        out.extend_from_slice(&w);
    } else if w.starts_with(&[bs, bs]) {
        out.extend("\\\\?\\UNC\\".encode_utf16());
        out.extend_from_slice(&w[2..]);
    } else {
        out.extend("\\\\?\\".encode_utf16());
        out.extend_from_slice(&w);
    }
    out.push(0);
    out
}

/// Opens a directory for listing (and reading its identity).
fn open_dir(path: &Path, share: u32) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .share_mode(share)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)
}

/// A new handle on the directory behind `dir`, for listing.
fn reopen_dir(dir: &File) -> io::Result<File> {
    // SAFETY: `dir` is an open directory handle; the flags ask for a new
    // handle to the same directory, with list access and full sharing.
    let h = unsafe {
        ReOpenFile(
            dir.as_raw_handle(),
            GENERIC_READ,
            SHARE_ALL,
            FILE_FLAG_BACKUP_SEMANTICS,
        )
    };
    if h == INVALID_HANDLE_VALUE || h.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `h` is a new handle that nothing else owns.
    Ok(unsafe { File::from_raw_handle(h) })
}

/// The lock folder, held open (see the module docs).
pub(crate) struct Folder {
    dir: File,
    /// The path as given, for messages.
    path: PathBuf,
    /// The absolute path, for every operation by path.
    abs: PathBuf,
    id: FileId,
    fs: crate::fsinfo::FsInfo,
}

/// The nearest existing ancestor of `path` is a file: a folder cannot be
/// made or opened there.
fn below_a_file(path: &Path) -> bool {
    path.ancestors()
        .skip(1)
        .find_map(|a| std::fs::metadata(a).ok())
        .is_some_and(|m| !m.is_dir())
}

impl Folder {
    /// Opens (and with `create`, first creates) the lock folder.
    pub fn open(path: &Path, create: bool) -> Result<Folder> {
        let not_a_dir = || Error::NotADirectory {
            path: path.to_path_buf(),
        };
        let abs = std::path::absolute(path).map_err(|e| Error::io(Op::OpenFolder, path, e))?;
        if create {
            let made = fault::check(Op::CreateFolder, path.as_os_str().as_encoded_bytes())
                .and_then(|()| std::fs::create_dir_all(&abs));
            if let Err(e) = made {
                return Err(match e.kind() {
                    io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory => not_a_dir(),
                    _ if below_a_file(&abs) => not_a_dir(),
                    _ => Error::io(Op::CreateFolder, path, e),
                });
            }
        }
        // Shared for reading and writing, not for deletion: the folder (and
        // every folder above it) cannot be renamed or removed while held.
        let dir = retrying(|| open_dir(&abs, FILE_SHARE_READ | FILE_SHARE_WRITE)).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound && below_a_file(&abs) {
                not_a_dir()
            } else {
                Error::io(Op::OpenFolder, path, e)
            }
        })?;
        let (attributes, _) =
            attributes_and_size(&dir).map_err(|e| Error::io(Op::OpenFolder, path, e))?;
        if attributes & FILE_ATTRIBUTE_DIRECTORY == 0 {
            return Err(not_a_dir());
        }
        let id = file_id(&dir).map_err(|e| Error::io(Op::OpenFolder, path, e))?;
        let fs = match fault::fs_override() {
            Some(name) => crate::fsinfo::Filesystem::pretend_fuse(&name),
            None => crate::fsinfo::identify(&dir, &abs),
        };
        Ok(Folder {
            dir,
            path: path.to_path_buf(),
            abs,
            id,
            fs,
        })
    }

    /// The filesystem the folder lives on.
    pub fn filesystem(&self) -> &crate::fsinfo::FsInfo {
        &self.fs
    }

    /// The absolute path, for change notification.
    pub fn abs_path(&self) -> &Path {
        &self.abs
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn child(&self, name: &[u8]) -> PathBuf {
        self.path.join(String::from_utf8_lossy(name).as_ref())
    }

    /// The path of an entry for an operation. Names that are not UTF-8
    /// (listed names that were not valid UTF-16) cannot be operated on.
    fn entry(&self, name: &[u8]) -> io::Result<PathBuf> {
        let name = std::str::from_utf8(name).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "entry name is not valid Unicode",
            )
        })?;
        if name.is_empty() || name.contains(['\\', '/', ':']) || name == "." || name == ".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a name of an entry of the folder",
            ));
        }
        Ok(self.abs.join(name))
    }

    /// Lists the folder through a handle opened for this listing
    /// (`ReOpenFile` of the one we hold, so it is the same directory and its
    /// enumeration starts fresh: a handle enumerated before may answer from
    /// what it read then). With `verify` (the listings that decide), first
    /// make sure the path still names this folder.
    pub fn list(&self, verify: bool) -> Result<Vec<RawEntry>> {
        let err = |e: io::Error| Error::io(Op::ReadFolder, &self.path, e);
        fault::check(Op::ReadFolder, b"").map_err(err)?;
        if verify {
            self.check_still_at_path()?;
        }
        let fresh = match reopen_dir(&self.dir) {
            Ok(d) => d,
            // Where the file system cannot reopen a handle: by path, if it
            // still names our folder.
            Err(_) => {
                let d = retrying(|| open_dir(&self.abs, SHARE_ALL)).map_err(err)?;
                if file_id(&d).ok() != Some(self.id) {
                    return Err(self.replaced());
                }
                d
            }
        };
        enumerate(&fresh).map_err(err)
    }

    fn replaced(&self) -> Error {
        Error::io(
            Op::OpenFolder,
            &self.path,
            io::Error::new(
                io::ErrorKind::NotFound,
                "the lock folder was removed or replaced since it was opened; open it again",
            ),
        )
    }

    /// Refuses to go on if the path no longer names the directory we hold
    /// (it, or a folder above it, was moved where Windows lets that happen):
    /// others using the path would use another folder.
    fn check_still_at_path(&self) -> Result<()> {
        match retrying(|| open_dir(&self.abs, SHARE_ALL)) {
            Ok(d) if file_id(&d).ok() == Some(self.id) => Ok(()),
            _ => Err(self.replaced()),
        }
    }

    /// The type of an entry, without following reparse points.
    pub fn lstat_type(&self, name: &[u8]) -> io::Result<EntryType> {
        fault::check(Op::ReadEntry, name)?;
        let path = self.entry(name)?;
        Ok(kind_of(retrying(|| attributes_at(&path))?))
    }

    /// Reads an entry that claims to be a bid, refusing anything that is not
    /// a small regular file (see the module docs).
    pub fn read_entry(&self, name: &[u8]) -> Content {
        use crate::bid::MAX_BID_BYTES;
        if let Err(e) = fault::check(Op::ReadEntry, name) {
            return Content::Unreadable(e);
        }
        let path = match self.entry(name) {
            Ok(p) => p,
            Err(e) => return Content::Unreadable(e),
        };
        let opened = retrying(|| {
            OpenOptions::new()
                .read(true)
                .share_mode(SHARE_ALL)
                .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS)
                .open(&path)
        });
        let file = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Content::Vanished,
            Err(e) => return Content::Unreadable(e),
        };
        let (attributes, size) = match attributes_and_size(&file) {
            Ok(a) => a,
            Err(e) => return Content::Unreadable(e),
        };
        let kind = kind_of(attributes);
        if kind != EntryType::File {
            return Content::NotRegular(kind);
        }
        if size > MAX_BID_BYTES {
            return Content::TooLarge(size);
        }
        let cap = MAX_BID_BYTES + 1;
        let mut buf = Vec::with_capacity(4096);
        match (&file).take(cap).read_to_end(&mut buf) {
            Ok(_) if buf.len() as u64 >= cap => Content::TooLarge(buf.len() as u64),
            Ok(_) => Content::Bytes(buf),
            Err(e) => Content::Unreadable(e),
        }
    }

    /// Creates `name` exclusively and writes `bytes` into it. On failure the
    /// file is removed again, so no half-written temporary is left behind.
    pub fn write_temp(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = || self.child(name.as_bytes());
        fault::check(Op::CreateTemp, name.as_bytes())
            .map_err(|e| Error::io(Op::CreateTemp, path(), e))?;
        let target = self
            .entry(name.as_bytes())
            .map_err(|e| Error::io(Op::CreateTemp, path(), e))?;
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .share_mode(FILE_SHARE_READ | FILE_SHARE_DELETE)
            .open(&target)
            .map_err(|e| Error::io(Op::CreateTemp, path(), e))?;
        let written =
            fault::check(Op::WriteTemp, name.as_bytes()).and_then(|()| file.write_all(bytes));
        drop(file);
        if let Err(e) = written {
            // Best effort: if even this fails, the file carries our identity
            // in its name and is removed as stale once we have exited.
            let _ = self.remove(name.as_bytes());
            return Err(Error::io(Op::WriteTemp, path(), e));
        }
        Ok(())
    }

    /// Moves a finished temporary into place as a bid with `MoveFileExW`
    /// and no flags, which refuses to replace an existing entry
    /// (`ERROR_ALREADY_EXISTS`, or `ERROR_FILE_EXISTS` for a name still
    /// held by a delete-pending file): `AlreadyExists` is returned so the
    /// caller can pick a new name.
    pub fn publish(&self, temp: &str, bid: &str) -> Result<()> {
        let err = |e: io::Error| Error::io(Op::Publish, self.child(bid.as_bytes()), e);
        fault::check(Op::Publish, bid.as_bytes()).map_err(err)?;
        let from = verbatim_wide(&self.entry(temp.as_bytes()).map_err(err)?);
        let to = verbatim_wide(&self.entry(bid.as_bytes()).map_err(err)?);
        retrying(|| {
            // SAFETY: both are NUL-terminated wide paths; no flags: never
            // replace, never copy across volumes.
            if unsafe { MoveFileExW(from.as_ptr(), to.as_ptr(), 0) } != 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            Err(match e.raw_os_error().map(|c| c as u32) {
                Some(ERROR_ALREADY_EXISTS | ERROR_FILE_EXISTS) => {
                    io::Error::new(io::ErrorKind::AlreadyExists, e)
                }
                _ => e,
            })
        })
        .map_err(err)
    }

    /// Removes an entry by its exact name (never what a reparse point points
    /// to). `Ok(false)` if it was already gone.
    pub fn remove(&self, name: &[u8]) -> io::Result<bool> {
        fault::check(Op::Remove, name)?;
        let path = self.entry(name)?;
        // The open and the delete are retried together: either can meet a
        // handle that does not share delete.
        retrying_for(REMOVE_RETRY_FOR, || {
            let opened = OpenOptions::new()
                .access_mode(DELETE | FILE_READ_ATTRIBUTES)
                .share_mode(SHARE_ALL)
                .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS)
                .open(&path);
            let file = match opened {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            };
            let (attributes, _) = attributes_and_size(&file)?;
            if attributes & FILE_ATTRIBUTE_DIRECTORY != 0
                && attributes & FILE_ATTRIBUTE_REPARSE_POINT == 0
            {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "a directory is never removed",
                ));
            }
            delete_on_handle(&file)?;
            Ok(true)
        })
    }

    /// Sets an entry's access and modification times to now. Windows has
    /// no "the file system's own now" (`UTIME_NOW`): the time is this
    /// machine's clock, which on a local folder is the file system's.
    pub fn touch(&self, name: &[u8]) -> io::Result<()> {
        fault::check(Op::Renew, name)?;
        let path = self.entry(name)?;
        let file = retrying(|| {
            OpenOptions::new()
                .access_mode(FILE_WRITE_ATTRIBUTES | FILE_READ_ATTRIBUTES)
                .share_mode(SHARE_ALL)
                .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS)
                .open(&path)
        })?;
        let now = std::time::SystemTime::now();
        file.set_times(
            std::fs::FileTimes::new()
                .set_accessed(now)
                .set_modified(now),
        )
    }

    /// An entry's modification time, read through a handle opened for it
    /// (so a network redirector asks the server rather than its cache).
    pub fn fresh_mtime(&self, name: &[u8]) -> io::Result<std::time::SystemTime> {
        fault::check(Op::ReadEntry, name)?;
        let path = self.entry(name)?;
        let file = retrying(|| {
            OpenOptions::new()
                .access_mode(FILE_READ_ATTRIBUTES)
                .share_mode(SHARE_ALL)
                .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS)
                .open(&path)
        })?;
        let mut basic = FILE_BASIC_INFO::default();
        // SAFETY: `file` is an open handle; `basic` is writable for its size.
        let ok = unsafe {
            GetFileInformationByHandleEx(
                file.as_raw_handle(),
                FileBasicInfo,
                (&mut basic as *mut FILE_BASIC_INFO).cast(),
                size_of::<FILE_BASIC_INFO>() as u32,
            )
        };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(filetime_to_system(basic.LastWriteTime))
    }

    /// Whether an entry exists (not following reparse points).
    pub fn exists(&self, name: &str) -> io::Result<bool> {
        fault::check(Op::ReadEntry, name.as_bytes())?;
        let path = self.entry(name.as_bytes())?;
        match retrying(|| attributes_at(&path)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Marks the open file for deletion: POSIX semantics (the name goes at
/// once) where the file system has them, else delete-on-close.
fn delete_on_handle(file: &File) -> io::Result<()> {
    let ex = FILE_DISPOSITION_INFO_EX {
        Flags: FILE_DISPOSITION_FLAG_DELETE
            | FILE_DISPOSITION_FLAG_POSIX_SEMANTICS
            | FILE_DISPOSITION_FLAG_IGNORE_READONLY_ATTRIBUTE,
    };
    // SAFETY: `file` was opened with DELETE access; `ex` is a valid
    // FILE_DISPOSITION_INFO_EX of the size given.
    let ok = unsafe {
        SetFileInformationByHandle(
            file.as_raw_handle(),
            FileDispositionInfoEx,
            (&ex as *const FILE_DISPOSITION_INFO_EX).cast(),
            size_of::<FILE_DISPOSITION_INFO_EX>() as u32,
        )
    };
    if ok != 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    let unsupported = matches!(
        e.raw_os_error().map(|c| c as u32),
        Some(ERROR_INVALID_PARAMETER | ERROR_NOT_SUPPORTED | ERROR_INVALID_FUNCTION)
    );
    if !unsupported {
        return Err(e);
    }
    let classic = FILE_DISPOSITION_INFO { DeleteFile: true };
    // SAFETY: as above, with a FILE_DISPOSITION_INFO.
    let ok = unsafe {
        SetFileInformationByHandle(
            file.as_raw_handle(),
            FileDispositionInfo,
            (&classic as *const FILE_DISPOSITION_INFO).cast(),
            size_of::<FILE_DISPOSITION_INFO>() as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Every entry of the directory behind `dir`, from the start.
fn enumerate(dir: &File) -> io::Result<Vec<RawEntry>> {
    // 64 KiB, aligned for the LARGE_INTEGER fields of the records.
    let mut buf = vec![0u64; 8192];
    let bytes = buf.len() * size_of::<u64>();
    let mut out = Vec::new();
    let mut class = FileIdBothDirectoryRestartInfo;
    loop {
        // SAFETY: `dir` is an open directory handle with list access; `buf`
        // is writable for `bytes` bytes and 8-byte aligned.
        let ok = unsafe {
            GetFileInformationByHandleEx(
                dir.as_raw_handle(),
                class,
                buf.as_mut_ptr().cast(),
                bytes as u32,
            )
        };
        if ok == 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(ERROR_NO_MORE_FILES as i32) {
                return Ok(out);
            }
            return Err(e);
        }
        // SAFETY: `buf` owns `bytes` initialised bytes; the view lives only
        // while `buf` is not touched.
        let view = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), bytes) };
        parse_records(view, &mut out)?;
        class = FileIdBothDirectoryInfo;
    }
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes one buffer of `FILE_ID_BOTH_DIR_INFO` records, without trusting
/// their offsets and lengths.
fn parse_records(view: &[u8], out: &mut Vec<RawEntry>) -> io::Result<()> {
    let malformed = || io::Error::new(io::ErrorKind::InvalidData, "malformed directory record");
    let next_at = offset_of!(FILE_ID_BOTH_DIR_INFO, NextEntryOffset);
    let attrs_at = offset_of!(FILE_ID_BOTH_DIR_INFO, FileAttributes);
    let len_at = offset_of!(FILE_ID_BOTH_DIR_INFO, FileNameLength);
    let name_at = offset_of!(FILE_ID_BOTH_DIR_INFO, FileName);
    let mut at = 0usize;
    loop {
        let rec = view.get(at..).ok_or_else(malformed)?;
        let next = le_u32(rec, next_at).ok_or_else(malformed)? as usize;
        let attributes = le_u32(rec, attrs_at).ok_or_else(malformed)?;
        let name_len = le_u32(rec, len_at).ok_or_else(malformed)? as usize;
        let raw = rec
            .get(name_at..name_at + name_len)
            .filter(|r| r.len() % 2 == 0)
            .ok_or_else(malformed)?;
        let wide: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        let name = match String::from_utf16(&wide) {
            Ok(s) => s.into_bytes(),
            Err(_) => OsString::from_wide(&wide).into_encoded_bytes(),
        };
        if name != b"." && name != b".." {
            out.push(RawEntry {
                name,
                kind: kind_of(attributes),
            });
        }
        if next == 0 {
            return Ok(());
        }
        at = at.checked_add(next).ok_or_else(malformed)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &[u16], attributes: u32, last: bool) -> Vec<u8> {
        let name_at = offset_of!(FILE_ID_BOTH_DIR_INFO, FileName);
        let len = (name_at + name.len() * 2).next_multiple_of(8);
        let mut r = vec![0u8; len];
        let next = if last { 0 } else { len as u32 };
        r[..4].copy_from_slice(&next.to_le_bytes());
        let a = offset_of!(FILE_ID_BOTH_DIR_INFO, FileAttributes);
        r[a..a + 4].copy_from_slice(&attributes.to_le_bytes());
        let l = offset_of!(FILE_ID_BOTH_DIR_INFO, FileNameLength);
        r[l..l + 4].copy_from_slice(&((name.len() * 2) as u32).to_le_bytes());
        for (i, c) in name.iter().enumerate() {
            r[name_at + 2 * i..name_at + 2 * i + 2].copy_from_slice(&c.to_le_bytes());
        }
        r
    }

    #[test]
    fn directory_records_parse() {
        let w = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        let mut buf = record(&w("."), FILE_ATTRIBUTE_DIRECTORY, false);
        buf.extend(record(&w("a.json"), 0x20, false));
        buf.extend(record(&[0xD800, u16::from(b'x')], 0x20, false));
        buf.extend(record(&w("link"), FILE_ATTRIBUTE_REPARSE_POINT, true));
        let mut out = Vec::new();
        parse_records(&buf, &mut out).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].name, b"a.json");
        assert_eq!(out[0].kind, EntryType::File);
        assert!(std::str::from_utf8(&out[1].name).is_err(), "lone surrogate");
        assert_eq!(out[2].kind, EntryType::Symlink);
        let mut bad = record(&w("a"), 0, true);
        let l = offset_of!(FILE_ID_BOTH_DIR_INFO, FileNameLength);
        bad[l..l + 4].copy_from_slice(&1000u32.to_le_bytes());
        assert!(parse_records(&bad, &mut Vec::new()).is_err());
    }

    #[test]
    fn filetimes_convert() {
        assert_eq!(
            filetime_to_system(116_444_736_000_000_000),
            std::time::UNIX_EPOCH
        );
        assert_eq!(
            filetime_to_system(116_444_736_000_000_000 + 15_000_000),
            std::time::UNIX_EPOCH + Duration::from_millis(1500)
        );
    }

    #[test]
    fn verbatim_paths() {
        let s = |p: &str| String::from_utf16(&verbatim_wide(Path::new(p))).unwrap();
        assert_eq!(s(r"C:\a\b"), "\\\\?\\C:\\a\\b\0");
        assert_eq!(s(r"\\srv\share\x"), "\\\\?\\UNC\\srv\\share\\x\0");
        assert_eq!(s(r"\\?\C:\x"), "\\\\?\\C:\\x\0");
    }
}
