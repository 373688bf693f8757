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
//! * Errors of the core map onto the exception classes of
//!   `python/lockfolder/_errors.py` and onto `OSError` subclasses chosen by
//!   errno, as `open()` does.

#![forbid(unsafe_code)]

use lockfolder::{CancelToken, Error, Holder, LockFolder, LockGuard, Mode};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{JoinHandle, ThreadId};
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

/// An `OSError` whose subclass Python picks from the errno
/// (`PermissionError`, `FileNotFoundError`, ...), with `filename` set.
fn os_error(errno: Option<i32>, msg: String, path: &std::path::Path) -> PyErr {
    // `filename` is a str, as in the OSErrors Python raises itself.
    let filename = path.as_os_str().to_os_string();
    match errno {
        Some(n) => PyOSError::new_err((n, msg, filename)),
        None => PyOSError::new_err((msg, filename)),
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
            Some(20), // ENOTDIR: Python raises NotADirectoryError
            "open lock folder: not a directory".to_owned(),
            &path,
        ),
        Error::Io { op, source, .. } => os_error(
            source.raw_os_error(),
            format!("{op}: {}", strerror(&source)),
            &path,
        ),
        Error::WithdrawFailed { source, .. } => os_error(
            source.raw_os_error(),
            format!(
                "withdraw bid: {} (the bid is left behind until this process exits)",
                strerror(&source)
            ),
            &path,
        ),
        Error::InvalidInput { what, .. } => {
            PyValueError::new_err(format!("{}: {what}", path.display()))
        }
        Error::Unsupported { .. } => os_error(Some(95), text, &path), // EOPNOTSUPP
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
}

impl From<Holder> for PyHolder {
    fn from(h: Holder) -> Self {
        PyHolder {
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

// ----------------------------------------------------------- lock folder ---

/// Who took the lock held by a `LockFolder` object: re-acquiring from the
/// same thread (or asyncio task) is a programming error, not a wait.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Owner {
    Thread(ThreadId),
    Task(u64),
}

struct Held {
    guard: LockGuard,
    owner: Owner,
}

/// The native lock object; `lockfolder.LockFolder` subclasses it to add the
/// asyncio methods.
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
    held: Mutex<Option<Held>>,
}

impl PyLockFolder {
    fn slot(&self) -> MutexGuard<'_, Option<Held>> {
        // A panic while the mutex was held cannot leave `Option<Held>` in a
        // broken state, so poisoning is ignored.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn timeout_for(&self, timeout: Option<f64>) -> PyResult<Option<Duration>> {
        seconds(timeout.or(self.timeout))
    }

    /// Refuses a second acquisition by the owner of the current one.
    fn check_reentry(&self, me: Owner) -> PyResult<()> {
        let slot = self.slot();
        if let Some(h) = slot.as_ref() {
            if h.guard.owned_here() && h.owner == me {
                return Err(PyRuntimeError::new_err(format!(
                    "lock folder {}: this LockFolder is already held by the caller \
                     (it is not reentrant; use one object per nested acquisition)",
                    self.folder.path().display()
                )));
            }
        }
        Ok(())
    }

    fn store(&self, guard: LockGuard, owner: Owner) {
        // Another thread's guard can only still be here if its lock was lost
        // (its bid deleted by someone else) and it never released; dropping it
        // removes nothing of ours.
        *self.slot() = Some(Held { guard, owner });
    }

