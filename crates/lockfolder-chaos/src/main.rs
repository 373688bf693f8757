//! `lockfolder-storm`: the kill storm and the processes it starts.

#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use lockfolder_chaos::arena::Arena;
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
        /// Folder in which to make the arena (default: system temp dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Keep the arena even if the storm passes (it is always kept on
        /// failure).
        #[arg(long)]
        keep: bool,
        /// Mutant for testing the checks: workers skip the lock, so the
        /// storm must fail with overlaps.
        #[arg(long, hide = true)]
        mutant_no_lock: bool,
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
                keep,
                mutant_no_lock,
                ..StormOptions::default()
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
        Cmd::Worker {
            part,
            mutant_no_lock,
        } => finish(
            &part,
            worker::run_worker(
                &Arena::open(&part.arena),
                &part.tag,
                part.jitter_us,
                mutant_no_lock,
            )
            .map(drop),
        ),
        Cmd::Cs(part) => finish(
            &part,
            worker::run_cs(&Arena::open(&part.arena), &part.tag, part.jitter_us),
        ),
        Cmd::CliWorker { cli, part } => finish(
            &part,
            worker::run_cli_worker(&Arena::open(&part.arena), &cli, &part.tag, part.jitter_us),
        ),
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
