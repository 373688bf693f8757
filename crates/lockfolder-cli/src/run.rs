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
//! * Waiting for the command fails: the launcher cannot tell whether it
//!   still runs, so it leaves the bid (`LockGuard::leak`): live while the
//!   command is, stale after. Leaking is the safe side; releasing is not.
//!
//! # Background children (`--hold-while group`, the default)
//!
//! `flock(1)`'s lock stays with every process that inherited its
//! descriptor, so a command's background children keep it after the command
//! exits. Here the command runs in a process group of its own (made when
//! the gate opens, in `sys`), the bid also names that group
//! (`owner_group`), and on exit the launcher releases only if the group is
//! empty; otherwise the bid stays, live until the last member exits. While
//! the command runs, its group gets the terminal (see `sys::Gated::go`), and
//! signals sent to the launcher go to the whole group.
//! `--hold-while command` keeps the command in the launcher's group and
//! holds the lock for the command's own process only, as before.

use crate::exit::{self, Context};
use crate::fault;
use crate::inspect::human_duration;
use crate::sys::{self, Ended, GoError, PrepareError, Prepared, Signals};
use lockfolder::{CancelToken, Error, LockFolder, LockGuard, MAX_LABEL_BYTES};
use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long the lock is held once the command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum HoldWhile {
    /// Until the command and every process of its process group are gone
    /// (background children included), like flock(1).
    Group,
    /// Until the command's own process exits; background children it left
    /// run on without the lock.
    Command,
}

impl HoldWhile {
    /// `group` where process groups exist; `command` on Windows, which has
    /// none (`--hold-while group` is refused there).
    pub const DEFAULT: HoldWhile = if sys::PROCESS_GROUPS {
        HoldWhile::Group
    } else {
        HoldWhile::Command
    };
}

/// What `lockfolder run` was asked to do.
#[derive(Debug)]
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
    pub hold_while: HoldWhile,
    /// Hold the lock under a lease of this period (renewed by this
    /// launcher); implies a fencing token.
    pub lease: Option<Duration>,
    /// Draw a fencing token and give it to the command as LOCKFOLDER_FENCE.
    pub fencing: bool,
    /// Filesystems accepted by explicit opt-in.
    pub allow_fs: Vec<String>,
}

/// How often the wait comes up for air (status line, deadline). The core
/// wakes at once when the folder changes or the holder exits, so this does
/// not add latency to acquiring the lock.
const SLICE: Duration = Duration::from_millis(200);
/// The status line appears only after this much waiting, so short waits do
/// not flicker.
const QUIET_PERIOD: Duration = Duration::from_millis(300);

/// When a wait that began at `start` and may last `timeout` must give up;
/// `None` if it need not (no timeout, or one so long that the clock cannot
/// represent its end: a deadline too far away is no deadline).
pub fn deadline(start: Instant, timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| start.checked_add(t))
}

/// The end of the next slice of waiting: `SLICE` from `now`, or the
/// deadline if that comes first.
fn slice_end(now: Instant, deadline: Option<Instant>) -> Option<Instant> {
    match (now.checked_add(SLICE), deadline) {
        (Some(s), Some(d)) => Some(s.min(d)),
        (s, d) => s.or(d),
    }
}

