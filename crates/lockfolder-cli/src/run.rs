//! `lockfolder run`: take the lock in the command's name, run it, release.
//!
//! # Why the bid names the command, not the launcher
//!
//! A bid is the lock for exactly as long as the process it names is alive.
//! If the bid named this launcher, a `kill -9` of the launcher would make the
//! bid stale while the command it started still runs, and the next contender
//! would remove it and enter: two holders. So the launcher first forks a
//! *gated* child (it exists, but waits for a "go" byte on a pipe before it
//! executes the command), then bids with `owner_pid(child)`: the bid records
//! the child's PID and start time, which `execve` does not change. Only when
//! the lock is held does the launcher send "go".
//!
//! * Launcher killed while waiting: the pipe's write end closes, the child
//!   reads end-of-file and exits without running anything; its bid (if one
//!   was out) is then stale.
//! * Launcher killed after "go": the bid still names the running command, so
//!   it is live until the command itself exits.
//! * Normal end: the launcher waits for the command to exit, then releases.
//!   By then the bid names a dead process, so a contender may already have
//!   removed it: `LockLost` on release is expected and not reported.

use crate::exit::{self, Context};
use crate::inspect::human_duration;
use crate::unix::{self, Ended, Gated, GoError, PrepareError, Prepared, Woke};
use lockfolder::{CancelToken, Error, LockFolder, LockGuard, MAX_LABEL_BYTES};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::backend::SignalDelivery;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::Cause;
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What `lockfolder run` was asked to do.
pub struct Options {
    pub dir: PathBuf,
    pub argv: Vec<OsString>,
    /// `None`: wait forever; zero: one attempt (`-n`).
    pub timeout: Option<Duration>,
    pub conflict_code: i32,
    pub quiet: bool,
    pub verbose: bool,
    pub label: Option<String>,
    pub shared: bool,
    pub slots: u32,
}

/// How often the wait comes up for air (status line, deadline). The core
/// wakes at once when the folder changes or the holder exits, so this does
/// not add latency to acquiring the lock.
const SLICE: Duration = Duration::from_millis(200);
/// The status line appears only after this much waiting, so short waits do
/// not flicker.
const QUIET_PERIOD: Duration = Duration::from_millis(300);
/// Signals passed to the command (and that cancel a wait).
const FORWARDED: [libc::c_int; 3] = [SIGINT, SIGTERM, SIGHUP];

fn signal_name(signo: i32) -> String {
    signal_hook::low_level::signal_name(signo)
        .map_or_else(|| format!("signal {signo}"), str::to_owned)
}

/// The signals of this run: signal-hook's handler writes each one, with
/// its origin, to a socket that the main thread polls (no work is done in a
/// handler, and no thread is needed unless the wait for the lock blocks).
type Delivery = SignalDelivery<UnixStream, WithOrigin>;

fn catch_signals() -> std::io::Result<(Delivery, Vec<libc::c_int>)> {
    // Signals already ignored (nohup, background jobs of scripts) stay
    // ignored, for us and for the command.
    let caught: Vec<libc::c_int> = FORWARDED
        .into_iter()
        .filter(|&s| !unix::is_ignored(s))
        .collect();
    let (read, write) = UnixStream::pair()?;
    read.set_nonblocking(true)?;
    write.set_nonblocking(true)?;
    let delivery = SignalDelivery::with_pipe(read, write, WithOrigin::default(), &caught)?;
    Ok((delivery, caught))
}

