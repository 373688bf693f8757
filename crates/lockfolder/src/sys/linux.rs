//! Linux: the folder through `*at` system calls on one directory descriptor,
//! process identity from `/proc`, waiting with inotify, pidfd and eventfd.
//!
//! No `unsafe` here: rustix wraps every call.

use super::{HostContext, Probe, ProcessStamp};
use crate::error::{Error, Op, Result};
use crate::fault;
use rustix::event::{PollFd, PollFlags};
use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The lock folder, held open so every operation names the same directory
/// even if the path is renamed, and so no operation re-resolves the path.
pub(crate) struct Folder {
    fd: OwnedFd,
    path: PathBuf,
    /// Device and inode of the directory `fd` names (they never change).
    id: (u64, u64),
}

/// One name from a listing, with the type the directory reported for it.
pub(crate) struct RawEntry {
    pub name: Vec<u8>,
    pub kind: EntryType,
}

/// File types as far as the protocol cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryType {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    Device,
    /// The directory did not say (`DT_UNKNOWN`); `lstat` will.
    Unknown,
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

/// What reading an entry gave.
pub(crate) enum Content {
    Bytes(Vec<u8>),
    NotRegular(EntryType),
    TooLarge(u64),
    Unreadable(io::Error),
    /// Deleted between the listing and the read.
    Vanished,
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
        Ok(Folder {
            fd,
            path: path.to_path_buf(),
            id: (st.st_dev, st.st_ino),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn child(&self, name: &[u8]) -> PathBuf {
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
            Ok(there) => (there.st_dev, there.st_ino) != self.id,
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
    /// existing entry: `renameat2(RENAME_NOREPLACE)`, or where the filesystem
    /// lacks it, `link` then `unlink` (a hard link also refuses to replace).
    /// Returns `AlreadyExists` untouched so the caller can pick a new name.
    pub fn publish(&self, temp: &str, bid: &str) -> Result<()> {
        let err = |e: io::Error| Error::io(Op::Publish, self.child(bid.as_bytes()), e);
        fault::check(Op::Publish, bid.as_bytes()).map_err(err)?;
        match rustix::fs::renameat_with(&self.fd, temp, &self.fd, bid, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
                rustix::fs::linkat(&self.fd, temp, &self.fd, bid, AtFlags::empty())
                    .map_err(|e| err(errno_io(e)))?;
                // The bid is published; a leftover temporary is harmless (it
                // is never a rival) and is cleaned as stale after we exit.
                let _ = rustix::fs::unlinkat(&self.fd, temp, AtFlags::empty());
                Ok(())
            }
            Err(e) => Err(err(errno_io(e))),
        }
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

// ---------------------------------------------------------------- identity

static HOST: OnceLock<std::result::Result<HostContext, (io::ErrorKind, String)>> = OnceLock::new();

/// Host name, machine id, boot id, boot time, PID namespace and clock rate,
/// read once per process (none of them changes while a process lives).
pub(crate) fn host_context() -> io::Result<&'static HostContext> {
    HOST.get_or_init(|| read_host_context().map_err(|e| (e.kind(), e.to_string())))
        .as_ref()
        .map_err(|(k, m)| io::Error::new(*k, m.clone()))
}

fn read_host_context() -> io::Result<HostContext> {
    let uts = rustix::system::uname();
    let host = String::from_utf8_lossy(uts.nodename().to_bytes()).into_owned();
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?
        .trim()
        .to_owned();
    if boot_id.len() != 36 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "malformed boot_id",
        ));
    }
    let machine_id = std::fs::read_to_string("/etc/machine-id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let stat = std::fs::read_to_string("/proc/stat")?;
    let boot_time = parse_btime(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no btime in /proc/stat"))?;
    let pid_ns = rustix::fs::stat("/proc/self/ns/pid")
        .map_err(errno_io)?
        .st_ino;
    let clk_tck = rustix::param::clock_ticks_per_second();
    // /proc must belong to our PID namespace, or every PID we look up there
    // would name some other process.
    let me = read_stat_file("/proc/self/stat")?;
    if me.pid != current_pid() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "/proc is not mounted for this process's PID namespace",
        ));
    }
    Ok(HostContext {
        host,
        machine_id,
        boot_id,
        boot_time,
        pid_ns,
        clk_tck,
    })
}

