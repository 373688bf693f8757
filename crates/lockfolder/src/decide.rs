//! The rules that decide what a contender does next, from what one listing
//! of the folder showed: which entries to remove as stale, which keep it
//! out, whom it defers to, and whether it bids, enters, keeps its bid or
//! withdraws.
//!
//! Pure: no I/O, no clock, no platform types. Everything the rules need
//! arrives as plain values ([`Entry`], [`Me`]); time-based facts (has a
//! queue marker had its hand-over time, may a bid be kept a while longer)
//! are computed by the caller and passed in as flags. `protocol.rs` calls
//! these functions for the real lock; `crates/lockfolder-model` calls the
//! very same functions for every state it explores, which is what makes the
//! model check a check of this code. The deliberate faults the model must
//! catch ([`Mutant`]) are switches in these functions, off in [`Rules::REAL`].

use crate::bid::Mode;

/// A total order between contenders: a token as a number (for our tokens,
/// the high bits are the time the contender started waiting). Smaller is
/// older.
pub type Key = u128;

/// What an entry of the folder is, as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    /// A bid. `key` is its token when it is a bid of our format; 1.x bids
    /// (and bids of formats we cannot read) take no part in the age order.
    /// `queued`: its owner's queue marker is listed too (used by one mutant).
    Bid {
        /// Its token as an order key (`None`: no part in the age order).
        key: Option<Key>,
        /// Exclusive or shared.
        mode: Mode,
        /// The slot count recorded in it.
        slots: u32,
        /// A 1.x bid (or of a format we cannot read): exclusive, unordered.
        legacy: bool,
        /// Its owner's queue marker is in the same listing.
        queued: bool,
    },
    /// A waiter's queue marker, carrying the waiter's age.
    Marker {
        /// The waiter's age.
        key: Key,
    },
    /// A bid being written: never a rival.
    Temp,
    /// Named like a bid, but its content is not a bid (empty, half-written
    /// by 1.0.2, junk, unreadable, too large).
    Unreadable,
    /// Anything else that is not a bid (another name, a directory, ...).
    NotABid,
    /// A name a filesystem gives a deleted-but-open file (`.nfsXXXX`).
    Artefact,
}

/// The judgement of an entry's owner, as far as the rules care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Judged {
    /// Its owner runs (perhaps stopped), or we cannot prove it does not.
    Live,
    /// Its owner is provably gone.
    Stale,
    /// Nobody here can judge it (another machine, namespace, platform).
    Unjudgeable,
}

/// One entry of a listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entry {
    /// What the entry is.
    pub class: Class,
    /// The judgement of its owner.
    pub judged: Judged,
    /// For a marker ahead of us: the lock has been free for longer than the
    /// hand-over time while this marker's waiter did not take its turn, so
    /// it has lost it (see [`Role::Ahead`]).
    pub expired: bool,
}

/// The contender deciding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Me {
    /// Its age: the token it drew when it started waiting.
    pub age: Key,
    /// The token of its current (or next) bid: same age, other random bits.
    pub token: Key,
    /// The mode it asks for.
    pub mode: Mode,
    /// The folder's slot count as it opened it.
    pub slots: u32,
    /// Waiting (lock, lock_timeout) rather than one attempt (try_lock).
    pub waiting: bool,
    /// It may keep its bid out while it waits (the caller's bound on how
    /// long a waiter sits on a bid has not passed).
    pub may_keep: bool,
}

