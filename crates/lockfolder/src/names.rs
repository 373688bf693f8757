//! Names in a lock folder: tokens, bid names and side-file names.
//!
//! Two rules shape everything here (`docs/protocol.md` §1):
//!
//! * a bid's name is `<token>.json` where the token is a UUID used once, so a
//!   stale bid can be removed by its own name without any risk of removing a
//!   newer bid that happens to share it;
//! * a side file (a bid being written, or a waiter's place in the queue)
//!   carries its writer's identity in its name, so that one left behind by a
//!   dead writer can be judged without reading it.

use crate::identity::OwnerKey;
use std::fmt;

const SIDE_PREFIX: &str = ".lockfolder-";
const TEMP_SUFFIX: &str = ".tmp";
const QUEUE_SUFFIX: &str = ".wait";
const FENCE_PREFIX: &str = ".lockfolder-fence-";

/// The name of the fence file of token `n`.
pub(crate) fn fence_name(n: u64) -> String {
    format!("{FENCE_PREFIX}{n}")
}

/// A bid's token: the UUID in its file name.
///
/// Our tokens are UUIDv7 whose time field is the moment the contender
/// *started waiting*, so ordering tokens orders contenders by age (see
/// `docs/safety.md`, "tie-break"). Tokens of other writers (1.0.2 uses UUIDv4)
/// parse too, but only bids in our own format take part in the ordering.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub [u8; 16]);

impl Token {
    /// A fresh token for a contender that started waiting at `unix_nanos`.
    ///
    /// The 48-bit millisecond field and the 12-bit sub-millisecond fraction
    /// (RFC 9562, method 3) carry the age; the remaining 62 bits are random,
    /// which is what makes each bid's name unique.
    pub fn new(unix_nanos: u128) -> Token {
        let millis = (unix_nanos / 1_000_000) as u64;
        let sub_ms = ((unix_nanos % 1_000_000) * 4096 / 1_000_000) as u16;
        let mut random = [0u8; 10];
        crate::liveness::random_bytes(&mut random);
        random[0] = (sub_ms >> 8) as u8 & 0x0f;
        random[1] = sub_ms as u8;
        let uuid = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
        Token(*uuid.as_bytes())
    }

    /// The same age with new random bits: a new bid name for the same waiter.
    pub fn renew(&self) -> Token {
        let mut t = *self;
        let mut random = [0u8; 8];
        crate::liveness::random_bytes(&mut random);
        t.0[8..].copy_from_slice(&random);
        t.0[8] = (t.0[8] & 0x3f) | 0x80; // keep the RFC 9562 variant bits
        t
    }

    /// Parses a canonical lowercase UUID (36 characters).
    pub fn parse(s: &str) -> Option<Token> {
        if s.len() != 36 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let u = uuid::Uuid::try_parse(s).ok()?;
        // try_parse also accepts other shapes; insist on the hyphenated one
        // so that one token has exactly one file name.
        if u.hyphenated().to_string() != s {
            return None;
        }
        Some(Token(*u.as_bytes()))
    }

    /// Milliseconds since the Unix epoch when this contender started waiting
    /// (meaningful for our own UUIDv7 tokens only).
    pub fn waiting_since_ms(&self) -> Option<u64> {
        if self.0[6] >> 4 != 7 {
            return None;
        }
        let mut b = [0u8; 8];
        b[2..].copy_from_slice(&self.0[..6]);
        Some(u64::from_be_bytes(b))
    }

    /// The part of the token that records the contender's age (time and
    /// sub-millisecond fraction): equal for every bid of one waiter and for
    /// its queue marker.
    pub fn age(&self) -> Age {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.0[..8]);
        Age(a)
    }

    /// The bid file name: `<token>.json`.
    pub fn bid_name(&self) -> String {
        format!("{self}.json")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        uuid::Uuid::from_bytes(self.0).hyphenated().fmt(f)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({self})")
    }
}

