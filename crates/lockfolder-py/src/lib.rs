//! `lockfolder._lockfolder`: the native half of the `lockfolder` Python
//! package. Everything that decides anything lives in the `lockfolder` crate;
//! this file translates arguments, errors and the GIL.
//!
//! * Blocking waits run in slices of [`SLICE`] with the GIL released, and
//!   check for signals between slices, so Ctrl-C interrupts a wait promptly.
//!   The `Waiter` keeps its place in the queue across slices, and dropping it
//!   (on an exception) withdraws its bid.
//! * Async waits run on a Rust thread that never touches Python; it signals
//!   completion through a socket the event loop watches (`PendingAcquire`):
//!   a Unix socket pair, or a loopback TCP pair on Windows.
//! * One `LockFolder` object may be shared by threads and asyncio tasks:
//!   each acquisition is a guard of its own, owned by the thread (or task)
//!   that made it, and `release()` releases the caller's own.
//! * Errors of the core map onto the exception classes of
//!   `python/lockfolder/_errors.py` and onto `OSError` subclasses chosen by
//!   errno, as `open()` does (errors made in Rust get the errno of their
//!   `ErrorKind`).

#![forbid(unsafe_code)]

use lockfolder::{CancelToken, Error, Holder, LockFolder, LockGuard, Mode};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a blocking wait runs without the GIL before it checks for
/// signals. Ctrl-C is therefore noticed within this (plus one check).
const SLICE: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------- errors ---

/// Builds an instance of one of the exception classes of `lockfolder._errors`.
fn lock_error<'py, A>(py: Python<'py>, class: &str, args: A) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    let made = py
        .import("lockfolder._errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.call1(args));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// The text of an OS error without Rust's " (os error N)" suffix: Python
/// prints the errno itself.
fn strerror(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// The errno that an `ErrorKind` stands for, for errors made in Rust rather
/// than returned by a system call (they carry a kind but no raw errno: the
/// core reports "the lock folder was removed or replaced" as `NotFound`).
/// Kinds with no errno of their own give None.
fn kind_errno(kind: std::io::ErrorKind) -> Option<i32> {
    use std::io::ErrorKind as K;
    Some(match kind {
        K::NotFound => libc::ENOENT,
        K::PermissionDenied => libc::EACCES,
        K::AlreadyExists => libc::EEXIST,
        K::NotADirectory => libc::ENOTDIR,
        K::IsADirectory => libc::EISDIR,
        K::DirectoryNotEmpty => libc::ENOTEMPTY,
        K::ReadOnlyFilesystem => libc::EROFS,
        K::StorageFull => libc::ENOSPC,
        K::Interrupted => libc::EINTR,
        K::WouldBlock => libc::EAGAIN,
        K::TimedOut => libc::ETIMEDOUT,
        K::Unsupported => libc::EOPNOTSUPP,
        K::InvalidInput => libc::EINVAL,
        K::OutOfMemory => libc::ENOMEM,
        // Data that came back wrong (a short or malformed read): what C
        // programs report as an input/output error.
        K::InvalidData | K::UnexpectedEof | K::WriteZero => libc::EIO,
        _ => return None,
    })
}

/// What Python needs to pick the subclass of an `OSError`.
struct OsCode {
    errno: Option<i32>,
    /// Windows: the system's error code (`ERROR_ACCESS_DENIED`, ...), which
    /// is not an errno; Python maps it to one itself when given as
    /// `winerror`.
    winerror: Option<i32>,
}

impl OsCode {
    fn errno(errno: i32) -> OsCode {
        OsCode {
            errno: Some(errno),
            winerror: None,
        }
    }
}

/// The code Python should see for an I/O error: the system's, or the errno
/// its kind stands for.
fn code_of(e: &std::io::Error) -> OsCode {
    match e.raw_os_error() {
        #[cfg(windows)]
        Some(w) => OsCode {
            errno: None,
            winerror: Some(w),
        },
        #[cfg(not(windows))]
        Some(errno) => OsCode::errno(errno),
        None => OsCode {
            errno: kind_errno(e.kind()),
            winerror: None,
        },
    }
}

/// An `OSError` whose subclass Python picks from the errno (or the Windows
/// error code) (`PermissionError`, `FileNotFoundError`, ...), with `errno`,
/// `strerror` and `filename` set. Without an errno, `errno` is None (never
/// the message).
fn os_error(code: OsCode, msg: String, path: &std::path::Path) -> PyErr {
    // `filename` is a str, as in the OSErrors Python raises itself.
    let filename = path.as_os_str().to_os_string();
    match code.winerror {
        // OSError(errno, strerror, filename, winerror): with a winerror, the
        // errno argument is ignored.
        Some(w) => PyOSError::new_err((code.errno.unwrap_or(0), msg, filename, w)),
        None => PyOSError::new_err((code.errno, msg, filename)),
    }
}

fn to_py(py: Python<'_>, e: Error) -> PyErr {
    let path = e.path().to_path_buf();
    let text = e.to_string();
    match e {
        Error::Timeout { holder, .. } => lock_error(py, "LockTimeout", (text, path, holder)),
        Error::Cancelled { .. } => lock_error(py, "LockCancelled", (text, path)),
        Error::LockLost { .. } => lock_error(py, "LockLost", (text, path)),
        Error::SlotsMismatch { ours, theirs, .. } => {
            lock_error(py, "SlotsMismatch", (text, path, ours, theirs))
        }
        Error::NotADirectory { .. } => os_error(
            OsCode::errno(libc::ENOTDIR), // Python raises NotADirectoryError
            "open lock folder: not a directory".to_owned(),
            &path,
        ),
        Error::Io { op, source, .. } => os_error(
            code_of(&source),
            format!("{op}: {}", strerror(&source)),
            &path,
        ),
        Error::WithdrawFailed { source, .. } => os_error(
            code_of(&source),
            format!(
                "withdraw bid: {} (the bid is left behind until this process exits)",
                strerror(&source)
            ),
            &path,
        ),
        Error::InvalidInput { what, .. } => {
            PyValueError::new_err(format!("{}: {what}", path.display()))
        }
        Error::Unsupported { .. } => os_error(OsCode::errno(libc::EOPNOTSUPP), text, &path),
        Error::FilesystemRefused { name, .. } => {
            lock_error(py, "FilesystemRefused", (text, path, name))
        }
        Error::Refused { .. } => lock_error(py, "RemovalRefused", (text, path)),
        _ => lock_error(py, "LockError", (text, path)),
    }
}

/// Seconds from Python (None = no limit) into a duration; negative or NaN
/// values are refused rather than read as "forever".
fn seconds(timeout: Option<f64>) -> PyResult<Option<Duration>> {
    match timeout {
        None => Ok(None),
        Some(t) if t.is_nan() || t < 0.0 => Err(PyValueError::new_err(format!(
            "timeout must be a non-negative number of seconds or None, not {t}"
        ))),
        Some(t) => Ok(Duration::try_from_secs_f64(t).ok()), // too large: no limit
    }
}

/// The slot count from Python: a positive int that fits the bid's field.
/// Zero, negative and oversized counts are a `ValueError`, not an
/// `OverflowError` from the conversion.
fn slot_count(slots: i64) -> PyResult<u32> {
    match u32::try_from(slots) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(PyValueError::new_err(format!(
            "slots must be a whole number from 1 to {}, not {slots}",
            u32::MAX
        ))),
    }
}

/// The name Python sees for a mode.
fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Exclusive => "exclusive",
        Mode::Shared => "shared",
    }
}

