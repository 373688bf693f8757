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
pub(crate) struct Watch {
    fd: OwnedFd,
    /// The watched directory, through `/proc/self/fd` (see [`Watch::new`]).
    target: String,
    /// Whether the watch asks for deletions only (see [`Watch::narrow`]).
    narrow: std::sync::atomic::AtomicBool,
}

/// What a watch always asks for: the folder itself going away.
fn self_flags() -> rustix::fs::inotify::WatchFlags {
    use rustix::fs::inotify::WatchFlags;
    WatchFlags::DELETE_SELF | WatchFlags::MOVE_SELF | WatchFlags::ONLYDIR
}

/// Deletions, and renamings away: all a waiter that waits for given names
/// to go can use.
fn gone_flags() -> rustix::fs::inotify::WatchFlags {
    use rustix::fs::inotify::WatchFlags;
    WatchFlags::DELETE | WatchFlags::MOVED_FROM
}

/// Every change of the folder's entries.
fn all_flags() -> rustix::fs::inotify::WatchFlags {
    use rustix::fs::inotify::WatchFlags;
    gone_flags() | WatchFlags::CREATE | WatchFlags::MOVED_TO
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
        inotify::add_watch(&fd, target.as_str(), all_flags() | self_flags()).map_err(errno_io)?;
        Ok(Watch {
            fd,
            target,
            narrow: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Asks the kernel for deletions only (`narrow`) or for every change.
    /// A waiter that waits for given names to go reads every creation only
    /// to ignore it, and each one woke every such waiter of the folder: in a
    /// queue of waiters, every bid, temporary and marker written woke all of
    /// them. `Ok(true)`: the watch was widened, so a creation since the last
    /// check may have gone unseen: check again before sleeping.
    fn narrow(&self, narrow: bool) -> io::Result<bool> {
        use std::sync::atomic::Ordering;
        if self.narrow.load(Ordering::Relaxed) == narrow {
            return Ok(false);
        }
        let flags = if narrow { gone_flags() } else { all_flags() };
        // Adding a watch on an inode already watched replaces its mask.
        rustix::fs::inotify::add_watch(&self.fd, self.target.as_str(), flags | self_flags())
            .map_err(errno_io)?;
        self.narrow.store(narrow, Ordering::Relaxed);
        Ok(!narrow)
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
        match w.narrow(relevant.is_some()) {
            Ok(true) => return Ok(Wake::Event),
            Ok(false) => {}
            // The mask stays as it was: wider than needed (harmless), or
            // narrower, when the re-check timer covers a missed creation as
            // it covers any missed hint. Never a reason to spin.
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
