//! macOS and FreeBSD: one kqueue per folder watch, holding `EVFILT_VNODE`
//! on the folder (`NOTE_WRITE`: an entry was created, removed or renamed;
//! `NOTE_DELETE`, `NOTE_RENAME`, `NOTE_REVOKE`: the folder itself went).
//! For each sleep, `EVFILT_PROC`/`NOTE_EXIT` of every watched process and
//! `EVFILT_READ` on the cancel pipe are added to it, and taken out again
//! before the sleep returns, so a pooled watch carries nothing of an
//! earlier waiter.
//!
//! A process is watched only after its registration is in place *and* its
//! PID still names the process of that start time; otherwise the waiter is
//! woken to judge again, so a reused PID is never watched by mistake (the
//! same rule as the pidfd check on Linux). kqueue reports no names, so
//! every change of the folder wakes the waiter (Linux filters by name).

#![allow(unsafe_code)]

use super::Wake;
use crate::error::Op;
use crate::fault;
use crate::store::Folder;
use rustix::event::kqueue::{self, Event, EventFilter, EventFlags, ProcessEvents, VnodeEvents};
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::io::Errno;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn errno_io(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

/// Makes a descriptor close-on-exec and non-blocking.
fn cloexec_nonblock(fd: &OwnedFd) -> io::Result<()> {
    rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC).map_err(errno_io)?;
    let fl = rustix::fs::fcntl_getfl(fd).map_err(errno_io)?;
    rustix::fs::fcntl_setfl(fd, fl | rustix::fs::OFlags::NONBLOCK).map_err(errno_io)
}

/// Wakes a blocked waiter from another thread: a pipe whose read end stays
/// readable once a byte is written (it is never drained), so every waiter
/// sharing it wakes.
pub(crate) struct Notifier {
    read: OwnedFd,
    write: OwnedFd,
}

impl Notifier {
    pub fn new() -> io::Result<Notifier> {
        let (read, write) = rustix::pipe::pipe().map_err(errno_io)?;
        cloexec_nonblock(&read)?;
        cloexec_nonblock(&write)?;
        Ok(Notifier { read, write })
    }

    pub fn notify(&self) {
        // EAGAIN: the pipe is full, so already readable.
        let _ = rustix::io::write(&self.write, b"!");
    }
}

/// A kqueue with `EVFILT_VNODE` on the folder. Field order matters: the
/// kqueue is closed before the directory descriptor it watches.
pub(crate) struct Watch {
    kq: OwnedFd,
    _dir: OwnedFd,
}

/// Registers `changes` and returns the `errno` of each (0: done), in order.
fn register(kq: &OwnedFd, changes: &[Event]) -> io::Result<Vec<i64>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let mut receipts: Vec<Event> = Vec::with_capacity(changes.len());
    // SAFETY: every descriptor named in `changes` is valid now and stays so
    // while registered: the watched directory is owned by the `Watch`
    // beside its kqueue, and the cancel pipe's registration is deleted
    // before `sleep` returns (while it still borrows the `Notifier`).
    // `EV_RECEIPT` makes the kernel answer for each change without waiting.
    unsafe { kqueue::kevent(kq, changes, &mut receipts, Some(Duration::ZERO)) }
        .map_err(errno_io)?;
    Ok(receipts
        .iter()
        .map(|r| {
            if r.flags().contains(EventFlags::ERROR) {
                r.data()
            } else {
                0
            }
        })
        .collect())
}

impl Watch {
    pub fn new(folder: &Folder) -> io::Result<Watch> {
        fault::check(Op::Watch, b"")?;
        let dir = rustix::io::fcntl_dupfd_cloexec(folder.fd(), 0).map_err(errno_io)?;
        let kq = kqueue::kqueue().map_err(errno_io)?;
        rustix::io::fcntl_setfd(&kq, rustix::io::FdFlags::CLOEXEC).map_err(errno_io)?;
        let vnode = Event::new(
            EventFilter::Vnode {
                vnode: dir.as_raw_fd(),
                flags: VnodeEvents::WRITE
                    | VnodeEvents::DELETE
                    | VnodeEvents::RENAME
                    | VnodeEvents::REVOKE,
            },
            EventFlags::ADD | EventFlags::CLEAR | EventFlags::RECEIPT,
            std::ptr::null_mut(),
        );
        match register(&kq, &[vnode])?.first() {
            Some(0) | None => Ok(Watch { kq, _dir: dir }),
            Some(e) => Err(io::Error::from_raw_os_error(*e as i32)),
        }
    }
}