/// `btime` line of `/proc/stat`.
pub(crate) fn parse_btime(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub pid: u32,
    pub state: u8,
    pub start_ticks: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses
/// and may itself contain spaces and `)`, so fields are counted from the
/// *last* `)`.
pub(crate) fn read_proc_stat(bytes: &[u8]) -> Option<ProcStat> {
    let open = bytes.iter().position(|&b| b == b'(')?;
    let close = bytes.iter().rposition(|&b| b == b')')?;
    if close < open {
        return None;
    }
    let pid = std::str::from_utf8(&bytes[..open])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let rest = std::str::from_utf8(&bytes[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state.len() != 1 {
        return None;
    }
    // Field 3 is the state; field 22 is the start time: 19 fields further on.
    let start_ticks = fields.nth(18)?.parse().ok()?;
    Some(ProcStat {
        pid,
        state: state.as_bytes()[0],
        start_ticks,
    })
}

/// Reads and parses a `stat` file of `/proc`.
fn read_stat_file(path: &str) -> io::Result<ProcStat> {
    read_proc_stat(&std::fs::read(path)?)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("malformed {path}")))
}

pub(crate) fn current_pid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

static SELF_STAMP: std::sync::Mutex<Option<ProcessStamp>> = std::sync::Mutex::new(None);

/// This process's PID and start ticks. Cached, and re-read after a fork
/// (when the PID no longer matches).
pub(crate) fn current_process() -> io::Result<ProcessStamp> {
    let pid = current_pid();
    let mut cached = SELF_STAMP.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(s) = *cached {
        if s.pid == pid {
            return Ok(s);
        }
    }
    let st = read_stat_file("/proc/self/stat")?;
    let stamp = ProcessStamp {
        pid,
        start_ticks: st.start_ticks,
    };
    *cached = Some(stamp);
    Ok(stamp)
}

/// The stamp of another process of ours (the CLI bids for its child).
pub(crate) fn process_stamp(pid: u32) -> io::Result<ProcessStamp> {
    let st = read_stat_file(&format!("/proc/{pid}/stat"))?;
    Ok(ProcessStamp {
        pid,
        start_ticks: st.start_ticks,
    })
}

/// Looks a PID up. Only `ESRCH` from `kill(pid, 0)` proves absence: a missing
/// `/proc/<pid>` can also mean `hidepid`, so it is `Unknown`, never `Gone`.
pub(crate) fn probe(pid: u32) -> Probe {
    if fault::check(Op::Identity, pid.to_string().as_bytes()).is_err() {
        return Probe::Unknown;
    }
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        // PID 0 or above i32::MAX names no process we can ask about.
        return Probe::Unknown;
    };
    match rustix::process::test_kill_process(p) {
        Ok(()) | Err(Errno::PERM) => {}
        Err(Errno::SRCH) => return Probe::Gone,
        Err(_) => return Probe::Unknown,
    }
    let Ok(bytes) = std::fs::read(format!("/proc/{pid}/stat")) else {
        return Probe::Unknown;
    };
    let Some(st) = read_proc_stat(&bytes) else {
        return Probe::Unknown;
    };
    let defunct = matches!(st.state, b'Z' | b'X') && all_threads_exited(pid);
    Probe::Alive {
        start_ticks: st.start_ticks,
        defunct,
    }
}

/// Whether no process at all is left in process group `pgid`: only `ESRCH`
/// from `kill(-pgid, 0)` says so; anything else (members, `EPERM`, a bad
/// number) answers "not gone".
pub(crate) fn group_gone(pgid: u32) -> bool {
    let Some(p) = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    matches!(
        rustix::process::test_kill_process_group(p),
        Err(Errno::SRCH)
    )
}

/// A zombie leader can still have live threads; the process is only over when
/// every thread is a zombie or dead. Any doubt answers "no".
fn all_threads_exited(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    for t in tasks {
        let Ok(t) = t else { return false };
        let Ok(bytes) = std::fs::read(t.path().join("stat")) else {
            return false;
        };
        match read_proc_stat(&bytes) {
            Some(st) if matches!(st.state, b'Z' | b'X') => {}
            _ => return false,
        }
    }
    true
}

/// The command line of a process, for display only.
pub(crate) fn read_cmdline(pid: u32) -> Option<String> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let parts: Vec<String> = bytes
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

pub(crate) fn random_bytes(buf: &mut [u8]) {
    if getrandom::fill(buf).is_err() {
        super::fallback_random(buf);
    }
}

// ---------------------------------------------------------------- waiting

/// Wakes a blocked waiter from another thread (eventfd; stays readable once
/// signalled, so every waiter sharing it wakes).
pub(crate) struct Notifier {
    fd: OwnedFd,
}

impl Notifier {
    pub fn new() -> io::Result<Notifier> {
        let fd = rustix::event::eventfd(
            0,
            rustix::event::EventfdFlags::CLOEXEC | rustix::event::EventfdFlags::NONBLOCK,
        )
        .map_err(errno_io)?;
        Ok(Notifier { fd })
    }

    pub fn notify(&self) {
        // EAGAIN means the counter is already non-zero: still readable.
        let _ = rustix::io::write(&self.fd, &1u64.to_ne_bytes());
    }
}

/// inotify on the lock folder: a hint that something was created, removed or
/// renamed. Hints only: the caller re-lists on a timer as well.
pub(crate) struct Watch {
    fd: OwnedFd,
}

impl Watch {
    pub fn new(folder: &Folder) -> io::Result<Watch> {
        use rustix::fs::inotify;
        fault::check(Op::Watch, b"")?;
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
            .map_err(errno_io)?;
        inotify::add_watch(
            &fd,
            folder.path(),
            inotify::WatchFlags::CREATE
                | inotify::WatchFlags::DELETE
                | inotify::WatchFlags::MOVED_FROM
                | inotify::WatchFlags::MOVED_TO
                | inotify::WatchFlags::DELETE_SELF
                | inotify::WatchFlags::MOVE_SELF
                | inotify::WatchFlags::ONLYDIR,
        )
        .map_err(errno_io)?;
        Ok(Watch { fd })
    }

