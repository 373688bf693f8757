//! The roles this binary plays as a child process. Each prints short status
//! lines on stdout for the parent test to read.

use lockfolder::LockFolder;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn say(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
    let _ = out.flush();
}

/// Opens the folder in the mode named by `spec`: "" or "exclusive",
/// "shared", or "slots=N".
fn open(dir: &str, spec: Option<&str>) -> LockFolder {
    let b = LockFolder::builder(dir);
    let b = match spec.unwrap_or("") {
        "" | "exclusive" => b,
        "shared" => b.shared(true),
        s => b.slots(s.strip_prefix("slots=").unwrap().parse().unwrap()),
    };
    b.open().unwrap()
}

/// `int(psutil.Process().create_time())` on Linux, as lockfolder 1.0.2
/// stores it: `btime + start_ticks // CLK_TCK`, in this process's view.
#[cfg(target_os = "linux")]
pub(crate) fn legacy_created() -> i64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let btime: i64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let own = std::fs::read_to_string("/proc/self/stat").unwrap();
    let ticks: i64 = own
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    btime + ticks / rustix::param::clock_ticks_per_second() as i64
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the
/// machine (PID namespaces do not change it), so children can order events.
#[cfg(unix)]
fn mono_ns() -> u128 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u128 * 1_000_000_000 + t.tv_nsec as u128
}

/// Whether `pid` is a running process. A killed worker stays a zombie
/// until the test reaps it, and its occupancy marker is still there: a
/// zombie can never be inside the critical section again, so it does not
/// count (counting it reported holders that were not there).
#[cfg(unix)]
fn alive(pid: u32) -> bool {
    let signalable =
        rustix::process::test_kill_process(rustix::process::Pid::from_raw(pid as i32).unwrap())
            .is_ok();
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with(['Z', 'X']))
        })
        .unwrap_or(false);
    signalable && !zombie
}

/// Whether `pid` names a process that has not exited (a process handle
/// that is not yet signalled).
#[cfg(windows)]
fn alive(pid: u32) -> bool {
    crate::util::windows::running(pid)
}

