//! In-crate tests that need the fault-injection layer: every filesystem
//! failure is reachable, yields a typed error naming the step and the path,
//! and leaves no stray bid or temporary behind.

use crate::error::{Error, Op};
use crate::fault;
use crate::LockFolder;
/// The failures injected, as this platform numbers them: no space, I/O
/// error, access denied, read-only, too many open files.
#[cfg(unix)]
const ERRNOS: [i32; 5] = [
    rustix::io::Errno::NOSPC.raw_os_error(),
    rustix::io::Errno::IO.raw_os_error(),
    rustix::io::Errno::ACCESS.raw_os_error(),
    rustix::io::Errno::ROFS.raw_os_error(),
    rustix::io::Errno::MFILE.raw_os_error(),
];
/// `ERROR_DISK_FULL`, `ERROR_IO_DEVICE`, `ERROR_ACCESS_DENIED`,
/// `ERROR_WRITE_PROTECT`, `ERROR_TOO_MANY_OPEN_FILES`.
#[cfg(windows)]
const ERRNOS: [i32; 5] = [112, 1117, 5, 19, 4];
const EIO: i32 = ERRNOS[1];
const EMFILE: i32 = ERRNOS[4];

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn expect_io(err: Error, op: Op, errno: i32, dir: &std::path::Path) {
    match &err {
        Error::Io {
            op: got,
            path,
            source,
        } => {
            assert_eq!(*got, op, "{err}");
            assert_eq!(source.raw_os_error(), Some(errno), "{err}");
            assert!(path.starts_with(dir), "{err} should name a path in {dir:?}");
        }
        other => panic!("expected an I/O error in {op:?}, got {other:?}"),
    }
    assert_eq!(err.op(), Some(op));
    let msg = err.to_string();
    assert!(
        msg.contains(&dir.display().to_string()),
        "message names the path: {msg}"
    );
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::Error::from_raw_os_error(errno).kind());
}

#[test]
fn every_step_failure_is_typed_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lf = LockFolder::new(dir.path()).unwrap();
    for op in [Op::ReadFolder, Op::CreateTemp, Op::WriteTemp, Op::Publish] {
        for errno in ERRNOS {
            fault::clear();
            fault::inject(op, "", errno, 1);
            let err = lf.try_lock().expect_err("fault must surface");
            expect_io(err, op, errno, dir.path());
            assert_eq!(
                names(dir.path()),
                Vec::<String>::new(),
                "{op:?} {errno:?} left files"
            );
            fault::clear();
            // The folder still works afterwards.
            let g = lf.try_lock().unwrap().expect("free after the fault");
            g.release().unwrap();
        }
    }
}

#[test]
fn second_listing_failure_withdraws_the_bid() {
    let dir = tempfile::tempdir().unwrap();
    let lf = LockFolder::new(dir.path()).unwrap();
    for errno in ERRNOS {
        fault::clear();
        // Step 10 succeeds, step 30 fails: the bid is already published and
        // must be withdrawn before the error is returned.
        fault::inject_after(Op::ReadFolder, 1, errno);
        let err = lf.try_lock().expect_err("step 30 failure");
        expect_io(err, Op::ReadFolder, errno, dir.path());
        assert_eq!(names(dir.path()), Vec::<String>::new());
    }
    fault::clear();
}