// ---------------------------------------------------------- cancel token ---

/// Cancels a wait from another thread: `acquire(cancel=token)` raises
/// `LockCancelled` soon after `token.cancel()`, leaving no bid.
#[pyclass(
    frozen,
    skip_from_py_object,
    module = "lockfolder._lockfolder",
    name = "CancelToken"
)]
#[derive(Clone, Default)]
struct PyCancelToken {
    inner: CancelToken,
}

#[pymethods]
impl PyCancelToken {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Cancels every wait using this token, now and later.
    fn cancel(&self) {
        self.inner.cancel();
    }

    /// Whether `cancel()` has been called.
    #[getter]
    fn cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }

    fn __repr__(&self) -> String {
        format!("CancelToken(cancelled={})", self.inner.is_cancelled())
    }
}

// ---------------------------------------------------------------- holder ---

fn unix_seconds(t: Option<SystemTime>) -> Option<f64> {
    t.map(|t| match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    })
}

/// One entry of a lock folder, as `holders()` and `clean()` report it.
#[pyclass(frozen, get_all, module = "lockfolder._lockfolder", name = "Holder")]
struct PyHolder {
    name: String,
    path: PathBuf,
    kind: &'static str,
    state: &'static str,
    note: Option<String>,
    pid: Option<u32>,
    host: Option<String>,
    started: Option<f64>,
    acquired: Option<f64>,
    waiting_since: Option<f64>,
    mode: Option<&'static str>,
    slots: Option<u32>,
    label: Option<String>,
    command: Option<String>,
    blocks: bool,
    description: String,
    role: &'static str,
    stopped: bool,
    os: Option<String>,
    group: Option<u32>,
    lease: Option<f64>,
    renewed: Option<f64>,
    allowed_fs: Option<String>,
}

impl From<Holder> for PyHolder {
    fn from(h: Holder) -> Self {
        PyHolder {
            role: h.role.as_str(),
            stopped: h.stopped,
            os: h.os.clone(),
            group: h.group,
            lease: h.lease.map(|l| l.as_secs_f64()),
            renewed: unix_seconds(h.renewed),
            allowed_fs: h.allowed_fs.clone(),
            name: h.name.to_string_lossy().into_owned(),
            kind: h.kind.as_str(),
            state: h.state.as_str(),
            blocks: h.blocks(),
            description: h.describe(),
            started: unix_seconds(h.started),
            acquired: unix_seconds(h.acquired),
            waiting_since: unix_seconds(h.waiting_since),
            mode: h.mode.map(mode_name),
            slots: h.slots,
            path: h.path,
            note: h.note,
            pid: h.pid,
            host: h.host,
            label: h.label,
            command: h.command,
        }
    }
}

