//! Just enough of `/proc` to tell whether a process is still the one we
//! met, written independently of the core crate's own liveness test so that
//! the occupancy check does not share its bugs.

use std::fs;
use std::io;

/// What `/proc/<pid>/stat` says about a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Field 3: R, S, D, Z, X, ...
    pub state: u8,
    /// Field 4.
    pub ppid: u32,
    /// Field 22: start time in clock ticks after boot.
    pub start_ticks: u64,
}

/// Parses the text of `/proc/<pid>/stat`. The command name (field 2) may hold
/// spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    // `rest` starts at field 3.
    Some(Stat {
        state: *fields.first()?.as_bytes().first()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// Reads `/proc/<pid>/stat`; `Ok(None)` if there is no such process.
pub fn stat(pid: u32) -> io::Result<Option<Stat>> {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => parse_stat(&text)
            .map(Some)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad /proc stat")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // ESRCH: the process went away while we read.
        Err(e) if e.raw_os_error() == Some(3) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The start ticks of the calling process.
pub fn own_start_ticks() -> io::Result<u64> {
    let text = fs::read_to_string("/proc/self/stat")?;
    parse_stat(&text)
        .map(|s| s.start_ticks)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad /proc/self/stat"))
}

/// Whether the process `pid` that started at `start_ticks` still exists and
/// can still run. A zombie has finished running (our workers are
/// single-threaded and die by SIGKILL, which ends every thread); a different
/// start time means the PID was reused. Any error reading `/proc` answers
/// "alive": in doubt we report an overlap rather than hide one.
pub fn is_alive(pid: u32, start_ticks: u64) -> bool {
    match stat(pid) {
        Ok(None) => false,
        Ok(Some(s)) => s.start_ticks == start_ticks && s.state != b'Z' && s.state != b'X',
        Err(_) => true,
    }
}

/// The direct children of `pid` (needs `CONFIG_PROC_CHILDREN`, which every
/// mainstream kernel has). Empty if the process is gone.
pub fn children(pid: u32) -> Vec<u32> {
    fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|t| {
            t.split_ascii_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_name_with_parentheses_and_spaces() {
        let line =
            "1234 (a) b (c) S 77 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 200";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, b'S');
        assert_eq!(s.ppid, 77);
        assert_eq!(s.start_ticks, 98765);
    }

    #[test]
    fn self_is_alive_and_a_wrong_start_time_is_not() {
        let me = std::process::id();
        let ticks = own_start_ticks().unwrap();
        assert!(is_alive(me, ticks));
        assert!(!is_alive(me, ticks + 1));
        assert!(parse_stat("garbage").is_none());
    }
}
