//! Platforms this build has no proof of death for: nothing about other
//! processes can be proven, so every entry is unjudgeable (alive) and this
//! process cannot describe itself, which makes bidding fail with
//! `Error::Unsupported` instead of running without a way to recover from a
//! crash.

use super::Me;
use crate::identity::{Claim, Unjudgeable, Verdict};
use std::io;

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "lockfolder has no proof of process death on this platform",
    )
}

pub(crate) fn current_pid() -> u32 {
    std::process::id()
}

pub(crate) fn current() -> io::Result<Me> {
    Err(unsupported())
}

pub(crate) fn of_pid(_pid: u32) -> io::Result<Me> {
    Err(unsupported())
}

pub(crate) fn command_line(_pid: u32) -> Option<String> {
    None
}

pub(crate) fn start_of(_pid: u32) -> Option<u64> {
    None
}

pub(crate) struct Judge;

impl Judge {
    pub fn new(_single_kernel: bool) -> Judge {
        Judge
    }

    pub fn judge(&self, claim: &Claim) -> Verdict {
        match claim {
            Claim::Unreadable(why) => Verdict::Unjudgeable(why.clone()),
            _ => Verdict::Unjudgeable(Unjudgeable::NoLocalIdentity),
        }
    }

    pub fn watch_target(&self, _claim: &Claim) -> Option<(u32, u64)> {
        None
    }
}