#[pymethods]
impl PyHolder {
    fn __repr__(&self) -> String {
        // Python's notation: None for absent values, quoted strings.
        fn opt<T: std::fmt::Debug>(v: &Option<T>) -> String {
            v.as_ref()
                .map_or_else(|| "None".to_owned(), |v| format!("{v:?}"))
        }
        format!(
            "Holder(name={:?}, state={:?}, kind={:?}, pid={}, host={}, mode={}, slots={})",
            self.name,
            self.state,
            self.kind,
            opt(&self.pid),
            opt(&self.host),
            opt(&self.mode),
            opt(&self.slots)
        )
    }

    fn __str__(&self) -> String {
        self.description.clone()
    }
}

fn holder_list(list: Vec<Holder>) -> Vec<PyHolder> {
    list.into_iter().map(PyHolder::from).collect()
}

/// The filesystem a lock folder lives on, and lockfolder's policy for it.
#[pyclass(
    frozen,
    get_all,
    module = "lockfolder._lockfolder",
    name = "Filesystem"
)]
struct PyFilesystem {
    /// `ext4`, `nfs4`, `fuse.sshfs`, ...
    name: String,
    /// `local`, `network`, `cluster`, `fuse` or `unknown`.
    kind: &'static str,
    source: Option<String>,
    options: Vec<String>,
    /// Whether lockfolder locks there (by evidence, or by opt-in).
    accepted: bool,
    /// Accepted only because of an explicit opt-in.
    opted_in: bool,
    /// The evidence, or why it is not shown safe.
    reason: &'static str,
}

#[pymethods]
impl PyFilesystem {
    fn __repr__(&self) -> String {
        format!(
            "Filesystem(name={:?}, kind={:?}, accepted={})",
            self.name,
            self.kind,
            if self.accepted { "True" } else { "False" }
        )
    }
}

fn filesystem_of(f: &LockFolder) -> PyFilesystem {
    let fs = f.filesystem();
    let p = f.filesystem_policy();
    PyFilesystem {
        name: fs.name.clone(),
        kind: fs.kind.as_str(),
        source: fs.source.clone(),
        options: fs.options.clone(),
        accepted: p.accepted,
        opted_in: p.opted_in,
        reason: p.reason,
    }
}

/// A lock folder at one moment (`LockFolder.status()`).
#[pyclass(frozen, get_all, module = "lockfolder._lockfolder", name = "Status")]
struct PyStatus {
    /// Every entry, in name order (queue order for bids and markers).
    entries: Vec<Py<PyHolder>>,
    /// Whether a new blocking acquisition would wait now.
    would_wait: bool,
    /// What it would wait for: entries that keep it out, then the waiters
    /// queued ahead of it.
    blockers: Vec<Py<PyHolder>>,
    /// Whether anything holds or blocks the lock (queued waiters aside).
    held: bool,
    filesystem: Py<PyFilesystem>,
}

#[pymethods]
impl PyStatus {
    fn __repr__(&self) -> String {
        format!(
            "Status(entries={}, held={}, would_wait={}, blockers={})",
            self.entries.len(),
            if self.held { "True" } else { "False" },
            if self.would_wait { "True" } else { "False" },
            self.blockers.len()
        )
    }
}

// ----------------------------------------------------------- lock folder ---

/// Who owns one acquisition of a `LockFolder` object. Every acquisition is a
/// bid (a guard) of its own; only its owner releases it through the object.
/// Threads and tasks are held by reference: a finished one's id could be
/// reused by a new one, the object itself cannot.
enum Owner {
    /// A thread that was not running an asyncio task (its `threading.Thread`).
    Thread(Py<PyAny>),
    /// An asyncio task.
    Task(Py<PyAny>),
    /// The whole process: the lockfolder 1.x functions, whose lock belongs
    /// to the process as in 1.0.2.
    Process,
}

impl Owner {
    fn is(&self, other: &Owner) -> bool {
        match (self, other) {
            (Owner::Thread(a), Owner::Thread(b)) | (Owner::Task(a), Owner::Task(b)) => a.is(b),
            (Owner::Process, Owner::Process) => true,
            _ => false,
        }
    }

    fn clone_ref(&self, py: Python<'_>) -> Owner {
        match self {
            Owner::Thread(t) => Owner::Thread(t.clone_ref(py)),
            Owner::Task(t) => Owner::Task(t.clone_ref(py)),
            Owner::Process => Owner::Process,
        }
    }

    /// Whether the thread has ended or the task finished (runs Python code;
    /// errors count as "still running").
    fn ended(&self, py: Python<'_>) -> bool {
        let (obj, method, when) = match self {
            Owner::Thread(t) => (t, "is_alive", false),
            Owner::Task(t) => (t, "done", true),
            Owner::Process => return false,
        };
        obj.bind(py)
            .call_method0(method)
            .and_then(|r| r.is_truthy())
            .is_ok_and(|r| r == when)
    }
}

