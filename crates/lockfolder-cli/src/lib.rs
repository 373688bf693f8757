//! The `lockfolder` command line tool, as a library so the Python package's
//! console script runs the very same code.
//!
//! * `lockfolder run DIR -- COMMAND...` takes the lock in `DIR`, runs the
//!   command, releases. The lock is taken *in the name of the command's
//!   process* (see [`run`](crate) and `docs/cli.md`), so a `kill -9` of the
//!   launcher never lets a second holder in while the command still runs.
//! * `lockfolder status DIR [--json]` lists every entry of the folder.
//! * `lockfolder clean DIR [--dry-run]` removes stale bids.
//!
//! `docs/cli.md` is the manual: every option, every exit code, the JSON
//! shape, the design.

#![deny(missing_docs)]
// Output goes through `exit::report` and `exit::Output`, which survive a
// closed pipe; the print macros panic on one.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod exit;
mod fault;
mod inspect;
mod run;
mod sys;
#[cfg(test)]
mod tests;

use clap::{Args, Parser, Subcommand};
use exit::Scope;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub use run::HoldWhile;

fn top_help() -> String {
    format!(
        "\
Examples:
  lockfolder run /tmp/backup.lock rsync -a /home/ /mnt/backup/
  lockfolder run -n /tmp/backup.lock -c 'make -C /srv/site deploy'
  lockfolder status /tmp/backup.lock --json
  lockfolder clean /tmp/backup.lock --dry-run

{}
The manual: man lockfolder (and lockfolder-run, lockfolder-status,
lockfolder-clean), or `lockfolder SUBCOMMAND --help`.",
        exit::help_block(&[Scope::All, Scope::Run, Scope::Inspect])
    )
}

/// Run a command under a crash-safe folder lock, see who holds it, clean up.
///
/// A lock folder is an ordinary directory; the lock is held while a bid file
/// of a live process is in it. Unlike flock(1), it works wherever a directory
/// listing is fresh, says who holds the lock, and survives kill -9.
#[derive(Parser, Debug)]
#[command(name = "lockfolder", version, after_help = top_help())]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Run(RunArgs),
    Status(StatusArgs),
    Clean(CleanArgs),
}

fn run_help() -> String {
    format!(
        "\
Examples:
  # nightly job that must never overlap itself (cron):
  lockfolder run -n /var/lock/backup.lock /usr/local/bin/backup --full
  # wait up to 90 seconds, exit 75 if the lock is still held:
  lockfolder run -w 90 -E 75 /tmp/deploy.lock -c 'git pull && make install'
  # label the bid so `lockfolder status` shows what it is for:
  lockfolder run --label \"ci job $CI_JOB_ID\" /shared/locks/db -- ./migrate.sh

{}",
        exit::help_block(&[Scope::All, Scope::Run])
    )
}

/// Take the lock in DIR, run the command, release the lock.
///
/// The folder is created if missing. Waits for the lock unless -n or -w
/// says otherwise; while waiting on a terminal, one status line on stderr
/// says who holds the lock. The command runs in a process group of its own
/// (it gets the terminal while it runs); the lock is held until it and every
/// process it left in its group have exited (--hold-while). SIGINT, SIGTERM
/// and SIGHUP sent to lockfolder are passed to the command's group. If
/// lockfolder itself is killed (even with kill -9), the lock stays with the
/// command until the command exits. Windows has no process groups or
/// signals: there the command holds the lock until it exits, and Ctrl-C
/// reaches it through the console.
#[derive(Args, Debug)]
#[command(after_help = run_help())]
struct RunArgs {
    /// Fail at once (with the -E code) if the lock is held.
    #[arg(short = 'n', long = "nonblock", conflicts_with = "timeout")]
    nonblock: bool,