    fn acquire_blocking(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        cancel: Option<&CancelToken>,
    ) -> PyResult<()> {
        let owner = Owner::Thread(std::thread::current().id());
        self.check_reentry(owner)?;
        let limit = self.timeout_for(timeout)?;
        let guard = self.wait_blocking(py, limit, cancel)?;
        self.store(guard, owner);
        Ok(())
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
}

#[pymethods]
impl PyLockFolder {
    #[new]
    #[pyo3(signature = (path, *, timeout = None, label = None, shared = false, slots = 1, create = true))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        timeout: Option<f64>,
        label: Option<String>,
        shared: bool,
        slots: i64,
        create: bool,
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
        let folder = py.detach(|| builder.open()).map_err(|e| to_py(py, e))?;
        Ok(PyLockFolder {
            folder,
            timeout,
            label,
            held: Mutex::new(None),
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

    /// Whether this object holds the lock in this process. False in a child
    /// forked while the parent held it: the child does not own that lock.
    #[getter]
    fn locked(&self) -> bool {
        self.slot().as_ref().is_some_and(|h| h.guard.owned_here())
    }

    /// The bid file that is the lock, while this object holds it.
    #[getter]
    fn bid_path(&self) -> Option<PathBuf> {
        self.slot()
            .as_ref()
            .filter(|h| h.guard.owned_here())
            .map(|h| h.guard.bid_path())
    }

    /// Blocks until the lock is ours. The result may be used as a context
    /// manager that releases it: `with lock.acquire(timeout=5): ...`.
    #[pyo3(signature = (timeout = None, *, cancel = None))]
    fn acquire<'py>(
        slf: Bound<'py, Self>,
        timeout: Option<f64>,
        cancel: Option<PyRef<'py, PyCancelToken>>,
    ) -> PyResult<Acquired> {
        slf.get()
            .acquire_blocking(slf.py(), timeout, cancel.as_ref().map(|c| &c.inner))?;
        Ok(Acquired {
            lock: slf.into_any().unbind(),
        })
    }

    /// One check-bid-check attempt: True if the lock is now ours, False if
    /// someone else holds it.
    fn try_acquire(&self, py: Python<'_>) -> PyResult<bool> {
        let owner = Owner::Thread(std::thread::current().id());
        self.check_reentry(owner)?;
        match py.detach(|| self.folder.try_lock()) {
            Ok(Some(guard)) => {
                self.store(guard, owner);
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(to_py(py, e)),
        }
    }

    /// Releases the lock (deletes our bid).
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let held = {
            let mut slot = self.slot();
            match slot.as_ref() {
                None => {
                    return Err(PyRuntimeError::new_err(format!(
                        "lock folder {}: release of a LockFolder that is not held",
                        self.folder.path().display()
                    )))
                }
                Some(h) if !h.guard.owned_here() => {
                    return Err(PyRuntimeError::new_err(format!(
                        "lock folder {}: the lock belongs to the parent process; \
                         a forked child cannot release it",
                        self.folder.path().display()
                    )))
                }
                Some(_) => slot.take(),
            }
        };
        match held {
            Some(h) => py.detach(|| h.guard.release()).map_err(|e| to_py(py, e)),
            None => Ok(()),
        }
    }

    /// Whether our bid is still in the folder (False: the lock was lost).
    fn is_held(&self, py: Python<'_>) -> PyResult<bool> {
        let slot = self.slot();
        match slot.as_ref() {
            Some(h) if h.guard.owned_here() => h.guard.is_held().map_err(|e| to_py(py, e)),
            _ => Ok(false),
        }
    }

    /// Whether anything in the folder keeps the lock from being taken now
    /// (including this object's own bid).
    fn is_locked(&self, py: Python<'_>) -> PyResult<bool> {
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
        slf.get().acquire_blocking(slf.py(), None, None)?;
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
            "<{class} {:?}{kind} locked={}>",
            me.folder.path().display().to_string(),
            if me.locked() { "True" } else { "False" }
        ))
    }

    /// Starts an asynchronous wait on a Rust thread (used by `acquire_async`).
    #[pyo3(signature = (task_id, timeout, cancel))]
    fn _start_wait(
        &self,
        task_id: u64,
        timeout: Option<f64>,
        cancel: PyRef<'_, PyCancelToken>,
    ) -> PyResult<PendingAcquire> {
        self.check_reentry(Owner::Task(task_id))?;
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
        })
    }

    /// Takes the outcome of a finished asynchronous wait: stores the lock
    /// for `task_id`, or raises what the wait raised.
    fn _finish_wait(&self, py: Python<'_>, task_id: u64, pending: &PendingAcquire) -> PyResult<()> {
        match pending.take(py)? {
            Ok(guard) => {
                self.store(guard, Owner::Task(task_id));
                Ok(())
            }
            Err(e) => Err(to_py(py, e)),
        }
    }
}

/// What `acquire()` returns: a context manager that releases the lock on
/// exit, so `with lock.acquire(timeout=5):` neither waits twice nor leaks.
#[pyclass(frozen, module = "lockfolder._lockfolder", name = "Acquired")]
struct Acquired {
    lock: Py<PyAny>,
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
        lock.get().release(py)?;
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
    m.add_class::<PyCancelToken>()?;
    m.add_class::<PendingAcquire>()?;
    m.add_class::<Acquired>()?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    Ok(())
}
