//! The folder itself: created when missing, refused when it is a file,
//! typed errors when it cannot be written.

use crate::util::{names, TestFn};
use lockfolder::{Error, LockFolder};

pub const TESTS: &[TestFn] = &[
    (
        "folder::missing_folder_is_created",
        missing_folder_is_created,
    ),
    (
        "folder::file_instead_of_folder_is_an_error",
        file_instead_of_folder_is_an_error,
    ),
    // Drops privileges with Linux's setresuid (root ignores permissions).
    #[cfg(target_os = "linux")]
    (
        "folder::read_only_folder_is_an_error_and_clean",
        read_only_folder_is_an_error_and_clean,
    ),
    (
        "folder::vanished_folder_is_an_error",
        vanished_folder_is_an_error,
    ),
    (
        "folder::replaced_folder_is_an_error",
        replaced_folder_is_an_error,
    ),
    #[cfg(windows)]
    (
        "folder::delete_pending_bid_blocks_until_its_last_handle_closes",
        delete_pending_bid_blocks_until_its_last_handle_closes,
    ),
    #[cfg(windows)]
    (
        "folder::release_outlasts_a_reader_without_share_delete",
        release_outlasts_a_reader_without_share_delete,
    ),
];

fn missing_folder_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("a/b/c");
    let lf = LockFolder::new(&p).unwrap();
    assert!(p.is_dir());
    lf.try_lock().unwrap().unwrap().release().unwrap();
    let err = LockFolder::builder(dir.path().join("nope"))
        .create(false)
        .open()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
}

fn file_instead_of_folder_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("file");
    std::fs::write(&p, b"x").unwrap();
    let err = LockFolder::new(&p).unwrap_err();
    assert!(matches!(err, Error::NotADirectory { .. }), "{err:?}");
    assert!(err.to_string().contains("file"), "{err}");
    let err = LockFolder::new(p.join("below")).unwrap_err();
    assert!(matches!(err, Error::NotADirectory { .. }), "{err:?}");
    assert_eq!(std::fs::read(&p).unwrap(), b"x", "the file is untouched");
}

#[cfg(target_os = "linux")]
fn read_only_folder_is_an_error_and_clean() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;
    // Root ignores permission bits, so the attempt is made by a child that
    // drops to an unprivileged user first.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = dir.path().join("locks");
    std::fs::create_dir(&p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o555)).unwrap();
    let child = crate::util::spawn("try-unprivileged", &[p.to_str().unwrap()]);
    let line = child.line(Duration::from_secs(10));
    assert!(
        line.starts_with("ERR Some(CreateTemp) PermissionDenied"),
        "expected a typed create error, got {line}"
    );
    assert!(line.contains(p.to_str().unwrap()), "names the path: {line}");
    assert_eq!(names(&p), Vec::<String>::new(), "no temporary left behind");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(windows)]
fn vanished_folder_is_an_error() {
    // An open LockFolder holds its folder without FILE_SHARE_DELETE: it
    // cannot be removed (or renamed, below) while in use.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("gone");
    let lf = LockFolder::new(&p).unwrap();
    let err = std::fs::remove_dir(&p).expect_err("the folder is held");
    assert_eq!(err.raw_os_error(), Some(32), "sharing violation: {err}");
    lf.try_lock().unwrap().unwrap().release().unwrap();
    drop(lf);
    std::fs::remove_dir(&p).expect("free once closed");
}

#[cfg(windows)]
fn replaced_folder_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("lock");
    let lf = LockFolder::new(&p).unwrap();
    let err = std::fs::rename(&p, dir.path().join("old")).expect_err("the folder is held");
    assert_eq!(err.raw_os_error(), Some(32), "sharing violation: {err}");
    lf.try_lock().unwrap().unwrap().release().unwrap();
    // Windows also refuses to move a folder above it (a directory with an
    // open handle inside cannot be renamed). Where it can be moved anyway
    // (wine renames on the host's file system), the identity check must
    // catch it: the path now names another folder, or none.
    let moved = dir.path().with_extension("moved");
    match std::fs::rename(dir.path(), &moved) {
        Err(e) => assert!(
            matches!(e.raw_os_error(), Some(5 | 32)),
            "access denied or sharing violation: {e}"
        ),
        Ok(()) => {
            std::fs::create_dir_all(&p).unwrap();
            let err = lf.try_lock().unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
            assert!(err.to_string().contains("replaced"), "{err}");
            assert_eq!(names(&moved.join("lock")), Vec::<String>::new());
            drop(lf);
            std::fs::remove_dir(&p).unwrap();
            std::fs::remove_dir(dir.path()).unwrap();
            std::fs::rename(&moved, dir.path()).unwrap();
            return;
        }
    }
    assert_eq!(names(&p), Vec::<String>::new());
}