    /// Give up after SECONDS (fractions allowed) with the -E code; 0 is -n.
    #[arg(short = 'w', long = "timeout", value_name = "SECONDS", value_parser = parse_seconds,
          allow_negative_numbers = true)]
    timeout: Option<Duration>,

    /// Exit status for a conflict (-n) or a timeout (-w), 0-255.
    #[arg(
        short = 'E',
        long = "conflict-exit-code",
        value_name = "N",
        default_value_t = 1
    )]
    conflict_exit_code: u8,

    /// No status line while waiting, no message on conflict or timeout.
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    quiet: bool,

    /// Say how long the wait for the lock took, and when the lock stays
    /// with background processes.
    #[arg(short = 'v', long)]
    verbose: bool,

    /// Free text stored in the bid and shown by `lockfolder status`.
    #[arg(long, value_name = "TEXT")]
    label: Option<String>,

    /// Take a shared (reader) lock: any number of shared holders run at
    /// once, never together with an exclusive one.
    #[arg(short = 's', long, conflicts_with = "slots")]
    shared: bool,

    /// Counting semaphore: at most N holders at once. Every user of DIR must
    /// give the same N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    slots: Option<u32>,

    /// How long the lock is held: `group` (default) until the command and
    /// every process left in its process group have exited, like flock(1);
    /// `command` until the command itself exits (it then stays in
    /// lockfolder's process group). Windows has no process groups: there
    /// `command` is the default and `group` is refused.
    #[arg(long, value_name = "WHAT", value_enum, default_value_t = HoldWhile::DEFAULT)]
    hold_while: HoldWhile,

    /// Hold the lock under a lease of SECONDS (at least 1): this launcher
    /// renews the bid; a machine that cannot judge our processes (another
    /// host sharing the folder) may remove it once it has not been renewed
    /// for the lease. If the lease cannot be renewed in time the command
    /// gets SIGTERM. Implies --fencing. Killing the launcher kills the
    /// command (Linux).
    #[arg(long, value_name = "SECONDS", value_parser = parse_lease)]
    lease: Option<Duration>,

    /// Draw a fencing token (larger than every earlier holder's) and give it
    /// to the command in the environment as LOCKFOLDER_FENCE.
    #[arg(long)]
    fencing: bool,

    /// Accept the filesystem NAME (as `lockfolder status` names it: cifs,
    /// fuse.rclone, ... or `*`) although lockfolder has no evidence it is
    /// safe there. Repeat for several. LOCKFOLDER_ALLOW_FS does the same.
    #[arg(long = "allow-fs", value_name = "NAME")]
    allow_fs: Vec<String>,

    /// Run SHELL_COMMAND with `/bin/sh -c` instead of COMMAND.
    #[arg(
        short = 'c',
        long = "command",
        value_name = "SHELL_COMMAND",
        conflicts_with = "argv"
    )]
    shell: Option<OsString>,

    /// The lock folder.
    #[arg(value_name = "DIR")]
    dir: PathBuf,

    /// The command and its arguments. The first word after DIR starts the
    /// command: everything from there on, options included, is the
    /// command's. A `--` before it is allowed.
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        required_unless_present = "shell"
    )]
    argv: Vec<OsString>,
}

fn status_help() -> String {
    format!(
        "\
Examples:
  lockfolder status /var/lock/backup.lock
  if lockfolder status -q /var/lock/backup.lock; then echo free; fi
  lockfolder status --json /var/lock/backup.lock | jq '.entries[].pid'
  lockfolder status --json /var/lock/backup.lock | jq '.would_wait, .blockers'

{}",
        exit::help_block(&[Scope::All, Scope::Inspect])
    )
}

/// Show every entry of the lock folder DIR, who holds the lock, who waits,
/// and what a new acquisition would wait for.
///
/// Each entry is shown with its state (live, stale, foreign, not-a-bid),
/// kind (bid, legacy-bid, temporary, queue-marker, artefact, fence, other),
/// role (holder, waiter; "(stopped)" for a stopped process), PID, host, age,
/// label and command; then the filesystem and whether lockfolder accepts
/// it. Nothing is changed, and a missing folder is not created. Exit status
/// 0 if a new acquisition would get the lock now, 1 if it would wait (the
/// lock is held, or live waiters are queued ahead of it).
#[derive(Args, Debug)]
#[command(after_help = status_help())]
struct StatusArgs {
    /// The lock folder.
    #[arg(value_name = "DIR")]
    dir: PathBuf,

    /// Print JSON (format 1, see the manual) instead of text.
    #[arg(long)]
    json: bool,

    /// Print nothing; only the exit status tells.
    #[arg(short = 'q', long, conflicts_with = "json")]
    quiet: bool,
}

fn clean_help() -> String {
    format!(
        "\
Examples:
  lockfolder clean --dry-run /var/lock/backup.lock
  lockfolder clean /var/lock/backup.lock
  # a container killed as a whole left a bid nobody can judge:
  lockfolder clean --force 0190f1c2-8a1b-7c3d-9e4f-5a6b7c8d9e0f.json /var/lock/backup.lock

{}",
        exit::help_block(&[Scope::All, Scope::Inspect])
    )
}

