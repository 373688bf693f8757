//! Platforms without a change-notification backend in this build: no folder
//! events and no exit watches; a sleep lasts its timeout unless cancelled.
//! The caller then re-checks on its backoff timer, which is correct, only
//! slower to notice a release.

use super::Wake;
use crate::store::Folder;
use std::io;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Wakes a sleeping waiter from another thread.
pub(crate) struct Notifier {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl Notifier {
    pub fn new() -> io::Result<Notifier> {
        Ok(Notifier {
            inner: Arc::new((Mutex::new(false), Condvar::new())),
        })
    }

    pub fn notify(&self) {
        let (flag, cv) = &*self.inner;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
    }
}

/// No folder events here.
pub(crate) struct Watch;

impl Watch {
    pub fn new(_folder: &Folder) -> io::Result<Watch> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "no folder change notification on this platform",
        ))
    }
}

/// No exit watches here.
pub(crate) struct ExitWatch;

pub(crate) fn watch_process(_pid: u32, _start: u64) -> Option<ExitWatch> {
    None
}

pub(crate) fn sleep(
    _watch: Option<&Watch>,
    _exits: &[&ExitWatch],
    cancel: Option<&Notifier>,
    timeout: Duration,
    _relevant: Option<&[Vec<u8>]>,
) -> io::Result<Wake> {
    let Some(n) = cancel else {
        std::thread::sleep(timeout);
        return Ok(Wake::Timer);
    };
    let deadline = Instant::now().checked_add(timeout);
    let (flag, cv) = &*n.inner;
    let mut set = flag.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if *set {
            return Ok(Wake::Cancel);
        }
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        if left.is_zero() {
            return Ok(Wake::Timer);
        }
        set = cv
            .wait_timeout(set, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}
