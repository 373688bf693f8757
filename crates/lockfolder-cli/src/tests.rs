//! Unit tests: the argument parser under hostile input (property tests),
//! the manual generated from the parser, and `docs/cli.md` against the
//! parser and the code.

use crate::{exit, parse, parse_error_code, run, Action, Cli};
use clap::CommandFactory;
use proptest::prelude::*;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Instant;

// ---------------------------------------------------------------------------
// Hostile command lines
// ---------------------------------------------------------------------------

/// Every option of every subcommand, and then some.
const FLAGS: &[&str] = &[
    "-n",
    "--nonblock",
    "-w",
    "--timeout",
    "-E",
    "--conflict-exit-code",
    "-q",
    "--quiet",
    "-v",
    "--verbose",
    "--label",
    "-s",
    "--shared",
    "--slots",
    "--hold-while",
    "-c",
    "--command",
    "--json",
    "--dry-run",
    "-h",
    "--help",
    "-V",
    "--version",
    "--",
    "-",
    "-x",
    "--no-such-option",
];

/// Values that have broken parsers before, or could.
const NASTY: &[&str] = &[
    "",
    "0",
    "-0",
    "1",
    "-1",
    "0.5",
    "1e19",
    "1e20",
    "1e308",
    "1e400",
    "-1e400",
    "18446744073709551615",
    "18446744073709551616",
    "4294967295",
    "4294967296",
    "255",
    "256",
    "NaN",
    "nan",
    "-nan",
    "inf",
    "-inf",
    "infinity",
    "0x10",
    " 1",
    "1 ",
    "group",
    "command",
    "run",
    "status",
    "clean",
    "/",
    ".",
    "/tmp/lock",
    "true",
    "=",
    "--timeout=1e19",
    "-w1e19",
    "-E300",
];

/// One argument: a flag, a nasty value, any string, a huge one, or bytes
/// that are not UTF-8.
fn arg() -> impl Strategy<Value = OsString> {
    prop_oneof![
        4 => proptest::sample::select(FLAGS).prop_map(OsString::from),
        4 => proptest::sample::select(NASTY).prop_map(OsString::from),
        2 => ".{0,12}".prop_map(OsString::from),
        1 => (1usize..6000).prop_map(|n| OsString::from("x".repeat(n))),
        1 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(not_unicode),
        1 => Just(not_unicode(vec![b'-', b'w', 0xff])),
    ]
}

/// An argument that is not valid Unicode: these bytes on Unix; on Windows
/// the bytes as UTF-16 units and a lone surrogate after them.
#[cfg(unix)]
fn not_unicode(bytes: Vec<u8>) -> OsString {
    std::os::unix::ffi::OsStringExt::from_vec(bytes)
}

#[cfg(windows)]
fn not_unicode(bytes: Vec<u8>) -> OsString {
    let mut wide: Vec<u16> = bytes.into_iter().map(u16::from).collect();
    wide.push(0xd800);
    std::os::windows::ffi::OsStringExt::from_wide(&wide)
}

fn command_line() -> impl Strategy<Value = Vec<OsString>> {
    let sub = prop_oneof![
        Just("run"),
        Just("status"),
        Just("clean"),
        Just("help"),
        Just("frobnicate"),
        Just(""),
    ];
    (sub, proptest::collection::vec(arg(), 0..8)).prop_map(|(sub, rest)| {
        let mut v = vec![OsString::from("lockfolder")];
        if !sub.is_empty() {
            v.push(sub.into());
        }
        v.extend(rest);
        v
    })
}

