//! Sleeping until something may have changed: the folder (an entry created,
//! removed or renamed), the exit of a process we wait for, a cancellation
//! from another thread, or a timeout. One implementation per platform,
//! selected here.
//!
//! Notifications are hints only. Correctness never depends on them: every
//! wake-up leads to a full check, and the caller never sleeps longer than a
//! short re-check period.
//!
//! `linux.rs`: inotify, pidfd, eventfd. `bsd.rs`, shared by macOS and
//! FreeBSD: one kqueue with `EVFILT_VNODE` on the folder, `EVFILT_PROC` per
//! watched process and `EVFILT_READ` on a pipe for cancellation.
//! `windows.rs`: a change notification on the folder, process handles and a
//! manual-reset event in one `WaitForMultipleObjects`. `timer.rs`: nothing
//! but the timer, elsewhere.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::{sleep, watch_process, ExitWatch, Notifier, Watch};

#[cfg(any(target_os = "macos", target_os = "freebsd"))]
mod bsd;
#[cfg(any(target_os = "macos", target_os = "freebsd"))]
pub(crate) use bsd::{sleep, watch_process, ExitWatch, Notifier, Watch};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{sleep, watch_process, ExitWatch, Notifier, Watch};

#[cfg(not(any(
    target_os = "linux",
    target_os = "macos",
    target_os = "freebsd",
    windows
)))]
mod timer;
#[cfg(not(any(
    target_os = "linux",
    target_os = "macos",
    target_os = "freebsd",
    windows
)))]
pub(crate) use timer::{sleep, watch_process, ExitWatch, Notifier, Watch};

/// Why a sleep ended.
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