/// The calling thread's `threading.Thread` object.
fn current_thread(py: Python<'_>) -> PyResult<Py<PyAny>> {
    static CURRENT_THREAD: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    Ok(CURRENT_THREAD
        .import(py, "threading", "current_thread")?
        .call0()?
        .unbind())
}

/// The asyncio task running in this thread, if any. `asyncio` is always
/// imported already (by `lockfolder._lock`), so this costs two calls.
fn current_task(py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
    static RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    static CURRENT_TASK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let running = RUNNING_LOOP
        .import(py, "asyncio", "_get_running_loop")?
        .call0()?;
    if running.is_none() {
        return Ok(None);
    }
    let task = CURRENT_TASK
        .import(py, "asyncio", "current_task")?
        .call1((running,))?;
    Ok((!task.is_none()).then(|| task.unbind()))
}

struct Held {
    /// Names this acquisition for the `Acquired` that `acquire()` returned.
    id: u64,
    guard: LockGuard,
    owner: Owner,
}

/// The native lock object; `lockfolder.LockFolder` subclasses it to add the
/// asyncio methods.
///
/// Locking discipline: the `held` mutex is never held while Python code may
/// run (a task's `done()`, the drop of a Python reference) or while the GIL
/// is released, so a thread waiting for it never blocks one that needs the
/// GIL to finish.
#[pyclass(
    frozen,
    subclass,
    module = "lockfolder._lockfolder",
    name = "LockFolder"
)]
struct PyLockFolder {
    folder: LockFolder,
    timeout: Option<f64>,
    label: Option<String>,
    /// Acquisitions are owned by the process rather than by threads and
    /// tasks (the 1.x compatibility module).
    per_process: bool,
    /// The acquisitions of this object, oldest first, at most one per owner.
    /// After `fork()` the child's copy still lists the parent's, which are
    /// not `owned_here()` and are ignored (their drop deletes nothing).
    held: Mutex<Vec<Held>>,
    next_id: AtomicU64,
}

impl PyLockFolder {
    fn held_list(&self) -> MutexGuard<'_, Vec<Held>> {
        // A panic while the mutex was held cannot leave the list in a broken
        // state, so poisoning is ignored.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The owner of an acquisition made now: the running asyncio task, else
    /// the thread.
    fn caller(&self, py: Python<'_>) -> PyResult<Owner> {
        if self.per_process {
            return Ok(Owner::Process);
        }
        Ok(match current_task(py)? {
            Some(task) => Owner::Task(task),
            None => Owner::Thread(current_thread(py)?),
        })
    }

    fn timeout_for(&self, timeout: Option<f64>) -> PyResult<Option<Duration>> {
        seconds(timeout.or(self.timeout))
    }

    /// The id of `me`'s acquisition. A caller that has none takes over the
    /// oldest acquisition whose thread or task has ended (nobody else could
    /// ever release it): that is how `await asyncio.wait_for(
    /// lock.acquire_async(), t)` works on Python < 3.12, which runs the wait
    /// in a task of its own.
    fn own(&self, py: Python<'_>, me: &Owner) -> Option<u64> {
        let others: Vec<(u64, Owner)> = {
            let list = self.held_list();
            let live = list.iter().filter(|h| h.guard.owned_here());
            if let Some(h) = live.clone().find(|h| h.owner.is(me)) {
                return Some(h.id);
            }
            live.map(|h| (h.id, h.owner.clone_ref(py))).collect()
        };
        // Unlocked: asking a thread or task whether it ended runs Python.
        for (id, owner) in others {
            if !owner.ended(py) {
                continue;
            }
            let previous = {
                let mut list = self.held_list();
                list.iter_mut()
                    .find(|h| h.id == id && h.owner.is(&owner))
                    .map(|h| std::mem::replace(&mut h.owner, me.clone_ref(py)))
            };
            if previous.is_some() {
                return Some(id); // `previous` is dropped here, unlocked
            }
        }
        None
    }

    /// Runs `f` on the live acquisition `id`.
    fn with_id<T>(&self, id: u64, f: impl FnOnce(&LockGuard) -> T) -> Option<T> {
        self.held_list()
            .iter()
            .find(|h| h.id == id && h.guard.owned_here())
            .map(|h| f(&h.guard))
    }

    /// Refuses a second acquisition by the owner of a current one.
    fn check_reentry(&self, py: Python<'_>, owner: &Owner) -> PyResult<()> {
        if self.own(py, owner).is_some() {
            return Err(PyRuntimeError::new_err(format!(
                "lock folder {}: this LockFolder is already held by the caller \
                 (it is not reentrant; use one object per nested acquisition. An \
                 acquisition whose thread or task ended passes to the next caller)",
                self.folder.path().display()
            )));
        }
        Ok(())
    }

