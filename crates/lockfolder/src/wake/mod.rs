//! Sleeping until something may have changed: the folder (an entry created,
//! removed or renamed), the exit of a process we wait for, a cancellation
//! from another thread, or a timeout. One implementation per platform,
//! selected here.
//!
//! Notifications are hints only. Correctness never depends on them: every
//! wake-up leads to a full check, and the caller never sleeps longer than a
//! short re-check period.

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::{sleep, watch_process, ExitWatch, Notifier, Watch};

#[cfg(not(target_os = "linux"))]
mod timer;
#[cfg(not(target_os = "linux"))]
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
