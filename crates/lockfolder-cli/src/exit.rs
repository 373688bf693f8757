//! Exit statuses and the one-line error messages that go with them.
//!
//! The codes follow `sysexits.h` for our own failures, so a script can tell
//! "the lock folder could not be created" from "the command failed"; the
//! command's own status is passed through untouched. `docs/cli.md` lists
//! every code.

use lockfolder::{Error, Op};
use std::fmt::Display;
use std::io::{ErrorKind, Write};
use std::path::Path;

/// Success.
pub const OK: i32 = 0;
/// `status`: the lock is held. Also the default conflict code of `run`.
pub const HELD: i32 = 1;
/// Command line usage error (bad option, missing command, bad label).
pub const USAGE: i32 = 64;
/// The lock folder does not exist or is not a folder (`status`, `clean`).
pub const NOINPUT: i32 = 66;
/// `EX_DATAERR`: the folder's bids disagree with us (another slot count).
pub const DATAERR: i32 = 65;
/// Internal error (a bug in lockfolder).
pub const SOFTWARE: i32 = 70;
/// Operating-system error: cannot fork, cannot read process identity.
pub const OSERR: i32 = 71;
/// The lock folder or a bid in it cannot be created.
pub const CANTCREAT: i32 = 73;
/// Input/output error reading or changing the lock folder.
pub const IOERR: i32 = 74;
/// Permission denied on the lock folder.
pub const NOPERM: i32 = 77;
/// `EX_CONFIG`: the folder's filesystem is not one lockfolder locks on
/// without an explicit opt-in (`--allow-fs`).
pub const CONFIG: i32 = 78;
/// The command was found but cannot be executed.
pub const NOT_EXECUTABLE: i32 = 126;
/// The command was not found.
pub const NOT_FOUND: i32 = 127;

/// The status for "ended by signal `signo`", as shells report it.
pub fn signalled(signo: i32) -> i32 {
    128 + signo
}

/// Where an error happened, for the few errors whose code depends on it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// `run`: the folder is created if missing.
    Run,
    /// `status` and `clean`: the folder must exist.
    Inspect,
}

/// The exit status for a core error. `Timeout` and `Cancelled` are handled
/// by the caller (conflict code, 128 + signal) and map to `SOFTWARE` here.
pub fn code_for(err: &Error, ctx: Context) -> i32 {
    if err.kind() == ErrorKind::PermissionDenied {
        return NOPERM;
    }
    match err {
        Error::NotADirectory { .. } => match ctx {
            Context::Run => CANTCREAT,
            Context::Inspect => NOINPUT,
        },
        Error::InvalidInput { .. } => USAGE,
        Error::SlotsMismatch { .. } => DATAERR,
        Error::FilesystemRefused { .. } => CONFIG,
        Error::Unsupported { .. } => OSERR,
        Error::WithdrawFailed { .. } => IOERR,
        Error::Io { op, source, .. } => match op {
            Op::OpenFolder if source.kind() == ErrorKind::NotFound => NOINPUT,
            Op::CreateFolder | Op::CreateTemp | Op::WriteTemp | Op::Publish => CANTCREAT,
            Op::Identity => OSERR,
            _ => IOERR,
        },
        _ => SOFTWARE,
    }
}

/// Prints one line on stderr: `lockfolder: <what>`. A standard error that
/// cannot be written (a closed pipe, a full disk) loses the line, not the
/// exit status.
pub fn report(what: impl Display) {
    let _ = writeln!(std::io::stderr().lock(), "lockfolder: {what}");
}

/// Prints a core error (which already names the folder and the operation)
/// and returns its exit status.
pub fn fail(err: &Error, ctx: Context) -> i32 {
    report(err);
    code_for(err, ctx)
}

/// Prints "<folder>: <what>" and returns `code`.
pub fn fail_at(folder: &Path, what: impl std::fmt::Display, code: i32) -> i32 {
    report(format_args!("{}: {what}", folder.display()));
    code
}

/// Which subcommands an exit status applies to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scope {
    /// Every subcommand.
    All,
    /// `run` only.
    Run,
    /// `status` and `clean`.
    Inspect,
}

