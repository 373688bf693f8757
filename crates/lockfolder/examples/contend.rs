//! A contender for mixed runs (`scripts/lanes/wine/mixed.py`): lock a
//! folder, note the moment, work a little, note the moment, release; again
//! until a stop file appears or the rounds are done.
//!
//! ```text
//! contend --folder DIR --log FILE [--stop FILE] [--rounds N]
//!         [--work-ms MAX] [--pause-ms MAX] [--timeout-s S] [--no-lock]
//! ```
//!
//! The probe lives outside the lock: every event is one line
//! `<unix ns> <event> <round>` in FILE, which only this process writes
//! (under wine, appends of several processes to one file lose lines). The
//! checker merges the files by time, so every process must read the same
//! clock: the system's wall clock (`SystemTime`, which on Windows is
//! `GetSystemTimePreciseAsFileTime`, as Python's `time.time_ns`). `enter` is
//! written after the lock is taken and `leave` before it is given back, so
//! the noted intervals lie inside the held ones: two that intersect are two
//! holders.
//!
//! Events: `start <pid>`, `want`, `enter`, `leave`, `stop`. A wait longer
//! than `--timeout-s` (default 30) is an error, not a hang: it is printed with
//! the holder's description and the process exits with code 3 (other lock
//! errors: 2, bad arguments: 64). `--no-lock` skips the lock (to show that
//! the probe sees overlaps).

use lockfolder::{Error, LockFolder};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

struct Args {
    folder: PathBuf,
    log: PathBuf,
    stop: Option<PathBuf>,
    rounds: Option<u64>,
    work_ms: u64,
    pause_ms: u64,
    timeout: Duration,
    no_lock: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut folder = None;
    let mut log = None;
    let mut stop = None;
    let mut rounds = None;
    let mut work_ms = 20;
    let mut pause_ms = 20;
    let mut timeout_s = 30;
    let mut no_lock = false;
    let mut it = std::env::args_os().skip(1);
    while let Some(arg) = it.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("argument {a:?} is not UTF-8"))?;
        if arg == "--no-lock" {
            no_lock = true;
            continue;
        }
        let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
        let number = || {
            value
                .to_str()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("{arg}: {value:?} is not a whole number"))
        };
        match arg.as_str() {
            "--folder" => folder = Some(PathBuf::from(&value)),
            "--log" => log = Some(PathBuf::from(&value)),
            "--stop" => stop = Some(PathBuf::from(&value)),
            "--rounds" => rounds = Some(number()?),
            "--work-ms" => work_ms = number()?,
            "--pause-ms" => pause_ms = number()?,
            "--timeout-s" => timeout_s = number()?,
            _ => return Err(format!("unknown argument {arg}")),
        }
    }
    Ok(Args {
        folder: folder.ok_or("--folder is required")?,
        log: log.ok_or("--log is required")?,
        stop,
        rounds,
        work_ms,
        pause_ms,
        timeout: Duration::from_secs(timeout_s),
        no_lock,
    })
}

/// The probe's log: one `write` per line, so a kill loses at most the line
/// being written, never half of an earlier one.
struct Log {
    file: File,
    path: PathBuf,
}

impl Log {
    fn event(&mut self, event: &str, round: u64) -> Result<(), String> {
        let ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|e| format!("clock before 1970: {e}"))?
            .as_nanos();
        let line = format!("{ns} {event} {round}\n");
        self.file
            .write_all(line.as_bytes())
            .map_err(|e| format!("write {}: {e}", self.path.display()))
    }
}

/// xorshift64*: jitter only, so that contenders do not run in step.
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Jitter(((u64::from(nanos) << 20) ^ u64::from(std::process::id())) | 1)
    }

    fn below(&mut self, max: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        match max {
            0 => 0,
            _ => self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % (max + 1),
        }
    }
}

fn run(args: &Args) -> Result<(), (u8, String)> {
    let io = |e: String| (2, e);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.log)
        .map_err(|e| io(format!("open {}: {e}", args.log.display())))?;
    let mut log = Log {
        file,
        path: args.log.clone(),
    };
    let folder = LockFolder::new(&args.folder).map_err(|e| (2, e.to_string()))?;
    let mut jitter = Jitter::new();
    log.event(&format!("start {}", std::process::id()), 0)
        .map_err(io)?;
    let mut round = 0;
    loop {
        if args.rounds.is_some_and(|n| round >= n) || args.stop.as_ref().is_some_and(|s| s.exists())
        {
            log.event("stop", round).map_err(io)?;
            return Ok(());
        }
        round += 1;
        log.event("want", round).map_err(io)?;
        let guard = if args.no_lock {
            None
        } else {
            match folder.lock_timeout(args.timeout) {
                Ok(guard) => Some(guard),
                Err(e @ Error::Timeout { .. }) => return Err((3, e.to_string())),
                Err(e) => return Err((2, e.to_string())),
            }
        };
        log.event("enter", round).map_err(io)?;
        std::thread::sleep(Duration::from_millis(jitter.below(args.work_ms)));
        log.event("leave", round).map_err(io)?;
        if let Some(guard) = guard {
            guard.release().map_err(|e| (2, e.to_string()))?;
        }
        std::thread::sleep(Duration::from_millis(jitter.below(args.pause_ms)));
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("contend: {e}");
            return ExitCode::from(64);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, e)) => {
            eprintln!("contend {}: {e}", std::process::id());
            ExitCode::from(code)
        }
    }
}
