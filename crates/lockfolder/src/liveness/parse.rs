//! Decoding what macOS, FreeBSD and Windows report about processes, apart
//! from the system calls, so that it is tested on every host (the platform
//! files only fetch the bytes and numbers).
//!
//! Sources of the layouts and formulas: Apple's `<sys/sysctl.h>` and
//! `<sys/proc.h>` (`struct kinfo_proc`, `struct extern_proc`), FreeBSD's
//! `<sys/proc.h>`, and psutil 7.2.2's `create_time()` (the value lockfolder
//! 1.0.2 stores as `CREATED`): `arch/osx/proc.c`, `arch/bsd/proc.c` and
//! `arch/windows/init.c`.

// Each platform uses the part that decodes its own answers.
#![cfg_attr(not(test), allow(dead_code))]

use crate::identity::RunState;

/// `p_stat` / `ki_stat` of a stopped process (`SSTOP` in `<sys/proc.h>`,
/// the same on macOS and FreeBSD).
pub(crate) const SSTOP: u8 = 4;
/// `p_stat` / `ki_stat` of a zombie (`SZOMB`): every thread has exited.
pub(crate) const SZOMB: u8 = 5;

/// How a BSD process state reads to the rules. A zombie can never run
/// again (its threads are gone before the kernel marks it `SZOMB`).
pub(crate) fn bsd_state(stat: u8) -> RunState {
    match stat {
        SZOMB => RunState::Exited,
        SSTOP => RunState::Stopped,
        _ => RunState::Running,
    }
}

/// A `timeval` as µs since its origin; `None` if it is not one (negative,
/// or microseconds out of range).
pub(crate) fn timeval_us(sec: i64, usec: i64) -> Option<u64> {
    if sec < 0 || !(0..1_000_000).contains(&usec) {
        return None;
    }
    (sec as u64)
        .checked_mul(1_000_000)?
        .checked_add(usec as u64)
}

/// A FreeBSD start in µs since boot: `ki_start` (which the kernel fills as
/// its uptime at start plus the boot time of the moment) minus
/// `kern.boottime` read with it. `None` if the start precedes the boot
/// (the two were not read together, or `ki_start` was not filled).
pub(crate) fn since_boot(start_us: u64, boot_us: u64) -> Option<u64> {
    start_us.checked_sub(boot_us)
}

/// The fields of a 64-bit macOS `struct kinfo_proc` that we use. Its first
/// member is `struct extern_proc kp_proc`, which begins with the union
/// `p_un` whose `__p_starttime` (`p_starttime`) is a `struct timeval` at
/// offset 0 (`tv_sec`: 8 bytes, `tv_usec`: 4 bytes). After the union's 16
/// bytes come two pointers (`p_vmspace`, `p_sigacts`), then `int p_flag`
/// at 32, `char p_stat` at 36 and `pid_t p_pid` at 40. The whole structure
/// is 648 bytes on x86_64 and arm64; we need only the first 44.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MacProc {
    pub pid: i32,
    pub start_sec: i64,
    pub start_usec: i64,
    pub stat: u8,
}

const MAC_START_SEC: usize = 0;
const MAC_START_USEC: usize = 8;
const MAC_STAT: usize = 36;
const MAC_PID: usize = 40;
/// Bytes of `kinfo_proc` read here.
pub(crate) const MAC_KINFO_MIN: usize = 44;

fn ne_i64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn ne_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes the start time, state and PID of a macOS `kinfo_proc` as
/// `sysctl(KERN_PROC_PID)` returned it (in the machine's byte order).
pub(crate) fn macos_kinfo(b: &[u8]) -> Option<MacProc> {
    if b.len() < MAC_KINFO_MIN {
        return None;
    }
    Some(MacProc {
        pid: ne_i32(b, MAC_PID)?,
        start_sec: ne_i64(b, MAC_START_SEC)?,
        start_usec: i64::from(ne_i32(b, MAC_START_USEC)?),
        stat: b[MAC_STAT],
    })
}