/// A deliberate fault, for the model check to catch. Production code uses
/// [`Rules::REAL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(not(feature = "model"), allow(dead_code))]
pub enum Mutant {
    /// The rules as shipped.
    None,
    /// (a) An owner that cannot be judged is taken for dead.
    UnjudgeableIsDead,
    /// (b) A reader removes an entry named like a bid whose content it
    /// cannot read (half-written, or empty), as junk.
    RemoveUnreadable,
    /// (e) The oldest contender enters at once, even though it saw a rival.
    LowestEntersAtOnce,
    /// (f) An older bid makes us step back only if its owner's queue marker
    /// is listed too (a bid without one was taken for a holder's).
    MarkerOnlyPrecedence,
    /// (g) A shared contender treats every bid as compatible.
    SharedIgnoresExclusive,
    /// (h) A semaphore is full only with more than N other bids (it forgets
    /// that its own bid takes a slot).
    SemaphoreForgetsOwnBid,
    /// (i) A queue marker ahead of us is deferred to for ever, even once its
    /// waiter has failed to take its turn (frozen, or of a dead container).
    MarkersNeverExpire,
    /// The seed's tie-break: whoever sees a rival withdraws (no age order).
    SymmetricWithdraw,
}

/// The rules, with at most one mutant switched on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rules {
    /// The fault switched on ([`Mutant::None`] for the shipped rules).
    pub mutant: Mutant,
}

impl Rules {
    /// The rules as shipped.
    pub const REAL: Rules = Rules {
        mutant: Mutant::None,
    };
}

/// What an entry is to the contender deciding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A provably stale bid or side file: remove it, by its exact name.
    Remove,
    /// It keeps us out: a live or unjudgeable conflicting bid, or an entry
    /// that is not a bid. `older`: it is a bid of ours with an older token.
    Rival {
        /// A bid of ours with an older token.
        older: bool,
    },
    /// A live bid of our counting semaphore: it takes a slot.
    Peer {
        /// A bid with an older token.
        older: bool,
    },
    /// A bid we may hold beside (both shared).
    Compatible,
    /// An older waiter's queue marker that has not lost its turn: we let it
    /// bid first.
    Ahead,
    /// Nothing to us: temporaries, artefacts, younger or expired markers.
    Ignore,
}

/// Two contenders of one folder disagree on the number of slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotsMismatch {
    /// The slot count recorded in their bid.
    pub theirs: u32,
}

/// What an entry is to `me`.
///
/// # Errors
///
/// [`SlotsMismatch`] for a live bid made with another slot count.
#[inline]
pub fn role(me: &Me, e: &Entry, rules: &Rules) -> Result<Role, SlotsMismatch> {
    let gone = matches!(
        (e.judged, rules.mutant),
        (Judged::Stale, _) | (Judged::Unjudgeable, Mutant::UnjudgeableIsDead)
    );
    Ok(match e.class {
        Class::Temp | Class::Marker { .. } if gone => Role::Remove,
        Class::Temp | Class::Artefact => Role::Ignore,
        Class::Marker { key } => {
            let expired = e.expired && rules.mutant != Mutant::MarkersNeverExpire;
            if key < me.age && !expired {
                Role::Ahead
            } else {
                Role::Ignore
            }
        }
        Class::Unreadable if rules.mutant == Mutant::RemoveUnreadable => Role::Remove,
        // Never removed: deleting what we cannot read is how two holders
        // happen (a 1.0.2 bid seen half-written).
        Class::Unreadable | Class::NotABid => Role::Rival { older: false },
        Class::Bid { .. } if gone => Role::Remove,
        Class::Bid {
            key,
            mode,
            slots,
            legacy,
            queued,
        } => {
            let older = match (key, rules.mutant) {
                (_, Mutant::SymmetricWithdraw) => false,
                (Some(k), Mutant::MarkerOnlyPrecedence) => k < me.token && queued,
                (Some(k), _) => k < me.token,
                (None, _) => false,
            };
            match relation(me, mode, slots, legacy, rules)? {
                Relation::Conflicts => Role::Rival { older },
                Relation::Peer => Role::Peer { older },
                Relation::Compatible => Role::Compatible,
            }
        }
    })
}

enum Relation {
    Conflicts,
    Compatible,
    Peer,
}

