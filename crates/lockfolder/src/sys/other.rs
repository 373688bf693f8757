//! Platforms other than Linux: honest refusal.
//!
//! The protocol needs two things this crate only knows how to get on Linux: a
//! way to prove that the process behind a bid is gone (PID plus start time,
//! boot id, PID namespace) and event-driven waiting. Rather than ship an
//! unverified port, every entry point returns `Error::Unsupported`. A port
//! belongs here, behind the same functions, with its own tests.

// This module refuses every operation, so the variants and helpers only the
// real implementation produces are never built here.
#![allow(dead_code)]

use super::{HostContext, Probe, ProcessStamp};
use crate::error::{Error, Result};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn unsupported(path: &Path) -> Error {
    Error::Unsupported {
        path: path.to_path_buf(),
        what: "the lockfolder protocol (process identity and folder watching)",
    }
}

pub(crate) struct Folder {
    path: PathBuf,
}

pub(crate) struct RawEntry {
    pub name: Vec<u8>,
    pub kind: EntryType,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryType {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    Device,
    Unknown,
}

pub(crate) enum Content {
    Bytes(Vec<u8>),
    NotRegular(EntryType),
    TooLarge(u64),
    Unreadable(io::Error),
    Vanished,
}

impl Folder {
    pub fn open(path: &Path, _create: bool) -> Result<Folder> {
        Err(unsupported(path))
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn list(&self, _verify: bool) -> Result<Vec<RawEntry>> {
        Err(unsupported(&self.path))
    }
    pub fn lstat_type(&self, _name: &[u8]) -> io::Result<EntryType> {
        Err(io::ErrorKind::Unsupported.into())
    }
    pub fn read_entry(&self, _name: &[u8]) -> Content {
        Content::Unreadable(io::ErrorKind::Unsupported.into())
    }
    pub fn write_temp(&self, _name: &str, _bytes: &[u8]) -> Result<()> {
        Err(unsupported(&self.path))
    }
    pub fn publish(&self, _temp: &str, _bid: &str) -> Result<()> {
        Err(unsupported(&self.path))
    }
    pub fn remove(&self, _name: &[u8]) -> io::Result<bool> {
        Err(io::ErrorKind::Unsupported.into())
    }
    pub fn exists(&self, _name: &str) -> io::Result<bool> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

pub(crate) fn host_context() -> io::Result<&'static HostContext> {
    Err(io::ErrorKind::Unsupported.into())
}

pub(crate) fn current_process() -> io::Result<ProcessStamp> {
    Err(io::ErrorKind::Unsupported.into())
}

pub(crate) fn process_stamp(_pid: u32) -> io::Result<ProcessStamp> {
    Err(io::ErrorKind::Unsupported.into())
}

pub(crate) fn current_pid() -> u32 {
    std::process::id()
}

pub(crate) fn probe(_pid: u32) -> Probe {
    Probe::Unknown
}

pub(crate) fn group_gone(_pgid: u32) -> bool {
    false
}

pub(crate) fn read_cmdline(_pid: u32) -> Option<String> {
    None
}

pub(crate) fn random_bytes(buf: &mut [u8]) {
    super::fallback_random(buf)
}

pub(crate) struct Notifier;

impl Notifier {
    pub fn new() -> io::Result<Notifier> {
        Ok(Notifier)
    }
    pub fn notify(&self) {}
}

pub(crate) struct Watch;

impl Watch {
    pub fn new(_folder: &Folder) -> io::Result<Watch> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

pub(crate) struct HolderWatch;

pub(crate) fn watch_process(_p: ProcessStamp) -> Option<HolderWatch> {
    None
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    Event,
    Process,
    Cancel,
    Timer,
}

pub(crate) fn sleep_until_event(
    _watch: Option<&Watch>,
    _holders: &[&HolderWatch],
    _cancel: Option<&Notifier>,
    timeout: Duration,
    _relevant: Option<&[Vec<u8>]>,
) -> io::Result<Wake> {
    std::thread::sleep(timeout);
    Ok(Wake::Timer)
}
