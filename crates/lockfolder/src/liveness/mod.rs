//! Proof of death, per platform: who this process is (what its bids
//! record), and whether the process behind someone else's entry is provably
//! gone. The rules live in `identity.rs` (pure, tested on every host); the
//! files here supply this platform's facts: `/proc` and `kill(2)` on Linux,
//! `sysctl` on macOS and FreeBSD, process handles on Windows.
//!
//! Selected in this one place, so call sites carry no `cfg`: `linux.rs`,
//! `macos.rs`, `freebsd.rs`, `windows.rs`, and `other.rs` (no proof: every
//! entry is alive and bidding fails) for the rest. The three platforms whose
//! start times name a process on their own share one judge
//! (`portable.rs`); `sysctl.rs` is the `sysctl(3)` of macOS and FreeBSD;
//! `parse.rs` holds the pure decoding of what those systems return, tested
//! on every host.

use crate::identity::{Claim, Owner, OwnerKey, Verdict};

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
use linux as imp;

#[cfg(target_os = "macos")]
mod macos;
#[cfg(target_os = "macos")]
use macos as imp;

#[cfg(target_os = "freebsd")]
mod freebsd;
#[cfg(target_os = "freebsd")]
use freebsd as imp;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as imp;

#[cfg(any(target_os = "macos", target_os = "freebsd"))]
mod sysctl;

#[cfg(any(test, target_os = "macos", target_os = "freebsd", windows))]
mod parse;
#[cfg(any(test, target_os = "macos", target_os = "freebsd", windows))]
mod portable;

#[cfg(not(any(
    target_os = "linux",
    target_os = "macos",
    target_os = "freebsd",
    windows
)))]
mod other;
#[cfg(not(any(
    target_os = "linux",
    target_os = "macos",
    target_os = "freebsd",
    windows
)))]
use other as imp;

pub(crate) use imp::{command_line, current_pid};
// The waker checks that what it watches is the process it meant: by PID
// and start on Unix, by the handle it opened on Windows.
#[cfg(windows)]
pub(crate) use imp::creation_time;
#[cfg(not(windows))]
pub(crate) use imp::start_of;

/// A process of ours as its bids describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Me {
    pub pid: u32,
    /// 1.0.2's `CREATED` for this process.
    pub created: i64,
    pub host: String,
    pub owner: Owner,
}

impl Me {
    /// The compact identity side-file names carry.
    pub fn key(&self) -> OwnerKey {
        OwnerKey::of(&self.owner)
    }
}

/// This process, as its bids describe it (cached; re-read after a fork).
pub(crate) fn current() -> std::io::Result<Me> {
    imp::current()
}

/// Another process of ours (the CLI bids for the child that will run the
/// command). It must exist.
pub(crate) fn of_pid(pid: u32) -> std::io::Result<Me> {
    imp::of_pid(pid)
}

/// Judges claims for one listing of one folder. Expensive facts (a scan of
/// every process, for entries of other PID namespaces) are gathered at most
/// once per judge.
pub(crate) struct Judge {
    inner: imp::Judge,
}

impl Judge {
    /// `single_kernel`: the folder's filesystem is written by this kernel
    /// alone (so an entry of another boot there is from an earlier boot).
    pub fn new(single_kernel: bool) -> Judge {
        Judge {
            inner: imp::Judge::new(single_kernel),
        }
    }

    pub fn judge(&self, claim: &Claim) -> Verdict {
        self.inner.judge(claim)
    }

    /// The process to watch for exit (so a waiter wakes the moment a holder
    /// dies): its PID and start as this platform's probe reports it, when
    /// the claim names a process of our own namespace.
    pub fn watch_target(&self, claim: &Claim) -> Option<(u32, u64)> {
        self.inner.watch_target(claim)
    }
}

/// Fills `buf` with random bytes. Uniqueness, not secrecy, is what bid names
/// need; if the OS generator fails (it does not on any supported system, but
/// a panic is not an option) std's per-process random hash keys are mixed
/// with the time, the PID and a counter.
pub(crate) fn random_bytes(buf: &mut [u8]) {
    if getrandom::fill(buf).is_ok() {
        return;
    }
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let state = std::collections::hash_map::RandomState::new();
    for chunk in buf.chunks_mut(8) {
        let mut h = state.build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}