impl MacProc {
    /// Its start in µs since the epoch (the unit of `MacosOwner`).
    pub fn start_us(&self) -> Option<u64> {
        timeval_us(self.start_sec, self.start_usec)
    }
}

/// 1.0.2's `CREATED` from a BSD start `timeval`:
/// `int(tv_sec + tv_usec / 1e6)`, which is `tv_sec` (the fraction is below
/// one by more than a double's rounding step at today's times).
pub(crate) fn created_of_timeval(sec: i64) -> i64 {
    sec
}

/// FILETIME of the Unix epoch: 100 ns intervals from 1601-01-01 to
/// 1970-01-01.
pub(crate) const FILETIME_UNIX_EPOCH: u64 = 116_444_736_000_000_000;

/// 1.0.2's `CREATED` on Windows, computed as psutil does it: the FILETIME
/// minus the epoch, converted to a `double`, divided by 10^7, truncated by
/// `int()`. The conversion rounds (today's values exceed 2^53), so a
/// creation time 100 ns before a whole second can give the next second;
/// exact integer arithmetic would disagree with 1.0.2 there.
pub(crate) fn windows_created(filetime: u64) -> i64 {
    (filetime.saturating_sub(FILETIME_UNIX_EPOCH) as f64 / 10_000_000.0) as i64
}

/// A host UUID that names a machine: present and not all zeros (FreeBSD
/// reports `00000000-0000-0000-0000-000000000000` when it has none).
pub(crate) fn is_machine_uuid(s: &str) -> bool {
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b'-').collect();
    hex.len() == 32 && hex.iter().all(u8::is_ascii_hexdigit) && hex.iter().any(|b| *b != b'0')
}