/// While the wait for the lock blocks, a thread turns the first signal into
/// a cancellation of the wait (the core's `CancelToken`). It only looks; the
/// main thread reads which signal it was.
struct Canceller {
    stop: Option<OwnedFd>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Canceller {
    fn idle() -> Canceller {
        Canceller {
            stop: None,
            thread: None,
        }
    }

    fn start(&mut self, signals: RawFd, cancel: CancelToken) -> std::io::Result<()> {
        let (stop_r, stop_w) = unix::pipe()?;
        let thread = std::thread::Builder::new()
            .name("lockfolder-signals".into())
            .spawn(move || {
                if let Ok(0) = unix::wait_readable(&[signals, stop_r.as_raw_fd()]) {
                    cancel.cancel();
                }
            })?;
        self.stop = Some(stop_w);
        self.thread = Some(thread);
        Ok(())
    }

    fn stop(&mut self) {
        // Closing the write end wakes the thread (hang-up on the read end).
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Canceller {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The command line as one string, for the bid and for messages; arguments
/// with spaces or shell characters are single-quoted.
fn command_line(argv: &[OsString]) -> String {
    let mut s = String::new();
    for (i, a) in argv.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let a = a.to_string_lossy();
        let plain = !a.is_empty()
            && a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
        if plain {
            s.push_str(&a);
        } else {
            s.push('\'');
            s.push_str(&a.replace('\'', r"'\''"));
            s.push('\'');
        }
    }
    if s.len() > MAX_LABEL_BYTES {
        let mut end = MAX_LABEL_BYTES - 3;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("...");
    }
    s
}

/// `lockfolder run`.
pub fn run(o: Options) -> i32 {
    let prepared = match Prepared::new(&o.argv) {
        Ok(p) => p,
        Err(PrepareError::NotFound(p)) => {
            return exit::fail_at(
                &o.dir,
                format_args!("cannot run {}: command not found", p.to_string_lossy()),
                exit::NOT_FOUND,
            )
        }
        Err(PrepareError::NotExecutable(p)) => {
            return exit::fail_at(
                &o.dir,
                format_args!("cannot run {}: permission denied", p.display()),
                exit::NOT_EXECUTABLE,
            )
        }
        Err(PrepareError::Nul(a)) => {
            return exit::fail_at(
                &o.dir,
                format_args!("argument or environment contains a NUL byte: {a:?}"),
                exit::USAGE,
            )
        }
    };
    let (mut signals, caught) = match catch_signals() {
        Ok(s) => s,
        Err(e) => {
            return exit::fail_at(
                &o.dir,
                format_args!("cannot catch signals: {e}"),
                exit::OSERR,
            )
        }
    };
    run_gated(&o, &prepared, &mut signals, &caught)
}

fn run_gated(
    o: &Options,
    prepared: &Prepared,
    signals: &mut Delivery,
    caught: &[libc::c_int],
) -> i32 {
    let cmdline = command_line(&o.argv);
    let mut child = match unix::spawn_gated(prepared, caught) {
        Ok(c) => c,
        Err(e) => {
            return exit::fail_at(
                &o.dir,
                format_args!("cannot start a process for the command: {e}"),
                exit::OSERR,
            )
        }
    };
    // From here on, every early return drops `child` without "go": it exits
    // without running the command.
    let mut builder = LockFolder::builder(&o.dir)
        .owner_pid(child.pid())
        .command(cmdline.clone())
        .shared(o.shared)
        .slots(o.slots);
    if let Some(l) = &o.label {
        builder = builder.label(l.clone());
    }
    let folder = match builder.open() {
        Ok(f) => f,
        Err(e) => return exit::fail(&e, Context::Run),
    };
    let guard = match acquire(&folder, o, signals) {
        Ok(g) => g,
        Err(code) => return code,
    };
    if let Some(signo) = first_signal(signals) {
        // A signal came while the lock was being taken: do not start.
        release(guard);
        if !o.quiet {
            exit::report(format_args!(
                "{}: {} before the command started; it was not run",
                o.dir.display(),
                signal_name(signo)
            ));
        }
        return exit::signalled(signo);
    }
    let ended = match child.go() {
        Ok(()) => forward_until_exit(&mut child, signals).map_err(|e| wait_failed(o, e)),
        Err(GoError::Died(ended)) => {
            let code = match ended {
                Ended::Exited(c) => c,
                Ended::Signalled(s) => exit::signalled(s),
            };
            Err(exit::fail_at(
                &o.dir,
                "the command's process died before it could start; it was not run",
                code,
            ))
        }
        Err(GoError::Io(e)) => Err(exit::fail_at(
            &o.dir,
            format_args!("starting the command: {e}"),
            exit::OSERR,
        )),
    };
    release(guard);
    match ended {
        Ok(Ended::Exited(code)) => match child.exec_error() {
            None => code,
            Some(e) => {
                let code = if e.kind() == std::io::ErrorKind::NotFound {
                    exit::NOT_FOUND
                } else {
                    exit::NOT_EXECUTABLE
                };
                exit::fail_at(&o.dir, format_args!("cannot run {cmdline}: {e}"), code)
            }
        },
        Ok(Ended::Signalled(signo)) => exit::signalled(signo),
        Err(code) => code,
    }
}

/// The first signal received so far, if any (all pending ones are consumed).
fn first_signal(signals: &mut Delivery) -> Option<i32> {
    signals.pending().map(|o| o.signal).next()
}

/// While the command runs: pass on every signal that another process sent
/// to us, until the command exits; then reap it.
///
/// A signal the kernel sent (Ctrl-C, terminal hang-up) went to the whole
/// foreground process group, the command included: passing it on would
/// deliver it twice. Signals from processes (`kill PID`, systemd,
/// timeout(1)) reached only us.
fn forward_until_exit(child: &mut Gated, signals: &mut Delivery) -> std::io::Result<Ended> {
    let watch = child.exit_watch();
    let fd = signals.get_read().as_raw_fd();
    while child.wait_exit_or(&watch, fd)? == Woke::Readable {
        for origin in signals.pending() {
            if origin.cause != Cause::Kernel {
                // The child is not reaped before this loop ends, so its PID
                // cannot have been recycled.
                let _ = unix::kill(child.pid(), origin.signal);
            }
        }
    }
    child.wait()
}

fn wait_failed(o: &Options, e: std::io::Error) -> i32 {
    exit::fail_at(
        &o.dir,
        format_args!("waiting for the command: {e}"),
        exit::OSERR,
    )
}

/// Releases after the command has exited. The bid named the command's
/// process, which is gone: another contender may already have removed it
/// as stale (`LockLost`), which is normal. Any other failure leaves a stale
/// bid that the next contender removes, so it is only a warning.
fn release(guard: LockGuard) {
    match guard.release() {
        Ok(()) | Err(Error::LockLost { .. }) => {}
        Err(e) => exit::report(format_args!(
            "warning: {e} (the bid is stale and will be removed by the next contender)"
        )),
    }
}

/// The one status line on a terminal, rewritten in place.
struct StatusLine {
    on: bool,
    shown: bool,
}

impl StatusLine {
    fn show(&mut self, text: &str) {
        if !self.on {
            return;
        }
        let width = unix::stderr_columns().unwrap_or(80).saturating_sub(1);
        let text: String = text.chars().take(width).collect();
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{text}");
        let _ = err.flush();
        self.shown = true;
    }

    fn clear(&mut self) {
        if self.shown {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[K");
            let _ = err.flush();
            self.shown = false;
        }
    }
}

/// Takes the lock, or returns the exit status to give up with.
fn acquire(folder: &LockFolder, o: &Options, signals: &mut Delivery) -> Result<LockGuard, i32> {
    let start = Instant::now();
    let dir = o.dir.display();
    if o.timeout == Some(Duration::ZERO) {
        return match folder.try_lock() {
            Ok(Some(g)) => Ok(g),
            Ok(None) => {
                if !o.quiet {
                    let holder = folder
                        .holders()
                        .ok()
                        .and_then(|hs| hs.into_iter().find(|h| h.blocks()))
                        .map_or_else(|| "another process".to_owned(), |h| h.describe());
                    exit::report(format_args!("{dir}: lock held by {holder}"));
                }
                Err(o.conflict_code)
            }
            Err(e) => Err(exit::fail(&e, Context::Run)),
        };
    }
    let deadline = o.timeout.map(|t| start + t);
    let mut waiter = folder.waiter();
    // One attempt first: the lock is usually free, and then no thread is
    // started.
    match waiter.wait(Some(start), None) {
        Ok(Some(guard)) => return Ok(guard),
        Ok(None) => {}
        Err(e) => return Err(exit::fail(&e, Context::Run)),
    }
    let cancel = CancelToken::new();
    let mut canceller = Canceller::idle();
    if let Err(e) = canceller.start(signals.get_read().as_raw_fd(), cancel.clone()) {
        return Err(exit::fail_at(
            &o.dir,
            format_args!("cannot watch for signals: {e}"),
            exit::OSERR,
        ));
    }
    let mut line = StatusLine {
        on: !o.quiet && std::io::stderr().is_terminal(),
        shown: false,
    };
    loop {
        let slice_end = Instant::now() + SLICE;
        let until = deadline.map_or(slice_end, |d| d.min(slice_end));
        match waiter.wait(Some(until), Some(&cancel)) {
            Ok(Some(guard)) => {
                line.clear();
                if o.verbose {
                    exit::report(format_args!(
                        "{dir}: lock taken after {:.3}s",
                        start.elapsed().as_secs_f64()
                    ));
                }
                return Ok(guard);
            }
            Ok(None) => {
                let waited = start.elapsed();
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    line.clear();
                    let holder = waiter.blocker();
                    if let Err(e) = waiter.abandon() {
                        exit::report(&e);
                    }
                    if !o.quiet {
                        exit::report(format_args!(
                            "{dir}: timed out after {:.1}s; lock held by {holder}",
                            waited.as_secs_f64()
                        ));
                    }
                    return Err(o.conflict_code);
                }
                if waited >= QUIET_PERIOD {
                    line.show(&format!(
                        "lockfolder: waiting {} for {dir}: held by {}",
                        human_duration(waited),
                        waiter.blocker()
                    ));
                }
            }
            Err(Error::Cancelled { .. }) => {
                line.clear();
                canceller.stop();
                let signo = first_signal(signals).unwrap_or(SIGINT);
                if !o.quiet {
                    exit::report(format_args!(
                        "{dir}: {} while waiting for the lock; gave up, no bid left",
                        signal_name(signo)
                    ));
                }
                return Err(exit::signalled(signo));
            }
            Err(e) => {
                line.clear();
                return Err(exit::fail(&e, Context::Run));
            }
        }
    }
}