#[test]
fn failed_withdrawal_is_reported_not_forgotten() {
    for errno in ERRNOS {
        let dir = tempfile::tempdir().unwrap();
        let lf = LockFolder::new(dir.path()).unwrap();
        // The waiter is created (starts waiting) before the holder takes the
        // lock, so it is older and queues with its bid out.
        let mut w = lf.waiter();
        let held = lf.try_lock().unwrap().expect("free folder");
        assert!(w
            .wait(Some(std::time::Instant::now()), None)
            .unwrap()
            .is_none());
        assert!(w.is_queued(), "the older waiter keeps its bid");
        // Our bid, our queue marker, the holder's bid.
        assert_eq!(names(dir.path()).len(), 3);
        // Twice: `abandon` and the retry when the waiter is dropped.
        fault::inject(Op::Remove, ".json", errno, 2);
        match w.abandon().expect_err("withdrawal fault") {
            Error::WithdrawFailed { path, source } => {
                assert!(path.starts_with(dir.path()));
                assert_eq!(source.raw_os_error(), Some(errno));
                assert!(path.exists(), "the unremovable bid is still there");
                std::fs::remove_file(path).unwrap();
            }
            other => panic!("expected WithdrawFailed, got {other:?}"),
        }
        fault::clear();
        drop(held);
    }
}

#[test]
fn failed_release_is_reported() {
    for errno in ERRNOS {
        let dir = tempfile::tempdir().unwrap();
        let lf = LockFolder::new(dir.path()).unwrap();
        let guard = lf.try_lock().unwrap().unwrap();
        let path = guard.bid_path();
        fault::inject(Op::Remove, "", errno, 1);
        let err = guard.release().expect_err("removal fault");
        expect_io(err, Op::Remove, errno, dir.path());
        assert!(
            path.exists(),
            "a bid that could not be removed is still there"
        );
        fault::clear();
    }
}

#[test]
fn folder_creation_failure_is_typed() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("a/b");
    for errno in ERRNOS {
        fault::clear();
        fault::inject(Op::CreateFolder, "", errno, 1);
        let err = LockFolder::new(&target).expect_err("create fault");
        expect_io(err, Op::CreateFolder, errno, &target);
    }
    fault::clear();
}

#[test]
fn without_inotify_waiting_falls_back_to_backoff() {
    // inotify can run out (max_user_instances, max_user_watches): the waiter
    // must still get the lock, by polling with backoff.
    let dir = tempfile::tempdir().unwrap();
    let lf = LockFolder::new(dir.path()).unwrap();
    let held = lf.try_lock().unwrap().unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(150));
        held.release().unwrap();
    });
    fault::inject(Op::Watch, "", EMFILE, 100);
    let start = std::time::Instant::now();
    let g = lf
        .lock_timeout(std::time::Duration::from_secs(5))
        .expect("acquired by polling");
    let waited = start.elapsed();
    fault::clear();
    releaser.join().unwrap();
    assert!(
        waited >= std::time::Duration::from_millis(150),
        "{waited:?}"
    );
    // The backoff is bounded (50 ms), so the release is noticed quickly.
    assert!(waited < std::time::Duration::from_secs(2), "{waited:?}");
    g.release().unwrap();
    assert_eq!(names(dir.path()), Vec::<String>::new());
}

#[test]
fn unreadable_bid_is_live_not_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let lf = LockFolder::new(dir.path()).unwrap();
    let g = lf.try_lock().unwrap().unwrap();
    let name = g
        .bid_path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    g.leak();
    // Reading the bid fails: it must count as a rival, and stay.
    fault::inject(Op::ReadEntry, &name, EIO, 100);
    assert!(lf.try_lock().unwrap().is_none());
    let h = lf.holders().unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].state, crate::State::NotABid);
    assert!(h[0].note.as_deref().unwrap().contains("unreadable"));
    fault::clear();
    assert!(dir.path().join(&name).exists());
}

/// Property tests of every parser that reads what others wrote: arbitrary
/// input never panics, and what we write parses back to itself.
mod parsers {
    use crate::bid::{BidRecord, Mode};
    use crate::identity::{FreebsdOwner, LinuxOwner, MacosOwner, Owner, OwnerKey, WindowsOwner};
    use crate::names::{classify_name, NameKind, SideName, Token};
    use proptest::prelude::*;