/// The canonical form of 16 UUID bytes (`gethostuuid`), uppercase as
/// macOS shows its Hardware UUID.
pub(crate) fn uuid_string(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A NUL-terminated C string in a fixed buffer (`sysctl` strings,
/// `f_fstypename`); `None` without a terminator or if not UTF-8.
pub(crate) fn c_string(b: &[u8]) -> Option<String> {
    let end = b.iter().position(|c| *c == 0)?;
    String::from_utf8(b[..end].to_vec()).ok()
}

/// Arguments separated (and terminated) by NULs, as FreeBSD's
/// `KERN_PROC_ARGS` returns them: joined by spaces, for display.
pub(crate) fn nul_separated_args(b: &[u8]) -> Option<String> {
    let parts: Vec<String> = b
        .split(|c| *c == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// macOS `KERN_PROCARGS2`: `int argc`, the executable path and its NUL
/// padding, then `argc` NUL-terminated arguments (then the environment,
/// which is not shown). Joined by spaces, for display.
pub(crate) fn macos_procargs(b: &[u8]) -> Option<String> {
    let argc = usize::try_from(ne_i32(b, 0)?).ok()?;
    let rest = b.get(4..)?;
    let path_end = rest.iter().position(|c| *c == 0)?;
    let mut at = path_end;
    while rest.get(at) == Some(&0) {
        at += 1;
    }
    let mut args = Vec::new();
    for part in rest[at..].split(|c| *c == 0).take(argc) {
        args.push(String::from_utf8_lossy(part).into_owned());
    }
    if args.is_empty() {
        let path = String::from_utf8_lossy(&rest[..path_end]).into_owned();
        return (!path.is_empty()).then_some(path);
    }
    Some(args.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kinfo(pid: i32, sec: i64, usec: i32, stat: u8) -> Vec<u8> {
        let mut b = vec![0xAAu8; 648];
        b[0..8].copy_from_slice(&sec.to_ne_bytes());
        b[8..12].copy_from_slice(&usec.to_ne_bytes());
        b[12..16].copy_from_slice(&[0; 4]);
        b[36] = stat;
        b[40..44].copy_from_slice(&pid.to_ne_bytes());
        b
    }

    #[test]
    fn macos_kinfo_fields() {
        let p = macos_kinfo(&kinfo(4242, 1_700_000_123, 456_789, SZOMB)).unwrap();
        assert_eq!(p.pid, 4242);
        assert_eq!(p.start_us(), Some(1_700_000_123_456_789));
        assert_eq!(bsd_state(p.stat), RunState::Exited);
        assert_eq!(created_of_timeval(p.start_sec), 1_700_000_123);
        assert!(macos_kinfo(&kinfo(1, 1, 1, 1)[..43]).is_none());
        let bad = macos_kinfo(&kinfo(1, 5, 1_000_000, 2)).unwrap();
        assert_eq!(bad.start_us(), None, "µs out of range is no time");
        assert_eq!(bsd_state(SSTOP), RunState::Stopped);
        assert_eq!(bsd_state(2), RunState::Running);
    }

    #[test]
    fn windows_created_rounds_as_psutil_does() {
        let ft = |unix_100ns: u64| FILETIME_UNIX_EPOCH + unix_100ns;
        assert_eq!(windows_created(ft(17_000_000_000_000_000)), 1_700_000_000);
        assert_eq!(windows_created(ft(17_000_000_005_000_000)), 1_700_000_000);
        assert_eq!(windows_created(ft(16_999_999_999_999_998)), 1_699_999_999);
        // 100 ns before a whole second: the double conversion rounds up to
        // the second (Python: int(float(16999999999999999) / 10**7)).
        assert_eq!(windows_created(ft(16_999_999_999_999_999)), 1_700_000_000);
        assert_eq!(windows_created(0), 0);
    }

    #[test]
    fn freebsd_since_boot() {
        assert_eq!(
            since_boot(1_700_000_100_000_000, 1_700_000_000_000_000),
            Some(100_000_000)
        );
        assert_eq!(since_boot(1, 2), None);
        assert_eq!(timeval_us(-1, 0), None);
        assert_eq!(timeval_us(2, 999_999), Some(2_999_999));
    }

    #[test]
    fn uuids() {
        assert!(is_machine_uuid("4C4C4544-0042-3510-8057-B7C04F4E3732"));
        assert!(!is_machine_uuid("00000000-0000-0000-0000-000000000000"));
        assert!(!is_machine_uuid(""));
        assert!(!is_machine_uuid("not-a-uuid"));
        let b: [u8; 16] = core::array::from_fn(|i| i as u8 * 17);
        assert_eq!(uuid_string(&b), "00112233-4455-6677-8899-AABBCCDDEEFF");
        assert_eq!(c_string(b"nfs\0junk"), Some("nfs".to_owned()));
        assert_eq!(c_string(b"nfs"), None);
    }

    #[test]
    fn procargs() {
        let mut b = 2i32.to_ne_bytes().to_vec();
        b.extend_from_slice(b"/bin/sleep\0\0\0\0sleep\x0030\0HOME=/root\0");
        assert_eq!(macos_procargs(&b), Some("sleep 30".to_owned()));
        let mut b = 0i32.to_ne_bytes().to_vec();
        b.extend_from_slice(b"/bin/x\0\0");
        assert_eq!(macos_procargs(&b), Some("/bin/x".to_owned()));
        assert_eq!(macos_procargs(b"\x01"), None);
        assert_eq!(
            nul_separated_args(b"sh\0-c\0echo hi\0"),
            Some("sh -c echo hi".to_owned())
        );
        assert_eq!(nul_separated_args(b""), None);
    }

    proptest! {
        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = macos_kinfo(&b).map(|p| p.start_us());
            let _ = macos_procargs(&b);
            let _ = nul_separated_args(&b);
            let _ = c_string(&b);
        }

        #[test]
        fn windows_created_is_within_a_second_of_exact(t in 0u64..40_000_000_000_000_000) {
            let exact = (t / 10_000_000) as i64;
            let got = windows_created(FILETIME_UNIX_EPOCH + t);
            prop_assert!(got == exact || got == exact + 1);
        }
    }
}
