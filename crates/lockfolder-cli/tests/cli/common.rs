//! Helpers: the binary, background processes that are killed and reaped on
//! drop, polling with a deadline, signals by PID.

// Most helpers serve the Unix modules only.
#![cfg_attr(windows, allow(dead_code))]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The `lockfolder` binary built for these tests, or the one named by
/// `LOCKFOLDER_TEST_BIN` (to run this suite against another build, e.g. an
/// older commit, and see which tests it fails).
pub fn bin() -> PathBuf {
    let p = std::env::var_os("LOCKFOLDER_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lockfolder")));
    // Cross-built on Linux and run under wine, the path cargo recorded is a
    // Linux one: wine sees the Linux root as drive Z:.
    #[cfg(windows)]
    if let Some(unix) = p.to_str().filter(|s| s.starts_with('/')) {
        return PathBuf::from(format!("Z:{}", unix.replace('/', "\\")));
    }
    p
}

/// The write end of a pipe whose read end is already closed: writing to it
/// fails with EPIPE, as a pipe into `head` does once `head` has exited.
#[cfg(unix)]
pub fn closed_pipe() -> Stdio {
    let (r, w) = rustix::pipe::pipe().expect("pipe");
    drop(r);
    Stdio::from(w)
}

/// Waits for a file to exist and returns its trimmed content.
pub fn read_when_there(path: &Path, limit: Duration) -> String {
    assert!(
        wait_until(limit, || std::fs::read_to_string(path)
            .is_ok_and(|s| s.ends_with('\n'))),
        "{} never appeared",
        path.display()
    );
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

/// `lockfolder run -n DIR -- true`: 0 if the lock was free, 1 if held.
pub fn try_run(d: &Path) -> i32 {
    Command::new(bin())
        .args(["run", "-n", "-q"])
        .arg(d)
        .args(["--", "true"])
        .status()
        .expect("run lockfolder")
        .code()
        .expect("exit code")
}

/// `lockfolder ARGS`, for assert_cmd, with a deadline so a hang fails.
pub fn lockfolder() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(bin());
    c.timeout(Duration::from_secs(20));
    c
}

/// A temporary folder and the lock folder path inside it (not created).
pub fn setup() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path().join("lock");
    (t, d)
}

/// A background process we started: killed (SIGKILL) and reaped on drop if
/// it is still running.
pub struct Bg {
    pub child: Child,
}

impl Bg {
    /// Starts `lockfolder ARGS` in the background (stdout/stderr captured
    /// to files would be overkill: they are inherited from the test).
    pub fn lockfolder(args: &[&str]) -> Bg {
        let child = Command::new(bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lockfolder");
        Bg { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_for(&mut self, limit: Duration) -> ExitStatus {
        let end = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(
                Instant::now() < end,
                "process {} still running after {limit:?}",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the process wrote to stderr (after it exited).
    pub fn stderr(&mut self) -> String {
        use std::io::Read;
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `cond` every 10 ms until it holds; false if `limit` passes first.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `signal` (a name such as "TERM") to `pid`, a process this test
/// started, with kill(1).
pub fn send(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .expect("run kill")
        .success();
    assert!(ok, "kill -s {signal} {pid} failed");
}

/// Names in a folder, sorted (empty if the folder does not exist).
pub fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The bid files (`*.json`) in a folder.
pub fn bids(dir: &Path) -> Vec<String> {
    entries(dir)
        .into_iter()
        .filter(|n| n.ends_with(".json"))
        .collect()
}

/// The PID recorded in a bid file.
pub fn bid_pid(dir: &Path, name: &str) -> u32 {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join(name)).expect("read bid")).expect("json");
    v["PID"].as_u64().expect("PID") as u32
}

/// Whether a process with this PID exists and has not exited (a zombie
/// counts as exited).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        }
        Err(_) => false,
    }
}

/// A `lockfolder run DIR -- touch RAN` queued behind an entry that is not a
/// bid (which blocks the lock but never makes a waiter withdraw, so the
/// waiter keeps a bid of its own). Returns the launcher and the PID its bid
/// names (the gated child), once the bid is there.
pub fn queued_waiter(d: &Path, ran: &Path) -> (Bg, u32) {
    std::fs::create_dir_all(d).unwrap();
    std::fs::write(d.join("blocker.txt"), "not a bid").unwrap();
    let w = Bg::lockfolder(&[
        "run",
        d.to_str().unwrap(),
        "--",
        "touch",
        ran.to_str().unwrap(),
    ]);
    assert!(
        wait_until(Duration::from_secs(10), || bids(d).len() == 1),
        "the waiter never queued a bid"
    );
    let gated = bid_pid(d, &bids(d)[0]);
    assert_ne!(
        gated,
        w.pid(),
        "the bid names the gated child, not the launcher"
    );
    (w, gated)
}

/// Removes the blocker of [`queued_waiter`] and checks, after a moment, that
/// the command never ran.
pub fn assert_never_ran(d: &Path, ran: &Path) {
    std::fs::remove_file(d.join("blocker.txt")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!ran.exists(), "the command ran without the lock");
}