/// A process whose exit should wake us: its PID and start (in the unit of
/// this platform's probe). It wakes a waiter once; after that the re-check
/// timer covers it (a bid that stays live after its process has gone, kept
/// by its process group, must not make every sleep return at once).
pub(crate) struct ExitWatch {
    pid: u32,
    start: u64,
    fired: AtomicBool,
}

/// A watch on `pid`, if it still names the process that started at
/// `start` (checked again after each registration).
pub(crate) fn watch_process(pid: u32, start: u64) -> Option<ExitWatch> {
    rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    (crate::liveness::start_of(pid) == Some(start)).then_some(ExitWatch {
        pid,
        start,
        fired: AtomicBool::new(false),
    })
}

fn proc_event(pid: u32, flags: EventFlags) -> Option<Event> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    Some(Event::new(
        EventFilter::Proc {
            pid,
            flags: ProcessEvents::EXIT,
        },
        flags,
        std::ptr::null_mut(),
    ))
}

fn read_event(fd: &OwnedFd, flags: EventFlags) -> Event {
    Event::new(
        EventFilter::Read(fd.as_fd().as_raw_fd()),
        flags,
        std::ptr::null_mut(),
    )
}

/// Sleeps until a folder change, a watched process's exit, the notifier, or
/// `timeout`, whichever is first.
pub(crate) fn sleep(
    watch: Option<&Watch>,
    holders: &[&ExitWatch],
    cancel: Option<&Notifier>,
    timeout: Duration,
    _relevant: Option<&[Vec<u8>]>,
) -> io::Result<Wake> {
    let own;
    let kq = match watch {
        Some(w) => &w.kq,
        None => {
            own = kqueue::kqueue().map_err(errno_io)?;
            &own
        }
    };
    let live: Vec<&ExitWatch> = holders
        .iter()
        .copied()
        .filter(|h| !h.fired.load(Ordering::Relaxed))
        .collect();
    let add = EventFlags::ADD | EventFlags::RECEIPT;
    let mut changes = Vec::with_capacity(1 + live.len());
    if let Some(n) = cancel {
        changes.push(read_event(&n.read, add));
    }
    changes.extend(
        live.iter()
            .filter_map(|h| proc_event(h.pid, add | EventFlags::ONESHOT)),
    );
    let woke = register(kq, &changes).and_then(|_| {
        // Registered (or refused: ESRCH when it has already exited, EACCES
        // when it is not ours to see). Now the PID must still name the
        // process we meant; if not, wake to judge again. One that could
        // not be registered but is still there is left to the timer.
        if let Some(h) = live
            .iter()
            .find(|h| crate::liveness::start_of(h.pid) != Some(h.start))
        {
            h.fired.store(true, Ordering::Relaxed);
            return Ok(Wake::Process);
        }
        wait(kq, timeout, &live)
    });
    // Take out what this sleep added (errors: already gone, as a fired
    // one-shot is).
    let del = EventFlags::DELETE | EventFlags::RECEIPT;
    let mut undo = Vec::with_capacity(changes.len());
    if let Some(n) = cancel {
        undo.push(read_event(&n.read, del));
    }
    undo.extend(live.iter().filter_map(|h| proc_event(h.pid, del)));
    let _ = register(kq, &undo);
    woke
}

fn wait(kq: &OwnedFd, timeout: Duration, live: &[&ExitWatch]) -> io::Result<Wake> {
    let mut events: Vec<Event> = Vec::with_capacity(8);
    // SAFETY: no changes are passed; see `register` for what is registered.
    match unsafe { kqueue::kevent(kq, &[], &mut events, Some(timeout)) } {
        Ok(_) => {}
        Err(Errno::INTR) => return Ok(Wake::Timer),
        Err(e) => return Err(errno_io(e)),
    }
    let mut woke = Wake::Timer;
    for ev in &events {
        match ev.filter() {
            EventFilter::Read(_) => return Ok(Wake::Cancel),
            EventFilter::Proc { pid, .. } => {
                let pid = pid.as_raw_nonzero().get() as u32;
                for h in live.iter().filter(|h| h.pid == pid) {
                    h.fired.store(true, Ordering::Relaxed);
                }
                woke = Wake::Process;
            }
            EventFilter::Vnode { .. } if woke == Wake::Timer => woke = Wake::Event,
            _ => {}
        }
    }
    Ok(woke)
}