    fn store(&self, guard: LockGuard, owner: Owner) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.held_list().push(Held { id, guard, owner });
        id
    }

    /// Releases the acquisition `id` (deletes its bid).
    fn release_id(&self, py: Python<'_>, id: u64) -> PyResult<()> {
        let held = {
            let mut list = self.held_list();
            match list.iter().position(|h| h.id == id && h.guard.owned_here()) {
                Some(i) => list.remove(i),
                None => {
                    return Err(PyRuntimeError::new_err(format!(
                        "lock folder {}: this acquisition was already released",
                        self.folder.path().display()
                    )))
                }
            }
        };
        let Held { guard, owner, .. } = held;
        drop(owner); // unlocked: it may be a Python reference
        py.detach(|| guard.release()).map_err(|e| to_py(py, e))
    }

    /// Releases `owner`'s acquisition. Nobody else's is touched: releasing
    /// from a thread or task that holds nothing is a `RuntimeError`.
    fn release_for(&self, py: Python<'_>, owner: &Owner) -> PyResult<()> {
        if let Some(id) = self.own(py, owner) {
            return self.release_id(py, id);
        }
        let path = self.folder.path().display();
        let (mine, inherited) = {
            let list = self.held_list();
            let mine = list.iter().filter(|h| h.guard.owned_here()).count();
            (mine, list.len() - mine)
        };
        let msg = if mine > 0 {
            format!(
                "lock folder {path}: release by a thread or task that does not hold this \
                 LockFolder (another one does; only the thread or asyncio task that \
                 acquired it can release it)"
            )
        } else if inherited > 0 {
            format!(
                "lock folder {path}: the lock belongs to the parent process; \
                 a forked child cannot release it"
            )
        } else {
            format!("lock folder {path}: release of a LockFolder that is not held")
        };
        Err(PyRuntimeError::new_err(msg))
    }

    fn acquire_blocking(
        &self,
        py: Python<'_>,
        owner: &Owner,
        timeout: Option<f64>,
        cancel: Option<&CancelToken>,
    ) -> PyResult<u64> {
        self.check_reentry(py, owner)?;
        let limit = self.timeout_for(timeout)?;
        let guard = self.wait_blocking(py, limit, cancel)?;
        Ok(self.store(guard, owner.clone_ref(py)))
    }

    /// Waits in slices with the GIL released, checking for signals between
    /// slices. Any early exit drops the waiter, which withdraws its bid.
    fn wait_blocking(
        &self,
        py: Python<'_>,
        timeout: Option<Duration>,
        cancel: Option<&CancelToken>,
    ) -> PyResult<LockGuard> {
        let start = Instant::now();
        let deadline = timeout.and_then(|t| start.checked_add(t));
        let mut waiter = self.folder.waiter();
        loop {
            let slice_end = Instant::now() + SLICE;
            let until = deadline.map_or(slice_end, |d| d.min(slice_end));
            match py.detach(|| waiter.wait(Some(until), cancel)) {
                Ok(Some(guard)) => return Ok(guard),
                Ok(None) => {}
                Err(e) => return Err(to_py(py, e)),
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let holder = waiter.blocker();
                waiter.abandon().map_err(|e| to_py(py, e))?;
                let err = Error::Timeout {
                    path: self.folder.path().to_path_buf(),
                    waited: start.elapsed(),
                    holder,
                };
                return Err(to_py(py, err));
            }
            py.check_signals()?;
        }
    }

    /// How many acquisitions of this object are held in this process.
    fn held_here(&self) -> usize {
        self.held_list()
            .iter()
            .filter(|h| h.guard.owned_here())
            .count()
    }
}

