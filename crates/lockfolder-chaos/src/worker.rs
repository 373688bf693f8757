//! The processes the storm starts: a library worker that loops
//! acquire → critical section → release with the core API, the one-shot
//! critical section that `lockfolder run` executes, and the loop that keeps
//! running `lockfolder run` in CLI mode.

use crate::arena::{jitter, Arena, Me};
use crate::folder;
use crate::victim::VictimPlan;
use lockfolder::Error;
use rustix::process::{self, Pid, WaitOptions};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Library worker: loops until the stop file appears. Returns a message on
/// any error, which the storm counts as a failure. With `no_lock` (a mutant
/// used to show that the detectors work) it skips the lock altogether. With
/// a `victim` plan, a critical section entered once it is due is the last:
/// the worker holds the lock until its host is killed (`victim.rs`).
pub fn run_worker(
    arena: &Arena,
    lock_dir: &Path,
    tag: &str,
    jitter_us: u64,
    no_lock: bool,
    victim: Option<&VictimPlan>,
) -> Result<u64, String> {
    let folder = folder::open(lock_dir, Some(tag)).map_err(|e| format!("open: {e}"))?;
    // If the storm itself dies (Ctrl-C, a test's deadline), its workers must
    // not loop on forever.
    let parent = process::getppid();
    process::set_parent_process_death_signal(Some(process::Signal::KILL))
        .map_err(|e| format!("parent death signal: {e}"))?;
    if process::getppid() != parent {
        return Ok(0);
    }
    let me = Me::current().map_err(|e| format!("identity: {e}"))?;
    let mut log = arena.open_log(tag).map_err(|e| format!("log: {e}"))?;
    let mut timing = arena
        .open_timing(tag)
        .map_err(|e| format!("timing log: {e}"))?;
    let mut rounds = 0;
    while !arena.stop_requested() {
        jitter(jitter_us);
        if no_lock {
            arena
                .critical_section(&me, &mut log, jitter_us)
                .map_err(|e| format!("critical section: {e}"))?;
            continue;
        }
        let asked = std::time::Instant::now();
        let guard = folder.lock().map_err(|e| format!("lock: {e}"))?;
        let waited = asked.elapsed();
        // How old our bid's stamp (its modification time, which readers on
        // other hosts judge the lease by) was when lock() returned.
        let age_ms = bid_age_ms(&guard.bid_path());
        let _ = writeln!(
            timing,
            "{} {}",
            waited.as_millis(),
            age_ms.map_or("-".to_owned(), |a| a.to_string())
        );
        if guard.lost() {
            // The lease lapsed before lock() returned: the lease's contract
            // says the resource must not be used, and another host may
            // already have judged the bid expired. Not entering is what a
            // correct application does; the storm counts it as a failure
            // of the lock (a guard that is lost from the start).
            let age = age_ms.map_or("of unknown age".to_owned(), |a| format!("{a} ms"));
            arena.record_lease_lost(
                tag,
                &format!(
                    "lock() returned a guard whose lease had already lapsed (its bid's stamp \
                     {age} old, lock() took {} ms); not entered",
                    waited.as_millis()
                ),
            );
            let _ = guard.release();
            continue;
        }
        // The guard believes its lease valid: then the bid's stamp must be
        // younger than the holder's share of the lease (0.9 ×), with a
        // little room for the filesystem's coarse timestamps. Older means
        // the holder counts its lease from a later moment than the readers
        // do, so another host may already judge it expired.
        if let (Some(lease), Some(age)) = (folder::lease_ms(), age_ms) {
            if age > lease * 9 / 10 + 50 {
                arena.record_lease_lost(
                    tag,
                    &format!(
                        "lock() returned a guard that counts its lease as valid, but its bid's \
                         stamp is {age} ms old (lease {lease} ms: readers may count it expired \
                         after {} ms); not entered",
                        lease * 21 / 20
                    ),
                );
                let _ = guard.release();
                continue;
            }
        }
        jitter(jitter_us);
        let bid = guard.bid_path();
        arena
            .critical_section_with(&me, &mut log, jitter_us, || match victim {
                Some(plan) => plan.hold_if_due(arena, &me, &bid),
                None => Ok(()),
            })
            .map_err(|e| format!("critical section: {e}"))?;
        let lost = guard.lost();
        match guard.release() {
            // release() reports a lease that lapsed as a lost lock, whether
            // or not the bid is still there.
            Ok(()) | Err(Error::LockLost { .. }) if lost => arena.record_lease_lost(
                tag,
                "the lease lapsed while we held the lock (renewals late, or the holder was paused)",
            ),
            Ok(()) => {}
            Err(Error::LockLost { path }) => arena.record_overlap(
                &me,
                &format!(
                    "our bid {} was deleted while we held the lock",
                    path.display()
                ),
            ),
            Err(e) => return Err(format!("release: {e}")),
        }
        rounds += 1;
    }
    Ok(rounds)
}

