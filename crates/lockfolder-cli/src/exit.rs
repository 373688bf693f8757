//! Exit statuses and the one-line error messages that go with them.
//!
//! The codes follow `sysexits.h` for our own failures, so a script can tell
//! "the lock folder could not be created" from "the command failed"; the
//! command's own status is passed through untouched. `docs/cli.md` lists
//! every code.

use lockfolder::{Error, Op};
use std::io::ErrorKind;
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

/// Prints one line on stderr: `lockfolder: <what>`.
pub fn report(what: impl std::fmt::Display) {
    eprintln!("lockfolder: {what}");
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