#[pymethods]
impl PyLockFolder {
    #[new]
    #[pyo3(signature = (path, *, timeout = None, label = None, shared = false, slots = 1, create = true, lease = None, fencing = false, allow_filesystem = None, _per_process = false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        timeout: Option<f64>,
        label: Option<String>,
        shared: bool,
        slots: i64,
        create: bool,
        lease: Option<f64>,
        fencing: bool,
        allow_filesystem: Option<Bound<'_, PyAny>>,
        _per_process: bool,
    ) -> PyResult<Self> {
        seconds(timeout)?;
        let slots = slot_count(slots)?;
        if shared && slots > 1 {
            return Err(PyValueError::new_err(format!(
                "a lock cannot be both shared and a semaphore (shared=True, slots={slots})"
            )));
        }
        let mut builder = LockFolder::builder(&path)
            .create(create)
            .shared(shared)
            .slots(slots);
        if let Some(l) = &label {
            builder = builder.label(l.clone());
        }
        if let Some(l) = lease {
            let l = seconds(Some(l))?.unwrap_or(Duration::MAX);
            builder = builder.lease(l);
        }
        if fencing {
            builder = builder.fencing(true);
        }
        // One name or a list of names.
        if let Some(a) = allow_filesystem {
            let names: Vec<String> = match a.extract::<String>() {
                Ok(one) => vec![one],
                Err(_) => a.extract()?,
            };
            for n in names {
                builder = builder.allow_filesystem(n);
            }
        }
        let folder = py.detach(|| builder.open()).map_err(|e| to_py(py, e))?;
        Ok(PyLockFolder {
            folder,
            timeout,
            label,
            per_process: _per_process,
            held: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// The lock folder.
    #[getter]
    fn path(&self) -> PathBuf {
        self.folder.path().to_path_buf()
    }

    /// The default timeout of `acquire()` and `with`, in seconds (None: wait
    /// as long as it takes).
    #[getter]
    fn timeout(&self) -> Option<f64> {
        self.timeout
    }

    /// The label stored in this object's bids.
    #[getter]
    fn label(&self) -> Option<String> {
        self.label.clone()
    }

    /// Whether this is a shared (reader) lock.
    #[getter]
    fn shared(&self) -> bool {
        self.folder.mode() == Mode::Shared
    }

    /// The slot count: how many holders may be in at once (1 unless the
    /// object was opened as a counting semaphore).
    #[getter]
    fn slots(&self) -> u32 {
        self.folder.slots()
    }

    /// Whether the caller (this thread, or the running asyncio task) holds
    /// the lock through this object. No I/O. False in a child forked while
    /// the parent held it: the child does not own that lock.
    #[getter]
    fn is_locked(&self, py: Python<'_>) -> PyResult<bool> {
        let me = self.caller(py)?;
        Ok(self.own(py, &me).is_some())
    }

    /// The bid file that is the caller's lock, while the caller holds it.
    #[getter]
    fn bid_path(&self, py: Python<'_>) -> PyResult<Option<PathBuf>> {
        let me = self.caller(py)?;
        Ok(self
            .own(py, &me)
            .and_then(|id| self.with_id(id, LockGuard::bid_path)))
    }

    /// Blocks until the lock is the caller's. The result may be used as a
    /// context manager that releases this acquisition:
    /// `with lock.acquire(timeout=5): ...`.
    #[pyo3(signature = (timeout = None, *, cancel = None))]
    fn acquire<'py>(
        slf: Bound<'py, Self>,
        timeout: Option<f64>,
        cancel: Option<PyRef<'py, PyCancelToken>>,
    ) -> PyResult<Acquired> {
        let py = slf.py();
        let me = slf.get();
        let owner = me.caller(py)?;
        let id = me.acquire_blocking(py, &owner, timeout, cancel.as_ref().map(|c| &c.inner))?;
        Ok(Acquired {
            lock: slf.into_any().unbind(),
            id,
        })
    }

    /// One check-bid-check attempt: True if the lock is now the caller's,
    /// False if someone else holds it.
    fn try_acquire(&self, py: Python<'_>) -> PyResult<bool> {
        let owner = self.caller(py)?;
        self.check_reentry(py, &owner)?;
        match py.detach(|| self.folder.try_lock()) {
            Ok(Some(guard)) => {
                self.store(guard, owner);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(to_py(py, e)),
        }
    }

    /// Releases the caller's lock (deletes its bid). `RuntimeError` if the
    /// caller holds none through this object.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let owner = self.caller(py)?;
        self.release_for(py, &owner)
    }

    /// Whether the caller's bid is still in the folder (False: the caller
    /// holds nothing, or the lock was lost).
    fn is_held(&self, py: Python<'_>) -> PyResult<bool> {
        let owner = self.caller(py)?;
        let id = self.own(py, &owner);
        match id.and_then(|id| self.with_id(id, LockGuard::is_held)) {
            Some(r) => r.map_err(|e| to_py(py, e)),
            None => Ok(false),
        }
    }

    /// The fencing token of the caller's acquisition (with `fencing=True` or
    /// a lease): larger than every earlier holder's. None when the caller
    /// holds nothing or the lock draws no tokens.
    #[getter]
    fn fencing_token(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        let me = self.caller(py)?;
        Ok(self
            .own(py, &me)
            .and_then(|id| self.with_id(id, LockGuard::fencing_token))
            .flatten())
    }

    /// Whether the caller's lease could not be renewed in time (False
    /// without a lease): the lock may be someone else's; stop and release.
    #[getter]
    fn lost(&self, py: Python<'_>) -> PyResult<bool> {
        let me = self.caller(py)?;
        Ok(self
            .own(py, &me)
            .and_then(|id| self.with_id(id, LockGuard::lost))
            .unwrap_or(false))
    }

    /// The filesystem the folder lives on and lockfolder's policy for it.
    #[getter]
    fn filesystem(&self) -> PyFilesystem {
        filesystem_of(&self.folder)
    }

    /// The folder at this moment: every entry, whether a new blocking
    /// acquisition would wait and for what. Nothing is changed.
    fn status(&self, py: Python<'_>) -> PyResult<PyStatus> {
        let st = py
            .detach(|| self.folder.status())
            .map_err(|e| to_py(py, e))?;
        let list = |v: Vec<Holder>| -> PyResult<Vec<Py<PyHolder>>> {
            v.into_iter()
                .map(|h| Py::new(py, PyHolder::from(h)))
                .collect()
        };
        let held = st.held();
        Ok(PyStatus {
            would_wait: st.would_wait,
            held,
            entries: list(st.entries)?,
            blockers: list(st.blockers)?,
            filesystem: Py::new(py, filesystem_of(&self.folder))?,
        })
    }

    /// Whether a new blocking acquisition would have to wait now (the lock
    /// is held in a way that conflicts with this object's mode and slots,
    /// or live waiters are queued ahead).
    fn would_wait(&self, py: Python<'_>) -> PyResult<bool> {
        py.detach(|| self.folder.status())
            .map(|st| st.would_wait)
            .map_err(|e| to_py(py, e))
    }

    /// Removes the entry `name` on an operator's say-so, for what no proof
    /// can settle (a container killed as a whole, a host gone for good).
    /// `RemovalRefused` for anything not named like a bid and for the bid of
    /// a process this machine sees alive. Returns what was removed.
    fn remove_forced(&self, py: Python<'_>, name: OsString) -> PyResult<PyHolder> {
        py.detach(|| self.folder.remove_forced(&name))
            .map(PyHolder::from)
            .map_err(|e| to_py(py, e))
    }

    /// Whether anyone holds the lock: an entry of the folder that keeps an
    /// exclusive acquisition out (a live or foreign bid, this object's own
    /// included, or a file that is not a bid).
    fn held_by_anyone(&self, py: Python<'_>) -> PyResult<bool> {
        py.detach(|| self.folder.is_locked())
            .map_err(|e| to_py(py, e))
    }

    /// Every entry of the folder and its state; nothing is changed.
    fn holders(&self, py: Python<'_>) -> PyResult<Vec<PyHolder>> {
        py.detach(|| self.folder.holders())
            .map(holder_list)
            .map_err(|e| to_py(py, e))
    }

    /// Removes stale bids (and temporaries of dead writers); returns them.
    fn clean(&self, py: Python<'_>) -> PyResult<Vec<PyHolder>> {
        py.detach(|| self.folder.clean())
            .map(holder_list)
            .map_err(|e| to_py(py, e))
    }

    /// Judges the entry `name` of the folder and removes it if it is a stale
    /// bid (lockfolder 1.x's `challenge`). Returns whether it was removed.
    fn challenge(&self, py: Python<'_>, name: OsString) -> PyResult<bool> {
        py.detach(|| self.folder.challenge(&name))
            .map_err(|e| to_py(py, e))
    }

    fn __enter__<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let me = slf.get();
        let owner = me.caller(py)?;
        me.acquire_blocking(py, &owner, None, None)?;
        Ok(slf)
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.release(py)?;
        Ok(false)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        let class = slf.get_type().qualname()?;
        let me = slf.get();
        let kind = match (me.folder.mode(), me.folder.slots()) {
            (_, n) if n > 1 => format!(" slots={n}"),
            (Mode::Shared, _) => " shared".to_owned(),
            _ => String::new(),
        };
        Ok(format!(
            "<{class} {:?}{kind} held={}>",
            me.folder.path().display().to_string(),
            me.held_here()
        ))
    }

    /// Starts an asynchronous wait on a Rust thread (used by `acquire_async`)
    /// for the caller (the running task).
    #[pyo3(signature = (timeout, cancel))]
    fn _start_wait(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        cancel: PyRef<'_, PyCancelToken>,
    ) -> PyResult<PendingAcquire> {
        let owner = self.caller(py)?;
        self.check_reentry(py, &owner)?;
        let limit = self.timeout_for(timeout)?;
        let deadline = limit.and_then(|t| Instant::now().checked_add(t));
        let (reader, mut writer) = completion::pair()?;
        reader.set_nonblocking(true)?;
        let result: Arc<Mutex<Option<lockfolder::Result<LockGuard>>>> = Arc::default();
        let folder = self.folder.clone();
        let token = cancel.inner.clone();
        let out = result.clone();
        let thread = std::thread::Builder::new()
            .name("lockfolder-wait".to_owned())
            .spawn(move || {
                let r = folder.lock_with(deadline, Some(&token));
                *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                // The event loop watches the other end; closing ours is enough,
                // the byte just makes the wake-up explicit.
                let _ = writer.write_all(b"!");
            })?;
        Ok(PendingAcquire {
            result,
            thread: Mutex::new(Some(thread)),
            reader,
            cancel: cancel.inner.clone(),
            owner,
        })
    }

    /// Takes the outcome of a finished asynchronous wait: stores the lock
    /// for the task that started it, or raises what the wait raised.
    fn _finish_wait(&self, py: Python<'_>, pending: &PendingAcquire) -> PyResult<()> {
        match pending.take(py)? {
            Ok(guard) => {
                self.store(guard, pending.owner.clone_ref(py));
                Ok(())
            }
            Err(e) => Err(to_py(py, e)),
        }
    }
}

