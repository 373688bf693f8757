//! Floors: what the uncontended cycle could cost at best.
//!
//! `raw` performs exactly the system calls of one uncontended check-bid-check
//! cycle of `crates/lockfolder/src/sys/linux.rs`, with none of the protocol
//! around them (no parsing, no identity, no names to generate):
//!
//! * step 10: `openat(dir, ".", O_DIRECTORY)`, `getdents64` until empty, `close`;
//! * step 20: `openat(temp, O_CREAT|O_EXCL|O_NOFOLLOW)`, `write` (a real bid's
//!   bytes), `close`, `renameat2(temp, bid, RENAME_NOREPLACE)`;
//! * step 30: the listing of step 10 again;
//! * step 60: `unlinkat(bid)`.
//!
//! Each cycle uses fresh names of the real length, as the protocol does.
//!
//! `flock` is one `flock(LOCK_EX)` + `flock(LOCK_UN)` on a file kept open.

use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};
use std::path::Path;

fn list(dir: &OwnedFd) -> Result<usize, String> {
    let fd = rustix::fs::openat(
        dir,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| e.to_string())?;
    let mut d = rustix::fs::Dir::new(fd).map_err(|e| e.to_string())?;
    let mut n = 0;
    while let Some(entry) = d.read() {
        entry.map_err(|e| e.to_string())?;
        n += 1;
    }
    Ok(n)
}

/// ns per raw cycle in the (existing, empty) folder `dir`.
pub fn raw(dir: &Path, iters: u64) -> Result<f64, String> {
    raw_among(dir, iters, 0)
}

/// ns per raw cycle in the folder `dir`, which holds `others` entries
/// (listed on every check, as the real cycle lists them) and nothing else.
pub fn raw_among(dir: &Path, iters: u64, others: usize) -> Result<f64, String> {
    let dfd = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("{}: {e}", dir.display()))?;
    let content = lockfolder::current_identity()
        .map_err(|e| e.to_string())?
        .to_bytes();
    // Fresh names every cycle, as long as the real ones, because the protocol
    // needs unique names (a bid name is never reused): a UUIDv7-shaped bid
    // and a temporary that carries the token, PID, start ticks, PID
    // namespace and boot id. Reusing one name would let the filesystem
    // recycle the same directory slot and dentry, which the real cycle never
    // gets.
    let pid = std::process::id();
    let seq = std::cell::Cell::new(0u64);
    let cycle = || -> Result<(), String> {
        let e = |e: rustix::io::Errno| e.to_string();
        let n = seq.get();
        seq.set(n + 1);
        let bid = format!("0190f4c2-7d3e-7a11-8b2c-{:012x}.json", n ^ 0x5d6e7f809a1b);
        let temp = format!(
            ".lockfolder-0190f4c27d3e7a118b2c{:016x}-{pid}-123456789-4026531836-0123456789abcdef0123456789abcdef.tmp",
            n ^ 0x5d6e7f809a1b
        );
        if list(&dfd)? != 2 + others {
            return Err("the floor folder holds entries of its own".to_owned());
        }
        let fd = rustix::fs::openat(
            &dfd,
            temp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(e)?;
        let n = rustix::io::write(&fd, &content).map_err(e)?;
        if n != content.len() {
            return Err("short write".to_owned());
        }
        drop(fd);
        rustix::fs::renameat_with(
            &dfd,
            temp.as_str(),
            &dfd,
            bid.as_str(),
            RenameFlags::NOREPLACE,
        )
        .map_err(e)?;
        list(&dfd)?;
        rustix::fs::unlinkat(&dfd, bid.as_str(), AtFlags::empty()).map_err(e)?;
        Ok(())
    };
    ns_per_cycle(iters, cycle)
}

/// ns per flock + unlock on an open file.
pub fn flock(file: &Path, iters: u64) -> Result<f64, String> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(file)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let cycle = || -> Result<(), String> {
        f.lock().map_err(|e| e.to_string())?;
        f.unlock().map_err(|e| e.to_string())
    };
    ns_per_cycle(iters, cycle)
}

/// ns per `try_lock` + release of lockfolder in this process.
fn lockfolder_cycle(lock: &lockfolder::LockFolder, iters: u64) -> Result<f64, String> {
    ns_per_cycle(iters, || {
        let g = lock
            .try_lock()
            .map_err(|e| e.to_string())?
            .ok_or("uncontended lock was busy")?;
        g.release().map_err(|e| e.to_string())
    })
}

/// Runs `cycle` a tenth of `iters` times to warm up, then `iters` times,
/// and returns the mean ns of the timed runs.
fn ns_per_cycle(iters: u64, mut cycle: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    for _ in 0..iters / 10 + 1 {
        cycle()?;
    }
    let t0 = crate::worker::mono_ns();
    for _ in 0..iters {
        cycle()?;
    }
    Ok((crate::worker::mono_ns() - t0) as f64 / iters as f64)
}

/// The raw floor and lockfolder's uncontended cycle in alternating blocks in
/// one process, so that a change of machine load hits both alike. Returns the
/// per-block ns of each, in order.
pub fn paired(dir: &Path, rounds: usize, iters: u64) -> Result<(Vec<f64>, Vec<f64>), String> {
    let floor_dir = dir.join("floor.d");
    std::fs::create_dir_all(&floor_dir).map_err(|e| e.to_string())?;
    let lock = lockfolder::LockFolder::new(dir.join("lockfolder.d")).map_err(|e| e.to_string())?;
    let (mut f, mut l) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        f.push(raw(&floor_dir, iters)?);
        l.push(lockfolder_cycle(&lock, iters)?);
    }
    Ok((f, l))
}
