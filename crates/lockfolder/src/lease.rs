//! Leases, for folders shared between machines: a holder renews its bid
//! (its modification time, stamped by the file server's clock) every third
//! of the lease; a reader that cannot judge the owner's process judges the
//! lease instead, by the same server clock, never by comparing two
//! machines' wall clocks.
//!
//! The timing argument (`docs/safety.md`, "Leases"): a holder sends a
//! renewal at local time `t` and counts the lock valid until `t + 0.9 L`; a
//! successor may enter only when the server time is past the renewal's
//! stamp `+ 1.05 L`. With clock *rates* (holder's monotonic clock, server
//! clock) within 5% of real time, the holder's validity ends before any
//! successor may enter. What leases cannot do: stop a holder paused for
//! longer than the lease (SIGSTOP, a VM freeze) from acting on its
//! belief when it wakes; the fencing token lets the resource refuse it.

use crate::shared::Shared;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The part of its lease a holder counts on (it renews at a third, so two
/// renewals can fail before it gives up).
const HOLDER_SHARE: (u32, u32) = (9, 10);
/// The wait beyond the lease a successor adds, in twentieths of it.
const MARGIN_TWENTIETHS: u32 = 1;

/// Whether a bid last renewed at `renewed` (server time) has expired by
/// `server_now` (a server timestamp no later than now).
pub(crate) fn expired(lease: Duration, renewed: SystemTime, server_now: SystemTime) -> bool {
    // Saturating: a lease read from someone else's bid may be absurd.
    let limit = lease.saturating_add(lease / 20 * MARGIN_TWENTIETHS);
    server_now
        .duration_since(renewed)
        .is_ok_and(|age| age > limit)
}

/// `t + d`, or a year from `t` if that does not fit (leases are bounded by
/// `MAX_LEASE`, so this only guards against arithmetic surprises).
fn add(t: Instant, d: Duration) -> Instant {
    t.checked_add(d)
        .or_else(|| t.checked_add(Duration::from_secs(365 * 86_400)))
        .unwrap_or(t)
}

/// How long a holder may count on its lease after sending a renewal.
pub(crate) fn holder_validity(lease: Duration) -> Duration {
    lease * HOLDER_SHARE.0 / HOLDER_SHARE.1
}

/// What a renewal sent at `sent` (local monotonic clock) and answered at
/// `landed` makes of a validity that ran until `valid_until`: it counts from
/// its sending, but only if it landed before that validity ended. Until a
/// renewal lands, readers still see the previous stamp and may judge the
/// lease by it; a renewal that lands later may come after a successor
/// judged the lease expired (and entered), so it must not revive the
/// holder's belief. `None`: the lease is lost.
pub(crate) fn after_renewal(
    lease: Duration,
    valid_until: Instant,
    sent: Instant,
    landed: Instant,
) -> Option<Instant> {
    if landed >= valid_until {
        return None;
    }
    Some(add(sent, holder_validity(lease)).max(valid_until))
}

/// Until when a bid last stamped by a renewal sent at `since` may be
/// counted on.
pub(crate) fn valid_until(lease: Duration, since: Instant) -> Instant {
    add(since, holder_validity(lease))
}

/// What a holder's renewal threads share with its guard.
struct State {
    lost: AtomicBool,
    /// Until when (local monotonic clock) the holder may count on its lease:
    /// the last successful renewal's send time plus its share of the lease.
    valid_until: Mutex<Instant>,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl State {
    fn valid_until(&self) -> Instant {
        *self.valid_until.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stopped(&self) -> bool {
        *self.stop.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Renews one held bid until dropped. Two threads: a *renewer* that touches
/// the bid every third of the lease (a touch can hang on a network
/// filesystem whose server is gone), and a *watchdog* that declares the
/// lease lost the moment its validity ends, whatever the renewer is doing.
pub(crate) struct Renewer {
    state: Arc<State>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Renewer {
    /// Starts renewing the bid `name`, published (its first stamp) at
    /// `since` by the local monotonic clock.
    pub fn start(shared: Arc<Shared>, name: String, lease: Duration, since: Instant) -> Renewer {
        let state = Arc::new(State {
            lost: AtomicBool::new(false),
            valid_until: Mutex::new(valid_until(lease, since)),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        });
        let mut threads = Vec::new();
        let (st, sh, n) = (state.clone(), shared.clone(), name.clone());
        let renewer = std::thread::Builder::new()
            .name("lockfolder-renew".into())
            .spawn(move || renew(&sh, &n, lease, since, &st));
        let (st, sh) = (state.clone(), shared);
        let watchdog = std::thread::Builder::new()
            .name("lockfolder-lease".into())
            .spawn(move || watch(&sh, &name, &st));
        match (renewer, watchdog) {
            (Ok(a), Ok(b)) => threads.extend([a, b]),
            (a, b) => {
                // Without both threads the lease cannot be kept or watched:
                // say so at once.
                state.lost.store(true, Ordering::SeqCst);
                threads.extend(a.ok().into_iter().chain(b.ok()));
            }
        }
        Renewer { state, threads }
    }

    /// Whether the lease could not be renewed in time: the lock may be (or
    /// soon be) someone else's. Time-based, so it is true as soon as the
    /// validity has ended, even if no thread has run since (a paused
    /// process that wakes up sees it at once).
    pub fn lost(&self) -> bool {
        self.state.lost.load(Ordering::SeqCst) || Instant::now() >= self.state.valid_until()
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        *self.state.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.state.wake.notify_all();
        for t in self.threads.drain(..) {
            // A renewer stuck in a hung touch is left to finish on its own.
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// Sleeps until `until` or until told to stop; `false` if told to stop.
fn sleep_until(st: &State, until: Instant) -> bool {
    let mut stop = st.stop.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if *stop {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        stop = st
            .wake
            .wait_timeout(stop, until - now)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

fn renew(shared: &Shared, name: &str, lease: Duration, since: Instant, st: &State) {
    let period = lease / 3;
    let mut next = add(since, period);
    while sleep_until(st, next) {
        let sent = Instant::now();
        match shared.folder.touch(name.as_bytes()) {
            Ok(()) if !st.lost.load(Ordering::SeqCst) && !st.stopped() => {
                let landed = Instant::now();
                let mut v = st.valid_until.lock().unwrap_or_else(|p| p.into_inner());
                // Not `sent < *v`: a renewal sent in time but answered late
                // (a slow server, a starved thread) left readers the old
                // stamp meanwhile. The watchdog catches that too, but only
                // if it runs on time; this does not depend on it.
                match after_renewal(lease, *v, sent, landed) {
                    Some(until) => *v = until,
                    None => {
                        drop(v);
                        st.lost.store(true, Ordering::SeqCst);
                        st.wake.notify_all();
                        return;
                    }
                }
                next = add(sent, period);
            }
            Ok(()) => return,
            // Our bid is gone: someone judged it expired, or removed it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                st.lost.store(true, Ordering::SeqCst);
                st.wake.notify_all();
                return;
            }
            // Retry soon; the lease still holds until its validity ends.
            Err(_) => next = Instant::now() + period.min(Duration::from_millis(200)),
        }
    }
}

fn watch(shared: &Shared, name: &str, st: &State) {
    loop {
        let until = st.valid_until();
        if !sleep_until(st, until.min(Instant::now() + Duration::from_millis(500))) {
            return;
        }
        if st.lost.load(Ordering::SeqCst) || Instant::now() >= st.valid_until() {
            st.lost.store(true, Ordering::SeqCst);
            if let Some(cb) = &shared.on_lost {
                cb(&shared.path_of(name.as_bytes()));
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_stops_counting_before_any_successor_may_enter() {
        let lease = Duration::from_secs(10);
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        // Server and holder clocks both within 5% of real time: the holder's
        // validity (0.9 L by its clock: at most 0.9/0.95 L real) ends before
        // the successor's earliest entry (1.05 L by the server clock: at
        // least 1.05/1.05 L real).
        let holder_real = holder_validity(lease).as_secs_f64() / 0.95;
        let successor_real = (lease + lease / 20).as_secs_f64() / 1.05;
        assert!(holder_real < successor_real);
        assert!(!expired(lease, t0, t0 + lease));
        assert!(!expired(lease, t0, t0 + lease + lease / 20));
        assert!(expired(
            lease,
            t0,
            t0 + lease + lease / 20 + Duration::from_millis(1)
        ));
        // A server timestamp older than the renewal (clock read earlier):
        // never expired.
        assert!(!expired(lease, t0, t0 - Duration::from_secs(5)));
    }

    #[test]
    fn a_renewal_counts_only_if_it_lands_before_the_validity_ends() {
        let lease = Duration::from_secs(2);
        let t0 = Instant::now();
        let until = valid_until(lease, t0);
        let sent = t0 + lease / 3;
        // Answered in time: counted from its sending.
        assert_eq!(
            after_renewal(lease, until, sent, sent + Duration::from_millis(10)),
            Some(sent + holder_validity(lease))
        );
        // Sent in time, answered after the validity ended (but before the
        // send time's share would end): readers may have judged the old
        // stamp meanwhile, so the lease is lost.
        assert_eq!(after_renewal(lease, until, sent, until), None);
        assert_eq!(
            after_renewal(lease, until, sent, until + Duration::from_millis(100)),
            None
        );
        // Never shortens what an earlier renewal gave.
        assert_eq!(after_renewal(lease, until, t0, t0), Some(until));
    }

    /// The modification time of `path`, for noticing a renewal land.
    fn mtime(path: &std::path::Path) -> SystemTime {
        std::fs::metadata(path).unwrap().modified().unwrap()
    }

    /// Waits (up to 8 s) until `path`'s modification time is not `before`.
    fn until_stamped(path: &std::path::Path, before: SystemTime) {
        let deadline = Instant::now() + Duration::from_secs(8);
        while mtime(path) == before {
            assert!(
                Instant::now() < deadline,
                "{} was never renewed",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    // The first renewal is sent a third into the lease (0.67 s of 2 s);
    // answered 1.5 s later (2.17 s) it lands after the holder's validity
    // (1.8 s) ended, but before the share counted from its sending would
    // (2.47 s): a reader may have judged the old stamp expired meanwhile.
    const SLOW_ANSWER: Duration = Duration::from_millis(1500);

    #[test]
    fn a_holders_renewal_answered_late_loses_the_lease() {
        let dir = tempfile::tempdir().unwrap();
        let lf = crate::LockFolder::builder(dir.path())
            .lease(Duration::from_secs(2))
            .open()
            .unwrap();
        let g = lf.try_lock().unwrap().unwrap();
        let bid = g.bid_path();
        let name = bid.file_name().unwrap().to_str().unwrap().to_owned();
        let stamped = mtime(&bid);
        crate::fault::slow_once(crate::error::Op::Renew, name.as_bytes(), SLOW_ANSWER);
        until_stamped(&bid, stamped);
        assert!(
            g.lost(),
            "a renewal that landed after the validity revived the lease"
        );
        let _ = g.release();
    }
}