/// What `acquire()` returns: a context manager that releases this very
/// acquisition on exit (wherever the block ends), so `with
/// lock.acquire(timeout=5):` neither waits twice nor leaks.
#[pyclass(frozen, module = "lockfolder._lockfolder", name = "Acquired")]
struct Acquired {
    lock: Py<PyAny>,
    id: u64,
}

#[pymethods]
impl Acquired {
    /// The lock that was acquired.
    #[getter]
    fn lock(&self, py: Python<'_>) -> Py<PyAny> {
        self.lock.clone_ref(py)
    }

    fn __enter__(&self, py: Python<'_>) -> Py<PyAny> {
        self.lock.clone_ref(py)
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        let lock = self.lock.bind(py).cast::<PyLockFolder>()?;
        lock.get().release_id(py, self.id)?;
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("<Acquired {}>", self.lock.bind(py).repr()?))
    }
}

/// An asynchronous wait in progress. `fileno()` becomes readable when it has
/// finished. Dropping it cancels the wait and releases a lock it obtained.
#[pyclass(frozen, module = "lockfolder._lockfolder", name = "PendingAcquire")]
struct PendingAcquire {
    result: Arc<Mutex<Option<lockfolder::Result<LockGuard>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    reader: completion::Stream,
    cancel: CancelToken,
    /// Who the lock will belong to.
    owner: Owner,
}

