//! The bid: its file name, its temporary name, and its JSON content.
//!
//! The format is specified in `docs/protocol.md`; this module is the one
//! place that reads or writes it. Two rules shape everything here:
//!
//! * a bid's name is `<token>.json` where the token is a UUID used once, so a
//!   stale bid can be removed by its own name without any risk of removing a
//!   newer bid that happens to share it;
//! * a bid keeps the two keys of lockfolder 1.0.2 (`PID`, `CREATED`) so that
//!   1.0.2 processes sharing the folder can read and judge our bids.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Version written in the `"lockfolder"` key of every bid we publish.
pub const FORMAT_VERSION: u32 = 2;
/// Bids larger than this are not read: they are reported as not-a-bid.
pub const MAX_BID_BYTES: u64 = 64 * 1024;
/// Labels longer than this are refused when bidding.
pub const MAX_LABEL_BYTES: usize = 4096;
const TEMP_PREFIX: &str = ".lockfolder-";
const TEMP_SUFFIX: &str = ".tmp";
const QUEUE_SUFFIX: &str = ".wait";

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
        crate::sys::random_bytes(&mut random);
        random[0] = (sub_ms >> 8) as u8 & 0x0f;
        random[1] = sub_ms as u8;
        let uuid = uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid();
        Token(*uuid.as_bytes())
    }

    /// The same age with new random bits: a new bid name for the same waiter.
    pub fn renew(&self) -> Token {
        let mut t = *self;
        let mut random = [0u8; 8];
        crate::sys::random_bytes(&mut random);
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
    pub fn age(&self) -> [u8; 8] {
        let mut a = [0u8; 8];
        a.copy_from_slice(&self.0[..8]);
        a
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

/// What a directory entry's name says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameKind {
    /// `<uuid>.json`: a bid, if its content agrees.
    Bid(Token),
    /// `.lockfolder-...tmp`: a bid being written; never a rival.
    Temp(TempName),
    /// `.lockfolder-...wait`: a contender's place in the queue; never a rival.
    Queue(TempName),
    /// Anything else, including names that are not UTF-8.
    Other,
}

/// Classifies an entry by its name alone.
pub fn classify_name(name: &[u8]) -> NameKind {
    let Ok(name) = std::str::from_utf8(name) else {
        return NameKind::Other;
    };
    if let Some(stem) = name.strip_suffix(".json") {
        return match Token::parse(stem) {
            Some(t) => NameKind::Bid(t),
            None => NameKind::Other,
        };
    }
    match TempName::parse(name) {
        Some(t) if t.queue => NameKind::Queue(t),
        Some(t) => NameKind::Temp(t),
        None => NameKind::Other,
    }
}

/// The name of a side file: a temporary bid (`.tmp`) or a queue marker
/// (`.wait`). The name carries its writer's identity so that one left behind
/// by a dead writer can be judged without reading it (a temporary may be
/// half-written; a queue marker is empty).
///
/// `.lockfolder-<token>-<pid>-<start_ticks>-<pid_ns>-<boot_id hex>.tmp|.wait`.
/// It does not end in `.json`, so 1.0.2 processes ignore it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempName {
    /// The token of the bid it will become.
    pub token: Token,
    /// The writer's PID.
    pub pid: u32,
    /// The writer's start time in clock ticks since boot.
    pub start_ticks: u64,
    /// The writer's PID namespace inode.
    pub pid_ns: u64,
    /// The writer's boot id, as 32 lowercase hex digits.
    pub boot_id: String,
    /// A queue marker (`.wait`) rather than a temporary bid (`.tmp`).
    pub queue: bool,
}

impl TempName {
    /// Formats the file name.
    pub fn file_name(&self) -> String {
        format!(
            "{TEMP_PREFIX}{}-{}-{}-{}-{}{}",
            self.token,
            self.pid,
            self.start_ticks,
            self.pid_ns,
            self.boot_id,
            if self.queue {
                QUEUE_SUFFIX
            } else {
                TEMP_SUFFIX
            }
        )
    }

    /// Parses a file name made by [`TempName::file_name`].
    pub fn parse(name: &str) -> Option<TempName> {
        let body = name.strip_prefix(TEMP_PREFIX)?;
        let (body, queue) = match body.strip_suffix(TEMP_SUFFIX) {
            Some(b) => (b, false),
            None => (body.strip_suffix(QUEUE_SUFFIX)?, true),
        };
        if body.len() < 37 || !body.is_char_boundary(36) {
            return None;
        }
        let (tok, rest) = body.split_at(36);
        let token = Token::parse(tok)?;
        let mut it = rest.strip_prefix('-')?.split('-');
        let pid = parse_decimal(it.next()?)?;
        let start_ticks = parse_decimal(it.next()?)?;
        let pid_ns = parse_decimal(it.next()?)?;
        let boot_id = it.next()?;
        if it.next().is_some()
            || boot_id.len() != 32
            || !boot_id
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return None;
        }
        Some(TempName {
            token,
            pid: u32::try_from(pid).ok()?,
            start_ticks,
            pid_ns,
            boot_id: boot_id.to_owned(),
            queue,
        })
    }
}

/// Strict decimal: digits only, no sign, no leading zeros (so that one number
/// has one spelling), fits in u64.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