/// Remove stale bids from the lock folder DIR.
///
/// A bid is stale when its process is provably gone (on this machine and
/// boot, or in a container this machine can see into, or its lease lapsed).
/// Live bids, bids nobody here can judge and files that are not bids are
/// never removed. Prints one line per entry removed (or, with --dry-run,
/// that would be removed). --force ENTRY removes a named bid or queue
/// marker that no proof can settle (a container killed as a whole, a host
/// gone for good), after you have checked its owner is gone; it refuses
/// files that are not bids and bids of processes alive on this machine.
#[derive(Args, Debug)]
#[command(after_help = clean_help())]
struct CleanArgs {
    /// The lock folder.
    #[arg(value_name = "DIR")]
    dir: PathBuf,

    /// Only show what would be removed.
    #[arg(long, conflicts_with = "force")]
    dry_run: bool,

    /// Remove this entry (a file name in DIR) although nothing proves its
    /// owner gone; repeat for several. Only bids and lockfolder side files,
    /// never a bid whose process this machine sees alive.
    #[arg(long, value_name = "ENTRY")]
    force: Vec<OsString>,
}

/// `-w SECONDS`: a finite number of seconds, 0 or more. More seconds than
/// a `Duration` holds are "forever" (no deadline), not an error.
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !secs.is_finite() || secs.is_sign_negative() {
        return Err(format!(
            "`{s}` is not a usable number of seconds (a finite number, 0 or more)"
        ));
    }
    Ok(Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
}

/// `--lease SECONDS`: a finite number of seconds, at least the core's
/// minimum.
fn parse_lease(s: &str) -> Result<Duration, String> {
    let d = parse_seconds(s)?;
    if !(lockfolder::MIN_LEASE..=lockfolder::MAX_LEASE).contains(&d) {
        return Err(format!(
            "`{s}`: a lease must be from {} to {} seconds",
            lockfolder::MIN_LEASE.as_secs(),
            lockfolder::MAX_LEASE.as_secs()
        ));
    }
    Ok(d)
}

/// What the command line asks for, checked and converted.
#[derive(Debug)]
enum Action {
    Run(run::Options),
    Status {
        dir: PathBuf,
        json: bool,
        quiet: bool,
    },
    Clean {
        dir: PathBuf,
        dry_run: bool,
        force: Vec<OsString>,
    },
}

/// Parses the command line (including the program name). Nothing is run.
fn parse(args: Vec<OsString>) -> Result<Action, clap::Error> {
    let cli = Cli::try_parse_from(args)?;
    Ok(match cli.command {
        Command::Run(a) => {
            let argv = match a.shell {
                Some(c) => vec!["/bin/sh".into(), "-c".into(), c],
                None => a.argv,
            };
            let timeout = if a.nonblock {
                Some(Duration::ZERO)
            } else {
                a.timeout
            };
            Action::Run(run::Options {
                dir: a.dir,
                argv,
                timeout,
                conflict_code: i32::from(a.conflict_exit_code),
                quiet: a.quiet,
                verbose: a.verbose,
                label: a.label,
                shared: a.shared,
                slots: a.slots.unwrap_or(1),
                hold_while: a.hold_while,
                lease: a.lease,
                fencing: a.fencing,
                allow_fs: a.allow_fs,
            })
        }
        Command::Status(a) => Action::Status {
            dir: a.dir,
            json: a.json,
            quiet: a.quiet,
        },
        Command::Clean(a) => Action::Clean {
            dir: a.dir,
            dry_run: a.dry_run,
            force: a.force,
        },
    })
}

/// The exit status for a command line the parser refused (0 for `--help`
/// and `--version`, which clap reports the same way).
fn parse_error_code(e: &clap::Error) -> i32 {
    if e.use_stderr() {
        exit::USAGE
    } else {
        exit::OK
    }
}

/// Runs the command line tool with `args` (including the program name) and
/// returns the process exit status.
pub fn main_from_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    match parse(args) {
        Ok(Action::Run(o)) => run::run(o),
        Ok(Action::Status { dir, json, quiet }) => inspect::status(&dir, json, quiet),
        Ok(Action::Clean {
            dir,
            dry_run,
            force,
        }) => inspect::clean(&dir, dry_run, &force),
        Err(e) => {
            // A closed stdout or stderr loses the message, not the status.
            let _ = e.print();
            parse_error_code(&e)
        }
    }
}