    fn owner() -> impl Strategy<Value = Owner> {
        prop_oneof![
            (
                "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                proptest::option::of("[0-9a-f]{32}"),
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                1u64..1000,
                any::<bool>()
            )
                .prop_map(
                    |(boot_id, machine_id, boot_time, pid_ns, start_ticks, clk_tck, tick_slack)| {
                        Owner::Linux(LinuxOwner {
                            boot_id,
                            machine_id,
                            boot_time,
                            pid_ns,
                            start_ticks,
                            clk_tck,
                            tick_slack,
                        })
                    }
                ),
            (".{0,40}", any::<u64>()).prop_map(|(machine_guid, created)| Owner::Windows(
                WindowsOwner {
                    machine_guid,
                    created
                }
            )),
            (".{0,40}", ".{0,40}", any::<u64>()).prop_map(|(host_uuid, boot_session, start_us)| {
                Owner::Macos(MacosOwner {
                    host_uuid,
                    boot_session,
                    start_us,
                })
            }),
            (".{0,40}", any::<u64>(), any::<u64>()).prop_map(
                |(host_uuid, boot_time_us, start_us)| {
                    Owner::Freebsd(FreebsdOwner {
                        host_uuid,
                        boot_time_us,
                        start_us,
                    })
                }
            ),
        ]
    }

    fn record() -> impl Strategy<Value = BidRecord> {
        (
            (1u32.., any::<i64>(), proptest::option::of(any::<u32>())),
            (
                proptest::option::of(".{0,40}"),
                proptest::option::of(owner()),
            ),
            (
                proptest::option::of(any::<u32>()),
                proptest::option::of(any::<u64>()),
                proptest::option::of(prop_oneof![Just(Mode::Exclusive), Just(Mode::Shared)]),
                proptest::option::of(any::<u32>()),
                proptest::option::of(".{0,60}"),
                proptest::option::of(".{0,60}"),
            ),
            (
                proptest::option::of(any::<u64>()),
                proptest::option::of("[a-z.0-9]{1,20}"),
            ),
        )
            .prop_map(
                |(
                    (pid, created, version),
                    (host, owner),
                    (group, published_ms, mode, slots, label, command),
                    (lease_ms, allowed_fs),
                )| {
                    BidRecord {
                        pid,
                        created,
                        version,
                        host,
                        owner,
                        unreadable_owner: None,
                        group,
                        published_ms,
                        mode,
                        slots,
                        label,
                        command,
                        lease_ms,
                        allowed_fs,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn bid_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Some(rec) = BidRecord::parse(&bytes) {
                let _ = rec.claim();
            }
        }

        #[test]
        fn bid_parser_never_panics_on_near_json(s in r#"\{("[A-Za-z_]{1,12}": ?(-?[0-9]{1,25}|"[^"]{0,8}"|null|\[\]|\{("os": ?"[a-z]{0,8}",?)?\}|true),? ?){0,6}\}"#) {
            if let Some(rec) = BidRecord::parse(s.as_bytes()) {
                let _ = rec.claim();
            }
        }

        #[test]
        fn valid_bid_round_trips(rec in record()) {
            let back = BidRecord::parse(&rec.to_bytes());
            prop_assert_eq!(back, Some(rec));
        }

        #[test]
        fn names_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = classify_name(&bytes);
        }

        #[test]
        fn side_names_round_trip(
            nanos in any::<u64>(),
            pid in 1u32..,
            owner in owner(),
            queue in any::<bool>(),
        ) {
            let side = SideName {
                token: Token::new(u128::from(nanos)),
                pid,
                owner: OwnerKey::of(&owner),
                queue,
            };
            let name = side.file_name();
            prop_assert!(name.len() <= 255, "{}", name);
            prop_assert_eq!(classify_name(name.as_bytes()), NameKind::Side(side));
        }

        #[test]
        fn bid_names_round_trip(nanos in any::<u64>()) {
            let t = Token::new(u128::from(nanos)).renew();
            prop_assert_eq!(classify_name(t.bid_name().as_bytes()), NameKind::Bid(t));
        }
    }
}