/// When a contender started waiting, as the first 8 bytes of its tokens.
/// Ages compare in time order; two contenders that started in the same
/// 1/4096 ms compare by their random bits, which still gives a total order
/// between distinct tokens (see [`Token`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Age(pub [u8; 8]);

/// What a directory entry's name says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NameKind {
    /// `<uuid>.json`: a bid, if its content agrees.
    Bid(Token),
    /// `.lockfolder-...tmp|.wait`: a bid being written or a queue marker.
    Side(SideName),
    /// A name a filesystem gives a file that was deleted while open
    /// (`.nfsXXXX`, `.fuse_hiddenXXXX`): it is gone from the protocol's
    /// point of view, and its filesystem removes it once the file is closed.
    Artefact,
    /// `.lockfolder-fence-<N>`: the fencing token of the holder that made
    /// it; never a rival.
    Fence(u64),
    /// Anything else, including names that are not UTF-8.
    Other,
}

/// Classifies an entry by its name alone.
pub(crate) fn classify_name(name: &[u8]) -> NameKind {
    if is_artefact(name) {
        return NameKind::Artefact;
    }
    let Ok(name) = std::str::from_utf8(name) else {
        return NameKind::Other;
    };
    if let Some(n) = name.strip_prefix(FENCE_PREFIX).and_then(parse_decimal) {
        return NameKind::Fence(n);
    }
    if let Some(stem) = name.strip_suffix(".json") {
        return match Token::parse(stem) {
            Some(t) => NameKind::Bid(t),
            None => NameKind::Other,
        };
    }
    match SideName::parse(name) {
        Some(s) => NameKind::Side(s),
        None => NameKind::Other,
    }
}

/// The exact shapes of the names the Linux NFS client (`.nfs` + 24 hex
/// digits: file id and a counter) and libfuse (`.fuse_hidden` + 16 hex
/// digits) give to a file deleted while it is still open. Neither can be a
/// bid (bids end in `.json`): such a file was a bid *that has been
/// deleted*, so it must never block the lock, and it is never ours to
/// remove (its filesystem does that when the last descriptor closes).
pub(crate) fn is_artefact(name: &[u8]) -> bool {
    let hex_tail =
        |rest: &[u8], n: usize| rest.len() == n && rest.iter().all(u8::is_ascii_hexdigit);
    if let Some(rest) = name.strip_prefix(b".nfs") {
        return hex_tail(rest, 24);
    }
    if let Some(rest) = name.strip_prefix(b".fuse_hidden") {
        return hex_tail(rest, 16);
    }
    false
}

/// The name of a side file: a temporary bid (`.tmp`) or a queue marker
/// (`.wait`).
///
/// `.lockfolder-<token>-<owner key>.tmp|.wait`: the owner key is the
/// writer's identity in the compact form of its platform (see
/// [`OwnerKey`]). The name does not end in `.json`, so lockfolder 1.0.2
/// ignores it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SideName {
    /// The token of the bid it will become, or the waiter's age token.
    pub token: Token,
    /// The writer's PID.
    pub pid: u32,
    /// The writer's identity.
    pub owner: OwnerKey,
    /// A queue marker (`.wait`) rather than a temporary bid (`.tmp`).
    pub queue: bool,
}

/// The part of a side file's name after its token: the same for every
/// temporary (or every marker) one process makes, so it can be made once.
pub(crate) fn side_tail(pid: u32, owner: &OwnerKey, queue: bool) -> String {
    format!(
        "-{pid}.{}{}",
        owner.encode(),
        if queue { QUEUE_SUFFIX } else { TEMP_SUFFIX }
    )
}

/// A side file's name from its token and [`side_tail`].
pub(crate) fn side_name(token: &Token, tail: &str) -> String {
    format!("{SIDE_PREFIX}{token}{tail}")
}

impl SideName {
    /// Formats the file name.
    pub fn file_name(&self) -> String {
        side_name(&self.token, &side_tail(self.pid, &self.owner, self.queue))
    }

