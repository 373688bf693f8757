//! `--hold-while group` (the default) and `--hold-while command`: the lock
//! stays with the command's background children in the first, like
//! flock(1), and not in the second; forwarded signals reach the whole group.

use crate::common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `hold.sh DIR NAME`: writes its PID to DIR/NAME.pid, then stays until
/// DIR/NAME.done exists (at most 20 s, so a failing test cannot hang).
const HOLD: &str = r#"echo $$ > "$1/$2.tmp" && mv "$1/$2.tmp" "$1/$2.pid"
i=0
while [ ! -e "$1/$2.done" ] && [ $i -lt 2000 ]; do sleep 0.01; i=$((i+1)); done
"#;

/// `trap.pl DIR`: a background child that notes each SIGINT or SIGTERM it
/// gets in DIR/got-SIG and exits (perl, because a shell's background job
/// ignores SIGINT and cannot trap it again).
const TRAP: &str = r#"my $d = $ARGV[0];
sub got { my $s = shift; open(my $f, '>', "$d/got-$s"); close $f; exit 0 }
$SIG{TERM} = sub { got('TERM') };
$SIG{INT} = sub { got('INT') };
open(my $f, '>', "$d/trap.tmp"); print $f "$$\n"; close $f;
rename("$d/trap.tmp", "$d/trap.pid");
sleep 1 for 1..20;
"#;

struct Bed {
    _t: tempfile::TempDir,
    /// The lock folder.
    d: PathBuf,
    /// Where the helpers announce themselves.
    meet: PathBuf,
    hold: PathBuf,
    trap: PathBuf,
}

impl Bed {
    fn new() -> Bed {
        let (t, d) = setup();
        let meet = t.path().join("meet");
        std::fs::create_dir(&meet).unwrap();
        let hold = t.path().join("hold.sh");
        std::fs::write(&hold, HOLD).unwrap();
        let trap = t.path().join("trap.pl");
        std::fs::write(&trap, TRAP).unwrap();
        Bed {
            _t: t,
            d,
            meet,
            hold,
            trap,
        }
    }

    /// `lockfolder run [EXTRA] DIR sh -c SCRIPT hold.sh MEET` in the
    /// background (`$0` is hold.sh, `$1` the meeting folder).
    fn run(&self, extra: &[&str], script: &str) -> Bg {
        let mut args = vec!["run"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            self.d.to_str().unwrap(),
            // `--` keeps the suite runnable against 2.0.0 (LOCKFOLDER_TEST_BIN).
            "--",
            "sh",
            "-c",
            script,
            self.hold.to_str().unwrap(),
            self.meet.to_str().unwrap(),
        ]);
        Bg::lockfolder(&args)
    }

    /// The PID a helper announced.
    fn pid(&self, name: &str) -> u32 {
        read_when_there(
            &self.meet.join(format!("{name}.pid")),
            Duration::from_secs(10),
        )
        .parse()
        .unwrap()
    }

    /// Tells helper `name` to exit, and waits until it has.
    fn finish(&self, name: &str, pid: u32) {
        std::fs::write(self.meet.join(format!("{name}.done")), "").unwrap();
        assert!(
            wait_until(Duration::from_secs(10), || !alive(pid)),
            "{name} did not exit"
        );
    }

    fn got(&self, sig: &str) -> bool {
        wait_until(Duration::from_secs(5), || {
            self.meet.join(format!("got-{sig}")).exists()
        })
    }
}

/// How long a contender may take to see that the last member is gone: the
/// group's last member is a zombie until its new parent reaps it, and the
/// group counts as alive until then (this machine's init reaps orphans
/// every ~2 s).
const REAPED: Duration = Duration::from_secs(15);

fn free_soon(d: &Path) -> bool {
    wait_until(REAPED, || try_run(d) == 0)
}

