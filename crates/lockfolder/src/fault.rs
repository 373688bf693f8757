//! Fault injection for tests: make any filesystem operation fail with a chosen
//! errno. Compiled to nothing outside `cfg(test)`.
//!
//! Faults are per thread, so tests running in parallel do not disturb each
//! other, and each fault fires a set number of times.

use crate::error::Op;
use std::io;

/// Release builds: no faults, nothing to check.
#[cfg(all(not(test), not(debug_assertions)))]
#[inline(always)]
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(crate) fn check(_op: Op, _name: &[u8]) -> io::Result<()> {
    Ok(())
}

/// Release builds: the filesystem is what it is.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn fs_override() -> Option<String> {
    None
}

/// Debug builds: `LOCKFOLDER_FAULT=fs=NAME` makes every folder look like it
/// is on a FUSE filesystem called `NAME` (one lockfolder has no evidence
/// for), so tests reach the refusal and the opt-in without mounting one.
#[cfg(debug_assertions)]
pub(crate) fn fs_override() -> Option<String> {
    std::env::var("LOCKFOLDER_FAULT").ok().and_then(|v| {
        v.split(',')
            .find_map(|f| f.trim().strip_prefix("fs=").map(str::to_owned))
    })
}

/// Debug builds (the integration tests' child processes): the environment
/// variable `LOCKFOLDER_FAULT` names operations (`renew`) that fail with
/// `EIO` in every thread of the process, so a test can make, say, a real
/// holder's lease renewals fail. Compiled out of release builds.
#[cfg(all(not(test), debug_assertions))]
pub(crate) fn check(op: Op, _name: &[u8]) -> io::Result<()> {
    static PLAN: std::sync::OnceLock<Vec<Op>> = std::sync::OnceLock::new();
    let plan = PLAN.get_or_init(|| {
        std::env::var("LOCKFOLDER_FAULT")
            .unwrap_or_default()
            .split(',')
            .filter_map(|n| match n.trim() {
                "renew" => Some(Op::Renew),
                "publish" => Some(Op::Publish),
                "remove" => Some(Op::Remove),
                _ => None,
            })
            .collect()
    });
    if plan.contains(&op) {
        return Err(io::Error::from_raw_os_error(5)); // EIO
    }
    Ok(())
}

#[cfg(test)]
pub(crate) use imp::*;

#[cfg(test)]
// `PLAN` is already `const`: clippy misreads std's expansion on targets
// without native thread locals (x86_64-pc-windows-gnu), rust-clippy#17566.
#[cfg_attr(windows, allow(clippy::missing_const_for_thread_local))]
mod imp {
    use super::*;
    use std::cell::RefCell;

    struct Fault {
        op: Op,
        name_contains: Vec<u8>,
        errno: i32,
        remaining: usize,
        skip: usize,
    }

    thread_local! {
        static PLAN: RefCell<Vec<Fault>> = const { RefCell::new(Vec::new()) };
    }

    /// Makes the next `times` calls of `op` on a name containing
    /// `name_contains` fail with `errno`.
    pub(crate) fn inject(op: Op, name_contains: &str, errno: i32, times: usize) {
        PLAN.with(|p| {
            p.borrow_mut().push(Fault {
                op,
                name_contains: name_contains.as_bytes().to_vec(),
                errno,
                remaining: times,
                skip: 0,
            })
        });
    }

    /// Lets `skip` calls of `op` through, then fails the next one.
    pub(crate) fn inject_after(op: Op, skip: usize, errno: i32) {
        PLAN.with(|p| {
            p.borrow_mut().push(Fault {
                op,
                name_contains: Vec::new(),
                errno,
                remaining: 1,
                skip,
            })
        });
    }

    /// Delays planned for every thread (a lease's renewals run in threads
    /// of their own): (operation, part of the name, delay).
    static SLOW: std::sync::Mutex<Vec<(Op, Vec<u8>, std::time::Duration)>> =
        std::sync::Mutex::new(Vec::new());

    /// Makes the next call of `op` on a name containing `name_contains`, in
    /// any thread, wait `delay` before it goes ahead: a file server that
    /// answers late.
    pub(crate) fn slow_once(op: Op, name_contains: &[u8], delay: std::time::Duration) {
        SLOW.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((op, name_contains.to_vec(), delay));
    }

    fn take_delay(op: Op, name: &[u8]) -> Option<std::time::Duration> {
        let mut slow = SLOW.lock().unwrap_or_else(|p| p.into_inner());
        let i = slow.iter().position(|(o, part, _)| {
            *o == op && name.windows(part.len()).any(|w| w == part.as_slice())
        })?;
        Some(slow.remove(i).2)
    }

    /// Removes every planned fault of this thread.
    pub(crate) fn clear() {
        PLAN.with(|p| p.borrow_mut().clear());
    }

    pub(crate) fn check(op: Op, name: &[u8]) -> io::Result<()> {
        if let Some(delay) = take_delay(op, name) {
            std::thread::sleep(delay);
        }
        PLAN.with(|p| {
            let mut plan = p.borrow_mut();
            for f in plan.iter_mut() {
                let matches = f.op == op
                    && f.remaining > 0
                    && (f.name_contains.is_empty()
                        || name
                            .windows(f.name_contains.len())
                            .any(|w| w == f.name_contains.as_slice()));
                if matches && f.skip > 0 {
                    f.skip -= 1;
                    return Ok(());
                }
                if matches {
                    f.remaining -= 1;
                    return Err(io::Error::from_raw_os_error(f.errno));
                }
            }
            Ok(())
        })
    }
}
