//! The last look at a multi-host storm's lock folder, once every host has
//! ended, by a reader that sees every process of the kernel (the initial
//! PID namespace of the NFS guest): what is left, whose it is, and whether
//! it may be there.
//!
//! Every host that ended normally must have left nothing: its workers
//! remove the entries of their own killed colleagues, and their own on the
//! way out. The host killed whole leaves what nobody could judge before
//! (its queue markers and temporaries carry no lease, and no other host can
//! see into its PID namespace), but never a bid: its bids carry a lease and
//! must have been removed by the survivors once it lapsed. Then `clean()` is
//! run here, where the dead namespace's processes are provably gone, and the
//! folder must be empty afterwards but for the fencing tokens' files, which
//! the core keeps by design.

use lockfolder::{BidRecord, EntryKind, Owner};
use std::path::Path;

/// One entry found, with its verdict.
#[derive(Debug, Clone)]
pub struct Found {
    pub name: String,
    pub description: String,
    /// Written by a process of a killed host's PID namespace.
    pub of_killed_host: bool,
    /// Allowed to be there (a killed host's side file).
    pub expected: bool,
}

/// What the audit found.
#[derive(Debug, Default)]
pub struct Audit {
    pub found: Vec<Found>,
    /// What `clean()` removed.
    pub cleaned: Vec<String>,
    /// What was still there after `clean()`.
    pub left: Vec<String>,
}

impl Audit {
    pub fn unexpected(&self) -> usize {
        self.found.iter().filter(|f| !f.expected).count()
    }

    pub fn passed(&self) -> bool {
        self.unexpected() == 0 && self.left.is_empty()
    }

    pub fn summary_line(&self) -> String {
        format!(
            "lockfolder-audit: {} entries={} of_killed_host={} unexpected={} cleaned={} \
             left_after_clean={}",
            if self.passed() { "PASS" } else { "FAIL" },
            self.found.len(),
            self.found.iter().filter(|f| f.of_killed_host).count(),
            self.unexpected(),
            self.cleaned.len(),
            self.left.len()
        )
    }
}

/// Fence files (`.lockfolder-fence-N`): the core keeps the latest ones so
/// the next holder draws a larger token.
const FENCE_PREFIX: &str = ".lockfolder-fence-";

/// The PID namespace inode a side file's name records: its owner key is
/// `L<start ticks>.<pid ns>.<boot id>.<boot time>` (Linux), after the
/// token and the PID.
fn side_file_pid_ns(name: &str) -> Option<u64> {
    let rest = name.strip_prefix(".lockfolder-")?;
    let key = rest.split_once(".L")?.1;
    key.split('.').nth(1)?.parse().ok()
}

/// The PID namespace inode a bid records.
fn bid_pid_ns(path: &Path) -> Option<u64> {
    let rec = BidRecord::parse(&std::fs::read(path).ok()?)?;
    match rec.owner? {
        Owner::Linux(o) => Some(o.pid_ns),
        _ => None,
    }
}

/// Audits `dir`; `killed`: the PID namespace inodes of the hosts killed
/// whole.
///
/// # Errors
///
/// The core's errors opening, listing or cleaning the folder.
pub fn run(dir: &Path, killed: &[u64]) -> Result<Audit, String> {
    let folder = crate::folder::open(dir, None).map_err(|e| e.to_string())?;
    let mut audit = Audit::default();
    for h in folder.holders().map_err(|e| e.to_string())? {
        let name = h.name.to_string_lossy().into_owned();
        let ns = match h.kind {
            EntryKind::Bid | EntryKind::LegacyBid => bid_pid_ns(&dir.join(&name)),
            _ => side_file_pid_ns(&name),
        };
        let of_killed_host = ns.is_some_and(|n| killed.contains(&n));
        // Fence files are the core's bookkeeping, kept by design.
        let expected = h.kind == EntryKind::Fence
            || (of_killed_host && matches!(h.kind, EntryKind::QueueMarker | EntryKind::Temporary));
        audit.found.push(Found {
            description: format!(
                "{} [{} {}]",
                h.describe(),
                h.kind.as_str(),
                h.state.as_str()
            ),
            name,
            of_killed_host,
            expected,
        });
    }
    audit.cleaned = folder
        .clean()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|h| h.name.to_string_lossy().into_owned())
        .collect();
    audit.left = std::fs::read_dir(dir)
        .map_err(|e| format!("list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(FENCE_PREFIX))
        .collect();
    Ok(audit)
}

/// Reads a PID namespace inode as `readlink /proc/PID/ns/pid` gives it
/// (`pid:[4026531836]`) or as a bare number, from a file.
pub fn read_pid_ns(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    digits
        .parse()
        .map_err(|_| format!("{}: no PID namespace in {text:?}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_file_names_give_their_pid_namespace() {
        let n = ".lockfolder-0190a1b2c3d4e5f6a7b8c9d0e1f2a3b4-77.L12345.4026532290.3f2e1d.1700000000.wait";
        assert_eq!(side_file_pid_ns(n), Some(4_026_532_290));
        assert_eq!(side_file_pid_ns("0190.json"), None);
        assert_eq!(side_file_pid_ns(".lockfolder-x-1.W5.m.tmp"), None);
    }
}