#[cfg(unix)]
fn vanished_folder_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("gone");
    let lf = LockFolder::new(&p).unwrap();
    std::fs::remove_dir(&p).unwrap();
    let err = lf.try_lock().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("gone"), "{err}");
}

#[cfg(unix)]
fn replaced_folder_is_an_error() {
    // The folder is renamed away and a new one made at its path: an open
    // LockFolder must not go on bidding in the old one, where nobody else
    // looks.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("lock");
    let lf = LockFolder::new(&p).unwrap();
    std::fs::rename(&p, dir.path().join("old")).unwrap();
    std::fs::create_dir(&p).unwrap();
    let other = LockFolder::new(&p).unwrap();
    let _held = other.try_lock().unwrap().unwrap();
    let err = lf.try_lock().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("replaced"), "{err}");
    assert_eq!(names(&dir.path().join("old")), Vec::<String>::new());
}

/// A bid deleted while someone still has it open (a reader, a scanner)
/// is "delete pending" where the file system has no POSIX delete (or the
/// deleter did not ask for it): it keeps its name, and cannot be opened,
/// until that handle closes. Meanwhile it counts as a rival that is never
/// stale and never removed; once the handle closes, the lock is free.
#[cfg(windows)]
fn delete_pending_bid_blocks_until_its_last_handle_closes() {
    use std::os::windows::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().unwrap();
    let lf = LockFolder::new(dir.path()).unwrap();
    let g = lf.try_lock().unwrap().unwrap();
    let path = g.bid_path();
    g.leak();
    // Full sharing, as lockfolder's own readers open bids.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .share_mode(7)
        .open(&path)
        .unwrap();
    // DeleteFileW, which keeps the name while `reader` is open unless the
    // system deletes with POSIX semantics.
    std::fs::remove_file(&path).unwrap();
    if names(dir.path()).len() == 1 {
        assert!(lf.try_lock().unwrap().is_none(), "a pending bid blocks");
        let h = lf.holders().unwrap();
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h[0].blocks() && !matches!(h[0].state, lockfolder::State::Stale(_)));
        assert!(lf.clean().unwrap().is_empty(), "never removed by us");
    } else {
        eprintln!("note: this system deleted the open bid at once (POSIX semantics)");
    }
    drop(reader);
    assert_eq!(names(dir.path()), Vec::<String>::new());
    lf.try_lock()
        .unwrap()
        .expect("free once the last handle closed")
        .release()
        .unwrap();
}

/// Python's `open()` (so every lockfolder 1.0.2 process reading our bid)
/// shares read and write but not delete: while it has the bid open, the bid
/// cannot be deleted. `release` must wait that out rather than fail and leave
/// the bid behind while we live (the mixed run under wine saw readers keep a
/// bid for over 30 ms on a loaded machine).
#[cfg(windows)]
fn release_outlasts_a_reader_without_share_delete() {
    use std::os::windows::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().unwrap();
    let lf = LockFolder::new(dir.path()).unwrap();
    let g = lf.try_lock().unwrap().unwrap();
    // FILE_SHARE_READ | FILE_SHARE_WRITE, as the C runtime's _SH_DENYNO.
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .share_mode(3)
        .open(g.bid_path())
        .unwrap();
    let err = std::fs::remove_file(g.bid_path()).expect_err("the reader keeps it");
    assert_eq!(err.raw_os_error(), Some(32), "sharing violation: {err}");
    let closer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(reader);
    });
    g.release().expect("release waits for the reader");
    closer.join().unwrap();
    assert_eq!(names(dir.path()), Vec::<String>::new());
}
