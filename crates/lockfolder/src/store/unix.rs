//! The folder on Unix (Linux, macOS, FreeBSD): every operation through
//! `*at` system calls on one directory descriptor, so the path is resolved
//! once and a renamed folder is noticed.
//!
//! No `unsafe` here: rustix wraps every call.

use super::{Content, EntryType, RawEntry};
use crate::error::{Error, Op, Result};
use crate::fault;
use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Device and inode numbers as one type on every Unix (their C types
/// differ: `dev_t` is signed 32-bit on macOS).
#[allow(clippy::unnecessary_cast)]
fn file_id(st: &rustix::fs::Stat) -> (u64, u64) {
    (st.st_dev as u64, st.st_ino as u64)
}

/// The lock folder, held open so every operation names the same directory
/// even if the path is renamed, and so no operation re-resolves the path.
pub(crate) struct Folder {
    fd: OwnedFd,
    path: PathBuf,
    /// Device and inode of the directory `fd` names (they never change).
    id: (u64, u64),
    /// What the folder lives on.
    fs: crate::fsinfo::FsInfo,
}

impl From<FileType> for EntryType {
    fn from(t: FileType) -> Self {
        match t {
            FileType::RegularFile => EntryType::File,
            FileType::Directory => EntryType::Dir,
            FileType::Symlink => EntryType::Symlink,
            FileType::Fifo => EntryType::Fifo,
            FileType::Socket => EntryType::Socket,
            FileType::CharacterDevice | FileType::BlockDevice => EntryType::Device,
            _ => EntryType::Unknown,
        }
    }
}

#[allow(clippy::unnecessary_cast)]
fn system_time(secs: i64, nanos: i64) -> std::time::SystemTime {
    let base = std::time::UNIX_EPOCH;
    let nanos = nanos.clamp(0, 999_999_999) as u32;
    if secs >= 0 {
        base + std::time::Duration::new(secs as u64, nanos)
    } else {
        base - std::time::Duration::new(secs.unsigned_abs(), 0) + std::time::Duration::new(0, nanos)
    }
}

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

impl Folder {
    /// Opens (and with `create`, first creates) the lock folder.
    pub fn open(path: &Path, create: bool) -> Result<Folder> {
        if create {
            fault::check(Op::CreateFolder, path.as_os_str().as_bytes())
                .and_then(|()| std::fs::create_dir_all(path))
                .map_err(|e| match e.kind() {
                    io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory => {
                        Error::NotADirectory {
                            path: path.to_path_buf(),
                        }
                    }
                    _ => Error::io(Op::CreateFolder, path, e),
                })?;
        }
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOTDIR => Error::NotADirectory {
                path: path.to_path_buf(),
            },
            e => Error::io(Op::OpenFolder, path, errno_io(e)),
        })?;
        let st =
            rustix::fs::fstat(&fd).map_err(|e| Error::io(Op::OpenFolder, path, errno_io(e)))?;
        let fs = match fault::fs_override() {
            Some(name) => crate::fsinfo::Filesystem::pretend_fuse(&name),
            None => crate::fsinfo::identify(&fd, path),
        };
        Ok(Folder {
            fd,
            path: path.to_path_buf(),
            id: file_id(&st),
            fs,
        })
    }

    /// The filesystem the folder lives on.
    pub fn filesystem(&self) -> &crate::fsinfo::FsInfo {
        &self.fs
    }

    /// The open directory, for change notification.
    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn child(&self, name: &[u8]) -> PathBuf {
        self.path.join(OsStr::from_bytes(name))
    }

    /// Lists the folder. Each call opens a fresh descriptor: a listing must
    /// start after everything it is meant to see (step 30's freshness). With
    /// `verify`, first make sure the path still names this folder.
    pub fn list(&self, verify: bool) -> Result<Vec<RawEntry>> {
        let err = |e: io::Error| Error::io(Op::ReadFolder, &self.path, e);
        fault::check(Op::ReadFolder, b"").map_err(err)?;
        if verify {
            self.check_still_at_path()?;
        }
        let fd = rustix::fs::openat(
            &self.fd,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err(errno_io(e)))?;
        let mut dir = rustix::fs::Dir::new(fd).map_err(|e| err(errno_io(e)))?;
        let mut out = Vec::new();
        while let Some(entry) = dir.read() {
            let entry = entry.map_err(|e| err(errno_io(e)))?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            out.push(RawEntry {
                name: name.to_vec(),
                kind: entry.file_type().into(),
            });
        }
        Ok(out)
    }

    /// Refuses to go on if the path no longer names the directory we hold
    /// open (it was renamed away, or deleted and created anew): others using
    /// the path would use another folder, and we would bid where nobody looks.
    fn check_still_at_path(&self) -> Result<()> {
        let replaced = match rustix::fs::stat(&self.path) {
            Ok(there) => file_id(&there) != self.id,
            Err(_) => true,
        };
        if replaced {
            return Err(Error::io(
                Op::OpenFolder,
                &self.path,
                io::Error::new(
                    io::ErrorKind::NotFound,
                    "the lock folder was removed or replaced since it was opened; open it again",
                ),
            ));
        }
        Ok(())
    }

    /// The type of an entry, without following symlinks.
    pub fn lstat_type(&self, name: &[u8]) -> io::Result<EntryType> {
        fault::check(Op::ReadEntry, name)?;
        let st = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW).map_err(errno_io)?;
        Ok(FileType::from_raw_mode(st.st_mode).into())
    }

    /// Reads an entry that claims to be a bid, refusing anything that is not a
    /// small regular file: no symlink is followed (`O_NOFOLLOW`), no FIFO can
    /// block us (`O_NONBLOCK`, and `lstat` first), and the type and size are
    /// checked again on the open descriptor in case the entry was swapped.
    pub fn read_entry(&self, name: &[u8]) -> Content {
        use crate::bid::MAX_BID_BYTES;
        if let Err(e) = fault::check(Op::ReadEntry, name) {
            return Content::Unreadable(e);
        }
        let st = match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Content::Vanished,
            Err(e) => return Content::Unreadable(errno_io(e)),
        };
        let kind: EntryType = FileType::from_raw_mode(st.st_mode).into();
        if kind != EntryType::File {
            return Content::NotRegular(kind);
        }
        if st.st_size as u64 > MAX_BID_BYTES {
            return Content::TooLarge(st.st_size as u64);
        }
        let fd = match rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Content::Vanished,
            Err(Errno::LOOP) => return Content::NotRegular(EntryType::Symlink),
            Err(e) => return Content::Unreadable(errno_io(e)),
        };
        match rustix::fs::fstat(&fd) {
            Ok(st) => {
                let kind: EntryType = FileType::from_raw_mode(st.st_mode).into();
                if kind != EntryType::File {
                    return Content::NotRegular(kind);
                }
                if st.st_size as u64 > MAX_BID_BYTES {
                    return Content::TooLarge(st.st_size as u64);
                }
            }
            Err(e) => return Content::Unreadable(errno_io(e)),
        }
        let cap = MAX_BID_BYTES as usize + 1;
        let mut buf = Vec::with_capacity(4096);
        loop {
            let mut chunk = [0u8; 4096];
            match rustix::io::read(&fd, &mut chunk) {
                Ok(0) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() >= cap {
                        return Content::TooLarge(buf.len() as u64);
                    }
                }
                Err(Errno::INTR) => continue,
                Err(e) => return Content::Unreadable(errno_io(e)),
            }
        }
        Content::Bytes(buf)
    }

    /// Creates `name` exclusively and writes `bytes` into it. On failure the
    /// file is removed again, so no half-written temporary is left behind.
    pub fn write_temp(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = || self.child(name.as_bytes());
        fault::check(Op::CreateTemp, name.as_bytes())
            .map_err(|e| Error::io(Op::CreateTemp, path(), e))?;
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(|e| Error::io(Op::CreateTemp, path(), errno_io(e)))?;
        let written =
            fault::check(Op::WriteTemp, name.as_bytes()).and_then(|()| write_all(&fd, bytes));
        drop(fd);
        if let Err(e) = written {
            // Best effort: if even this fails, the file carries our identity
            // in its name and is removed as stale once we have exited.
            let _ = rustix::fs::unlinkat(&self.fd, name, AtFlags::empty());
            return Err(Error::io(Op::WriteTemp, path(), e));
        }
        Ok(())
    }

    /// Moves a finished temporary into place as a bid, never replacing an
    /// existing entry: `renameat2(RENAME_NOREPLACE)` on Linux,
    /// `renameatx_np(RENAME_EXCL)` on macOS, or where those are missing (or
    /// the filesystem refuses them), `link` then `unlink` (a hard link also
    /// refuses to replace). Returns `AlreadyExists` untouched so the caller
    /// can pick a new name.
    pub fn publish(&self, temp: &str, bid: &str) -> Result<()> {
        let err = |e: io::Error| Error::io(Op::Publish, self.child(bid.as_bytes()), e);
        fault::check(Op::Publish, bid.as_bytes()).map_err(err)?;
        #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
        match rustix::fs::renameat_with(
            &self.fd,
            temp,
            &self.fd,
            bid,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => return Ok(()),
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
            Err(e) => return Err(err(errno_io(e))),
        }
        rustix::fs::linkat(&self.fd, temp, &self.fd, bid, AtFlags::empty())
            .map_err(|e| err(errno_io(e)))?;
        // The bid is published; a leftover temporary is harmless (it is
        // never a rival) and is cleaned as stale after we exit.
        let _ = rustix::fs::unlinkat(&self.fd, temp, AtFlags::empty());
        Ok(())
    }

    /// Removes an entry by its exact name. `Ok(false)` if it was already gone.
    pub fn remove(&self, name: &[u8]) -> io::Result<bool> {
        fault::check(Op::Remove, name)?;
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(errno_io(e)),
        }
    }

    /// Sets an entry's times to "now" as its filesystem's clock says: on NFS
    /// the server stamps it (`UTIME_NOW` is sent as "set to server time"),
    /// which is what lease renewals and lease judgements compare.
    pub fn touch(&self, name: &[u8]) -> io::Result<()> {
        fault::check(Op::Renew, name)?;
        let now = rustix::fs::Timespec {
            tv_sec: 0,
            tv_nsec: rustix::fs::UTIME_NOW,
        };
        let times = rustix::fs::Timestamps {
            last_access: now,
            last_modification: now,
        };
        rustix::fs::utimensat(&self.fd, name, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(errno_io)
    }

    /// An entry's modification time, read through a fresh open so that a
    /// network client revalidates it (close-to-open) rather than answer
    /// from its attribute cache.
    pub fn fresh_mtime(&self, name: &[u8]) -> io::Result<std::time::SystemTime> {
        fault::check(Op::ReadEntry, name)?;
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::empty(),
        )
        .map_err(errno_io)?;
        let st = rustix::fs::fstat(&fd).map_err(errno_io)?;
        Ok(system_time(st.st_mtime as i64, st.st_mtime_nsec as i64))
    }

    /// Whether an entry exists (not following symlinks).
    pub fn exists(&self, name: &str) -> io::Result<bool> {
        fault::check(Op::ReadEntry, name.as_bytes())?;
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(errno_io(e)),
        }
    }
}

fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(fd, bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(Errno::INTR) => continue,
            Err(e) => return Err(errno_io(e)),
        }
    }
    Ok(())
}
