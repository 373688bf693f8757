//! The processes the storm starts: a library worker that loops
//! acquire → critical section → release with the core API, the one-shot
//! critical section that `lockfolder run` executes, and the loop that keeps
//! running `lockfolder run` in CLI mode.

use crate::arena::{jitter, Arena, Me};
use crate::folder;
use lockfolder::Error;
use rustix::process::{self, Pid, WaitOptions};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Library worker: loops until the stop file appears. Returns a message on
/// any error, which the storm counts as a failure. With `no_lock` (a mutant
/// used to show that the detectors work) it skips the lock altogether.
pub fn run_worker(
    arena: &Arena,
    lock_dir: &Path,
    tag: &str,
    jitter_us: u64,
    no_lock: bool,
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
    let mut rounds = 0;
    while !arena.stop_requested() {
        jitter(jitter_us);
        if no_lock {
            arena
                .critical_section(&me, &mut log, jitter_us)
                .map_err(|e| format!("critical section: {e}"))?;
            continue;
        }
        let guard = folder.lock().map_err(|e| format!("lock: {e}"))?;
        jitter(jitter_us);
        arena
            .critical_section(&me, &mut log, jitter_us)
            .map_err(|e| format!("critical section: {e}"))?;
        match guard.release() {
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
