//! `lockfolder-storm`: the kill storm and the processes it starts.

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use lockfolder_chaos::arena::Arena;
use lockfolder_chaos::fresh::{self, FreshOptions, Look};
use lockfolder_chaos::storm::{self, StormOptions};
use lockfolder_chaos::worker;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "lockfolder-storm", about = "SIGKILL storm against lockfolder")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a storm and check it. Exit status 0 only if it passed.
    Storm {
        /// Worker processes (or `lockfolder run` loops with --cli).
        #[arg(long, default_value_t = 8)]
        workers: usize,
        /// How long to keep killing.
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        /// Storm `lockfolder run` instead of the library: path to the
        /// `lockfolder` binary.
        #[arg(long)]
        cli: Option<PathBuf>,
        /// Mean milliseconds between random kills.
        #[arg(long, default_value_t = 50)]
        kill_every_ms: u64,
        /// Percent of new bids whose owner is killed at once.
        #[arg(long, default_value_t = 3)]
        bid_kill_percent: u32,
        /// Percent of critical sections killed the moment they start.
        #[arg(long, default_value_t = 3)]
        cs_kill_percent: u32,
        /// Longest random pause between a worker's steps, microseconds.
        #[arg(long, default_value_t = 400)]
        jitter_us: u64,
        /// Folder in which to make the arena: marker, counter, logs (default:
        /// system temp dir). With --dirs it must be a local folder.
        #[arg(long, visible_alias = "probe-dir")]
        dir: Option<PathBuf>,
        /// The lock folder as seen through several mounts of one network
        /// export, comma-separated (made through the first; must be new or
        /// empty). Worker i uses path i mod N. Default: `lock/` in the arena.
        #[arg(long, value_delimiter = ',')]
        dirs: Vec<PathBuf>,
        /// Keep the storm running with the killer quiet for at least this
        /// long after the killing stops.
        #[arg(long, default_value_t = 0.0)]
        quiet_secs: f64,
        /// A wedge: a surviving worker that does not acquire, or no
        /// acquisition at all, for this long while the killer is quiet.
        #[arg(long, default_value_t = 1000)]
        wake_limit_ms: u64,
        /// Let the final listings take up to this long to show the lock
        /// folder empty (a network filesystem's directory cache).
        #[arg(long, default_value_t = 0.0)]
        settle_secs: f64,
        /// Multi-host storm: keep the detectors in this local folder, shared
        /// with the storms of other hosts (PID/UTS namespaces of one kernel)
        /// on the same lock folder; this storm's files go to DIR/<hostname>.
        #[arg(long)]
        shared: Option<PathBuf>,
        /// Keep the arena even if the storm passes (it is always kept on
        /// failure).
        #[arg(long)]
        keep: bool,
        /// Mutant for testing the checks: workers skip the lock, so the
        /// storm must fail with overlaps.
        #[arg(long, hide = true)]
        mutant_no_lock: bool,
    },
    /// Measure how often a look through one mount misses an entry just
    /// published through the other; prints one line per kind of look.
    Freshness {
        /// The folder through the first mount (created if missing).
        #[arg(long)]
        a: PathBuf,
        /// The same folder through the second mount.
        #[arg(long)]
        b: PathBuf,
        /// Trials per kind of look, at most.
        #[arg(long, default_value_t = 100)]
        trials: u32,
        /// Kinds of look: list (without writing first), publish (own entry,
        /// then list), stat (the new name).
        #[arg(long, value_delimiter = ',', default_value = "list,publish,stat")]
        looks: Vec<String>,
        /// How long to wait for a missed entry.
        #[arg(long, default_value_t = 30.0)]
        wait_secs: f64,
        /// Time budget of the whole probe, shared by the looks.
        #[arg(long, default_value_t = 120.0)]
        seconds: f64,
        /// Exit 1 if any of these looks missed an entry (e.g. `publish`).
        #[arg(long, value_delimiter = ',')]
        require_fresh: Vec<String>,
    },
    /// (started by `storm`) Loop acquire → critical section → release.
    Worker {
        #[command(flatten)]
        part: Part,
        #[arg(long, hide = true)]
        mutant_no_lock: bool,
    },
    /// (started by `lockfolder run`) One critical section.
    Cs(Part),
    /// (started by `storm --cli`) Loop `lockfolder run DIR -- lockfolder-storm cs`.
    CliWorker {
        #[arg(long)]
        cli: PathBuf,
        #[command(flatten)]
        part: Part,
    },
}

/// What every process the storm starts is told: where the arena is, its
/// name in the logs, and how long its random pauses may be.
#[derive(clap::Args)]
struct Part {
    #[arg(long)]
    arena: PathBuf,
    #[arg(long)]
    tag: String,
    /// The lock folder (default: `lock/` in the arena).
    #[arg(long)]
    lock: Option<PathBuf>,
    /// Where the detectors are, if not in the arena (a multi-host storm).
    #[arg(long)]
    probe: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    jitter_us: u64,
}