#[inline]
fn relation(
    me: &Me,
    mode: Mode,
    slots: u32,
    legacy: bool,
    rules: &Rules,
) -> Result<Relation, SlotsMismatch> {
    if rules.mutant == Mutant::SharedIgnoresExclusive && me.mode == Mode::Shared {
        return Ok(Relation::Compatible);
    }
    if legacy {
        // 1.0.2 bids know no modes: exclusive.
        return Ok(Relation::Conflicts);
    }
    if me.slots > 1 || slots > 1 {
        if slots != me.slots {
            return Err(SlotsMismatch { theirs: slots });
        }
        return Ok(Relation::Peer);
    }
    if me.mode == Mode::Shared && mode == Mode::Shared {
        Ok(Relation::Compatible)
    } else {
        Ok(Relation::Conflicts)
    }
}

/// The roles of a whole listing, summed up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Entries that keep us out ([`Role::Rival`]).
    pub rivals: usize,
    /// Of which bids with an older token.
    pub older_rivals: usize,
    /// Bids of our semaphore ([`Role::Peer`]).
    pub peers: usize,
    /// Of which with an older token.
    pub older_peers: usize,
    /// Older waiters' markers that keep their turn ([`Role::Ahead`]).
    pub ahead: usize,
}

impl Tally {
    /// Sums up roles (entries to remove count for nothing: they are gone).
    pub fn of(roles: impl IntoIterator<Item = Role>) -> Tally {
        let mut t = Tally::default();
        for r in roles {
            t.add(r);
        }
        t
    }

    /// Counts one more role (the model checker sums a listing entry by
    /// entry, as it reads them).
    #[inline]
    pub fn add(&mut self, r: Role) {
        match r {
            Role::Rival { older } => {
                self.rivals += 1;
                self.older_rivals += usize::from(older);
            }
            Role::Peer { older } => {
                self.peers += 1;
                self.older_peers += usize::from(older);
            }
            Role::Ahead => self.ahead += 1,
            Role::Remove | Role::Compatible | Role::Ignore => {}
        }
    }

    /// We may not enter: a conflicting entry, or every slot taken by others
    /// (our own bid takes one too).
    #[inline]
    pub fn blocked(&self, me: &Me, rules: &Rules) -> bool {
        let full = if rules.mutant == Mutant::SemaphoreForgetsOwnBid {
            self.peers > me.slots as usize
        } else {
            self.peers >= me.slots as usize
        };
        self.rivals > 0 || (me.slots > 1 && full)
    }

    /// We step back before older contenders: an older conflicting bid, or at
    /// least N older bids of our semaphore, so we cannot be among the first
    /// N in the age order. The order is total, so of any set of bidders the
    /// oldest never steps back: no livelock.
    #[inline]
    pub fn must_step_back(&self, me: &Me) -> bool {
        self.older_rivals > 0 || (me.slots > 1 && self.older_peers >= me.slots as usize)
    }
}

/// The decision after step 10 (the check before bidding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AfterCheck {
    /// Publish our queue marker (waiters that meet contention queue up).
    pub join_queue: bool,
    /// Bid, wait, or report the lock busy.
    pub next: Next10,
}

/// What to do after step 10.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Next10 {
    /// One attempt, and the lock is held: give up now.
    Busy,
    /// Wait: an older waiter bids first, or an older bid would make us step
    /// back anyway.
    Defer,
    /// Step 20: publish a bid.
    Bid,
}

/// Step 10: bid, defer, or report the lock busy. A courtesy: no safety rests
/// on it (the step-30 listing decides), it only saves bids.
#[inline]
pub fn after_check(me: &Me, t: &Tally, rules: &Rules) -> AfterCheck {
    let blocked = t.blocked(me, rules);
    let contended = blocked || t.ahead > 0;
    if !me.waiting {
        // A single attempt takes a free lock even if waiters are queued
        // (as `flock -n` does); it never queues.
        let next = if blocked { Next10::Busy } else { Next10::Bid };
        return AfterCheck {
            join_queue: false,
            next,
        };
    }
    // Defer to an older waiter, to an older bid we would step back before
    // anyway, or to a held lock we may not sit on with a bid any longer.
    let next = if t.ahead > 0 || t.must_step_back(me) || (blocked && !me.may_keep) {
        Next10::Defer
    } else {
        Next10::Bid
    };
    AfterCheck {
        join_queue: contended,
        next,
    }
}