/// Lock mode recorded in a bid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Conflicts with every other bid. Bids without a mode (1.0.2) are exclusive.
    #[default]
    Exclusive,
    /// Conflicts only with exclusive bids.
    Shared,
}

impl Mode {
    /// `exclusive` or `shared`, as written in bids.
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Exclusive => "exclusive",
            Mode::Shared => "shared",
        }
    }
}

/// The JSON content of a bid, as written and as read.
///
/// Every field but `PID` and `CREATED` is optional on read: a bid with just
/// those two is a 1.0.2 bid. Unknown keys are ignored so later versions can add
/// fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct BidRecord {
    /// PID of the process the bid belongs to (1.0.2 key).
    #[serde(rename = "PID")]
    pub pid: u32,
    /// Whole Unix seconds of that process's start, as psutil computes it
    /// (1.0.2 key).
    #[serde(rename = "CREATED")]
    pub created: i64,
    /// Format version; absent in 1.0.2 bids.
    #[serde(
        rename = "lockfolder",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub version: Option<u32>,
    /// Host name (`uname -n`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `/etc/machine-id`, where the host has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// `/proc/sys/kernel/random/boot_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// Boot time (`btime` of `/proc/stat`), whole Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_time: Option<u64>,
    /// Inode of `/proc/self/ns/pid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_ns: Option<u64>,
    /// Field 22 of `/proc/<pid>/stat`: start time in clock ticks since boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_ticks: Option<u64>,
    /// Clock ticks per second used for `start_ticks`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clk_tck: Option<u64>,
    /// When the bid was published, Unix milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_ms: Option<u64>,
    /// Exclusive or shared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Number of slots of a counting semaphore (1 for a plain lock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<u32>,
    /// Free text from the user (`--label`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Command line of the process holding the lock, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A process group whose members keep the bid alive after its owner has
    /// exited (`lockfolder run`: the command's background children).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pgid: Option<u32>,
}

impl BidRecord {
    /// Whether this is a bid in our own format (as opposed to a 1.0.2 bid).
    pub fn is_native(&self) -> bool {
        self.version.is_some()
    }

    /// The mode, defaulting to exclusive (1.0.2 bids know no modes).
    pub fn mode(&self) -> Mode {
        self.mode.unwrap_or_default()
    }

    /// The slot count, defaulting to 1.
    pub fn slots(&self) -> u32 {
        self.slots.unwrap_or(1)
    }

    /// Serializes to the bytes written on disk.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serializing a struct of plain fields into a Vec cannot fail.
        serde_json::to_vec(self).expect("bid serializes")
    }

    /// Parses bid content. `None` means "not a bid" (junk, not an object,
    /// missing or mistyped `PID`/`CREATED`, duplicate keys, ...).
    pub fn parse(bytes: &[u8]) -> Option<BidRecord> {
        // serde would read `[pid, created]` into the struct too; a bid is an
        // object and nothing else.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        let rec: BidRecord = serde_json::from_slice(bytes).ok()?;
        if rec.pid == 0 {
            return None;
        }
        Some(rec)
    }
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
        let a2 = a.renew();
        assert_ne!(a, a2);
        assert_eq!(a.waiting_since_ms(), a2.waiting_since_ms());
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
        let tn = TempName {
            token: t,
            pid: 42,
            start_ticks: 7,
            pid_ns: 4026531836,
            boot_id: "0123456789abcdef0123456789abcdef".into(),
            queue: false,
        };
        let name = tn.file_name();
        assert!(!name.ends_with(".json"));
        assert_eq!(classify_name(name.as_bytes()), NameKind::Temp(tn.clone()));
        let qn = TempName { queue: true, ..tn };
        let name = qn.file_name();
        assert!(name.ends_with(".wait"));
        assert_eq!(classify_name(name.as_bytes()), NameKind::Queue(qn));
        assert_eq!(
            classify_name(b".lockfolder-zz.tmp"),
            NameKind::Other,
            "malformed temp names are not temps"
        );
    }

    #[test]
    fn legacy_and_native_parse() {
        let legacy = BidRecord::parse(br#"{"PID": 12, "CREATED": 1700000000}"#).unwrap();
        assert!(!legacy.is_native());
        assert_eq!(legacy.mode(), Mode::Exclusive);
        assert!(BidRecord::parse(br#"{"PID": 12}"#).is_none());
        assert!(BidRecord::parse(br#"{"PID": "12", "CREATED": 1}"#).is_none());
        assert!(BidRecord::parse(br#"{"PID": 1, "PID": 2, "CREATED": 1}"#).is_none());
        assert!(BidRecord::parse(b"").is_none());
        assert!(BidRecord::parse(b"[1,2]").is_none());
        let native = BidRecord {
            pid: 5,
            created: 9,
            version: Some(FORMAT_VERSION),
            host: Some("h".into()),
            label: Some("nightly \u{1F512}".into()),
            ..Default::default()
        };
        let back = BidRecord::parse(&native.to_bytes()).unwrap();
        assert_eq!(back, native);
        let with_unknown = br#"{"PID": 3, "CREATED": 4, "lockfolder": 2, "future": [1]}"#;
        assert!(BidRecord::parse(with_unknown).unwrap().is_native());
    }
}