impl PendingAcquire {
    /// Waits (GIL released) for the thread to end and takes its result.
    fn take(&self, py: Python<'_>) -> PyResult<lockfolder::Result<LockGuard>> {
        self.join(py);
        let r = self.result.lock().unwrap_or_else(|p| p.into_inner()).take();
        r.ok_or_else(|| PyRuntimeError::new_err("the outcome of this wait was already taken"))
    }

    fn join(&self, py: Python<'_>) {
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            // The thread only runs Rust code; a panic there is reported as the
            // result being absent.
            let _ = py.detach(|| h.join());
        }
    }
}

#[pymethods]
impl PendingAcquire {
    /// The socket to watch for readability: a file descriptor on Unix, a
    /// `SOCKET` on Windows (`loop.add_reader`, or `loop.sock_recv` on a
    /// `socket.socket(fileno=socket.dup(...))`, which asyncio's Proactor
    /// loop on Windows supports too).
    fn fileno(&self) -> u64 {
        completion::fileno(&self.reader)
    }

    /// Whether the wait has finished.
    fn done(&self) -> bool {
        let mut b = [0u8; 1];
        let _ = (&self.reader).read(&mut b);
        self.result
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Cancels the wait, waits for its thread to end, and releases the lock
    /// if the wait had obtained it just before. Leaves no bid behind.
    fn abandon(&self, py: Python<'_>) -> PyResult<()> {
        self.cancel.cancel();
        match self.take(py) {
            Ok(Ok(guard)) => py.detach(|| guard.release()).map_err(|e| to_py(py, e)),
            Ok(Err(_)) | Err(_) => Ok(()),
        }
    }
}

impl Drop for PendingAcquire {
    fn drop(&mut self) {
        // Nobody will collect the outcome: stop the thread. The thread drops a
        // guard it obtained anyway, which releases the lock.
        self.cancel.cancel();
    }
}

/// The socket pair through which a waiting thread tells the event loop it
/// has finished: a Unix socket pair, or on Windows (which has no socket
/// pair) a loopback TCP connection, made and checked here. Both are
/// sockets, which every asyncio loop can wait on.
mod completion {
    #[cfg(unix)]
    pub type Stream = std::os::unix::net::UnixStream;
    #[cfg(windows)]
    pub type Stream = std::net::TcpStream;

    #[cfg(unix)]
    pub fn pair() -> std::io::Result<(Stream, Stream)> {
        Stream::pair()
    }

    /// A listener on an ephemeral loopback port, a connection to it, and
    /// the accepted end, which must be that very connection (another local
    /// process could connect first: such a stranger is dropped).
    #[cfg(windows)]
    pub fn pair() -> std::io::Result<(Stream, Stream)> {
        use std::net::{Ipv4Addr, TcpListener};
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let writer = Stream::connect(listener.local_addr()?)?;
        let ours = writer.local_addr()?;
        for _ in 0..8 {
            let (reader, from) = listener.accept()?;
            if from == ours {
                writer.set_nodelay(true)?;
                return Ok((reader, writer));
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "could not make a loopback socket pair: other connections kept arriving",
        ))
    }

    #[cfg(unix)]
    pub fn fileno(s: &Stream) -> u64 {
        use std::os::fd::AsRawFd;
        s.as_raw_fd() as u64
    }

    #[cfg(windows)]
    pub fn fileno(s: &Stream) -> u64 {
        use std::os::windows::io::AsRawSocket;
        s.as_raw_socket()
    }
}

// ------------------------------------------------------------ functions ---

/// Runs the `lockfolder` command line tool (the same code as the Rust
/// binary) with `argv` (program name first); returns its exit status.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<OsString>) -> i32 {
    py.detach(|| lockfolder_cli::main_from_args(argv))
}

#[pymodule]
fn _lockfolder(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("RECHECK_SECONDS", lockfolder::RECHECK.as_secs_f64())?;
    m.add("WAIT_SLICE_SECONDS", SLICE.as_secs_f64())?;
    m.add_class::<PyLockFolder>()?;
    m.add_class::<PyHolder>()?;
    m.add_class::<PyStatus>()?;
    m.add_class::<PyFilesystem>()?;
    m.add_class::<PyCancelToken>()?;
    m.add_class::<PendingAcquire>()?;
    m.add_class::<Acquired>()?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    Ok(())
}
