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

mod exit;
mod inspect;
mod run;
mod unix;

use clap::{Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

const AFTER_HELP: &str = "\
Examples:
  lockfolder run /tmp/backup.lock -- rsync -a /home/ /mnt/backup/
  lockfolder run -n /tmp/backup.lock -c 'make -C /srv/site deploy'
  lockfolder status /tmp/backup.lock --json
  lockfolder clean /tmp/backup.lock --dry-run

Exit status: the command's own for `run`; 128+N if it was killed by signal N;
1 (or -E N) if the lock was held (-n) or the wait timed out (-w); 64 usage,
66 no such folder, 70 internal, 71 OS error, 73 cannot create, 74 I/O error,
77 permission denied, 126 not executable, 127 command not found.
Manual: docs/cli.md";

/// Run a command under a crash-safe folder lock, see who holds it, clean up.
///
/// A lock folder is an ordinary directory; the lock is held while a bid file
/// of a live process is in it. Unlike flock(1), it works wherever a directory
/// listing is fresh, says who holds the lock, and survives kill -9.
#[derive(Parser, Debug)]
#[command(name = "lockfolder", version, after_help = AFTER_HELP)]
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

/// Take the lock in DIR, run the command, release the lock.
///
/// The folder is created if missing. Waits for the lock unless -n or -w
/// says otherwise; while waiting on a terminal, one status line on stderr
/// says who holds the lock. SIGINT, SIGTERM and SIGHUP sent to lockfolder
/// are passed to the command; the lock is released only after the command
/// has exited. If lockfolder itself is killed (even with kill -9), the lock
/// stays with the command until the command exits.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  # nightly job that must never overlap itself (cron):
  lockfolder run -n /var/lock/backup.lock -- /usr/local/bin/backup --full
  # wait up to 90 seconds, exit 75 if the lock is still held:
  lockfolder run -w 90 -E 75 /tmp/deploy.lock -c 'git pull && make install'
  # label the bid so `lockfolder status` shows what it is for:
  lockfolder run --label \"ci job $CI_JOB_ID\" /shared/locks/db -- ./migrate.sh

Exit status: the command's own; 128+N if a signal N killed it; the -E code
(default 1) on conflict or timeout; 64 usage, 71 OS error, 73 cannot create
the folder or a bid, 74 I/O error, 77 permission denied, 126 not executable,
127 command not found; 128+N if signal N interrupted the wait.")]
struct RunArgs {
    /// Fail at once (with the -E code) if the lock is held.
    #[arg(short = 'n', long = "nonblock")]
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

    /// Say how long the wait for the lock took.
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

    /// The command and its arguments (after `--`).
    #[arg(value_name = "COMMAND", last = true, required_unless_present = "shell")]
    argv: Vec<OsString>,
}

/// Show every entry of the lock folder DIR and whether the lock is held.
///
/// Each entry is shown with its state (live, stale, foreign, not-a-bid),
/// kind, PID, host, age, label and command. Nothing is changed, and a
/// missing folder is not created. Exit status: 0 if the lock is free, 1 if
/// it is held, 66 if DIR does not exist or is not a folder.
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  lockfolder status /var/lock/backup.lock
  if lockfolder status -q /var/lock/backup.lock; then echo free; fi
  lockfolder status --json /var/lock/backup.lock | jq '.entries[].pid'")]
struct StatusArgs {
    /// The lock folder.
    #[arg(value_name = "DIR")]
    dir: PathBuf,

    /// Print JSON (shape documented in docs/cli.md) instead of text.
    #[arg(long)]
    json: bool,

    /// Print nothing; only the exit status tells.
    #[arg(short = 'q', long, conflicts_with = "json")]
    quiet: bool,
}

/// Remove stale bids from the lock folder DIR.
///
/// A bid is stale when its process is provably gone (on this host and boot).
/// Live bids, bids from other hosts and files that are not bids are never
/// removed. Prints one line per entry removed (or, with --dry-run, that
/// would be removed).
#[derive(Args, Debug)]
#[command(after_help = "\
Examples:
  lockfolder clean --dry-run /var/lock/backup.lock
  lockfolder clean /var/lock/backup.lock")]
struct CleanArgs {
    /// The lock folder.
    #[arg(value_name = "DIR")]
    dir: PathBuf,

    /// Only show what would be removed.
    #[arg(long)]
    dry_run: bool,
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("`{s}` is not a usable number of seconds (0 or more)"))
}

/// Runs the command line tool with `args` (including the program name) and
/// returns the process exit status.
pub fn main_from_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Run(a) => {
            let argv = match a.shell {
                Some(c) => vec!["/bin/sh".into(), "-c".into(), c],
                None => a.argv,
            };
            let timeout = match (a.nonblock, a.timeout) {
                (true, _) => Some(Duration::ZERO),
                (false, t) => t,
            };
            run::run(run::Options {
                dir: a.dir,
                argv,
                timeout,
                conflict_code: i32::from(a.conflict_exit_code),
                quiet: a.quiet,
                verbose: a.verbose,
                label: a.label,
                shared: a.shared,
                slots: a.slots.unwrap_or(1),
            })
        }
        Command::Status(a) => inspect::status(&a.dir, a.json, a.quiet),
        Command::Clean(a) => inspect::clean(&a.dir, a.dry_run),
    }
}
