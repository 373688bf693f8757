//! Hostile folders: entries that are not bids are never followed, opened
//! blocking, deleted or changed; they block the lock and are reported.

use crate::util::{names, within, write_bid, TestFn};
use lockfolder::{EntryKind, LockFolder, State};
use std::path::Path;
use std::time::Duration;

pub const TESTS: &[TestFn] = &[
    (
        "hostile::each_entry_blocks_and_is_left_alone",
        each_entry_blocks_and_is_left_alone,
    ),
    ("hostile::all_together_no_hang", all_together_no_hang),
    (
        "hostile::temporary_files_are_not_rivals",
        temporary_files_are_not_rivals,
    ),
    (
        "hostile::absurd_numbers_in_bids_never_panic",
        absurd_numbers_in_bids_never_panic,
    ),
];

/// Makes a hostile entry in the folder (the first path) and returns what
/// the report must say about it, or `None` if this system cannot make such
/// an entry (wine cannot make symlinks or names that are not Unicode;
/// Windows needs a privilege for symlinks).
type Maker = fn(&Path, &Path) -> Option<&'static str>;

fn uuid_name() -> String {
    format!("{}.json", lockfolder::Token::new(1).renew())
}

#[cfg(all(unix, not(target_vendor = "apple")))]
fn fifo(dir: &Path, name: &str) {
    use rustix::fs::{FileType, Mode};
    let d = rustix::fs::open(dir, rustix::fs::OFlags::DIRECTORY, Mode::empty()).unwrap();
    rustix::fs::mknodat(&d, name, FileType::Fifo, Mode::from_raw_mode(0o644), 0).unwrap();
}

/// rustix has no `mknodat` for Apple systems; `mkfifo(1)` is POSIX.
#[cfg(target_vendor = "apple")]
fn fifo(dir: &Path, name: &str) {
    let made = std::process::Command::new("mkfifo")
        .arg(dir.join(name))
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {name}");
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> bool {
    std::os::unix::fs::symlink(target, link).unwrap();
    true
}

/// A file symlink (a reparse point). Creating one needs a privilege or
/// developer mode on Windows; wine 8 reports success and makes nothing.
/// `false` if there is no symlink afterwards.
#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> bool {
    let _ = std::os::windows::fs::symlink_file(target, link);
    std::fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink())
}

/// A name that is not valid Unicode: bytes that are not UTF-8 on Unix, a
/// lone UTF-16 surrogate on Windows.
fn non_unicode_name() -> std::ffi::OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(b"\xff\xfe.json").to_owned()
    }
    #[cfg(windows)]
    {
        use std::os::windows::ffi::OsStringExt;
        let mut w = vec![0xD800u16];
        w.extend(".json".encode_utf16());
        std::ffi::OsString::from_wide(&w)
    }
}

const MAKERS: &[(&str, Maker)] = &[
    #[cfg(unix)]
    ("fifo x.json", |d, _| {
        fifo(d, "x.json");
        Some("FIFO")
    }),
    #[cfg(unix)]
    ("fifo with a bid name", |d, _| {
        fifo(d, &uuid_name());
        Some("FIFO")
    }),
    ("symlink y.json to a file outside", |d, outside| {
        symlink(outside, &d.join("y.json")).then_some("symlink")
    }),
    (
        "symlink with a bid name to a valid bid outside",
        |d, outside| symlink(outside, &d.join(uuid_name())).then_some("symlink"),
    ),
    ("directory z.json", |d, _| {
        std::fs::create_dir(d.join("z.json")).unwrap();
        Some("directory")
    }),
    ("directory with a bid name", |d, _| {
        std::fs::create_dir(d.join(uuid_name())).unwrap();
        Some("directory")
    }),
    ("empty bid", |d, _| {
        write_bid(d, b"");
        Some("empty")
    }),
    ("10 MB bid", |d, _| {
        write_bid(d, &vec![b' '; 10 << 20]);
        Some("too large")
    }),
    ("junk JSON", |d, _| {
        write_bid(d, br#"{"PID": "not a number", "CREATED": []}"#);
        Some("not a bid")
    }),
    ("non-UTF-8 name", |d, _| {
        let written = std::fs::write(d.join(non_unicode_name()), b"{}");
        // Every Unix filesystem here takes any bytes; wine cannot store a
        // lone surrogate (NTFS can).
        #[cfg(unix)]
        written.as_ref().unwrap();
        written.ok().map(|()| "not named like a bid")
    }),
    ("stray file", |d, _| {
        std::fs::write(d.join("README"), b"hello").unwrap();
        Some("not named like a bid")
    }),
];

/// A valid, live bid of ours, outside the folder: following the symlink would
/// find a perfectly good bid; we must not.
fn outside_bid(root: &Path) -> std::path::PathBuf {
    let p = root.join("outside.json");
    std::fs::write(&p, lockfolder::current_identity().unwrap().to_bytes()).unwrap();
    p
}

fn snapshot(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    names(dir)
        .into_iter()
        .map(|n| {
            let p = dir.join(&n);
            let meta = std::fs::symlink_metadata(&p).ok();
            let content = meta
                .filter(|m| m.file_type().is_file())
                .and_then(|_| std::fs::read(&p).ok());
            (n, content)
        })
        .collect()
}

fn each_entry_blocks_and_is_left_alone() {
    for (what, make) in MAKERS {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("locks");
        std::fs::create_dir(&dir).unwrap();
        let outside = outside_bid(root.path());
        let Some(note) = make(&dir, &outside) else {
            eprintln!("skipped: {what}: this system cannot make it");
            continue;
        };
        let before = snapshot(&dir);
        let d = dir.clone();
        let (got, holders, cleaned) = within(Duration::from_secs(10), move || {
            let lf = LockFolder::new(&d).unwrap();
            let got = lf.try_lock().unwrap().is_some();
            let waited = lf.lock_timeout(Duration::from_millis(50));
            assert!(waited.is_err(), "{d:?}: timed wait must not succeed");
            (got, lf.holders().unwrap(), lf.clean().unwrap())
        });
        assert!(!got, "{what}: must block the lock");
        assert!(cleaned.is_empty(), "{what}: clean removed {cleaned:?}");
        assert_eq!(snapshot(&dir), before, "{what}: entry changed or deleted");
        assert_eq!(holders.len(), 1, "{what}: {holders:?}");
        let h = &holders[0];
        assert_eq!(h.state, State::NotABid, "{what}");
        assert_eq!(h.kind, EntryKind::Other, "{what}");
        assert!(h.blocks());
        let n = h.note.as_deref().unwrap_or("");
        assert!(
            n.contains(note),
            "{what}: note {n:?} should mention {note:?}"
        );
        assert!(outside.exists(), "{what}: outside file untouched");
    }
}

fn all_together_no_hang() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("locks");
    std::fs::create_dir(&dir).unwrap();
    let outside = outside_bid(root.path());
    let made = MAKERS
        .iter()
        .filter(|(_, make)| make(&dir, &outside).is_some())
        .count();
    let before = snapshot(&dir);
    let d = dir.clone();
    let n = within(Duration::from_secs(10), move || {
        let lf = LockFolder::new(&d).unwrap();
        assert!(lf.try_lock().unwrap().is_none());
        lf.holders().unwrap().len()
    });
    assert_eq!(n, made);
    assert_eq!(snapshot(&dir), before);
}

