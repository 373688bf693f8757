//! Integration tests of the `lockfolder` binary: real processes, each with a
//! deadline, each in its own temporary folder. One test binary (several
//! modules) keeps link time low.

mod common;
// These drive Unix commands (sh, touch, kill) and Unix behaviour (process
// groups, signals, the terminal, /proc); windows.rs covers what `run`
// does on Windows.
#[cfg(unix)]
mod groups;
#[cfg(unix)]
mod input;
#[cfg(unix)]
mod inspect;
#[cfg(unix)]
mod leases;
#[cfg(unix)]
mod modes;
#[cfg(unix)]
mod pipes;
#[cfg(unix)]
mod run;
#[cfg(unix)]
mod signals;
#[cfg(unix)]
mod terminal;
#[cfg(windows)]
mod windows;
