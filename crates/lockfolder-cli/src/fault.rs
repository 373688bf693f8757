//! Fault injection for tests of the CLI binary: with debug assertions on
//! (the builds `cargo test` runs), the environment variable
//! `LOCKFOLDER_CLI_FAULT` names points (comma-separated) that fail. In
//! release builds [`check`] is an empty inline function: nothing is read,
//! nothing can be injected.
//!
//! The integration tests run the real binary, so the core's `cfg(test)`
//! hook (`crates/lockfolder/src/fault.rs`) cannot reach it; debug
//! assertions are the nearest switch that release builds turn off.

use std::io;

/// A place where a fault can be injected.
#[derive(Clone, Copy, Debug)]
pub enum Point {
    /// `run`: waiting for the command fails (as `waitpid` could).
    WaitForCommand,
}

impl Point {
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    fn name(self) -> &'static str {
        match self {
            Point::WaitForCommand => "wait-for-command",
        }
    }
}

/// Fails if the fault at `point` was asked for.
#[cfg(debug_assertions)]
pub fn check(point: Point) -> io::Result<()> {
    let asked = std::env::var_os("LOCKFOLDER_CLI_FAULT")
        .is_some_and(|v| v.to_string_lossy().split(',').any(|p| p == point.name()));
    if asked {
        Err(io::Error::other(format!("injected fault {}", point.name())))
    } else {
        Ok(())
    }
}

/// Release builds: no fault can be injected.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn check(_point: Point) -> io::Result<()> {
    Ok(())
}
