//! The Unix side of the platform seam (Linux, macOS, FreeBSD): starting the
//! command as a *gated* child, its process group, waiting for it, signals,
//! and the controlling terminal.
//!
//! Everything that rustix offers goes through rustix (pipes, poll,
//! `pidfd_open`, `kill`, `waitpid`, `setpgid`, `tcsetpgrp`, the window
//! size). What is left as `unsafe` is what rustix does not offer: `fork`,
//! the child's path up to `execve` (async-signal-safe calls only), signal
//! dispositions (`sigaction`) and the signal mask.
//!
//! `std::process::Command` cannot be used: its `spawn` waits until the child
//! has called `exec`, so a child that blocks before `exec` (waiting for the
//! lock to be taken in its name) would block `spawn` too. So the fork is done
//! here, by hand, following the rules for forking a multi-threaded process:
//! everything the child needs (program path, `argv`, `envp`) is prepared
//! before `fork()`, and the child calls only async-signal-safe functions
//! (`signal`, `pthread_sigmask`, `read`, `setpgid`, `write`, `close`,
//! `execve`, `_exit`) until it execs.

use lockfolder::CancelToken;
use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions};
use signal_hook::iterator::backend::SignalDelivery;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;
use std::ffi::{CString, OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

pub use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Whether process groups exist here (`--hold-while group`).
pub const PROCESS_GROUPS: bool = true;

/// The options of `run` that cannot work here: none on Unix.
pub fn unsupported(_own_group: bool, _fencing: bool) -> Option<&'static str> {
    None
}

/// Signals passed to the command (and that cancel a wait).
const FORWARDED: [libc::c_int; 3] = [SIGINT, SIGTERM, SIGHUP];

// ---------------------------------------------------------------------------
// Finding and preparing the command
// ---------------------------------------------------------------------------

/// Why the command cannot be started, found before anything is forked.
#[derive(Debug)]
pub enum PrepareError {
    /// No such program (on `PATH`, or at the given path): exit 127.
    NotFound(OsString),
    /// Found, but not executable: exit 126.
    NotExecutable(PathBuf),
    /// An argument or environment entry contains a NUL byte: usage error.
    Nul(OsString),
}

/// A command ready to be executed in a child: every string already converted
/// to a C string, the program already found on `PATH`.
pub struct Prepared {
    program: CString,
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    envp_ptrs: Vec<*const libc::c_char>,
    /// `LOCKFOLDER_FENCE=` and room for a u64's digits and a NUL: the child
    /// writes the fencing token it is sent with "go" into its own copy
    /// before exec (nothing is allocated after fork).
    fence: Option<Vec<u8>>,
}

/// The name of the variable that carries the fencing token to the command.
pub const FENCE_ENV: &str = "LOCKFOLDER_FENCE";

fn cstring(s: &OsStr) -> Result<CString, PrepareError> {
    CString::new(s.as_bytes()).map_err(|_| PrepareError::Nul(s.to_owned()))
}

/// What is at a candidate path for the program.
enum Candidate {
    Missing,
    /// A regular file without execute permission for us.
    NotExecutable,
    Executable,
}

fn candidate(path: &Path) -> Result<Candidate, PrepareError> {
    // One stat per candidate: PATH lookups happen on every run.
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(Candidate::Missing);
    };
    if !meta.is_file() {
        return Ok(Candidate::Missing);
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Ok(Candidate::NotExecutable);
    }
    let c = cstring(path.as_os_str())?;
    match rustix::fs::access(c.as_c_str(), rustix::fs::Access::EXEC_OK) {
        Ok(()) => Ok(Candidate::Executable),
        Err(_) => Ok(Candidate::NotExecutable),
    }
}