/// One documented exit status: its code (as text, because some are ranges
/// or the `-E` value), what it means, and where it applies. The help texts
/// and the drift test against `docs/cli.md` both read this table.
pub struct Documented {
    /// "0", "64", "128+N", "-E N".
    pub code: &'static str,
    /// One short line.
    pub meaning: &'static str,
    /// Where it applies.
    pub scope: Scope,
}

/// Every exit status any subcommand can give, in order.
pub const DOCUMENTED: &[Documented] = &[
    Documented {
        code: "0",
        meaning: "success; status: a new acquisition would get the lock now",
        scope: Scope::All,
    },
    Documented {
        code: "1",
        meaning: "status: a new acquisition would wait; run: the default conflict code",
        scope: Scope::All,
    },
    Documented {
        code: "-E N",
        meaning: "the lock was held (-n) or the wait timed out (-w)",
        scope: Scope::Run,
    },
    Documented {
        code: "N",
        meaning: "the command's own exit status",
        scope: Scope::Run,
    },
    Documented {
        code: "64",
        meaning: "usage error",
        scope: Scope::All,
    },
    Documented {
        code: "65",
        meaning: "the folder's bids give another slot count (--slots)",
        scope: Scope::Run,
    },
    Documented {
        code: "66",
        meaning: "no such lock folder (it is not created)",
        scope: Scope::Inspect,
    },
    Documented {
        code: "70",
        meaning: "internal error",
        scope: Scope::All,
    },
    Documented {
        code: "71",
        meaning: "operating-system error",
        scope: Scope::All,
    },
    Documented {
        code: "73",
        meaning: "cannot create the folder or a bid",
        scope: Scope::Run,
    },
    Documented {
        code: "74",
        meaning: "I/O error",
        scope: Scope::All,
    },
    Documented {
        code: "77",
        meaning: "permission denied",
        scope: Scope::All,
    },
    Documented {
        code: "78",
        meaning: "the folder's filesystem is refused without --allow-fs",
        scope: Scope::Run,
    },
    Documented {
        code: "126",
        meaning: "the command cannot be executed",
        scope: Scope::Run,
    },
    Documented {
        code: "127",
        meaning: "the command was not found",
        scope: Scope::Run,
    },
    Documented {
        code: "128+N",
        meaning: "signal N killed the command, or interrupted the wait",
        scope: Scope::Run,
    },
];

/// The "Exit status:" block of a help text, for the subcommands in
/// `scopes`.
pub fn help_block(scopes: &[Scope]) -> String {
    let mut s = String::from("Exit status:\n");
    for d in DOCUMENTED.iter().filter(|d| scopes.contains(&d.scope)) {
        s.push_str(&format!("  {:<6} {}\n", d.code, d.meaning));
    }
    s
}

/// Every numeric code that [`DOCUMENTED`] lists (for tests).
#[cfg(test)]
pub fn documented_numbers() -> Vec<i32> {
    DOCUMENTED
        .iter()
        .filter_map(|d| d.code.parse().ok())
        .collect()
}

/// Standard output for `status` and `clean`. A reader that went away (a
/// closed pipe: `| head -1`) ends the output quietly and the command exits
/// with the status it would have had; any other write error is reported
/// and gives 74.
pub struct Output {
    out: std::io::StdoutLock<'static>,
    failed: Option<std::io::Error>,
}

impl Output {
    /// Locks standard output.
    pub fn new() -> Output {
        Output {
            out: std::io::stdout().lock(),
            failed: None,
        }
    }

    /// Writes one line (nothing more after a failed write).
    pub fn line(&mut self, text: impl Display) {
        if self.failed.is_none() {
            if let Err(e) = writeln!(self.out, "{text}") {
                self.failed = Some(e);
            }
        }
    }

    /// Flushes, and returns `code` unless writing failed other than by a
    /// closed pipe.
    pub fn finish(mut self, code: i32) -> i32 {
        if self.failed.is_none() {
            if let Err(e) = self.out.flush() {
                self.failed = Some(e);
            }
        }
        match self.failed {
            None => code,
            Some(e) if e.kind() == ErrorKind::BrokenPipe => code,
            Some(e) => {
                report(format_args!("writing to standard output: {e}"));
                IOERR
            }
        }
    }
}
