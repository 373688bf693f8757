//! Windows: a change notification on the folder
//! (`FindFirstChangeNotificationW`, file and directory names: an entry
//! created, removed or renamed), a handle per watched process (signalled
//! once it has exited) and a manual-reset event for cancellation, all in
//! one `WaitForMultipleObjects`.
//!
//! A process is watched through a handle, which names one process for as
//! long as it is open: it is checked once, on opening, to be the process of
//! the expected creation time, so a reused PID is never watched by mistake.
//! Change notifications carry no names, so every change of the folder wakes
//! the waiter (Linux filters by name).

#![allow(unsafe_code)]

use super::Wake;
use crate::error::Op;
use crate::fault;
use crate::store::Folder;
use std::io;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use windows_sys::Win32::Foundation::{
    HANDLE, INVALID_HANDLE_VALUE, WAIT_FAILED, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Storage::FileSystem::{
    FindCloseChangeNotification, FindFirstChangeNotificationW, FindNextChangeNotification,
    FILE_NOTIFY_CHANGE_DIR_NAME, FILE_NOTIFY_CHANGE_FILE_NAME,
};
use windows_sys::Win32::System::Threading::{
    CreateEventW, OpenProcess, SetEvent, WaitForMultipleObjects, INFINITE,
    PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE,
};

/// `WaitForMultipleObjects` waits on at most this many handles.
const MAXIMUM_WAIT_OBJECTS: usize = 64;

/// Wakes a blocked waiter from another thread: a manual-reset event that
/// stays signalled once set, so every waiter sharing it wakes.
pub(crate) struct Notifier {
    event: OwnedHandle,
}

impl Notifier {
    pub fn new() -> io::Result<Notifier> {
        // SAFETY: default security, manual reset, not signalled, unnamed.
        let h = unsafe { CreateEventW(std::ptr::null(), 1, 0, std::ptr::null()) };
        if h.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(Notifier {
            // SAFETY: `h` is a new event handle that nothing else owns.
            event: unsafe { OwnedHandle::from_raw_handle(h) },
        })
    }

    pub fn notify(&self) {
        // SAFETY: an event handle we own.
        unsafe { SetEvent(self.event.as_raw_handle()) };
    }
}

/// A change-notification handle, closed with `FindCloseChangeNotification`
/// (not `CloseHandle`).
struct ChangeHandle(HANDLE);

// SAFETY: the handle is a kernel object reference, usable from any thread;
// the only operations on it (wait, re-arm, close) are thread-safe.
unsafe impl Send for ChangeHandle {}
// SAFETY: as above; concurrent waits on one notification are allowed.
unsafe impl Sync for ChangeHandle {}

impl Drop for ChangeHandle {
    fn drop(&mut self) {
        // SAFETY: a change-notification handle we own, closed once.
        unsafe { FindCloseChangeNotification(self.0) };
    }
}

/// A change notification on the lock folder (names created, removed,
/// renamed). Hints only: the caller re-lists on a timer as well.
pub(crate) struct Watch {
    change: ChangeHandle,
}

impl Watch {
    pub fn new(folder: &Folder) -> io::Result<Watch> {
        fault::check(Op::Watch, b"")?;
        let path = crate::store::verbatim_wide(folder.abs_path());
        // SAFETY: `path` is a NUL-terminated wide string; not recursive.
        let h = unsafe {
            FindFirstChangeNotificationW(
                path.as_ptr(),
                0,
                FILE_NOTIFY_CHANGE_FILE_NAME | FILE_NOTIFY_CHANGE_DIR_NAME,
            )
        };
        if h == INVALID_HANDLE_VALUE || h.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(Watch {
            change: ChangeHandle(h),
        })
    }
}

/// A handle on a watched process, signalled once it has exited. It wakes a
/// waiter once; after that the re-check timer covers it.
pub(crate) struct ExitWatch {
    process: OwnedHandle,
    fired: AtomicBool,
}

/// Opens `pid` for waiting and checks that the handle names the process
/// created at `start` (a FILETIME).
pub(crate) fn watch_process(pid: u32, start: u64) -> Option<ExitWatch> {
    // SAFETY: plain call; null is failure, anything else a handle we own.
    let h = unsafe {
        OpenProcess(
            PROCESS_SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION,
            0,
            pid,
        )
    };
    if h.is_null() {
        return None;
    }
    // SAFETY: `h` is a valid process handle that nothing else owns.
    let process = unsafe { OwnedHandle::from_raw_handle(h) };
    (crate::liveness::creation_time(&process) == Some(start)).then_some(ExitWatch {
        process,
        fired: AtomicBool::new(false),
    })
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
    let deadline = Instant::now().checked_add(timeout);
    let mut handles: Vec<HANDLE> = Vec::with_capacity(2 + holders.len());
    if let Some(n) = cancel {
        handles.push(n.event.as_raw_handle());
    }
    let watch_at = handles.len();
    if let Some(w) = watch {
        handles.push(w.change.0);
    }
    let procs_at = handles.len();
    let live: Vec<&ExitWatch> = holders
        .iter()
        .copied()
        .filter(|h| !h.fired.load(Ordering::Relaxed))
        .take(MAXIMUM_WAIT_OBJECTS - procs_at)
        .collect();
    handles.extend(live.iter().map(|h| h.process.as_raw_handle()));
    let left = match deadline {
        Some(d) => d.saturating_duration_since(Instant::now()),
        None => Duration::from_secs(3600),
    };
    // Round up to whole milliseconds, so a short slice is not a busy loop.
    let ms = u32::try_from(left.as_micros().div_ceil(1000))
        .unwrap_or(INFINITE - 1)
        .min(INFINITE - 1);
    if handles.is_empty() {
        std::thread::sleep(left);
        return Ok(Wake::Timer);
    }
    // SAFETY: `handles` holds `handles.len()` (at most 64) open handles,
    // each borrowed from an object that outlives this call.
    let r = unsafe { WaitForMultipleObjects(handles.len() as u32, handles.as_ptr(), 0, ms) };
    if r == WAIT_TIMEOUT {
        return Ok(Wake::Timer);
    }
    if r == WAIT_FAILED {
        return Err(io::Error::last_os_error());
    }
    let i = r.wrapping_sub(WAIT_OBJECT_0) as usize;
    if i >= handles.len() {
        // WAIT_ABANDONED_* (mutexes only) or anything unexpected: re-check.
        return Ok(Wake::Timer);
    }
    if cancel.is_some() && i == 0 {
        return Ok(Wake::Cancel);
    }
    if let Some(w) = watch.filter(|_| i == watch_at) {
        // Re-arm: changes made since are recorded and signal it again.
        // SAFETY: a change-notification handle we hold.
        if unsafe { FindNextChangeNotification(w.change.0) } == 0 {
            return Err(io::Error::last_os_error());
        }
        return Ok(Wake::Event);
    }
    if let Some(h) = i.checked_sub(procs_at).and_then(|k| live.get(k)) {
        h.fired.store(true, Ordering::Relaxed);
    }
    Ok(Wake::Process)
}