pub fn run(role: &str) -> i32 {
    let raw = std::env::var("LF_ARGS").unwrap_or_default();
    let args: Vec<&str> = raw.split('\u{1f}').collect();
    match role {
        // Take the lock, say so, hold it until stdin closes.
        "hold" => {
            let lf = open(args[0], args.get(1).copied());
            let g = lf.lock().unwrap();
            say(&format!("LOCKED {}", g.bid_path().display()));
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            g.release().unwrap();
            say("RELEASED");
            0
        }
        // One attempt.
        "try" => {
            let lf = open(args[0], args.get(1).copied());
            match lf.try_lock().unwrap() {
                Some(g) => {
                    say("GOT");
                    g.release().unwrap();
                }
                None => say("BUSY"),
            }
            0
        }
        // Exit at once (a PID for `util::dead_pid`).
        "exit" => 0,
        // Write a lockfolder 1.0.2 bid (PID and CREATED as psutil computes
        // them in this process's view), hold until stdin closes.
        #[cfg(target_os = "linux")]
        "legacy-hold" => {
            let dir = std::path::Path::new(args[0]);
            let created = legacy_created();
            let name = format!("{}.json", lockfolder::Token::new(7).renew());
            let bid = format!(
                "{{\"PID\": {}, \"CREATED\": {created}}}",
                std::process::id()
            );
            std::fs::write(dir.join(&name), bid).unwrap();
            say(&format!("LOCKED {name}"));
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            let _ = std::fs::remove_file(dir.join(&name));
            say("RELEASED");
            0
        }
        // Start waiting (up to args[1] ms); say QUEUED once in the queue,
        // then GOT or ERR with the time taken.
        "queue" => {
            let lf = LockFolder::new(args[0]).unwrap();
            let ms: u64 = args[1].parse().unwrap();
            let t = Instant::now();
            let deadline = t + Duration::from_millis(ms);
            let mut w = lf.waiter();
            let mut said = false;
            loop {
                match w.wait(Some(Instant::now()), None) {
                    Ok(Some(g)) => {
                        if !said {
                            say("QUEUED");
                        }
                        say(&format!("GOT {}", t.elapsed().as_micros()));
                        let mut sink = Vec::new();
                        let _ = std::io::stdin().read_to_end(&mut sink);
                        g.release().unwrap();
                        return 0;
                    }
                    Ok(None) if Instant::now() >= deadline => {
                        say(&format!("ERR {} timeout", t.elapsed().as_micros()));
                        return 0;
                    }
                    Ok(None) => {
                        if !said {
                            say("QUEUED");
                            said = true;
                        }
                        let _ = w.wait(Some(Instant::now() + Duration::from_millis(20)), None);
                    }
                    Err(e) => {
                        say(&format!("ERR {} {e}", t.elapsed().as_micros()));
                        return 0;
                    }
                }
            }
        }
        // Take the lock under a lease of args[1] ms; say LOCKED <fence>
        // <monotonic ns>; LOST <monotonic ns> if the lease lapses; hold until
        // stdin closes; say RELEASED ok|lost.
        // Used by the lease tests, which play hosts with PID namespaces.
        #[cfg(unix)]
        "lease-hold" => {
            let ms: u64 = args[1].parse().unwrap();
            let lf = LockFolder::builder(args[0])
                .lease(Duration::from_millis(ms))
                .on_lost(|_| say(&format!("LOST {}", mono_ns())))
                .open()
                .unwrap();
            let g = lf.lock().unwrap();
            say(&format!(
                "LOCKED {} {}",
                g.fencing_token().unwrap_or(0),
                mono_ns()
            ));
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
            match g.release() {
                Ok(()) => say("RELEASED ok"),
                Err(lockfolder::Error::LockLost { .. }) => say("RELEASED lost"),
                Err(e) => say(&format!("RELEASED error {e}")),
            }
            0
        }
        // Wait up to args[1] ms for the lock (with fencing); say GOT <fence>
        // <monotonic ns> or ERR.
        // Used by the lease tests, which play hosts with PID namespaces.
        #[cfg(unix)]
        "fenced-wait" => {
            let ms: u64 = args[1].parse().unwrap();
            let lf = LockFolder::builder(args[0]).fencing(true).open().unwrap();
            say("WAITING");
            match lf.lock_timeout(Duration::from_millis(ms)) {
                Ok(g) => {
                    say(&format!(
                        "GOT {} {}",
                        g.fencing_token().unwrap_or(0),
                        mono_ns()
                    ));
                    g.release().unwrap();
                }
                Err(e) => say(&format!("ERR {e}")),
            }
            0
        }
        // Wait up to args[1] ms, report the outcome and how long it took.
        "wait" => {
            let lf = LockFolder::new(args[0]).unwrap();
            let ms: u64 = args[1].parse().unwrap();
            // The clock starts before the parent can know we wait, so
            // "waited at least as long as the parent held" is a lower bound
            // even if we are descheduled right after saying so.
            let t = Instant::now();
            say("WAITING");
            match lf.lock_timeout(Duration::from_millis(ms)) {
                Ok(g) => {
                    say(&format!("GOT {}", t.elapsed().as_micros()));
                    g.release().unwrap();
                }
                Err(e) => say(&format!("ERR {} {e}", t.elapsed().as_micros())),
            }
            0
        }
        // args: lock dir, work dir, acquisitions. Occupancy marker created
        // exclusively inside the critical section, plus a counter file.
        "stress" => {
            let lf = LockFolder::new(args[0]).unwrap();
            let work = std::path::Path::new(args[1]);
            let n: u32 = args[2].parse().unwrap();
            let marker = work.join("occupied");
            let counter = work.join("counter");
            for _ in 0..n {
                let g = lf.lock().unwrap();
                if std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&marker)
                    .is_err()
                {
                    say("OVERLAP");
                    return 3;
                }
                let v: u64 = std::fs::read_to_string(&counter)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(0);
                std::fs::write(&counter, (v + 1).to_string()).unwrap();
                std::fs::remove_file(&marker).unwrap();
                g.release().unwrap();
            }
            say("DONE");
            0
        }
        // Try to lock as an unprivileged user (for the read-only folder test).
        #[cfg(target_os = "linux")]
        "try-unprivileged" => {
            if rustix::process::geteuid().is_root() {
                rustix::thread::set_thread_res_gid(
                    rustix::process::Gid::from_raw(65534),
                    rustix::process::Gid::from_raw(65534),
                    rustix::process::Gid::from_raw(65534),
                )
                .unwrap();
                rustix::thread::set_thread_res_uid(
                    rustix::process::Uid::from_raw(65534),
                    rustix::process::Uid::from_raw(65534),
                    rustix::process::Uid::from_raw(65534),
                )
                .unwrap();
            }
            let lf = match LockFolder::new(args[0]) {
                Ok(lf) => lf,
                Err(e) => {
                    say(&format!("ERR open {:?} {e}", e.kind()));
                    return 0;
                }
            };
            match lf.try_lock() {
                Ok(Some(_)) => say("GOT"),
                Ok(None) => say("BUSY"),
                Err(e) => say(&format!(
                    "ERR {:?} {:?} {} {e}",
                    e.op(),
                    e.kind(),
                    e.path().display()
                )),
            }
            0
        }
        // args: lock dir, occupancy dir, mode, seconds. Loops: lock, drop a
        // marker named by our PID into the occupancy dir, count the markers
        // of live processes, check the count against the mode, leave.
        "occupy" => {
            let lf = open(args[0], Some(args[2]));
            let occ = std::path::Path::new(args[1]);
            let limit = match args[2] {
                "shared" => usize::MAX,
                "exclusive" => 1,
                s => s.strip_prefix("slots=").unwrap().parse().unwrap(),
            };
            let until = Instant::now() + Duration::from_secs_f64(args[3].parse().unwrap());
            let me = occ.join(std::process::id().to_string());
            let mut n = 0u64;
            let mut most = 0usize;
            while Instant::now() < until {
                let g = lf.lock().unwrap();
                std::fs::write(&me, b"").unwrap();
                let inside = std::fs::read_dir(occ)
                    .unwrap()
                    .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                    .filter(|pid| alive(*pid))
                    .count();
                most = most.max(inside);
                if inside > limit {
                    say(&format!("OVER {inside} > {limit}"));
                    return 3;
                }
                std::thread::sleep(Duration::from_millis(2));
                std::fs::remove_file(&me).unwrap();
                g.release().unwrap();
                n += 1;
            }
            say(&format!("DONE {n} {most}"));
            0
        }
        other => {
            eprintln!("unknown role {other}");
            2
        }
    }
}
