//! The Windows side of the platform seam: the command as a *gated* child,
//! waiting for it, the console's Ctrl-C, Ctrl-Break and close events.
//!
//! * The gate is `CREATE_SUSPENDED`: the process exists (its PID and
//!   creation time, which the bid records, are fixed) but none of its code
//!   runs until its first thread is resumed ("go"). `std::process::Command`
//!   creates it (argument quoting, `.bat` handling, standard handles), with
//!   the program already found on `PATH` here so that "not found" is 127.
//! * A suspended child must not outlive a launcher that dies before "go":
//!   its bid would stay live for ever. So the child is put in a job object
//!   with `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE` before anything is bid in its
//!   name: when the launcher's handle closes (exit, crash, `taskkill /F`),
//!   Windows kills the child. After "go" the flag is cleared, so the
//!   command runs on if the launcher dies (the bid names the command, as on
//!   Unix), except under a lease (`kill_with_launcher`).
//! * No signals: the console sends Ctrl-C, Ctrl-Break and "close" to every
//!   process attached to it, the command included, so nothing is passed on
//!   (as on Unix for signals the kernel sent to the foreground group). The
//!   launcher's handler only notes the event (it cancels the wait for the
//!   lock) and keeps the launcher alive until the command has exited.
//! * Not available here, refused by name before anything starts
//!   ([`unsupported`]): process groups (`--hold-while group`: the core does
//!   not judge a bid's group on Windows, so the lock could not stay with
//!   background processes), and the fencing token (`--fencing`, `--lease`):
//!   a process's environment is fixed when it is created, which is before
//!   the lock is taken.
//!
//! The numbers standing for console events in exit statuses (128 + N) and
//! messages are the C runtime's: Ctrl-C is `SIGINT` (2), Ctrl-Break is
//! `SIGBREAK` (21); the console closing, logoff and shutdown are given 1
//! (`SIGHUP`'s number: the terminal went away).

#![allow(unsafe_code)]

use lockfolder::CancelToken;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
use std::os::windows::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Console::{
    GetConsoleScreenBufferInfo, GetStdHandle, SetConsoleCtrlHandler, CONSOLE_SCREEN_BUFFER_INFO,
    CTRL_BREAK_EVENT, CTRL_C_EVENT, STD_ERROR_HANDLE,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, Thread32First, Thread32Next, TH32CS_SNAPTHREAD, THREADENTRY32,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JobObjectExtendedLimitInformation,
    SetInformationJobObject, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
};
use windows_sys::Win32::System::Threading::{
    OpenProcess, OpenThread, ResumeThread, TerminateProcess, CREATE_SUSPENDED, PROCESS_TERMINATE,
    THREAD_SUSPEND_RESUME,
};

/// Ctrl-C, as the C runtime numbers it.
pub const SIGINT: i32 = 2;
/// Ctrl-Break (`SIGBREAK` of the C runtime).
const SIGBREAK: i32 = 21;
/// The console closed, the user logged off, or the system shuts down.
const SIGHUP: i32 = 1;
/// The exit status given to a command stopped because its lease lapsed
/// (128 + `SIGTERM`'s number, what a Unix shell would report).
const TERMINATED_EXIT: u32 = 128 + 15;
/// The exit status of a child whose gate was closed before "go".
const GATE_CLOSED_EXIT: u32 = 125;

/// Whether process groups exist here (`--hold-while group`).
pub const PROCESS_GROUPS: bool = false;