/// What to do after step 30 (the check after bidding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Next30 {
    /// Step 50: the lock is ours.
    Enter,
    /// First in line: keep the bid and wait for the rivals to go.
    Keep,
    /// Step 40: withdraw the bid.
    Withdraw,
    /// Our own bid is gone (deleted by hand, or the folder replaced): never
    /// enter without it; bid again later.
    Lost,
}

/// Step 30: the listing that decides. It began after our bid was published,
/// so it shows every bid published before it; we enter only if it shows no
/// rival (and, for a semaphore, a free slot).
#[inline]
pub fn after_bid(me: &Me, own_present: bool, t: &Tally, rules: &Rules) -> Next30 {
    if !own_present {
        return Next30::Lost;
    }
    if !t.blocked(me, rules) {
        return Next30::Enter;
    }
    let step_back = t.must_step_back(me);
    if rules.mutant == Mutant::LowestEntersAtOnce && me.waiting && !step_back {
        return Next30::Enter;
    }
    if !me.waiting || step_back || !me.may_keep || rules.mutant == Mutant::SymmetricWithdraw {
        Next30::Withdraw
    } else {
        Next30::Keep
    }
}

/// Whether a new blocking acquisition would have to wait: what `status`
/// reports. A newcomer is the youngest of all, so every live marker is
/// ahead of it.
#[inline]
pub fn newcomer_waits(t_for_newcomer: &Tally, me: &Me, rules: &Rules) -> bool {
    t_for_newcomer.blocked(me, rules) || after_check(me, t_for_newcomer, rules).next != Next10::Bid
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me(age: Key) -> Me {
        Me {
            age,
            token: age,
            mode: Mode::Exclusive,
            slots: 1,
            waiting: true,
            may_keep: true,
        }
    }

    fn bid(key: Option<Key>, judged: Judged) -> Entry {
        Entry {
            class: Class::Bid {
                key,
                mode: Mode::Exclusive,
                slots: 1,
                legacy: key.is_none(),
                queued: false,
            },
            judged,
            expired: false,
        }
    }

    fn marker(key: Key, expired: bool) -> Entry {
        Entry {
            class: Class::Marker { key },
            judged: Judged::Live,
            expired,
        }
    }

    fn tally(me: &Me, es: &[Entry]) -> Tally {
        Tally::of(es.iter().map(|e| role(me, e, &Rules::REAL).unwrap()))
    }

    #[test]
    fn stale_entries_are_removed_and_unreadable_ones_never() {
        let m = me(10);
        let r = |e: Entry| role(&m, &e, &Rules::REAL).unwrap();
        assert_eq!(r(bid(Some(5), Judged::Stale)), Role::Remove);
        assert_eq!(
            r(bid(Some(5), Judged::Unjudgeable)),
            Role::Rival { older: true }
        );
        let unreadable = Entry {
            class: Class::Unreadable,
            judged: Judged::Live,
            expired: false,
        };
        assert_eq!(r(unreadable), Role::Rival { older: false });
        let mutant = Rules {
            mutant: Mutant::RemoveUnreadable,
        };
        assert_eq!(role(&m, &unreadable, &mutant), Ok(Role::Remove));
        let artefact = Entry {
            class: Class::Artefact,
            judged: Judged::Unjudgeable,
            expired: false,
        };
        assert_eq!(r(artefact), Role::Ignore);
    }

    #[test]
    fn markers_order_waiters_until_they_lose_their_turn() {
        let m = me(10);
        let r = |e: Entry| role(&m, &e, &Rules::REAL).unwrap();
        assert_eq!(r(marker(5, false)), Role::Ahead);
        assert_eq!(r(marker(15, false)), Role::Ignore);
        assert_eq!(r(marker(5, true)), Role::Ignore, "expired: skipped");
        let stuck = Rules {
            mutant: Mutant::MarkersNeverExpire,
        };
        assert_eq!(role(&m, &marker(5, true), &stuck), Ok(Role::Ahead));
        let t = tally(&m, &[marker(5, false)]);
        assert_eq!(after_check(&m, &t, &Rules::REAL).next, Next10::Defer);
        let t = tally(&m, &[marker(5, true)]);
        assert_eq!(after_check(&m, &t, &Rules::REAL).next, Next10::Bid);
    }

    #[test]
    fn step_30_keeps_only_before_younger_rivals_and_within_the_bound() {
        let mut m = me(10);
        let t = tally(&m, &[bid(Some(20), Judged::Live)]);
        assert_eq!(after_bid(&m, true, &t, &Rules::REAL), Next30::Keep);
        m.may_keep = false;
        assert_eq!(after_bid(&m, true, &t, &Rules::REAL), Next30::Withdraw);
        assert_eq!(
            after_check(&m, &t, &Rules::REAL).next,
            Next10::Defer,
            "past the bound, no new bid into the held lock"
        );
        m.may_keep = true;
        let t = tally(&m, &[bid(Some(5), Judged::Live)]);
        assert_eq!(after_bid(&m, true, &t, &Rules::REAL), Next30::Withdraw);
        let t = tally(&m, &[]);
        assert_eq!(after_bid(&m, true, &t, &Rules::REAL), Next30::Enter);
        assert_eq!(after_bid(&m, false, &t, &Rules::REAL), Next30::Lost);
        m.waiting = false;
        let t = tally(&m, &[bid(Some(20), Judged::Live)]);
        assert_eq!(after_bid(&m, true, &t, &Rules::REAL), Next30::Withdraw);
    }

    #[test]
    fn modes_and_slots() {
        let mut reader = me(10);
        reader.mode = Mode::Shared;
        let shared = Entry {
            class: Class::Bid {
                key: Some(5),
                mode: Mode::Shared,
                slots: 1,
                legacy: false,
                queued: false,
            },
            judged: Judged::Live,
            expired: false,
        };
        assert_eq!(role(&reader, &shared, &Rules::REAL), Ok(Role::Compatible));
        assert_eq!(
            role(&reader, &bid(None, Judged::Live), &Rules::REAL),
            Ok(Role::Rival { older: false }),
            "1.x bids are exclusive"
        );
        let mut sem = me(10);
        sem.slots = 2;
        let peer = Entry {
            class: Class::Bid {
                key: Some(5),
                mode: Mode::Exclusive,
                slots: 2,
                legacy: false,
                queued: false,
            },
            judged: Judged::Live,
            expired: false,
        };
        assert_eq!(
            role(&sem, &peer, &Rules::REAL),
            Ok(Role::Peer { older: true })
        );
        let t = tally(&sem, &[peer]);
        assert!(!t.blocked(&sem, &Rules::REAL));
        let t = tally(&sem, &[peer, peer]);
        assert!(t.blocked(&sem, &Rules::REAL));
        assert_eq!(
            role(&sem, &bid(Some(5), Judged::Live), &Rules::REAL),
            Err(SlotsMismatch { theirs: 1 })
        );
    }

    #[test]
    fn single_attempts_never_queue() {
        let mut m = me(10);
        m.waiting = false;
        let t = tally(&m, &[marker(5, false)]);
        let d = after_check(&m, &t, &Rules::REAL);
        assert_eq!(d.next, Next10::Bid);
        assert!(!d.join_queue);
        let t = tally(&m, &[bid(Some(5), Judged::Live)]);
        assert_eq!(after_check(&m, &t, &Rules::REAL).next, Next10::Busy);
    }
}
