//! The one platform module: starting the command as a *gated* child, waiting
//! for it, signalling it, and a few terminal queries. This is the only place
//! with `unsafe` code.
//!
//! `std::process::Command` cannot be used: its `spawn` waits until the child
//! has called `exec`, so a child that blocks before `exec` (waiting for the
//! lock to be taken in its name) would block `spawn` too. So the fork is done
//! here, by hand, following the rules for forking a multi-threaded process:
//! everything the child needs (program path, `argv`, `envp`) is prepared
//! before `fork()`, and the child calls only async-signal-safe functions
//! (`sigaction`, `pthread_sigmask`, `read`, `write`, `close`, `execve`,
//! `_exit`) until it execs.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

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
}

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
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call;
    // access(2) only reads it.
    if unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 {
        Ok(Candidate::Executable)
    } else {
        Ok(Candidate::NotExecutable)
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
    /// environment to C strings. `argv` must not be empty.
    pub fn new(argv: &[OsString]) -> Result<Prepared, PrepareError> {
        let program = resolve(&argv[0])?;
        let program = cstring(program.as_os_str())?;
        let argv_c = argv
            .iter()
            .map(|a| cstring(a))
            .collect::<Result<Vec<_>, _>>()?;
        let envp_c = std::env::vars_os()
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
        envp_ptrs.push(std::ptr::null());
        Ok(Prepared {
            program,
            _argv: argv_c,
            _envp: envp_c,
            argv_ptrs,
            envp_ptrs,
        })
    }
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by no
    // one else; each OwnedFd takes sole ownership of one.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
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

/// Whether `signal` is currently ignored (`SIG_IGN`), as `nohup` and shells
/// running background jobs arrange. Such signals are left ignored: not
/// caught by us, and still ignored by the command.
pub fn is_ignored(signal: libc::c_int) -> bool {
    // SAFETY: a null `act` only queries; `old` is a valid sigaction to fill.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0
            && old.sa_sigaction == libc::SIG_IGN
    }
}

/// The child exits with this status if the launcher went away before saying
/// "go" (it never runs the command).
const GATE_CLOSED_EXIT: libc::c_int = 125;

/// A child process that exists (so the lock can be taken in its name) but
/// waits for [`Gated::go`] before it executes the command. Dropping it
/// without `go` closes the gate: the child exits without running anything
/// (and is reaped).
pub struct Gated {
    pid: libc::pid_t,
    go: Option<OwnedFd>,
    exec_error: OwnedFd,
    reaped: bool,
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it.
    Signalled(i32),
}

/// Sleeps until the child exits; see [`Gated::wait_exit_or`].
pub struct ExitWatch {
    pidfd: Option<OwnedFd>,
}

/// What ended a [`Gated::wait_exit_or`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// The child has exited (it is not reaped yet).
    Exited,
    /// The other descriptor is readable.
    Readable,
}

/// Why `go` did not lead to a running command.
#[derive(Debug)]
pub enum GoError {
    /// The child had already died (killed while it waited at the gate).
    Died(Ended),
    /// Talking to the child failed.
    Io(io::Error),
}

/// Starts `cmd` as a gated child. `reset` are the signals whose handlers the
/// launcher installed: the child puts them back to their default action
/// before it waits at the gate (SIGPIPE too, which Rust programs ignore), so
/// a Ctrl-C while waiting for the lock ends the child like any process.
pub fn spawn_gated(cmd: &Prepared, reset: &[libc::c_int]) -> io::Result<Gated> {
    let (go_r, go_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let block = sigset(reset);
    // SAFETY: sigset_t is plain data, filled by pthread_sigmask below.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // Block the caught signals across fork so that no handler of ours runs in
    // the child before its dispositions are reset.
    // SAFETY: valid pointers to initialised sigsets.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut old) };
    // Raw values the child uses; nothing is allocated after fork.
    let go_r_fd = go_r.as_raw_fd();
    let go_w_fd = go_w.as_raw_fd();
    let err_r_fd = err_r.as_raw_fd();
    let err_w_fd = err_w.as_raw_fd();
    let program = cmd.program.as_ptr();
    let argv = cmd.argv_ptrs.as_ptr();
    let envp = cmd.envp_ptrs.as_ptr();
    // SAFETY: fork has no memory-safety preconditions; the child branch below
    // only makes async-signal-safe calls on data prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the child of a possibly multi-threaded process. Only
        // async-signal-safe functions are called, on descriptors and C
        // strings that were valid before the fork; the child never returns
        // into Rust code (it execs or calls _exit).
        unsafe {
            libc::close(go_w_fd);
            libc::close(err_r_fd);
            for &s in reset {
                libc::signal(s, libc::SIG_DFL);
            }
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            let mut byte = 0u8;
            loop {
                let n = libc::read(go_r_fd, (&mut byte as *mut u8).cast(), 1);
                if n == 1 {
                    break;
                }
                if n == -1 && *libc::__errno_location() == libc::EINTR {
                    continue;
                }
                // EOF: the launcher is gone (or gave up) before the lock was
                // ours. Run nothing.
                libc::_exit(GATE_CLOSED_EXIT);
            }
            libc::close(go_r_fd);
            libc::execve(program, argv, envp);
            let errno = *libc::__errno_location();
            let bytes = errno.to_ne_bytes();
            libc::write(err_w_fd, bytes.as_ptr().cast(), bytes.len());
            libc::_exit(127);
        }
    }
    let fork_error = io::Error::last_os_error();
    // SAFETY: restores the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    if pid < 0 {
        return Err(fork_error);
    }
    drop(go_r);
    drop(err_w);
    Ok(Gated {
        pid,
        go: Some(go_w),
        exec_error: err_r,
        reaped: false,
    })
}

fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

impl Gated {
    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Opens the gate: the child executes the command. Does not wait for
    /// `execve`; after the child has exited, [`Gated::exec_error`] tells
    /// whether it ran the command at all.
    pub fn go(&mut self) -> Result<(), GoError> {
        let go = self.go.take().expect("go is called once");
        let byte = [1u8];
        let written = retry(|| {
            // SAFETY: writes one byte from a valid buffer to an open pipe.
            cvt(unsafe { libc::write(go.as_raw_fd(), byte.as_ptr().cast(), 1) } as libc::c_int)
        });
        drop(go);
        match written {
            Ok(_) => Ok(()),
            // EPIPE (SIGPIPE is ignored by Rust programs): the child is gone.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {
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
            let n = retry(|| {
                // SAFETY: reads into the unfilled tail of a valid buffer.
                let n = unsafe {
                    libc::read(
                        self.exec_error.as_raw_fd(),
                        buf[got..].as_mut_ptr().cast(),
                        buf.len() - got,
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            })
            .ok()?;
            if n == 0 {
                break;
            }
            got += n;
        }
        (got == buf.len()).then(|| io::Error::from_raw_os_error(i32::from_ne_bytes(buf)))
    }

    /// Whether the child has exited, without reaping it: its PID stays
    /// reserved (a zombie) until [`Gated::wait`], so a signal sent to it
    /// before then cannot reach a recycled PID.
    fn has_exited(&self) -> io::Result<bool> {
        // SAFETY: siginfo_t is plain data that waitid fills.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        retry(|| {
            // SAFETY: waits on our own child with a valid siginfo pointer.
            cvt(unsafe {
                libc::waitid(
                    libc::P_PID,
                    self.pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT | libc::WNOHANG,
                )
            })
        })?;
        // SAFETY: waitid filled `info` (or left it zeroed: no child ready).
        Ok(unsafe { info.si_pid() } != 0)
    }

    /// A way to sleep until the child exits (a pidfd where the kernel has
    /// them, Linux 5.3+).
    pub fn exit_watch(&self) -> ExitWatch {
        // SAFETY: pidfd_open takes a PID and flags and returns a new
        // descriptor or -1; no memory is passed.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid, 0) };
        ExitWatch {
            // SAFETY: a non-negative result is a new descriptor we own.
            pidfd: (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) }),
        }
    }

    /// Sleeps until the child has exited (`Woke::Exited`; not reaped) or
    /// `fd` is readable (`Woke::Readable`; checked first).
    pub fn wait_exit_or(&self, watch: &ExitWatch, fd: RawFd) -> io::Result<Woke> {
        loop {
            let mut fds = [
                libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: watch.pidfd.as_ref().map_or(-1, |p| p.as_raw_fd()),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // Without a pidfd, poll the exit status every 20 ms.
            let timeout = if watch.pidfd.is_some() { -1 } else { 20 };
            // SAFETY: `fds` is a valid array of two pollfd; a negative fd is
            // ignored by poll.
            let r = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if fds[0].revents != 0 {
                return Ok(Woke::Readable);
            }
            if fds[1].revents != 0 || (watch.pidfd.is_none() && self.has_exited()?) {
                return Ok(Woke::Exited);
            }
        }
    }

    /// Reaps the child and returns how it ended.
    pub fn wait(&mut self) -> io::Result<Ended> {
        let mut status = 0;
        // SAFETY: waits on our own child with a valid status pointer.
        retry(|| cvt(unsafe { libc::waitpid(self.pid, &mut status, 0) }))?;
        self.reaped = true;
        if libc::WIFSIGNALED(status) {
            Ok(Ended::Signalled(libc::WTERMSIG(status)))
        } else {
            Ok(Ended::Exited(libc::WEXITSTATUS(status)))
        }
    }
}

impl Drop for Gated {
    fn drop(&mut self) {
        // Closing the gate makes a child that has not been told "go" exit;
        // then reap it so no zombie is left.
        self.go.take();
        if !self.reaped {
            let _ = self.wait();
        }
    }
}

/// Sends `signal` to process `pid`.
pub fn kill(pid: u32, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions.
    cvt(unsafe { libc::kill(pid as libc::pid_t, signal) }).map(drop)
}

/// The width of the terminal on standard error, if it is one.
pub fn stderr_columns() -> Option<usize> {
    // SAFETY: winsize is plain data; TIOCGWINSZ fills it on success.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd number and pointer for this ioctl.
    let r = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0).then_some(ws.ws_col as usize)
}

/// Sleeps until one of `fds` is readable (or hung up); returns its index.
pub fn wait_readable(fds: &[RawFd]) -> io::Result<usize> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|&fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `pfds` is a valid array of `pfds.len()` pollfd.
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, -1) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if let Some(i) = pfds.iter().position(|p| p.revents != 0) {
            return Ok(i);
        }
    }
}