/// Finds `program` the way `execvp` and shells do: a name with a slash is
/// used as it is; otherwise each `PATH` entry is tried in order and the first
/// executable regular file wins. A file found but not executable gives
/// `NotExecutable` (126) rather than `NotFound` (127), as in POSIX shells.
fn resolve(program: &OsStr) -> Result<PathBuf, PrepareError> {
    if program.is_empty() {
        return Err(PrepareError::NotFound(program.to_owned()));
    }
    if program.as_bytes().contains(&b'/') {
        let p = PathBuf::from(program);
        return match candidate(&p)? {
            Candidate::Executable => Ok(p),
            // A directory or other non-file: execve says EACCES, shells 126.
            Candidate::NotExecutable => Err(PrepareError::NotExecutable(p)),
            Candidate::Missing if p.exists() => Err(PrepareError::NotExecutable(p)),
            Candidate::Missing => Err(PrepareError::NotFound(program.to_owned())),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut found_but_not_executable = None;
    for dir in std::env::split_paths(&path) {
        // An empty PATH entry means the current directory.
        let dir = if dir.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            dir
        };
        let c = dir.join(program);
        match candidate(&c)? {
            Candidate::Executable => return Ok(c),
            Candidate::NotExecutable if found_but_not_executable.is_none() => {
                found_but_not_executable = Some(c);
            }
            _ => {}
        }
    }
    match found_but_not_executable {
        Some(p) => Err(PrepareError::NotExecutable(p)),
        None => Err(PrepareError::NotFound(program.to_owned())),
    }
}

impl Prepared {
    /// Resolves `argv[0]` on `PATH` and converts `argv` and the current
    /// environment to C strings. An empty `argv` is "command not found".
    pub fn new(argv: &[OsString], fencing: bool) -> Result<Prepared, PrepareError> {
        let Some(first) = argv.first() else {
            return Err(PrepareError::NotFound(OsString::new()));
        };
        let program = resolve(first)?;
        let program = cstring(program.as_os_str())?;
        let argv_c = argv
            .iter()
            .map(|a| cstring(a))
            .collect::<Result<Vec<_>, _>>()?;
        let envp_c = std::env::vars_os()
            .filter(|(k, _)| !(fencing && k == FENCE_ENV))
            .map(|(k, v)| {
                let mut kv = k;
                kv.push("=");
                kv.push(v);
                cstring(&kv)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut argv_ptrs: Vec<*const libc::c_char> = argv_c.iter().map(|c| c.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let mut envp_ptrs: Vec<*const libc::c_char> = envp_c.iter().map(|c| c.as_ptr()).collect();
        let fence = fencing.then(|| {
            let mut v = format!("{FENCE_ENV}=").into_bytes();
            v.resize(v.len() + 21, 0);
            v
        });
        if let Some(f) = &fence {
            envp_ptrs.push(f.as_ptr().cast());
        }
        envp_ptrs.push(std::ptr::null());
        Ok(Prepared {
            program,
            _argv: argv_c,
            _envp: envp_c,
            argv_ptrs,
            envp_ptrs,
            fence,
        })
    }
}

// ---------------------------------------------------------------------------
// Pipes, polling, signal masks
// ---------------------------------------------------------------------------

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    #[cfg(not(target_vendor = "apple"))]
    {
        Ok(rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?)
    }
    // macOS has no pipe2: set the flag right after (no other thread of ours
    // forks in between).
    #[cfg(target_vendor = "apple")]
    {
        let (r, w) = rustix::pipe::pipe()?;
        for fd in [&r, &w] {
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)?;
        }
        Ok((r, w))
    }
}

/// Sleeps until one of `fds` is readable (or hung up); returns its index.
fn wait_readable(fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
    let mut pfds: Vec<PollFd<'_>> = fds
        .iter()
        .map(|fd| PollFd::new(fd, PollFlags::IN))
        .collect();
    loop {
        match rustix::event::poll(&mut pfds, None) {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
        if let Some(i) = pfds.iter().position(|p| !p.revents().is_empty()) {
            return Ok(i);
        }
    }
}

fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it fully
    // before sigaddset reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks `signals` in this thread until the value is dropped.
struct Blocked {
    old: libc::sigset_t,
}

impl Blocked {
    fn new(signals: &[libc::c_int]) -> Blocked {
        let set = sigset(signals);
        // SAFETY: sigset_t is plain data, filled by pthread_sigmask.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to initialised sigsets.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
        Blocked { old }
    }
}

impl Drop for Blocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

/// Whether `signal` is currently ignored (`SIG_IGN`), as `nohup` and shells
/// running background jobs arrange. Such signals are left ignored: not
/// caught by us, and still ignored by the command.
fn is_ignored(signal: libc::c_int) -> bool {
    // SAFETY: a null `act` only queries; `old` is a valid sigaction to fill.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// "SIGINT", or "signal 42".
pub fn signal_name(signo: i32) -> String {
    signal_hook::low_level::signal_name(signo)
        .map_or_else(|| format!("signal {signo}"), str::to_owned)
}

// ---------------------------------------------------------------------------
// Signals caught by the launcher
// ---------------------------------------------------------------------------

/// A signal that reached the launcher.
#[derive(Debug, Clone, Copy)]
pub struct Caught {
    /// Its number.
    pub signo: i32,
    /// Sent by the kernel (the terminal's Ctrl-C or hang-up), not by a
    /// process (`kill`, systemd, `timeout(1)`).
    pub from_kernel: bool,
}

/// The signals of this run. signal-hook's handlers only write: each
/// forwarded signal, with its origin, to one socket; a byte for each
/// SIGCHLD to another. No work is done in a handler, and no thread is
/// needed unless the wait for the lock blocks.
pub struct Signals {
    delivery: SignalDelivery<UnixStream, WithOrigin>,
    /// Signals whose handlers we installed; the child resets them.
    caught: Vec<libc::c_int>,
    chld_read: UnixStream,
    chld_id: signal_hook::SigId,
    /// SIGCHLD was ignored when we started: the command gets it so too.
    chld_ignored: bool,
}

impl Signals {
    /// Catches SIGINT, SIGTERM and SIGHUP (unless ignored: they stay
    /// ignored, for us and for the command) and SIGCHLD.
    pub fn catch() -> io::Result<Signals> {
        let caught: Vec<libc::c_int> = FORWARDED.into_iter().filter(|&s| !is_ignored(s)).collect();
        let (read, write) = UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let delivery = SignalDelivery::with_pipe(read, write, WithOrigin::default(), &caught)?;
        let chld_ignored = is_ignored(libc::SIGCHLD);
        let (chld_read, chld_write) = UnixStream::pair()?;
        chld_read.set_nonblocking(true)?;
        chld_write.set_nonblocking(true)?;
        let chld_id = signal_hook::low_level::pipe::register(libc::SIGCHLD, chld_write)?;
        Ok(Signals {
            delivery,
            caught,
            chld_read,
            chld_id,
            chld_ignored,
        })
    }

    /// Every forwarded signal received since the last call.
    pub fn take(&mut self) -> Vec<Caught> {
        self.delivery
            .pending()
            .map(|o| Caught {
                signo: o.signal,
                from_kernel: o.cause == Cause::Kernel,
            })
            .collect()
    }

    /// The first forwarded signal received so far, if any (all pending ones
    /// are consumed).
    pub fn first(&mut self) -> Option<i32> {
        self.take().first().map(|c| c.signo)
    }

    fn drain_chld(&mut self) {
        let mut buf = [0u8; 64];
        while let Ok(n) = self.chld_read.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    }

    /// While the value lives, a thread turns the first forwarded signal
    /// into a cancellation of the wait for the lock (the core's
    /// `CancelToken`). It only looks; [`Signals::first`] tells which signal
    /// it was.
    pub fn cancel_on_signal(&self, cancel: CancelToken) -> io::Result<CancelOnSignal> {
        let signals = self.delivery.get_read().try_clone()?;
        let (stop_r, stop_w) = pipe()?;
        let thread = std::thread::Builder::new()
            .name("lockfolder-signals".into())
            .spawn(move || {
                if let Ok(0) = wait_readable(&[signals.as_fd(), stop_r.as_fd()]) {
                    cancel.cancel();
                }
            })?;
        Ok(CancelOnSignal {
            stop: Some(stop_w),
            thread: Some(thread),
        })
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        signal_hook::low_level::unregister(self.chld_id);
    }
}

/// See [`Signals::cancel_on_signal`]; dropping it stops the thread.
pub struct CancelOnSignal {
    stop: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for CancelOnSignal {
    fn drop(&mut self) {
        // Closing the write end wakes the thread (hang-up on the read end).
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------------------
// The controlling terminal
// ---------------------------------------------------------------------------

/// The controlling terminal of this process, if it has one (`/dev/tty`).
pub struct Terminal {
    tty: OwnedFd,
}

impl Terminal {
    /// Opens the controlling terminal; `None` without one (cron, CI,
    /// `setsid`, a daemon).
    pub fn controlling() -> Option<Terminal> {
        use rustix::fs::{Mode, OFlags};
        rustix::fs::open(
            "/dev/tty",
            OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()
        .map(|tty| Terminal { tty })
    }

    fn foreground_is(&self, pgrp: Pid) -> bool {
        rustix::termios::tcgetpgrp(&self.tty).is_ok_and(|p| p == pgrp)
    }

    /// Makes `pgrp` the terminal's foreground process group. SIGTTOU is
    /// blocked for the call: a process of a background group may then do
    /// it (POSIX), which is how we take the terminal back.
    fn set_foreground(&self, pgrp: Pid) -> io::Result<()> {
        let _blocked = Blocked::new(&[libc::SIGTTOU]);
        loop {
            match rustix::termios::tcsetpgrp(&self.tty, pgrp) {
                Err(Errno::INTR) => continue,
                r => return Ok(r?),
            }
        }
    }
}

/// The width of the terminal on standard error, if it is one.
pub fn stderr_columns() -> Option<usize> {
    let ws = rustix::termios::tcgetwinsize(std::io::stderr()).ok()?;
    (ws.ws_col > 0).then_some(usize::from(ws.ws_col))
}

// ---------------------------------------------------------------------------
// The gated child
// ---------------------------------------------------------------------------

/// The child exits with this status if the launcher went away before saying
/// "go" (it never runs the command).
const GATE_CLOSED_EXIT: libc::c_int = 125;

/// A child process that exists (so the lock can be taken in its name) but
/// waits for [`Gated::go`] before it executes the command. Dropping it
/// before `go` closes the gate: the child exits without running anything
/// (and is reaped). Dropping it after `go` leaves the command running.
pub struct Gated {
    pid: Pid,
    own_group: bool,
    go: Option<OwnedFd>,
    exec_error: OwnedFd,
    reaped: bool,
    /// The terminal, while the command's group is its foreground group.
    handed: Option<Terminal>,
    /// The terminal we could hand over (we have one, the command has a
    /// group of its own).
    terminal: Option<Terminal>,
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it.
    Signalled(i32),
}

/// Why `go` did not lead to a running command.
#[derive(Debug)]
pub enum GoError {
    /// The child had already died (killed while it waited at the gate).
    Died(Ended),
    /// Talking to the child failed.
    Io(io::Error),
}

/// Starts `cmd` as a gated child. The child puts the signals whose handlers
/// the launcher installed back to their default action before it waits at
/// the gate (SIGPIPE too, which Rust programs ignore), so a signal while
/// waiting for the lock ends the child like any process.
///
/// With `own_group`, the command will run in a process group of its own
/// (its PID), made in [`Gated::go`]: while waiting at the gate the child
/// stays in ours, so no group with its number exists before the lock is
/// taken.
/// Writes `n` in decimal at `at`, followed by a NUL (at most 21 bytes).
/// Async-signal-safe: no allocation, no locks.
///
/// # Safety
///
/// `at` must be valid for 21 bytes of writes.
unsafe fn write_decimal(at: *mut u8, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        // SAFETY: i < len <= 20 < 21, inside the caller's buffer.
        unsafe { *at.add(i) = digits[len - 1 - i] };
    }
    // SAFETY: len <= 20 < 21.
    unsafe { *at.add(len) = 0 };
}

/// `kill_with_launcher`: the command gets SIGKILL if the launcher dies
/// (Linux `PR_SET_PDEATHSIG`), for locks held under a lease, which only the
/// launcher renews: once it is gone the lease lapses, and the command must
/// not run on without the lock.
pub fn spawn_gated(
    cmd: &mut Prepared,
    signals: &Signals,
    own_group: bool,
    kill_with_launcher: bool,
) -> io::Result<Gated> {
    let (go_r, go_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let mut reset = signals.caught.clone();
    reset.push(libc::SIGPIPE);
    let chld = if signals.chld_ignored {
        libc::SIG_IGN
    } else {
        libc::SIG_DFL
    };
    let mut blocked = reset.clone();
    blocked.push(libc::SIGCHLD);
    // Block the caught signals across fork so that no handler of ours runs in
    // the child before its dispositions are reset.
    let mask = Blocked::new(&blocked);
    let old = mask.old;
    // Raw values the child uses; nothing is allocated after fork.
    let go_r_fd = go_r.as_raw_fd();
    let go_w_fd = go_w.as_raw_fd();
    let err_r_fd = err_r.as_raw_fd();
    let err_w_fd = err_w.as_raw_fd();
    let program = cmd.program.as_ptr();
    let argv = cmd.argv_ptrs.as_ptr();
    let envp = cmd.envp_ptrs.as_ptr();
    let fence_prefix = FENCE_ENV.len() + 1;
    let fence_at: Option<*mut u8> = cmd
        .fence
        .as_mut()
        // SAFETY: the buffer holds the prefix and 21 more bytes.
        .map(|f| unsafe { f.as_mut_ptr().add(fence_prefix) });
    let launcher = rustix::process::getpid().as_raw_nonzero().get();
    #[cfg(not(target_os = "linux"))]
    let _ = (kill_with_launcher, launcher);
    let reset_ptr = reset.as_ptr();
    let reset_len = reset.len();
    // SAFETY: fork has no memory-safety preconditions; the child branch below
    // only makes async-signal-safe calls on data prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the child of a possibly multi-threaded process. Only
        // async-signal-safe functions are called, on descriptors, C strings
        // and a signal list that were valid before the fork; the child never
        // returns into Rust code (it execs or calls _exit).
        unsafe {
            libc::close(go_w_fd);
            libc::close(err_r_fd);
            for i in 0..reset_len {
                libc::signal(*reset_ptr.add(i), libc::SIG_DFL);
            }
            libc::signal(libc::SIGCHLD, chld);
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            let mut byte = 0u8;
            loop {
                let n = libc::read(go_r_fd, (&mut byte as *mut u8).cast(), 1);
                if n == 1 {
                    break;
                }
                if n == -1 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // EOF: the launcher is gone (or gave up) before the lock was
                // ours. Run nothing.
                libc::_exit(GATE_CLOSED_EXIT);
            }
            if let Some(at) = fence_at {
                // The fencing token follows "go": 8 bytes, little-endian.
                let mut token = [0u8; 8];
                let mut got = 0usize;
                while got < token.len() {
                    let n = libc::read(
                        go_r_fd,
                        token.as_mut_ptr().add(got).cast(),
                        token.len() - got,
                    );
                    if n > 0 {
                        got += n as usize;
                    } else if n == -1
                        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
                    {
                        continue;
                    } else {
                        libc::_exit(GATE_CLOSED_EXIT);
                    }
                }
                write_decimal(at, u64::from_le_bytes(token));
            }
            libc::close(go_r_fd);
            #[cfg(target_os = "linux")]
            if kill_with_launcher {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                // The launcher may have died before the prctl took effect.
                if libc::getppid() != launcher {
                    libc::_exit(GATE_CLOSED_EXIT);
                }
            }
            if own_group {
                // The launcher did it too, before "go"; doing it here as
                // well means the group exists before exec whatever happens.
                libc::setpgid(0, 0);
            }
            libc::execve(program, argv, envp);
            let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            let bytes = errno.to_ne_bytes();
            libc::write(err_w_fd, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127);
        }
    }
    let fork_error = io::Error::last_os_error();
    drop(mask);
    if pid < 0 {
        return Err(fork_error);
    }
    drop(go_r);
    drop(err_w);
    Ok(Gated {
        // A positive PID from fork.
        pid: Pid::from_raw(pid).ok_or(fork_error)?,
        own_group,
        go: Some(go_w),
        exec_error: err_r,
        reaped: false,
        handed: None,
        terminal: None,
    })
}

fn retry<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            r => return Ok(r?),
        }
    }
}

fn ended(status: rustix::process::WaitStatus) -> Option<Ended> {
    if let Some(s) = status.terminating_signal() {
        Some(Ended::Signalled(s))
    } else {
        status.exit_status().map(Ended::Exited)
    }
}

/// Sends SIGTERM to the command (and its process group, when it has one of
/// its own). Its PID is not recycled before the launcher reaps it, so this
/// cannot reach another process.
pub fn terminate(pid: u32, group: bool) {
    let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    let _ = if group {
        rustix::process::kill_process_group(p, rustix::process::Signal::TERM)
    } else {
        rustix::process::kill_process(p, rustix::process::Signal::TERM)
    };
}

/// Whether any process of group `pgid` still exists (`kill(-pgid, 0)`
/// answers anything but `ESRCH`), as the core judges a bid's group.
pub fn group_alive(pgid: u32) -> bool {
    let Some(p) = i32::try_from(pgid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process_group(p),
        Err(Errno::SRCH)
    )
}

impl Gated {
    /// The child's PID; with a group of its own, also its process group.
    pub fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get().unsigned_abs()
    }

    /// Opens the gate: the child executes the command. With a group of its
    /// own, the group is made first (here and in the child, so it exists
    /// before `go` whatever the order), and if we are the foreground group
    /// of our controlling terminal, the terminal is handed to the command's
    /// group so that it can read from it (no SIGTTIN) and gets Ctrl-C and
    /// Ctrl-Z. Does not wait for `execve`; after the child has exited,
    /// [`Gated::exec_error`] tells whether it ran the command at all.
    pub fn go(&mut self, fence: Option<u64>) -> Result<(), GoError> {
        let Some(go) = self.go.take() else {
            return Err(GoError::Io(io::Error::other("the gate was already opened")));
        };
        if self.own_group {
            match rustix::process::setpgid(Some(self.pid), Some(self.pid)) {
                // The child has not exec'd yet (it waits for the byte), so
                // EACCES cannot happen; ESRCH: it is gone.
                Ok(()) => {}
                Err(Errno::SRCH) => {
                    drop(go);
                    return Err(GoError::Died(self.wait().map_err(GoError::Io)?));
                }
                Err(e) => return Err(GoError::Io(e.into())),
            }
            self.terminal = Terminal::controlling();
            if let Some(t) = self.terminal.take() {
                if t.foreground_is(rustix::process::getpgrp()) && t.set_foreground(self.pid).is_ok()
                {
                    self.handed = Some(t);
                } else {
                    self.terminal = Some(t);
                }
            }
        }
        // "go", then the fencing token if the child waits for one (9 bytes
        // fit in a pipe at once: one write, never interleaved).
        let mut msg = vec![1u8];
        if let Some(t) = fence {
            msg.extend_from_slice(&t.to_le_bytes());
        }
        let written = retry(|| rustix::io::write(&go, &msg));
        drop(go);
        match written {
            Ok(_) => Ok(()),
            // EPIPE (SIGPIPE is ignored by Rust programs): the child is gone.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
                self.take_terminal_back();
                Err(GoError::Died(self.wait().map_err(GoError::Io)?))
            }
            Err(e) => Err(GoError::Io(e)),
        }
    }

    /// After the child has exited: the error of its `execve`, if that failed
    /// (the child reports it on a close-on-exec pipe, so a command that ran
    /// leaves the pipe empty).
    pub fn exec_error(&self) -> Option<io::Error> {
        let mut buf = [0u8; 4];
        let mut got = 0;
        while got < buf.len() {
            let n = retry(|| rustix::io::read(&self.exec_error, &mut buf[got..])).ok()?;
            if n == 0 {
                break;
            }
            got += n;
        }
        (got == buf.len()).then(|| io::Error::from_raw_os_error(i32::from_ne_bytes(buf)))
    }

    /// Gives the terminal back to our own group if the command's group has
    /// it. Done before we print anything or exit.
    fn take_terminal_back(&mut self) {
        if let Some(t) = self.handed.take() {
            if t.foreground_is(self.pid) {
                let _ = t.set_foreground(rustix::process::getpgrp());
            }
            self.terminal = Some(t);
        }
    }

    /// Sends `signal` to the command: to its whole group if it has one of
    /// its own, else to its PID.
    fn signal(&self, signo: i32) {
        let Some(sig) = Signal::from_named_raw(signo) else {
            return;
        };
        let _ = if self.own_group {
            rustix::process::kill_process_group(self.pid, sig)
        } else {
            rustix::process::kill_process(self.pid, sig)
        };
    }

    /// The command's group was stopped by the terminal (Ctrl-Z, or reading
    /// or writing it from the background). Do what a shell's job control
    /// would see if the command were still in our group: take the terminal
    /// back, stop our own group with the same signal (the shell above us
    /// regains control), and when we are continued (`fg`, `bg`), give the
    /// terminal back if we are in the foreground again and continue the
    /// command's group.
    ///
    /// A stop by SIGSTOP (someone's `kill -STOP`) is left alone, as a shell
    /// would: we stay running and keep waiting.
    fn stopped(&mut self, signo: i32) {
        let Some(sig) = Signal::from_named_raw(signo) else {
            return;
        };
        if ![Signal::TSTP, Signal::TTIN, Signal::TTOU].contains(&sig) {
            return;
        }
        self.take_terminal_back();
        // We stop here until continued. In an orphaned group (nobody to
        // continue us) the kernel discards the signal and we go straight on.
        let before = std::time::Instant::now();
        let _ = rustix::process::kill_current_process_group(sig);
        let mut foreground = false;
        if let Some(t) = self.terminal.take() {
            foreground = t.foreground_is(rustix::process::getpgrp());
            if foreground && t.set_foreground(self.pid).is_ok() {
                self.handed = Some(t);
            } else {
                self.terminal = Some(t);
            }
        }
        // Back at once and still in the background: our stop was discarded
        // (orphaned group), so a command reading the terminal would be
        // stopped again at once. Continue it at most once a second rather
        // than spin. (No person types `fg` within 50 ms.)
        if !foreground && before.elapsed() < std::time::Duration::from_millis(50) {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
        let _ = rustix::process::kill_process_group(self.pid, Signal::CONT);
    }

    /// While the command runs: pass on the signals that reach us, follow
    /// its stops (see [`Gated::stopped`]), and return how it ended once it
    /// has exited (it is reaped then, and never signalled after that, so a
    /// recycled PID cannot be hit).
    ///
    /// With a group of its own the command does not get the terminal's
    /// signals through us, so every signal is passed on, to the whole
    /// group. In our group, a signal the kernel sent (Ctrl-C, hang-up) went
    /// to the whole foreground process group, the command included: passing
    /// it on would deliver it twice, so only signals from processes
    /// (`kill PID`, systemd, timeout(1)) are passed on, to the command.
    pub fn supervise(&mut self, signals: &mut Signals) -> io::Result<Ended> {
        let result = self.supervise_inner(signals);
        self.take_terminal_back();
        result
    }

    fn supervise_inner(&mut self, signals: &mut Signals) -> io::Result<Ended> {
        let job_control = self.own_group && (self.handed.is_some() || self.terminal.is_some());
        let mut opts = WaitOptions::NOHANG;
        if job_control {
            opts |= WaitOptions::UNTRACED;
        }
        let exit_fd = exit_watch(self.pid);
        loop {
            signals.drain_chld();
            if let Some((_, status)) = retry(|| rustix::process::waitpid(Some(self.pid), opts))? {
                if let Some(e) = ended(status) {
                    self.reaped = true;
                    return Ok(e);
                }
                if let Some(s) = status.stopping_signal() {
                    self.stopped(s);
                    continue;
                }
            }
            for c in signals.take() {
                if self.own_group || !c.from_kernel {
                    self.signal(c.signo);
                }
            }
            let mut fds = vec![
                signals.delivery.get_read().as_fd(),
                signals.chld_read.as_fd(),
            ];
            if let Some(p) = &exit_fd {
                fds.push(p.as_fd());
            }
            wait_readable(&fds)?;
        }
    }

    /// Reaps the child and returns how it ended.
    fn wait(&mut self) -> io::Result<Ended> {
        loop {
            let status = retry(|| rustix::process::waitpid(Some(self.pid), WaitOptions::empty()))?;
            if let Some(e) = status.and_then(|(_, s)| ended(s)) {
                self.reaped = true;
                return Ok(e);
            }
        }
    }
}

/// A descriptor that becomes readable when the process exits: a pidfd on
/// Linux (5.3+). Elsewhere, and on older kernels, SIGCHLD alone wakes us.
fn exit_watch(pid: Pid) -> Option<OwnedFd> {
    #[cfg(target_os = "linux")]
    {
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        self.take_terminal_back();
        // Before "go": closing the gate makes the child exit; reap it so no
        // zombie is left. After "go" the command may run on: leave it.
        if self.go.take().is_some() && !self.reaped {
            let _ = self.wait();
        }
    }
}
