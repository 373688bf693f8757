//! Worker processes. The orchestrator (`suite.rs`) starts them by re-executing
//! this binary (Rust locks) or `bench/peers.py` (Python locks) with the same
//! arguments, and reads the same output from both:
//!
//! ```text
//! worker LOCK MODE PATH [--counter FILE --id I --start NS --end NS]
//!                       [--iters N] [--secs S] [--timeout S]
//! ```
//!
//! * `uncontended`: `--iters` acquire+release cycles; prints `{"ns_per_op": x}`.
//! * `hot`: from `--start` to `--end` (CLOCK_MONOTONIC ns, one clock for all
//!   processes on Linux): acquire, read-modify-write the counter file, release.
//!   The counter file holds `count holder_id release_ns`; the holder writes the
//!   time just before it releases, so the next holder, if it is a different
//!   worker, measures the handoff. A worker that waits `--timeout` s for one
//!   acquisition gives up (a stall). Prints
//!   `{"acq": n, "lat": [ns, ...], "timeouts": 0|1}`.
//! * `hold`: acquires, prints `held`, then sleeps until killed.
//! * `wait`: prints `waiting`, blocks until it holds the lock (at most
//!   `--timeout` s), prints `acquired NS` (or `timeout`), releases, exits.
//! * `cpu`: prints `waiting` and blocks on the (held) lock; a second thread
//!   reads the process CPU clock over `--secs` s of that wait and prints
//!   `{"cpu_ns": c, "wall_ns": w}`, then ends the process.

use crate::locks::Lock;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn mono_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Options of a worker, parsed from `--key value` pairs.
#[derive(Default)]
struct Opts {
    counter: Option<PathBuf>,
    id: i64,
    start: u64,
    end: u64,
    iters: u64,
    secs: f64,
    timeout: f64,
}

fn parse_opts(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        iters: 1000,
        secs: 5.0,
        timeout: 30.0,
        ..Opts::default()
    };
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let v = it.next().ok_or_else(|| format!("{k} needs a value"))?;
        let bad = |_| format!("bad value for {k}: {v}");
        match k.as_str() {
            "--counter" => o.counter = Some(PathBuf::from(v)),
            "--id" => o.id = v.parse().map_err(bad)?,
            "--start" => o.start = v.parse().map_err(bad)?,
            "--end" => o.end = v.parse().map_err(bad)?,
            "--iters" => o.iters = v.parse().map_err(bad)?,
            "--secs" => o.secs = v.parse().map_err(|_| format!("bad value for {k}: {v}"))?,
            "--timeout" => o.timeout = v.parse().map_err(|_| format!("bad value for {k}: {v}"))?,
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok(o)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn sleep_until(t: u64) {
    loop {
        let now = mono_ns();
        if now >= t {
            return;
        }
        std::thread::sleep(Duration::from_nanos((t - now).min(50_000_000)));
    }
}

/// The counter file: `count holder_id release_ns`.
pub fn read_counter(path: &Path) -> Result<(u64, i64, u64), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut f = text.split_ascii_whitespace();
    let mut next = || {
        f.next()
            .ok_or_else(|| format!("short counter file: {text:?}"))
    };
    let count = next()?.parse().map_err(|_| "bad count".to_owned())?;
    let id = next()?.parse().map_err(|_| "bad id".to_owned())?;
    let ts = next()?.parse().map_err(|_| "bad ts".to_owned())?;
    Ok((count, id, ts))
}

pub fn write_counter(path: &Path, count: u64, id: i64, ts: u64) -> Result<(), String> {
    std::fs::write(path, format!("{count} {id} {ts}\n"))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Runs a worker; `Err` is printed as `{"error": ...}` with a non-zero exit.
pub fn run(args: &[String]) -> Result<(), String> {
    let [lock, mode, path, rest @ ..] = args else {
        return Err("usage: worker LOCK MODE PATH [options]".to_owned());
    };
    let o = parse_opts(rest)?;
    let exclusive = crate::locks::is_exclusive(lock);
    let lock = Lock::open(lock, Path::new(path))?;
    let timeout = Duration::from_secs_f64(o.timeout);
    match mode.as_str() {
        "uncontended" => {
            let cycle = |n: u64| -> Result<(), String> {
                for _ in 0..n {
                    let held = lock.try_acquire()?.ok_or("uncontended lock was busy")?;
                    lock.release(held)?;
                }
                Ok(())
            };
            cycle(o.iters / 10 + 1)?;
            let t0 = mono_ns();
            cycle(o.iters)?;
            let ns = (mono_ns() - t0) as f64 / o.iters as f64;
            say(&json!({ "ns_per_op": ns }).to_string());
        }
        "hot" => {
            let counter = o.counter.ok_or("hot needs --counter")?;
            sleep_until(o.start);
            let mut acq = 0u64;
            let mut lat = Vec::new();
            let mut timeouts = 0u64;
            while mono_ns() < o.end {
                let Some(held) = lock.acquire(timeout)? else {
                    // Waited `--timeout` s, far longer than any hold: stalled.
                    timeouts += 1;
                    break;
                };
                let t_acq = mono_ns();
                let (count, prev, ts) = read_counter(&counter)?;
                if !exclusive {
                    // Several holders at once by design: read only.
                    acq += 1;
                    lock.release(held)?;
                    continue;
                }
                if prev >= 0 && prev != o.id {
                    lat.push(t_acq.saturating_sub(ts));
                }
                acq += 1;
                write_counter(&counter, count + 1, o.id, mono_ns())?;
                lock.release(held)?;
            }
            say(&json!({ "acq": acq, "lat": lat, "timeouts": timeouts }).to_string());
        }
        "hold" => {
            let _held = lock
                .acquire(timeout)?
                .ok_or("could not take the lock to hold it")?;
            say("held");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        "wait" => {
            say("waiting");
            match lock.acquire(timeout)? {
                Some(held) => {
                    let t = mono_ns();
                    say(&format!("acquired {t}"));
                    lock.release(held)?;
                }
                None => say("timeout"),
            }
        }
        "cpu" => {
            let secs = o.secs;
            std::thread::spawn(move || {
                let (c0, w0) = (cpu_ns(), mono_ns());
                std::thread::sleep(Duration::from_secs_f64(secs));
                let (c1, w1) = (cpu_ns(), mono_ns());
                say(&json!({ "cpu_ns": c1 - c0, "wall_ns": w1 - w0 }).to_string());
                std::process::exit(0);
            });
            say("waiting");
            if lock.acquire(timeout)?.is_some() {
                return Err("the waiter acquired a lock that was held".to_owned());
            }
            return Err("the waiter timed out before the measurement ended".to_owned());
        }
        other => return Err(format!("unknown mode {other:?}")),
    }
    Ok(())
}
