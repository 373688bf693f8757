//! Platform code, selected in this one place so the rest of the crate carries
//! no `cfg` noise.
//!
//! * `linux.rs`: the real implementation. Process identity comes from
//!   `/proc`, waiting uses inotify, pidfd and eventfd.
//! * `other.rs`: every other platform. It compiles, and every operation
//!   returns [`crate::Error::Unsupported`]: without a way to prove that a
//!   process is gone we could not remove stale bids, and without a verified
//!   directory listing we could not promise mutual exclusion, so we refuse
//!   rather than guess (see `docs/safety.md`).

#[cfg(target_os = "linux")]
mod linux;
#[cfg(target_os = "linux")]
pub(crate) use linux::*;

#[cfg(not(target_os = "linux"))]
mod other;
#[cfg(not(target_os = "linux"))]
pub(crate) use other::*;

/// What the platform could find out about a PID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) enum Probe {
    /// No process has this PID in our PID namespace (`kill(pid, 0)` gave ESRCH).
    Gone,
    /// A process has this PID.
    Alive {
        /// Its start time in clock ticks since boot.
        start_ticks: u64,
        /// It is a zombie every thread of which has exited: it can never run
        /// again, it only waits to be reaped.
        defunct: bool,
    },
    /// Could not tell (permissions, hidden `/proc`, a race with exit, ...).
    /// Judged alive.
    Unknown,
}

/// A process, named so that a reused PID is not mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessStamp {
    /// The PID in our PID namespace.
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat`.
    pub start_ticks: u64,
}

/// Facts about this host and boot, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostContext {
    pub host: String,
    pub machine_id: Option<String>,
    pub boot_id: String,
    pub boot_time: u64,
    pub pid_ns: u64,
    pub clk_tck: u64,
}

impl HostContext {
    /// Whole Unix seconds of a start given in ticks, truncated the way
    /// psutil's `int(create_time())` truncates it (what 1.0.2 stores).
    pub fn created(&self, start_ticks: u64) -> i64 {
        (self.boot_time + start_ticks / self.clk_tck.max(1)) as i64
    }

    /// The boot id as 32 hex digits, for temporary file names.
    pub fn boot_id_hex(&self) -> String {
        self.boot_id.chars().filter(|c| *c != '-').collect()
    }
}

/// Random bytes when the OS generator fails (it does not on any supported
/// kernel, but a panic is not an option): std's per-process random hash keys
/// mixed with the time, the PID and a counter. Uniqueness, not secrecy, is
/// what bid names need.
pub(crate) fn fallback_random(buf: &mut [u8]) {
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