/// The options of `run` that cannot work on Windows, refused by name.
pub fn unsupported(own_group: bool, fencing: bool) -> Option<&'static str> {
    if own_group {
        Some(
            "--hold-while group is not available on Windows (no process groups: the lock \
             cannot stay with the command's background processes); use --hold-while command",
        )
    } else if fencing {
        Some(
            "--fencing and --lease are not available on Windows (the command's environment \
             is fixed when its process is created, before the lock is taken)",
        )
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// Finding and preparing the command
// ---------------------------------------------------------------------------

/// Why the command cannot be started, found before anything is started.
#[derive(Debug)]
pub enum PrepareError {
    /// No such program (on `PATH`, or at the given path): exit 127.
    NotFound(OsString),
    /// Found, but not a program Windows runs: exit 126.
    NotExecutable(PathBuf),
    /// An argument or environment entry contains a NUL: usage error.
    Nul(OsString),
}

/// A command ready to be started: the program found, the arguments checked.
pub struct Prepared {
    program: PathBuf,
    args: Vec<OsString>,
}

/// What `CreateProcess` runs (`.bat` and `.cmd` through `cmd.exe`, as std
/// does it).
const RUNNABLE: [&str; 4] = ["exe", "com", "bat", "cmd"];

fn has_nul(s: &OsStr) -> bool {
    s.encode_wide().any(|c| c == 0)
}

/// `path` as it is, or with `.exe` if it has no extension (what
/// `CreateProcess` and std try).
fn candidates(path: &Path) -> Vec<PathBuf> {
    if path.extension().is_some() {
        vec![path.to_owned()]
    } else {
        vec![path.to_owned(), path.with_extension("exe")]
    }
}

/// The first candidate that is a file: `Ok` if Windows can run it.
fn check(path: &Path) -> Option<Result<PathBuf, PrepareError>> {
    let file = candidates(path).into_iter().find(|p| p.is_file())?;
    let runnable = file
        .extension()
        .and_then(OsStr::to_str)
        .is_some_and(|e| RUNNABLE.iter().any(|r| r.eq_ignore_ascii_case(e)));
    Some(if runnable {
        Ok(file)
    } else {
        Err(PrepareError::NotExecutable(file))
    })
}

/// Finds `program`: a name with a path separator is used as it is;
/// otherwise each `PATH` entry is tried in order.
fn resolve(program: &OsStr) -> Result<PathBuf, PrepareError> {
    if program.is_empty() {
        return Err(PrepareError::NotFound(program.to_owned()));
    }
    let p = Path::new(program);
    if program
        .encode_wide()
        .any(|c| c == u16::from(b'/') || c == u16::from(b'\\'))
        || p.is_absolute()
    {
        return match check(p) {
            Some(r) => r,
            None if p.exists() => Err(PrepareError::NotExecutable(p.to_owned())),
            None => Err(PrepareError::NotFound(program.to_owned())),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut found_but_not_executable = None;
    for dir in std::env::split_paths(&path) {
        if dir.as_os_str().is_empty() {
            continue;
        }
        match check(&dir.join(program)) {
            Some(Ok(f)) => return Ok(f),
            Some(Err(e)) if found_but_not_executable.is_none() => {
                found_but_not_executable = Some(e);
            }
            _ => {}
        }
    }
    Err(found_but_not_executable.unwrap_or_else(|| PrepareError::NotFound(program.to_owned())))
}

impl Prepared {
    /// Finds `argv[0]` and checks the arguments. An empty `argv` is "command
    /// not found". `fencing` is refused earlier ([`unsupported`]).
    pub fn new(argv: &[OsString], _fencing: bool) -> Result<Prepared, PrepareError> {
        let Some(first) = argv.first() else {
            return Err(PrepareError::NotFound(OsString::new()));
        };
        if let Some(a) = argv.iter().find(|a| has_nul(a)) {
            return Err(PrepareError::Nul(a.clone()));
        }
        let program = resolve(first)?;
        Ok(Prepared {
            program,
            args: argv[1..].to_vec(),
        })
    }
}

/// "Ctrl-C", "Ctrl-Break", or "signal 42".
pub fn signal_name(signo: i32) -> String {
    match signo {
        SIGINT => "Ctrl-C".to_owned(),
        SIGBREAK => "Ctrl-Break".to_owned(),
        SIGHUP => "the console closing".to_owned(),
        n => format!("signal {n}"),
    }
}

// ---------------------------------------------------------------------------
// Console events caught by the launcher
// ---------------------------------------------------------------------------

/// The events received and not yet taken, and the wait to cancel on the
/// next one. The handler runs on a thread Windows starts for it (not in a
/// signal context), so it may lock and call into the core.
struct Caught {
    pending: Vec<i32>,
    cancel: Option<CancelToken>,
}

static CAUGHT: Mutex<Caught> = Mutex::new(Caught {
    pending: Vec::new(),
    cancel: None,
});

fn caught() -> std::sync::MutexGuard<'static, Caught> {
    CAUGHT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

unsafe extern "system" fn on_console_event(event: u32) -> windows_sys::core::BOOL {
    let signo = match event {
        CTRL_C_EVENT => SIGINT,
        CTRL_BREAK_EVENT => SIGBREAK,
        // Close, logoff, shutdown: Windows ends the process once the
        // handler returns; before "go" the job then ends the child too.
        _ => SIGHUP,
    };
    let mut c = caught();
    c.pending.push(signo);
    if let Some(t) = c.cancel.take() {
        t.cancel();
    }
    // Handled: the launcher stays to wait for the command, which got the
    // same event from the console.
    1
}

/// The console events of this run (Ctrl-C, Ctrl-Break, close).
pub struct Signals {
    _private: (),
}

impl Signals {
    /// Installs the console control handler.
    pub fn catch() -> io::Result<Signals> {
        caught().pending.clear();
        // SAFETY: the handler is a plain function that lives as long as the
        // program; it is removed again on drop.
        if unsafe { SetConsoleCtrlHandler(Some(on_console_event), 1) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Signals { _private: () })
    }

    /// The first event received so far, if any (all pending ones are
    /// consumed).
    pub fn first(&mut self) -> Option<i32> {
        let mut c = caught();
        let first = c.pending.first().copied();
        c.pending.clear();
        first
    }

    /// While the value lives, the next console event cancels the wait for
    /// the lock (the core's `CancelToken`). One already received cancels it
    /// at once.
    pub fn cancel_on_signal(&self, cancel: CancelToken) -> io::Result<CancelOnSignal> {
        let mut c = caught();
        if c.pending.is_empty() {
            c.cancel = Some(cancel);
        } else {
            cancel.cancel();
        }
        Ok(CancelOnSignal { _private: () })
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        // SAFETY: removes the handler installed in `catch`.
        unsafe { SetConsoleCtrlHandler(Some(on_console_event), 0) };
    }
}

/// See [`Signals::cancel_on_signal`]; dropping it stops the watch.
pub struct CancelOnSignal {
    _private: (),
}

impl Drop for CancelOnSignal {
    fn drop(&mut self) {
        caught().cancel = None;
    }
}

/// The width of the console window on standard error, if it is one.
pub fn stderr_columns() -> Option<usize> {
    // SAFETY: GetStdHandle has no preconditions; the info struct is plain
    // data that GetConsoleScreenBufferInfo fills (or fails on a non-console
    // handle, a null or invalid one included).
    let info = unsafe {
        let h = GetStdHandle(STD_ERROR_HANDLE);
        let mut info: CONSOLE_SCREEN_BUFFER_INFO = std::mem::zeroed();
        (GetConsoleScreenBufferInfo(h, &mut info) != 0).then_some(info)
    }?;
    let cols = i32::from(info.srWindow.Right) - i32::from(info.srWindow.Left) + 1;
    usize::try_from(cols).ok().filter(|&c| c > 0)
}

// ---------------------------------------------------------------------------
// The gated child
// ---------------------------------------------------------------------------

/// A child process that exists (so the lock can be taken in its name) but
/// is suspended until [`Gated::go`]. Dropping it before `go` closes the
/// gate: the child is terminated without having run anything. Dropping it
/// after `go` leaves the command running.
pub struct Gated {
    child: Child,
    /// The job that kills the child if the launcher dies before "go".
    job: OwnedHandle,
    kill_with_launcher: bool,
    gone: bool,
    reaped: bool,
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this status (an `NTSTATUS` such as 0xC000013A,
    /// Ctrl-C's, as a negative number: passed through as it is).
    Exited(i32),
    /// Never on Windows (a process has only an exit status); kept so that
    /// the callers are the same on every platform.
    #[allow(dead_code)]
    Signalled(i32),
}

/// Why `go` did not lead to a running command.
#[derive(Debug)]
pub enum GoError {
    /// The child had already died (terminated while suspended).
    Died(Ended),
    /// Talking to the child failed.
    Io(io::Error),
}

/// A job object that kills its processes when its last handle closes.
fn kill_on_close_job() -> io::Result<OwnedHandle> {
    // SAFETY: no security attributes, no name: an anonymous job; the handle
    // is owned from here on.
    let raw = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
    if raw.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh handle that nothing else owns.
    let job = unsafe { OwnedHandle::from_raw_handle(raw) };
    set_kill_on_close(&job, true)?;
    Ok(job)
}

fn set_kill_on_close(job: &OwnedHandle, on: bool) -> io::Result<()> {
    let mut info = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    if on {
        info.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    }
    // SAFETY: a valid job handle and a struct of the size given.
    let ok = unsafe {
        SetInformationJobObject(
            job.as_raw_handle(),
            JobObjectExtendedLimitInformation,
            (&raw const info).cast(),
            std::mem::size_of_val(&info) as u32,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Resumes the (only) thread of a process created suspended. std keeps the
/// thread handle of `CreateProcess` to itself, so the thread is found by
/// its owner PID.
fn resume(pid: u32) -> io::Result<()> {
    // SAFETY: a snapshot of the system's threads; the handle is owned below.
    let snap = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if snap == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh handle that nothing else owns.
    let snap = unsafe { OwnedHandle::from_raw_handle(snap) };
    let mut entry = THREADENTRY32 {
        dwSize: std::mem::size_of::<THREADENTRY32>() as u32,
        ..Default::default()
    };
    let mut resumed = 0;
    // SAFETY: a valid snapshot handle and an entry whose dwSize is set.
    let mut more = unsafe { Thread32First(snap.as_raw_handle(), &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            // SAFETY: OpenThread returns an owned handle or null.
            let t: HANDLE = unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID) };
            if t.is_null() {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a fresh handle that nothing else owns.
            let t = unsafe { OwnedHandle::from_raw_handle(t) };
            // SAFETY: a valid thread handle with THREAD_SUSPEND_RESUME.
            if unsafe { ResumeThread(t.as_raw_handle()) } == u32::MAX {
                return Err(io::Error::last_os_error());
            }
            resumed += 1;
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(snap.as_raw_handle(), &mut entry) } != 0;
    }
    if resumed == 0 {
        return Err(io::Error::other(format!(
            "no thread of process {pid} to resume"
        )));
    }
    Ok(())
}

/// Starts `cmd` suspended, in a job that ends it if the launcher dies
/// before [`Gated::go`]. `own_group` is refused earlier ([`unsupported`]);
/// `kill_with_launcher` keeps that job's hold after "go" too.
pub fn spawn_gated(
    cmd: &mut Prepared,
    _signals: &Signals,
    _own_group: bool,
    kill_with_launcher: bool,
) -> io::Result<Gated> {
    let job = kill_on_close_job()?;
    let mut child = Command::new(&cmd.program)
        .args(&cmd.args)
        .creation_flags(CREATE_SUSPENDED)
        .spawn()?;
    // SAFETY: valid job and process handles (the child is ours, suspended).
    if unsafe { AssignProcessToJobObject(job.as_raw_handle(), child.as_raw_handle()) } == 0 {
        // Without the job a launcher that died now would leave the child
        // suspended for ever, its bid live: do not go on.
        let e = io::Error::last_os_error();
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::new(
            e.kind(),
            format!("cannot put the command's process in a job object: {e}"),
        ));
    }
    Ok(Gated {
        child,
        job,
        kill_with_launcher,
        gone: false,
        reaped: false,
    })
}

fn ended(status: std::process::ExitStatus) -> Ended {
    // Every Windows exit status has a code.
    Ended::Exited(status.code().unwrap_or(1))
}

/// Ends the command (its lease lapsed): `TerminateProcess`, the closest
/// Windows has to SIGTERM (it cannot be caught). Its PID is not reused
/// while the launcher holds a handle to it, which it does until it has
/// waited for it, so this cannot reach another process.
pub fn terminate(pid: u32, _group: bool) {
    // SAFETY: OpenProcess returns an owned handle or null.
    let h = unsafe { OpenProcess(PROCESS_TERMINATE, 0, pid) };
    if h.is_null() {
        return;
    }
    // SAFETY: a fresh handle that nothing else owns.
    let h = unsafe { OwnedHandle::from_raw_handle(h) };
    // SAFETY: a valid process handle with PROCESS_TERMINATE.
    unsafe { TerminateProcess(h.as_raw_handle(), TERMINATED_EXIT) };
}

/// No process groups on Windows ([`PROCESS_GROUPS`]): none is ever alive.
pub fn group_alive(_pgid: u32) -> bool {
    false
}

impl Gated {
    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Opens the gate: the child's thread runs the command. If the launcher
    /// is not to take the command with it, the job lets go of it after the
    /// resume (before it, a launcher dying in between would leave it
    /// suspended for ever).
    pub fn go(&mut self, _fence: Option<u64>) -> Result<(), GoError> {
        if self.gone {
            return Err(GoError::Io(io::Error::other("the gate was already opened")));
        }
        if let Some(s) = self.child.try_wait().map_err(GoError::Io)? {
            self.reaped = true;
            return Err(GoError::Died(ended(s)));
        }
        resume(self.pid()).map_err(GoError::Io)?;
        self.gone = true;
        if !self.kill_with_launcher {
            set_kill_on_close(&self.job, false).map_err(GoError::Io)?;
        }
        Ok(())
    }

    /// Windows reports a failed start at `spawn` ([`spawn_gated`]), so a
    /// command that was resumed did run.
    pub fn exec_error(&self) -> Option<io::Error> {
        None
    }

    /// Waits for the command to exit. Console events reach it directly (it
    /// shares the console), and the launcher's handler keeps the launcher
    /// alive meanwhile, so there is nothing to pass on.
    pub fn supervise(&mut self, _signals: &mut Signals) -> io::Result<Ended> {
        let status = self.child.wait()?;
        self.reaped = true;
        Ok(ended(status))
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        // Before "go": close the gate. The child never ran; end it and wait
        // so its handle, and with it its PID, is given back.
        if !self.gone && !self.reaped {
            // SAFETY: the child's own handle, valid while `child` lives.
            unsafe { TerminateProcess(self.child.as_raw_handle(), GATE_CLOSED_EXIT) };
            let _ = self.child.wait();
        }
    }
}