    /// Reads every queued event and says whether one of them matters: any
    /// event when `relevant` is `None`, else the deletion (or renaming away)
    /// of one of the `relevant` names. A queue overflow or the folder itself
    /// going away always matters.
    fn take_events(&self, relevant: Option<&[Vec<u8>]>) -> bool {
        use rustix::fs::inotify::{ReadFlags, Reader};
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = Reader::new(&self.fd, &mut buf);
        let mut matters = false;
        loop {
            match reader.next() {
                Ok(ev) => {
                    let flags = ev.events();
                    if flags.intersects(
                        ReadFlags::QUEUE_OVERFLOW
                            | ReadFlags::DELETE_SELF
                            | ReadFlags::MOVE_SELF
                            | ReadFlags::IGNORED,
                    ) {
                        matters = true;
                        continue;
                    }
                    let Some(names) = relevant else {
                        matters = true;
                        continue;
                    };
                    if flags.intersects(ReadFlags::DELETE | ReadFlags::MOVED_FROM) {
                        if let Some(n) = ev.file_name() {
                            let n = n.to_bytes();
                            matters |= names.iter().any(|r| r.as_slice() == n);
                        }
                    }
                }
                Err(Errno::INTR) => continue,
                // EAGAIN: drained. Anything else: let the caller re-check.
                Err(Errno::AGAIN) => return matters,
                Err(_) => return true,
            }
        }
    }
}

/// A pidfd on a live rival, readable once that process has exited.
pub(crate) struct HolderWatch {
    fd: OwnedFd,
}

/// Opens a pidfd on `p`, then checks that the PID still names the same
/// process (start ticks), so a reused PID is never watched by mistake.
pub(crate) fn watch_process(p: ProcessStamp) -> Option<HolderWatch> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(p.pid).ok()?)?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()?;
    match probe(p.pid) {
        Probe::Alive {
            start_ticks,
            defunct: false,
        } if start_ticks == p.start_ticks => Some(HolderWatch { fd }),
        _ => None,
    }
}

/// Why a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// A relevant change in the folder.
    Event,
    /// A watched process exited.
    Process,
    /// The cancel notifier fired.
    Cancel,
    /// The timeout passed.
    Timer,
}

/// Sleeps until a relevant folder change, a watched process's exit, the
/// notifier, or `timeout`, whichever is first. Irrelevant events are read and
/// slept through.
pub(crate) fn sleep_until_event(
    watch: Option<&Watch>,
    holders: &[&HolderWatch],
    cancel: Option<&Notifier>,
    timeout: Duration,
    relevant: Option<&[Vec<u8>]>,
) -> io::Result<Wake> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let now = std::time::Instant::now();
        if now >= deadline {
            return Ok(Wake::Timer);
        }
        let left = deadline - now;
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(2 + holders.len());
        if let Some(c) = cancel {
            fds.push(PollFd::new(&c.fd, PollFlags::IN));
        }
        if let Some(w) = watch {
            fds.push(PollFd::new(&w.fd, PollFlags::IN));
        }
        for h in holders {
            fds.push(PollFd::new(&h.fd, PollFlags::IN));
        }
        let ts = rustix::event::Timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(0) => return Ok(Wake::Timer),
            Ok(_) => {}
            Err(Errno::INTR) => return Ok(Wake::Timer),
            Err(e) => return Err(errno_io(e)),
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        let mut i = 0;
        if cancel.is_some() {
            if ready[i] {
                return Ok(Wake::Cancel);
            }
            i += 1;
        }
        if ready[i + usize::from(watch.is_some())..].iter().any(|r| *r) {
            return Ok(Wake::Process);
        }
        if let Some(w) = watch {
            if ready[i] && w.take_events(relevant) {
                return Ok(Wake::Event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_parses_after_last_paren() {
        let line = b"4242 (a) b) (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20 21";
        let st = read_proc_stat(line).unwrap();
        assert_eq!(st.pid, 4242);
        assert_eq!(st.state, b'S');
        assert_eq!(st.start_ticks, 987654);
        assert!(read_proc_stat(b"1 (x) S 1 2").is_none());
        assert!(read_proc_stat(b")1 (x").is_none());
    }

    #[test]
    fn self_identity_is_consistent() {
        let me = current_process().unwrap();
        assert_eq!(me.pid, std::process::id());
        match probe(me.pid) {
            Probe::Alive {
                start_ticks,
                defunct,
            } => {
                assert_eq!(start_ticks, me.start_ticks);
                assert!(!defunct);
            }
            other => panic!("we are alive, got {other:?}"),
        }
        let ctx = host_context().unwrap();
        assert_eq!(ctx.boot_id_hex().len(), 32);
        assert!(ctx.boot_time > 1_000_000_000);
    }
}