    /// Parses a file name made by [`SideName::file_name`].
    pub fn parse(name: &str) -> Option<SideName> {
        let body = name.strip_prefix(SIDE_PREFIX)?;
        let (body, queue) = match body.strip_suffix(TEMP_SUFFIX) {
            Some(b) => (b, false),
            None => (body.strip_suffix(QUEUE_SUFFIX)?, true),
        };
        if body.len() < 38 || !body.is_char_boundary(36) {
            return None;
        }
        let (tok, rest) = body.split_at(36);
        let token = Token::parse(tok)?;
        let (pid, key) = rest.strip_prefix('-')?.split_once('.')?;
        let pid = u32::try_from(parse_decimal(pid)?).ok()?;
        Some(SideName {
            token,
            pid,
            owner: OwnerKey::decode(key)?,
            queue,
        })
    }
}

/// Strict decimal: digits only, no sign, no leading zeros (so that one number
/// has one spelling), fits in u64.
pub(crate) fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_orders_by_age_and_is_unique() {
        let a = Token::new(1_700_000_000_000_000_000);
        let b = Token::new(1_700_000_000_000_500_000);
        let c = Token::new(1_700_000_000_001_000_000);
        assert!(a < b && b < c, "{a} {b} {c}");
        assert!(a.age() < b.age() && b.age() < c.age());
        let a2 = a.renew();
        assert_ne!(a, a2);
        assert_eq!(a.age(), a2.age());
        assert_eq!(a.waiting_since_ms(), Some(1_700_000_000_000));
        assert_eq!(uuid::Uuid::from_bytes(a2.0).get_version_num(), 7);
        assert_eq!(
            uuid::Uuid::from_bytes(a2.0).get_variant(),
            uuid::Variant::RFC4122
        );
    }

    #[test]
    fn names_classify() {
        let t = Token::new(1);
        assert_eq!(classify_name(t.bid_name().as_bytes()), NameKind::Bid(t));
        assert_eq!(classify_name(b"x.json"), NameKind::Other);
        let upper = t.bid_name().to_uppercase().replace(".JSON", ".json");
        assert_eq!(classify_name(upper.as_bytes()), NameKind::Other);
        assert_eq!(classify_name(b"\xff\xfe.json"), NameKind::Other);
        let side = SideName {
            token: t,
            pid: 42,
            owner: OwnerKey::Linux {
                start_ticks: 7,
                pid_ns: 4026531836,
                boot_id: "0123456789abcdef0123456789abcdef".into(),
                boot_time: 1_700_000_000,
            },
            queue: false,
        };
        let name = side.file_name();
        assert!(!name.ends_with(".json"), "{name}");
        assert_eq!(classify_name(name.as_bytes()), NameKind::Side(side.clone()));
        let marker = SideName {
            queue: true,
            ..side
        };
        let name = marker.file_name();
        assert!(name.ends_with(".wait"));
        assert_eq!(classify_name(name.as_bytes()), NameKind::Side(marker));
        assert_eq!(
            classify_name(b".lockfolder-zz.tmp"),
            NameKind::Other,
            "malformed side names are not side files"
        );
        assert_eq!(
            classify_name(fence_name(42).as_bytes()),
            NameKind::Fence(42)
        );
        assert_eq!(classify_name(b".lockfolder-fence-042"), NameKind::Other);
    }

    #[test]
    fn filesystem_artefacts_are_recognised_exactly() {
        assert!(is_artefact(b".nfs000000000001f2a300000001"));
        assert!(is_artefact(b".fuse_hidden0000000a00000002"));
        assert_eq!(
            classify_name(b".fuse_hidden0000000a00000002"),
            NameKind::Artefact
        );
        for not in [
            &b".nfs"[..],
            b".nfs000000000001f2a30000000",
            b".nfs000000000001f2a3000000011",
            b".nfs00000000000zf2a300000001",
            b".fuse_hidden0000000a0000000",
            b"nfs000000000001f2a300000001",
            b".fuse_hidden0000000a00000002.json",
        ] {
            assert!(!is_artefact(not), "{:?}", String::from_utf8_lossy(not));
        }
    }
}