/// The command line as one string, for the bid and for messages; arguments
/// with spaces or shell characters are single-quoted.
pub fn command_line(argv: &[OsString]) -> String {
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
    let fencing = o.fencing || o.lease.is_some();
    if let Some(why) = sys::unsupported(o.hold_while == HoldWhile::Group, fencing) {
        return exit::fail_at(&o.dir, why, exit::OSERR);
    }
    let mut prepared = match Prepared::new(&o.argv, fencing) {
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
    let mut signals = match Signals::catch() {
        Ok(s) => s,
        Err(e) => {
            return exit::fail_at(
                &o.dir,
                format_args!("cannot catch signals: {e}"),
                exit::OSERR,
            )
        }
    };
    run_gated(&o, &mut prepared, &mut signals)
}

fn run_gated(o: &Options, prepared: &mut Prepared, signals: &mut Signals) -> i32 {
    let cmdline = command_line(&o.argv);
    let own_group = o.hold_while == HoldWhile::Group;
    let mut child = match sys::spawn_gated(prepared, signals, own_group, o.lease.is_some()) {
        Ok(c) => c,
        Err(e) => {
            return exit::fail_at(
                &o.dir,
                format_args!("cannot start a process for the command: {e}"),
                exit::OSERR,
            )
        }
    };
    // From here on, every early return before "go" drops `child` without
    // it: the child exits without running the command.
    let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut builder = LockFolder::builder(&o.dir)
        .owner_pid(child.pid())
        .command(cmdline.clone())
        .shared(o.shared)
        .slots(o.slots);
    if own_group {
        // The group (numbered like the child's PID) only exists once the
        // gate opens: while we wait, the bid lives and dies with the child.
        builder = builder.owner_group(child.pid());
    }
    if let Some(l) = &o.label {
        builder = builder.label(l.clone());
    }
    for fs in &o.allow_fs {
        builder = builder.allow_filesystem(fs.clone());
    }
    if o.fencing {
        builder = builder.fencing(true);
    }
    if let Some(lease) = o.lease {
        // A lease that cannot be renewed in time: the lock may soon be
        // someone else's, so the command must stop.
        let (pid, dir, quiet) = (child.pid(), o.dir.clone(), o.quiet);
        let running = running.clone();
        builder = builder.lease(lease).on_lost(move |bid| {
            if !quiet {
                exit::report(format_args!(
                    "{}: the lease on {} could not be renewed in time; the lock may \
                     be someone else's now: sending SIGTERM to the command",
                    dir.display(),
                    bid.display()
                ));
            }
            // Only while the command is not yet reaped: its PID (and group
            // number) cannot have been recycled.
            if running.load(std::sync::atomic::Ordering::SeqCst) {
                sys::terminate(pid, own_group);
            }
        });
    }
    let folder = match builder.open() {
        Ok(f) => f,
        Err(e) => return exit::fail(&e, Context::Run),
    };
    let guard = match acquire(&folder, o, signals) {
        Ok(g) => g,
        Err(code) => return code,
    };
    if let Some(signo) = signals.first() {
        // A signal came while the lock was being taken: do not start.
        release(guard);
        if !o.quiet {
            exit::report(format_args!(
                "{}: {} before the command started; it was not run",
                o.dir.display(),
                sys::signal_name(signo)
            ));
        }
        return exit::signalled(signo);
    }
    match child.go(guard.fencing_token()) {
        Ok(()) => {}
        Err(GoError::Died(ended)) => {
            release(guard);
            let code = match ended {
                Ended::Exited(c) => c,
                Ended::Signalled(s) => exit::signalled(s),
            };
            return exit::fail_at(
                &o.dir,
                "the command's process died before it could start; it was not run",
                code,
            );
        }
        Err(GoError::Io(e)) => {
            // Whether the child got the byte is unknown: it may be running
            // the command, so the bid stays (stale once it is gone).
            guard.leak();
            return exit::fail_at(
                &o.dir,
                format_args!("starting the command: {e}"),
                exit::OSERR,
            );
        }
    }
    let supervised =
        fault::check(fault::Point::WaitForCommand).and_then(|()| child.supervise(signals));
    running.store(false, std::sync::atomic::Ordering::SeqCst);
    let ended = match supervised {
        Ok(e) => e,
        Err(e) => {
            // We cannot tell whether the command still runs. Releasing
            // could let a second holder in beside it; leaving the bid is
            // safe: it names the command (and its group), so it is live
            // exactly as long as they are, then stale.
            guard.leak();
            drop(child);
            return exit::fail_at(
                &o.dir,
                format_args!(
                    "waiting for the command: {e}; the lock stays with the command until it exits"
                ),
                exit::OSERR,
            );
        }
    };
    if own_group && o.lease.is_some() {
        // Only this launcher renews the lease: it stays until the command's
        // background processes are gone too, renewing, rather than leave
        // them running under a lease that would lapse.
        while sys::group_alive(child.pid()) && !guard.lost() {
            std::thread::sleep(Duration::from_millis(100));
        }
        release(guard);
    } else if own_group && sys::group_alive(child.pid()) {
        // Background processes of the command run on: the lock stays with
        // them (the bid names their group), as flock(1)'s lock stays with
        // the children that inherited its descriptor. It is stale once the
        // last of them exits; the next contender removes it.
        guard.leak();
        if o.verbose {
            exit::report(format_args!(
                "{}: the command exited; the lock stays with its process group {} until the last member exits",
                o.dir.display(),
                child.pid()
            ));
        }
    } else {
        release(guard);
    }
    match ended {
        Ended::Exited(code) => match child.exec_error() {
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
        Ended::Signalled(signo) => exit::signalled(signo),
    }
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
        let width = sys::stderr_columns().unwrap_or(80).saturating_sub(1);
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
fn acquire(folder: &LockFolder, o: &Options, signals: &mut Signals) -> Result<LockGuard, i32> {
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
    let deadline = deadline(start, o.timeout);
    let mut waiter = folder.waiter();
    // One attempt first: the lock is usually free, and then no thread is
    // started.
    match waiter.wait(Some(start), None) {
        Ok(Some(guard)) => return Ok(guard),
        Ok(None) => {}
        Err(e) => return Err(exit::fail(&e, Context::Run)),
    }
    let cancel = CancelToken::new();
    let canceller = match signals.cancel_on_signal(cancel.clone()) {
        Ok(c) => c,
        Err(e) => {
            return Err(exit::fail_at(
                &o.dir,
                format_args!("cannot watch for signals: {e}"),
                exit::OSERR,
            ))
        }
    };
    let mut line = StatusLine {
        on: !o.quiet && std::io::stderr().is_terminal(),
        shown: false,
    };
    loop {
        match waiter.wait(slice_end(Instant::now(), deadline), Some(&cancel)) {
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
                drop(canceller);
                let signo = signals.first().unwrap_or(sys::SIGINT);
                if !o.quiet {
                    exit::report(format_args!(
                        "{dir}: {} while waiting for the lock; gave up, no bid left",
                        sys::signal_name(signo)
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
