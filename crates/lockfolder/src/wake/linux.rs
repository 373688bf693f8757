//! Linux: inotify on the folder (an entry created, removed or renamed),
//! a pidfd per watched process (readable once it exits), an eventfd for
//! cancellation, all in one `poll`.
//!
//! No `unsafe` here: rustix wraps every call.

use super::Wake;
use crate::error::Op;
use crate::fault;
use crate::store::Folder;
use rustix::event::{PollFd, PollFlags};
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use std::io;
use std::time::{Duration, Instant};

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

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
///
/// A waiter that waits for given names to go (first in line: its rivals'
/// bids; behind others: the marker just ahead) watches those files
/// themselves, and the folder only for going away itself: a folder watch
/// would wake every waiter of the folder on every change (a herd in a queue
/// of waiters), where a file's deletion wakes only the waiter that waits for
/// it, as a queue lock hands over.
pub(crate) struct Watch {
    fd: OwnedFd,
    /// The watched directory, through `/proc/self/fd` (see [`Watch::new`]).
    target: String,
    /// The folder's watch descriptor.
    folder_wd: i32,
    state: std::sync::Mutex<WatchState>,
}

/// What a [`Watch`] currently asks the kernel for.
struct WatchState {
    folder: FolderMask,
    /// Files watched for their deletion, by name; `None`: the name could not
    /// be found when it was to be watched (it went, or a stale listing still
    /// shows it): not tried again while it stays wanted.
    files: Vec<(Vec<u8>, Option<i32>)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FolderMask {
    /// Every change of its entries.
    All,
    /// Deletions and renamings away only.
    Gone,
    /// Only the folder itself going away.
    SelfOnly,
}

impl FolderMask {
    fn flags(self) -> rustix::fs::inotify::WatchFlags {
        use rustix::fs::inotify::WatchFlags;
        let own = WatchFlags::DELETE_SELF | WatchFlags::MOVE_SELF | WatchFlags::ONLYDIR;
        let gone = WatchFlags::DELETE | WatchFlags::MOVED_FROM;
        match self {
            FolderMask::All => own | gone | WatchFlags::CREATE | WatchFlags::MOVED_TO,
            FolderMask::Gone => own | gone,
            FolderMask::SelfOnly => own,
        }
    }

    /// How much it shows: a change to one that shows more may have missed
    /// something meanwhile.
    fn rank(self) -> u8 {
        match self {
            FolderMask::SelfOnly => 0,
            FolderMask::Gone => 1,
            FolderMask::All => 2,
        }
    }
}

impl Watch {
    pub fn new(folder: &Folder) -> io::Result<Watch> {
        use rustix::fs::inotify;
        fault::check(Op::Watch, b"")?;
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
            .map_err(errno_io)?;
        // Watch the directory we hold open (through /proc/self/fd), not the
        // path, which may have been renamed or replaced since.
        let target = format!(
            "/proc/self/fd/{}",
            rustix::fd::AsRawFd::as_raw_fd(folder.fd())
        );
        let folder_wd =
            inotify::add_watch(&fd, target.as_str(), FolderMask::All.flags()).map_err(errno_io)?;
        Ok(Watch {
            fd,
            target,
            folder_wd,
            state: std::sync::Mutex::new(WatchState {
                folder: FolderMask::All,
                files: Vec::new(),
            }),
        })
    }

    /// Asks the kernel for what can matter to a waiter with these
    /// `relevant` names (`None`: every change). `Ok(true)`: something may
    /// have gone unseen since the last check (the watch now shows more than
    /// before, or a name to watch is already gone): check again before
    /// sleeping. An error leaves the watch showing at least what it showed.
    fn arm(&self, relevant: Option<&[Vec<u8>]>) -> io::Result<bool> {
        use rustix::fs::inotify::{self, WatchFlags};
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let wanted = |n: &[u8]| relevant.is_some_and(|r| r.iter().any(|x| x.as_slice() == n));
        // Files no longer waited for.
        let mut i = 0;
        while i < st.files.len() {
            if wanted(&st.files[i].0) {
                i += 1;
                continue;
            }
            if let (_, Some(wd)) = st.files.swap_remove(i) {
                // EINVAL: it went with its file already.
                let _ = inotify::remove_watch(&self.fd, wd);
            }
        }
        let mut recheck = false;
        let mut mask = FolderMask::All;
        if let Some(names) = relevant {
            mask = FolderMask::SelfOnly;
            for n in names {
                if st.files.iter().any(|(f, _)| f == n) {
                    continue;
                }
                let path = std::path::Path::new(&self.target)
                    .join(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(n));
                match inotify::add_watch(
                    &self.fd,
                    path.as_path(),
                    WatchFlags::DELETE_SELF | WatchFlags::MOVE_SELF | WatchFlags::DONT_FOLLOW,
                ) {
                    Ok(wd) => st.files.push((n.clone(), Some(wd))),
                    Err(Errno::NOENT) => {
                        recheck = true;
                        st.files.push((n.clone(), None));
                    }
                    // Out of watches, or not allowed: the folder's deletions
                    // tell instead.
                    Err(_) => mask = FolderMask::Gone,
                }
            }
        }
        if mask != st.folder {
            // Adding a watch on an inode already watched replaces its mask.
            inotify::add_watch(&self.fd, self.target.as_str(), mask.flags()).map_err(errno_io)?;
            recheck |= mask.rank() > st.folder.rank();
            st.folder = mask;
        }
        Ok(recheck)
    }