#[test]
fn background_child_keeps_the_lock_in_group_mode() {
    let b = Bed::new();
    let mut l = b.run(&[], r#"sh "$0" "$1" bg & exit 0"#);
    let bg = b.pid("bg");
    // flock(1) returns when the command exits; so do we.
    let st = l.wait_for(Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "{}", l.stderr());
    assert!(alive(bg));
    assert_eq!(try_run(&b.d), 1, "the background child holds the lock");
    assert_eq!(bids(&b.d).len(), 1, "the bid stays");
    b.finish("bg", bg);
    assert!(free_soon(&b.d), "the lock never came free");
    assert_eq!(bids(&b.d), Vec::<String>::new());
}

#[test]
fn background_child_does_not_hold_the_lock_in_command_mode() {
    let b = Bed::new();
    let mut l = b.run(&["--hold-while", "command"], r#"sh "$0" "$1" bg & exit 0"#);
    let bg = b.pid("bg");
    let st = l.wait_for(Duration::from_secs(10));
    assert_eq!(st.code(), Some(0), "{}", l.stderr());
    assert_eq!(bids(&b.d), Vec::<String>::new(), "released at once");
    assert_eq!(try_run(&b.d), 0);
    assert!(alive(bg), "the test needs the child still running");
    b.finish("bg", bg);
}

#[test]
fn kill_9_of_launcher_then_only_a_background_child_still_blocks() {
    let b = Bed::new();
    let mut l = b.run(&[], r#"sh "$0" "$1" bg & sh "$0" "$1" fg"#);
    let (fg, bg) = (b.pid("fg"), b.pid("bg"));
    send(l.pid(), "KILL");
    l.wait_for(Duration::from_secs(5));
    assert_eq!(try_run(&b.d), 1, "the command still runs");
    b.finish("fg", fg);
    // Only the background child is left of the command's group.
    assert!(alive(bg));
    assert_eq!(try_run(&b.d), 1, "the background child holds the lock");
    b.finish("bg", bg);
    assert!(free_soon(&b.d), "the lock never came free");
}

#[test]
fn kill_9_of_launcher_in_command_mode_frees_the_lock_with_the_command() {
    let b = Bed::new();
    let mut l = b.run(
        &["--hold-while", "command"],
        r#"sh "$0" "$1" bg & sh "$0" "$1" fg"#,
    );
    let (fg, bg) = (b.pid("fg"), b.pid("bg"));
    send(l.pid(), "KILL");
    l.wait_for(Duration::from_secs(5));
    assert_eq!(try_run(&b.d), 1, "the command still runs");
    b.finish("fg", fg);
    assert!(free_soon(&b.d), "the lock stayed after the command exited");
    assert!(alive(bg), "the test needs the child still running");
    b.finish("bg", bg);
}

/// The command (a shell waiting for its background child) and the child
/// both get the signal sent to lockfolder.
fn forwarded(sig: &str, code: i32) {
    let b = Bed::new();
    let script = format!(r#"perl "{}" "$1" & wait"#, b.trap.display());
    let mut l = b.run(&[], &script);
    let trap = b.pid("trap");
    send(l.pid(), sig);
    assert!(b.got(sig), "the background child never got SIG{sig}");
    let st = l.wait_for(Duration::from_secs(10));
    assert_eq!(st.code(), Some(code), "{}", l.stderr());
    assert!(wait_until(Duration::from_secs(5), || !alive(trap)));
    assert!(free_soon(&b.d));
}

#[test]
fn sigterm_reaches_a_background_child() {
    forwarded("TERM", 128 + 15);
}

#[test]
fn sigint_reaches_a_background_child() {
    forwarded("INT", 128 + 2);
}

#[test]
fn command_mode_signals_only_the_command() {
    let b = Bed::new();
    let script = format!(r#"perl "{}" "$1" & wait"#, b.trap.display());
    let mut l = b.run(&["--hold-while", "command"], &script);
    let trap = b.pid("trap");
    send(l.pid(), "TERM");
    let st = l.wait_for(Duration::from_secs(10));
    assert_eq!(st.code(), Some(128 + 15), "{}", l.stderr());
    assert!(!b.got("TERM"), "the background child got the signal too");
    assert!(alive(trap));
    send(trap, "KILL");
}

/// A wait for the command that fails (injected: debug builds only) must
/// not release: the command may still run. The bid names it, so the lock
/// stays until it exits.
#[test]
fn failed_wait_for_the_command_keeps_the_lock() {
    let b = Bed::new();
    let mut args = vec![
        "run",
        b.d.to_str().unwrap(),
        "--",
        "sh",
        "-c",
        r#"sh "$0" "$1" fg"#,
    ];
    args.extend([b.hold.to_str().unwrap(), b.meet.to_str().unwrap()]);
    // Standard error to a file: the command, which runs on, holds it too.
    let err = b.meet.join("stderr");
    let mut l = Bg {
        child: std::process::Command::new(bin())
            .args(&args)
            .env("LOCKFOLDER_CLI_FAULT", "wait-for-command")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .unwrap(),
    };
    let fg = b.pid("fg");
    let st = l.wait_for(Duration::from_secs(10));
    let err = std::fs::read_to_string(&err).unwrap();
    assert_eq!(st.code(), Some(71), "{err}");
    assert!(err.contains("waiting for the command"), "{err}");
    assert!(alive(fg), "the command runs on");
    assert_eq!(
        try_run(&b.d),
        1,
        "the lock was released while the command runs"
    );
    b.finish("fg", fg);
    assert!(free_soon(&b.d));
}
