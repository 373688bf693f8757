//! The `lockfolder` command line tool, as a library so the Python package's
//! console script runs the very same code.

use std::ffi::OsString;

/// Runs the command line tool with `args` (including the program name) and
/// returns the process exit status.
pub fn main_from_args<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString>,
{
    let _args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    eprintln!("lockfolder: the command line is being written (issue 4)");
    70
}
