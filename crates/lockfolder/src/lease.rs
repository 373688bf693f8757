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

use crate::protocol::Shared;
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
    let limit = lease + lease * MARGIN_TWENTIETHS / 20;
    server_now
        .duration_since(renewed)
        .is_ok_and(|age| age > limit)
}

/// How long a holder may count on its lease after sending a renewal.
pub(crate) fn holder_validity(lease: Duration) -> Duration {
    lease * HOLDER_SHARE.0 / HOLDER_SHARE.1
}

/// The state a holder's renewal thread shares with its guard.
#[derive(Default)]
struct State {
    lost: AtomicBool,
    stop: Mutex<bool>,
    wake: Condvar,
}

/// Renews one held bid until dropped.
pub(crate) struct Renewer {
    state: Arc<State>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Renewer {
    /// Starts renewing the bid `name`, published (its first stamp) at
    /// `since` by the local monotonic clock.
    pub fn start(shared: Arc<Shared>, name: String, lease: Duration, since: Instant) -> Renewer {
        let state = Arc::new(State::default());
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("lockfolder-lease".into())
            .spawn(move || renew(&shared, &name, lease, since, &st))
            .ok();
        if thread.is_none() {
            // Without a renewer the lease will lapse: say so at once.
            state.lost.store(true, Ordering::SeqCst);
        }
        Renewer { state, thread }
    }

    /// Whether the lease could not be renewed in time: the lock may be (or
    /// soon be) someone else's.
    pub fn lost(&self) -> bool {
        self.state.lost.load(Ordering::SeqCst)
    }
}

impl Drop for Renewer {
    fn drop(&mut self) {
        *self.state.stop.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.state.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn renew(shared: &Shared, name: &str, lease: Duration, since: Instant, st: &State) {
    let period = lease / 3;
    let mut valid_until = since + holder_validity(lease);
    let mut next = since + period;
    loop {
        {
            let mut stop = st.stop.lock().unwrap_or_else(|p| p.into_inner());
            loop {
                if *stop {
                    return;
                }
                let now = Instant::now();
                if now >= next {
                    break;
                }
                stop = st
                    .wake
                    .wait_timeout(stop, next - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        let sent = Instant::now();
        match shared.folder.touch(name.as_bytes()) {
            Ok(()) => {
                valid_until = sent + holder_validity(lease);
                next = sent + period;
            }
            // Our bid is gone: someone judged it expired, or removed it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return lose(shared, name, st);
            }
            // Retry soon; the lease still holds until `valid_until`.
            Err(_) => next = Instant::now() + period.min(Duration::from_millis(200)),
        }
        if Instant::now() >= valid_until {
            return lose(shared, name, st);
        }
    }
}

fn lose(shared: &Shared, name: &str, st: &State) {
    st.lost.store(true, Ordering::SeqCst);
    if let Some(cb) = &shared.on_lost {
        cb(&shared.path_of(name.as_bytes()));
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
}