fn main() -> ExitCode {
    match Cli::parse().cmd {
        Cmd::Storm {
            workers,
            seconds,
            cli,
            kill_every_ms,
            bid_kill_percent,
            cs_kill_percent,
            jitter_us,
            dir,
            dirs,
            quiet_secs,
            wake_limit_ms,
            settle_secs,
            shared,
            keep,
            mutant_no_lock,
        } => {
            let opts = StormOptions {
                workers,
                seconds,
                cli,
                kill_every: Duration::from_millis(kill_every_ms),
                bid_kill_percent,
                cs_kill_percent,
                jitter_us,
                dir,
                dirs,
                quiet: secs(quiet_secs),
                wake_limit: Duration::from_millis(wake_limit_ms),
                settle: secs(settle_secs),
                shared,
                keep,
                mutant_no_lock,
            };
            match storm::run(opts) {
                Ok(report) => {
                    for o in report.overlaps.iter().take(20) {
                        eprint!("OVERLAP: {o}");
                    }
                    if report.overlaps.len() > 20 {
                        eprintln!("... and {} more overlaps", report.overlaps.len() - 20);
                    }
                    for e in report.unexpected_exits.iter().chain(&report.worker_errors) {
                        eprintln!("worker: {}", e.trim_end());
                    }
                    for f in report.failures() {
                        eprintln!("FAIL: {f}");
                    }
                    if report.keep_arena_note() {
                        eprintln!("arena kept at {}", report.arena.display());
                    }
                    println!("{}", report.summary_line());
                    if report.passed() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("lockfolder-storm: cannot run the storm: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Cmd::Freshness {
            a,
            b,
            trials,
            looks,
            wait_secs,
            seconds,
            require_fresh,
        } => freshness(a, b, trials, &looks, wait_secs, seconds, &require_fresh),
        Cmd::Worker {
            part,
            mutant_no_lock,
        } => finish(
            &part,
            worker::run_worker(
                &part.arena(),
                &part.lock_dir(),
                &part.tag,
                part.jitter_us,
                mutant_no_lock,
            )
            .map(drop),
        ),
        Cmd::Cs(part) => finish(
            &part,
            worker::run_cs(&part.arena(), &part.tag, part.jitter_us),
        ),
        Cmd::CliWorker { cli, part } => finish(
            &part,
            worker::run_cli_worker(
                &part.arena(),
                &part.lock_dir(),
                &cli,
                &part.tag,
                part.jitter_us,
            ),
        ),
    }
}

impl Part {
    fn arena(&self) -> Arena {
        match &self.probe {
            Some(p) => Arena::open_shared(&self.arena, p),
            None => Arena::open(&self.arena),
        }
    }

    fn lock_dir(&self) -> PathBuf {
        self.lock
            .clone()
            .unwrap_or_else(|| Arena::open(&self.arena).lock_dir())
    }
}

/// Seconds from the command line; a negative or absurd value is a usage
/// error rather than a panic.
fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_else(|_| {
        eprintln!("lockfolder-storm: {s} is not a number of seconds");
        std::process::exit(2)
    })
}

fn parse_looks(words: &[String]) -> Vec<Look> {
    words
        .iter()
        .map(|w| {
            Look::parse(w).unwrap_or_else(|| {
                eprintln!("lockfolder-storm: unknown look {w:?} (list, publish, stat)");
                std::process::exit(2)
            })
        })
        .collect()
}

fn freshness(
    a: PathBuf,
    b: PathBuf,
    trials: u32,
    looks: &[String],
    wait_secs: f64,
    seconds: f64,
    require_fresh: &[String],
) -> ExitCode {
    let opts = FreshOptions {
        a,
        b,
        trials,
        looks: parse_looks(looks),
        wait: secs(wait_secs),
        budget: secs(seconds),
    };
    let strict = parse_looks(require_fresh);
    match fresh::run(&opts) {
        Ok(reports) => {
            let mut ok = true;
            for r in &reports {
                println!("{}", r.line(opts.wait));
                if strict.contains(&r.look) && r.missed > 0 {
                    eprintln!(
                        "FAIL: look {} missed {} of {} just-published entries",
                        r.look.name(),
                        r.missed,
                        r.trials
                    );
                    ok = false;
                }
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("lockfolder-storm: freshness probe: {e}");
            ExitCode::from(2)
        }
    }
}

fn finish(part: &Part, r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            Arena::open(&part.arena).record_error(&part.tag, &e);
            ExitCode::from(3)
        }
    }
}