/// What the parser's result leads to, short of touching the system: the
/// deadline, the slice of waiting, the command line for the bid.
fn follow(action: &Action) {
    if let Action::Run(o) = action {
        assert!(o.slots >= 1);
        assert!((0..=255).contains(&o.conflict_code));
        assert!(!o.argv.is_empty(), "{o:?}");
        let now = Instant::now();
        let d = run::deadline(now, o.timeout);
        if let (Some(t), Some(d)) = (o.timeout, d) {
            assert_eq!(d - now, t);
        }
        let line = run::command_line(&o.argv);
        assert!(line.len() <= lockfolder::MAX_LABEL_BYTES);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// No command line makes the parser panic, and every refusal has a
    /// documented exit status.
    #[test]
    fn no_command_line_panics(args in command_line()) {
        match parse(args) {
            Ok(action) => follow(&action),
            Err(e) => {
                let code = parse_error_code(&e);
                prop_assert!(exit::documented_numbers().contains(&code), "{code}");
                prop_assert!(code == exit::OK || code == exit::USAGE);
            }
        }
    }

    /// Whatever the timeout, its deadline is computed without overflow.
    #[test]
    fn any_timeout_has_a_deadline_or_none(secs in any::<u64>(), nanos in 0u32..1_000_000_000) {
        let t = std::time::Duration::new(secs, nanos);
        let now = Instant::now();
        match run::deadline(now, Some(t)) {
            Some(d) => prop_assert_eq!(d - now, t),
            None => prop_assert!(now.checked_add(t).is_none()),
        }
    }
}

fn args(v: &[&str]) -> Vec<OsString> {
    std::iter::once("lockfolder")
        .chain(v.iter().copied())
        .map(OsString::from)
        .collect()
}

fn timeout_of(v: &[&str]) -> Result<Option<std::time::Duration>, i32> {
    match parse(args(v)) {
        Ok(Action::Run(o)) => Ok(o.timeout),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(parse_error_code(&e)),
    }
}

#[test]
fn timeouts_that_are_refused_and_that_mean_forever() {
    for bad in [
        "NaN", "nan", "inf", "-inf", "infinity", "-1", "-0", "1e400", "soon", "",
    ] {
        assert_eq!(
            timeout_of(&["run", "-w", bad, "d", "true"]),
            Err(64),
            "{bad}"
        );
    }
    // A deadline the clock cannot hold is no deadline; one it can hold
    // (Windows' `Instant` reaches further than Linux's) is exact, never
    // wrapped around.
    for huge in ["1e19", "1e20", "1e308", "18446744073709551616"] {
        let t = timeout_of(&["run", "-w", huge, "d", "true"]).unwrap();
        let now = Instant::now();
        if let Some(d) = run::deadline(now, t) {
            assert_eq!(Some(d.duration_since(now)), t, "{huge}");
        }
    }
    #[cfg(target_os = "linux")]
    assert!(run::deadline(
        Instant::now(),
        Some(std::time::Duration::from_secs(1 << 63))
    )
    .is_none());
    assert_eq!(
        timeout_of(&["run", "-w", "0.5", "d", "true"]),
        Ok(Some(std::time::Duration::from_millis(500)))
    );
    assert_eq!(timeout_of(&["run", "-n", "-w", "5", "d", "true"]), Err(64));
}

#[test]
fn the_command_starts_at_the_first_word_after_dir() {
    let argv = |v: &[&str]| match parse(args(v)) {
        Ok(Action::Run(o)) => (o.dir, o.argv, o.quiet, o.timeout),
        Ok(other) => panic!("{other:?}"),
        Err(e) => panic!("{v:?}: {e}"),
    };
    let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
    let (dir, cmd, quiet, timeout) = argv(&["run", "-q", "d", "ls", "-l", "-n", "--", "-w", "5"]);
    assert_eq!(dir, PathBuf::from("d"));
    assert_eq!(cmd, os(&["ls", "-l", "-n", "--", "-w", "5"]));
    assert!(quiet);
    assert_eq!(timeout, None);
    // Options between DIR and the command are still ours.
    let (_, cmd, quiet, _) = argv(&["run", "d", "-q", "ls"]);
    assert_eq!(cmd, os(&["ls"]));
    assert!(quiet);
    // `--` still works, and lets a command start with a dash.
    let (_, cmd, _, _) = argv(&["run", "d", "--", "-weird", "x"]);
    assert_eq!(cmd, os(&["-weird", "x"]));
    let (_, cmd, _, _) = argv(&["run", "d", "-c", "echo hi"]);
    assert_eq!(cmd, os(&["/bin/sh", "-c", "echo hi"]));
    assert!(parse(args(&["run", "d"])).is_err());
    assert!(parse(args(&["run", "d", "-c", "x", "extra"])).is_err());
}

// ---------------------------------------------------------------------------
// The manual: generated from the parser, committed, checked for drift
// ---------------------------------------------------------------------------

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every file of `manual/`, as the parser makes it now.
fn manual() -> Vec<(PathBuf, Vec<u8>)> {
    use clap_complete::Shell;
    let mut files = Vec::new();
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut page = |c: clap::Command| {
        let man = clap_mangen::Man::new(c);
        let mut buf = Vec::new();
        man.render(&mut buf).unwrap();
        files.push((PathBuf::from(man.get_filename()), buf));
    };
    for sub in cmd.get_subcommands() {
        page(sub.clone());
    }
    page(cmd.clone());
    for (shell, name) in [
        (Shell::Bash, "lockfolder.bash"),
        (Shell::Zsh, "_lockfolder"),
        (Shell::Fish, "lockfolder.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "lockfolder", &mut buf);
        files.push((Path::new("completions").join(name), buf));
    }
    files
}

/// Fails when `manual/` differs from what the parser makes. To update it:
/// `LOCKFOLDER_UPDATE_MANUAL=1 cargo test -p lockfolder-cli manual`.
/// The shipped manual is the Unix one (Windows has other defaults:
/// `--hold-while command`).
#[cfg(unix)]
#[test]
fn manual_matches_the_parser() {
    let dir = crate_dir().join("manual");
    let update = std::env::var_os("LOCKFOLDER_UPDATE_MANUAL").is_some();
    let mut stale = Vec::new();
    for (name, want) in manual() {
        let path = dir.join(&name);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &want).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(want.as_slice()) {
            stale.push(name.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "manual/ is out of date ({}); run LOCKFOLDER_UPDATE_MANUAL=1 cargo test -p lockfolder-cli manual",
        stale.join(", ")
    );
}

#[test]
fn manual_pages_say_what_matters() {
    let files = manual();
    let page = |n: &str| {
        let (_, b) = files.iter().find(|(p, _)| p == Path::new(n)).unwrap();
        String::from_utf8(b.clone()).unwrap()
    };
    let top = page("lockfolder.1");
    assert!(
        top.contains("lockfolder\\-run(1)") || top.contains("lockfolder\\-run"),
        "{top}"
    );
    let run = page("lockfolder-run.1");
    for s in ["hold\\-while", "nonblock", "65", "128+N"] {
        assert!(run.contains(s), "lockfolder-run.1 lacks {s}");
    }
}

// ---------------------------------------------------------------------------
// docs/cli.md against the parser and the code
// ---------------------------------------------------------------------------

fn cli_md() -> String {
    std::fs::read_to_string(crate_dir().join("../../docs/cli.md")).expect("docs/cli.md")
}

/// Every flag and every value `--help` names is in the manual.
#[test]
fn docs_name_every_flag() {
    let doc = cli_md();
    let mut missing = Vec::new();
    let cmd = Cli::command();
    for sub in std::iter::once(&cmd).chain(cmd.get_subcommands()) {
        for a in sub.get_arguments() {
            if let Some(l) = a.get_long() {
                if !doc.contains(&format!("`--{l}")) {
                    missing.push(format!("{} --{l}", sub.get_name()));
                }
            }
            if let Some(s) = a.get_short() {
                if !doc.contains(&format!("`-{s}")) {
                    missing.push(format!("{} -{s}", sub.get_name()));
                }
            }
            // Named values (`--hold-while group`); not a flag's true/false.
            if a.get_action().takes_values() {
                for v in a.get_possible_values() {
                    let l = a.get_long().unwrap_or_default();
                    if !v.is_hide_set() && !doc.contains(&format!("--{l} {}", v.get_name())) {
                        missing.push(format!("{} --{l} {}", sub.get_name(), v.get_name()));
                    }
                }
            }
        }
        if !std::ptr::eq(sub, &cmd) && !doc.contains(&format!("## `lockfolder {}`", sub.get_name()))
        {
            missing.push(format!("section for {}", sub.get_name()));
        }
    }
    assert!(missing.is_empty(), "docs/cli.md lacks: {missing:?}");
}

/// Every exit status in the code's table is a row of the manual's table.
#[test]
fn docs_list_every_exit_status() {
    let doc = cli_md();
    let missing: Vec<&str> = exit::DOCUMENTED
        .iter()
        .map(|d| d.code)
        .filter(|c| !doc.contains(&format!("\n| {c} |")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/cli.md's exit table lacks {missing:?}"
    );
    // And every constant the code returns is in that table.
    for code in [
        exit::OK,
        exit::HELD,
        exit::USAGE,
        exit::DATAERR,
        exit::NOINPUT,
        exit::SOFTWARE,
        exit::OSERR,
        exit::CANTCREAT,
        exit::IOERR,
        exit::NOPERM,
        exit::NOT_EXECUTABLE,
        exit::NOT_FOUND,
    ] {
        assert!(exit::documented_numbers().contains(&code), "{code}");
    }
}

/// Every entry kind, state and JSON key that `status` prints is explained.
#[test]
fn docs_explain_what_status_prints() {
    use lockfolder::{EntryKind, Role, State};
    let doc = cli_md();
    let mut missing: Vec<String> = EntryKind::ALL
        .iter()
        .map(|k| k.as_str())
        .chain(State::ALL.iter().map(|s| s.as_str()))
        .chain(Role::ALL.iter().map(|r| r.as_str()))
        .filter(|w| !doc.contains(&format!("`{w}`")))
        .map(str::to_owned)
        .collect();
    // The JSON keys, from a real entry.
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join("junk"), "x").unwrap();
    let folder = lockfolder::LockFolder::builder(t.path())
        .create(false)
        .open()
        .unwrap();
    let h = folder.holders().unwrap().remove(0);
    let entry = crate::inspect::entry_json(&h);
    for key in entry.as_object().unwrap().keys() {
        if !doc.contains(&format!("| `{key}` |")) {
            missing.push(format!("JSON key {key}"));
        }
    }
    assert!(missing.is_empty(), "docs/cli.md lacks {missing:?}");
}
