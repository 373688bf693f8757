//! Starting child processes (this same binary in a role) and reading them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub type TestFn = (&'static str, fn());

/// A child process in a role, killed and reaped when dropped.
pub struct Proc {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

pub fn spawn(role: &str, args: &[&str]) -> Proc {
    spawn_in(&[], role, args)
}

/// Like [`spawn`], with the child started through `prefix` (for example
/// `unshare --pid --fork`), which must exec it.
pub fn spawn_in(prefix: &[&str], role: &str, args: &[&str]) -> Proc {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.env("LF_ROLE", role).env("LF_ARGS", args.join("\u{1f}"));
    spawn_cmd(cmd)
}

/// Starts a prepared command (which must run this binary in a role) with
/// its stdin and stdout piped to the test.
pub fn spawn_cmd(mut cmd: Command) -> Proc {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout: ChildStdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Proc {
        stdin: child.stdin.take(),
        child,
        lines: rx,
    }
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next line the child prints, within `timeout`.
    pub fn line(&self, timeout: Duration) -> String {
        self.lines
            .recv_timeout(timeout)
            .unwrap_or_else(|e| panic!("child {} said nothing in {timeout:?}: {e}", self.pid()))
    }

    pub fn expect(&self, want: &str, timeout: Duration) -> String {
        let got = self.line(timeout);
        assert!(
            got.starts_with(want),
            "child {}: expected {want:?}, got {got:?}",
            self.pid()
        );
        got
    }

    /// Closes the child's stdin (its signal to release) and waits for it.
    pub fn finish(mut self, timeout: Duration) -> i32 {
        drop(self.stdin.take());
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "child {} did not exit",
                self.pid()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
    }

    pub fn reap(&mut self) {
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether this machine lets us make namespaces with `unshare` (root on a
/// kernel with PID and time namespaces). CI runs as root and sets
/// `LOCKFOLDER_REQUIRE_NAMESPACES=1`, so there a missing capability fails the
/// test instead of skipping it.
#[cfg(target_os = "linux")]
pub fn namespaces_available(flags: &[&str]) -> bool {
    let ok = Command::new("unshare")
        .args(flags)
        .arg("true")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("LOCKFOLDER_REQUIRE_NAMESPACES").is_none(),
            "unshare {flags:?} is not available, but LOCKFOLDER_REQUIRE_NAMESPACES is set"
        );
        eprintln!("skipped: unshare {flags:?} is not available here");
    }
    ok
}

/// Names in a folder, sorted, as lossy strings.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Bid files (`*.json`) in a folder.
pub fn bids(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".json"))
        .collect()
}

/// Runs `f` on a thread and fails if it takes longer than `limit`: a hang is
/// a failure, not a stuck CI job.
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("did not finish within {limit:?}"))
}

/// A PID that no process has: a child (this binary, which exits at once)
/// that has exited and been reaped (on Windows: whose handle is closed).
pub fn dead_pid() -> u32 {
    let mut c = Command::new(std::env::current_exe().unwrap())
        .env("LF_ROLE", "exit")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = c.id();
    c.wait().unwrap();
    drop(c);
    pid
}

/// Writes a crafted bid named `<fresh uuid>.json` and returns its name.
pub fn write_bid(dir: &Path, content: &[u8]) -> String {
    let name = format!("{}.json", lockfolder::Token::new(1).renew());
    std::fs::write(dir.join(&name), content).unwrap();
    name
}

/// The name of a side file (`docs/protocol.md` §1) for a writer with PID
/// `pid` whose other identity is `like`'s; `suffix`: `tmp` or `wait`.
/// Written out here by hand, as another implementation would.
pub fn side_name(
    token: &lockfolder::Token,
    pid: u32,
    like: &lockfolder::BidRecord,
    suffix: &str,
) -> String {
    let hex = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '-')
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let key = match &like.owner {
        Some(lockfolder::Owner::Linux(o)) => format!(
            "L{}.{}.{}.{}",
            o.start_ticks,
            o.pid_ns,
            hex(&o.boot_id),
            o.boot_time
        ),
        Some(lockfolder::Owner::Windows(o)) => format!("W{}.{}", o.created, hex(&o.machine_guid)),
        Some(lockfolder::Owner::Macos(o)) => format!("M{}.{}", o.start_us, hex(&o.boot_session)),
        Some(lockfolder::Owner::Freebsd(o)) => format!("F{}.{}", o.start_us, hex(&o.host_uuid)),
        other => panic!("no identity to name a side file after: {other:?}"),
    };
    format!(".lockfolder-{token}-{pid}.{key}.{suffix}")
}

/// Our own identity as another machine's: the same process, written on a
/// machine (and kernel) that is not this one.
pub fn on_another_machine(r: &mut lockfolder::BidRecord) {
    r.host = Some("elsewhere.example".into());
    match r.owner.as_mut() {
        Some(lockfolder::Owner::Linux(o)) => {
            o.boot_id = "00000000-0000-4000-8000-000000000000".into();
            o.machine_id = Some("another-machine".into());
            o.boot_time += 3600;
        }
        Some(lockfolder::Owner::Windows(o)) => {
            o.machine_guid = "00000000-0000-4000-8000-00000000abcd".into();
        }
        Some(lockfolder::Owner::Macos(o)) => {
            o.host_uuid = "00000000-0000-4000-8000-00000000abcd".into();
        }
        Some(lockfolder::Owner::Freebsd(o)) => {
            o.host_uuid = "00000000-0000-4000-8000-00000000abcd".into();
        }
        other => panic!("no identity: {other:?}"),
    }
}

/// What the Windows tests ask about processes, straight from the system
/// (independently of the crate's own code).
#[cfg(windows)]
#[allow(unsafe_code)]
pub mod windows {
    use windows_sys::Win32::Foundation::{CloseHandle, FILETIME, WAIT_TIMEOUT};
    use windows_sys::Win32::System::Threading::{
        GetProcessTimes, OpenProcess, WaitForSingleObject, PROCESS_QUERY_LIMITED_INFORMATION,
        PROCESS_SYNCHRONIZE,
    };

    fn ft(t: FILETIME) -> u64 {
        (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime)
    }

    /// Creation time, and kernel plus user time, in 100 ns units; and
    /// whether the process is still running.
    pub fn times(pid: u32) -> Option<(u64, u64, bool)> {
        // SAFETY: plain call; the handle is closed below.
        let h = unsafe {
            OpenProcess(
                PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE,
                0,
                pid,
            )
        };
        if h.is_null() {
            return None;
        }
        let z = FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        };
        let (mut c, mut e, mut k, mut u) = (z, z, z, z);
        // SAFETY: `h` is an open process handle; the outputs are writable.
        let ok = unsafe { GetProcessTimes(h, &mut c, &mut e, &mut k, &mut u) };
        // SAFETY: as above, zero timeout.
        let running = unsafe { WaitForSingleObject(h, 0) } == WAIT_TIMEOUT;
        // SAFETY: the handle opened above, closed once.
        unsafe { CloseHandle(h) };
        (ok != 0).then(|| (ft(c), ft(k) + ft(u), running))
    }

    pub fn running(pid: u32) -> bool {
        times(pid).is_some_and(|t| t.2)
    }
}