/// How old a bid's stamp is (now minus its modification time, read through
/// a fresh open), in ms.
fn bid_age_ms(path: &Path) -> Option<u64> {
    let stamp = crate::victim::fresh_mtime(path).ok()?;
    let now = crate::arena::now_ns();
    Some(now.saturating_sub(crate::victim::unix_ns(stamp)) / 1_000_000)
}

/// One critical section, for `lockfolder run DIR -- lockfolder-storm cs`:
/// the launcher holds the lock on this process's behalf.
pub fn run_cs(arena: &Arena, tag: &str, jitter_us: u64) -> Result<(), String> {
    let me = Me::current().map_err(|e| format!("identity: {e}"))?;
    let mut log = arena.open_log(tag).map_err(|e| format!("log: {e}"))?;
    jitter(jitter_us);
    arena
        .critical_section(&me, &mut log, jitter_us)
        .map_err(|e| format!("critical section: {e}"))?;
    Ok(())
}

/// CLI worker: runs `CLI run <lock> -- <self> cs ...` again and again until
/// the stop file appears. It is a child subreaper, so a command whose
/// launcher was killed becomes its child and is reaped here. Each launcher
/// exit status is appended to `<root>/cli-exits/<tag>` for the storm's
/// report.
pub fn run_cli_worker(
    arena: &Arena,
    lock_dir: &Path,
    cli: &Path,
    tag: &str,
    jitter_us: u64,
) -> Result<(), String> {
    let me = process::getpid();
    process::set_child_subreaper(Some(me)).map_err(|e| format!("subreaper: {e}"))?;
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let exits_dir = arena.root().join("cli-exits");
    fs::create_dir_all(&exits_dir).map_err(|e| format!("{e}"))?;
    let mut exits = OpenOptions::new()
        .create(true)
        .append(true)
        .open(exits_dir.join(tag))
        .map_err(|e| format!("exits file: {e}"))?;
    let stderr = OpenOptions::new()
        .create(true)
        .append(true)
        .open(exits_dir.join(format!("{tag}.stderr")))
        .map_err(|e| format!("stderr file: {e}"))?;
    // If the storm itself dies, stop launching (and reap what is running).
    let parent = process::getppid();
    while !arena.stop_requested() && process::getppid() == parent {
        let child = Command::new(cli)
            .arg("run")
            .arg(lock_dir)
            .arg("--")
            .arg(&exe)
            .args(["cs", "--arena"])
            .arg(arena.root())
            .args(["--tag", tag, "--jitter-us", &jitter_us.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr.try_clone().map_err(|e| format!("{e}"))?)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", cli.display()))?;
        let launcher = Pid::from_raw(child.id() as i32).ok_or("pid 0")?;
        // Reap everything until the launcher itself has exited; orphaned
        // commands come through here too. `child` is never waited on by std.
        loop {
            match process::wait(WaitOptions::empty()) {
                Ok(Some((pid, status))) if pid == launcher => {
                    let word = match (status.exit_status(), status.terminating_signal()) {
                        (Some(code), _) => format!("exit {code}"),
                        (_, Some(sig)) => format!("signal {sig}"),
                        _ => "other".to_owned(),
                    };
                    let _ = writeln!(exits, "{word}");
                    break;
                }
                Ok(_) => {}
                Err(e) => return Err(format!("wait: {e}")),
            }
        }
    }
    // Before leaving, wait for every orphaned command still running.
    while let Ok(Some(_)) = process::wait(WaitOptions::empty()) {}
    Ok(())
}