    /// Reads every queued event and says whether one of them matters: any
    /// change of the folder when `relevant` is `None`, else the deletion (or
    /// renaming away) of one of the `relevant` names, seen on its own watch
    /// or the folder's. A queue overflow or the folder itself going away
    /// always matters.
    fn take_events(&self, relevant: Option<&[Vec<u8>]>) -> bool {
        use rustix::fs::inotify::{ReadFlags, Reader};
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = Reader::new(&self.fd, &mut buf);
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut matters = false;
        loop {
            match reader.next() {
                Ok(ev) => {
                    let flags = ev.events();
                    if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                        matters = true;
                        continue;
                    }
                    if ev.wd() != self.folder_wd {
                        // One of our files (or one we stopped watching).
                        let Some(i) = st.files.iter().position(|(_, wd)| *wd == Some(ev.wd()))
                        else {
                            continue;
                        };
                        if flags.intersects(ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF) {
                            matters = true;
                        }
                        if flags.contains(ReadFlags::IGNORED) {
                            // The kernel dropped the watch with its file.
                            st.files[i].1 = None;
                        }
                        continue;
                    }
                    if flags.intersects(
                        ReadFlags::DELETE_SELF | ReadFlags::MOVE_SELF | ReadFlags::IGNORED,
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
pub(crate) struct ExitWatch {
    fd: OwnedFd,
    /// A pidfd stays readable once its process has exited: it wakes a
    /// waiter once, then the re-check timer takes over (a bid kept alive by
    /// its process group after its owner exited must not make every sleep
    /// return at once).
    fired: std::sync::atomic::AtomicBool,
}

/// Opens a pidfd on `pid`, then checks that the PID still names the process
/// that started at `start` (raw ticks), so a reused PID is never watched by
/// mistake.
pub(crate) fn watch_process(pid: u32, start: u64) -> Option<ExitWatch> {
    let p = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    let fd = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()?;
    (crate::liveness::start_of(pid) == Some(start)).then_some(ExitWatch {
        fd,
        fired: std::sync::atomic::AtomicBool::new(false),
    })
}

/// Sleeps until a relevant folder change, a watched process's exit, the
/// notifier, or `timeout`, whichever is first. Irrelevant events are read and
/// slept through.
pub(crate) fn sleep(
    watch: Option<&Watch>,
    holders: &[&ExitWatch],
    cancel: Option<&Notifier>,
    timeout: Duration,
    relevant: Option<&[Vec<u8>]>,
) -> io::Result<Wake> {
    use std::sync::atomic::Ordering;
    let holders: Vec<&ExitWatch> = holders
        .iter()
        .copied()
        .filter(|h| !h.fired.load(Ordering::Relaxed))
        .collect();
    if let Some(w) = watch {
        match w.arm(relevant) {
            Ok(true) => return Ok(Wake::Event),
            Ok(false) => {}
            // The watch shows what it showed: more than needed (harmless),
            // or less, when the re-check timer covers a missed hint as it
            // covers any. Never a reason to spin.
            Err(_) => {}
        }
    }
    // A timeout too large to add means "a very long time": the caller
    // re-checks long before that anyway.
    let deadline = Instant::now().checked_add(timeout);
    loop {
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        if left.is_zero() {
            return Ok(Wake::Timer);
        }
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(2 + holders.len());
        if let Some(c) = cancel {
            fds.push(PollFd::new(&c.fd, PollFlags::IN));
        }
        if let Some(w) = watch {
            fds.push(PollFd::new(&w.fd, PollFlags::IN));
        }
        for h in &holders {
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
        let exits = &ready[i + usize::from(watch.is_some())..];
        if exits.iter().any(|r| *r) {
            for (h, r) in holders.iter().zip(exits) {
                if *r {
                    h.fired.store(true, Ordering::Relaxed);
                }
            }
            return Ok(Wake::Process);
        }
        if let Some(w) = watch {
            if ready[i] && w.take_events(relevant) {
                return Ok(Wake::Event);
            }
        }
    }
}