fn temporary_files_are_not_rivals() {
    // A temporary of a live writer (this process) and one of a dead writer.
    let dir = tempfile::tempdir().unwrap();
    let me = lockfolder::current_identity().unwrap();
    let tok = lockfolder::Token::new(1);
    let live = crate::util::side_name(&tok, me.pid, &me, "tmp");
    let dead = crate::util::side_name(&tok.renew(), crate::util::dead_pid(), &me, "tmp");
    std::fs::write(dir.path().join(&live), b"{\"PI").unwrap();
    std::fs::write(dir.path().join(&dead), b"").unwrap();
    let lf = LockFolder::new(dir.path()).unwrap();
    let h = lf.holders().unwrap();
    assert_eq!(h.len(), 2);
    assert!(h
        .iter()
        .all(|h| h.kind == EntryKind::Temporary && !h.blocks()));
    let g = lf.try_lock().unwrap().expect("temporaries are not rivals");
    let left = names(dir.path());
    assert!(left.contains(&live), "a live writer's temporary stays");
    assert!(
        !left.contains(&dead),
        "a dead writer's temporary is cleaned"
    );
    g.release().unwrap();
}

/// Every number a bid carries comes from someone else's file: extreme
/// values must not overflow anything (times, leases, PIDs, ticks).
fn absurd_numbers_in_bids_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    for (pid, created, big) in [
        (u32::MAX, i64::MIN, u64::MAX),
        (1, i64::MAX, u64::MAX),
        (u32::MAX, 0, 0),
    ] {
        for os in ["linux", "windows", "macos", "freebsd"] {
            let owner = match os {
                "linux" => format!(
                    r#"{{"os":"linux","boot_id":"x","boot_time":{big},"pid_ns":{big},"start_ticks":{big},"clk_tck":0}}"#
                ),
                "windows" => format!(r#"{{"os":"windows","machine_guid":"x","created":{big}}}"#),
                "macos" => format!(
                    r#"{{"os":"macos","host_uuid":"x","boot_session":"y","start_us":{big}}}"#
                ),
                _ => format!(
                    r#"{{"os":"freebsd","host_uuid":"x","boot_time_us":{big},"start_us":{big}}}"#
                ),
            };
            let bid = format!(
                r#"{{"PID":{pid},"CREATED":{created},"lockfolder":3,"owner":{owner},"published_ms":{big},"lease_ms":{big},"slots":1,"group":{pid}}}"#
            );
            write_bid(dir.path(), bid.as_bytes());
        }
        write_bid(
            dir.path(),
            format!(r#"{{"PID":{pid},"CREATED":{created}}}"#).as_bytes(),
        );
    }
    let d = dir.path().to_path_buf();
    within(Duration::from_secs(20), move || {
        let lf = LockFolder::new(&d).unwrap();
        let st = lf.status().unwrap();
        for h in &st.entries {
            let _ = h.describe();
        }
        let _ = lf.try_lock().unwrap();
        let _ = lf.clean().unwrap();
        let _ = lf.lock_timeout(Duration::from_millis(50));
    });
}
