//! The JSON content of a bid, as written and as read.
//!
//! The format is specified in `docs/protocol.md` §3; this module is the one
//! place that reads or writes it. A bid keeps the two keys of lockfolder
//! 1.0.2 (`PID`, `CREATED`) so that 1.0.2 processes sharing the folder can
//! read and judge our bids; everything a reader needs to judge its owner is
//! in the `owner` object, tagged with its platform, so a reader on another
//! platform knows it cannot judge it instead of misreading it.

use crate::identity::{Claim, Owner, Unjudgeable};
use serde::{Deserialize, Serialize};

/// Version written in the `"lockfolder"` key of every bid we publish.
pub const FORMAT_VERSION: u32 = 3;
/// Bids larger than this are not read: they are reported as not-a-bid.
pub const MAX_BID_BYTES: u64 = 64 * 1024;
/// Labels longer than this are refused when bidding.
pub const MAX_LABEL_BYTES: usize = 4096;

/// Lock mode recorded in a bid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Conflicts with every other bid. Bids without a mode (1.0.2) are
    /// exclusive, and so is a mode this build does not know.
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

/// The content of a bid.
///
/// Every field but `PID` and `CREATED` is optional on read: a bid with just
/// those two is a 1.0.2 bid. Unknown keys are ignored so later versions can
/// add fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BidRecord {
    /// PID of the process the bid belongs to (1.0.2 key).
    pub pid: u32,
    /// Whole Unix seconds of that process's start, as psutil computes it
    /// (1.0.2 key).
    pub created: i64,
    /// Format version; absent in 1.0.2 bids.
    pub version: Option<u32>,
    /// Host name, for people (never used to judge).
    pub host: Option<String>,
    /// Who the owner is, in its platform's terms.
    pub owner: Option<Owner>,
    /// Set when the bid had an `owner` this build cannot read (another
    /// platform, a later format): the bid is then unjudgeable.
    pub unreadable_owner: Option<String>,
    /// A process group whose members keep the bid alive after its owner has
    /// exited (`lockfolder run`: the command's background children).
    pub group: Option<u32>,
    /// When the bid was published, Unix milliseconds.
    pub published_ms: Option<u64>,
    /// Exclusive or shared (an unknown mode reads as exclusive).
    pub mode: Option<Mode>,
    /// Number of slots of a counting semaphore (1 for a plain lock).
    pub slots: Option<u32>,
    /// Free text from the user (`--label`).
    pub label: Option<String>,
    /// Command line of the process holding the lock, when known.
    pub command: Option<String>,
    /// The owner renews the bid (its modification time) within this many
    /// milliseconds; once it has not, anyone may remove it.
    pub lease_ms: Option<u64>,
    /// The filesystem the owner accepted by an explicit opt-in (it is not
    /// one lockfolder has evidence for).
    pub allowed_fs: Option<String>,
}

/// The on-disk shape: the same fields, with the owner kept raw until we
/// know whether this build can read it.
#[derive(Serialize, Deserialize)]
struct Wire {
    #[serde(rename = "PID")]
    pid: u32,
    #[serde(rename = "CREATED")]
    created: i64,
    #[serde(
        rename = "lockfolder",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    version: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    group: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    published_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    slots: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lease_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allowed_fs: Option<String>,
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

    /// Who a reader must judge, and by which rules.
    pub(crate) fn claim(&self) -> Claim {
        if !self.is_native() {
            return Claim::Legacy {
                pid: self.pid,
                created: self.created,
            };
        }
        match (&self.owner, &self.unreadable_owner) {
            (Some(o), _) => Claim::Bid {
                pid: self.pid,
                owner: o.clone(),
                group: self.group,
            },
            (None, Some(what)) => Claim::Unreadable(match what.as_str() {
                os @ ("linux" | "windows" | "macos" | "freebsd") => {
                    Unjudgeable::UnknownFormat(format!("an owner for {os} this build cannot read"))
                }
                os => Unjudgeable::OtherPlatform(os.to_owned()),
            }),
            (None, None) => Claim::Unreadable(Unjudgeable::UnknownFormat(format!(
                "version {} without an owner",
                self.version.unwrap_or(0)
            ))),
        }
    }

    /// Serializes to the bytes written on disk.
    pub fn to_bytes(&self) -> Vec<u8> {
        let wire = Wire {
            pid: self.pid,
            created: self.created,
            version: self.version,
            host: self.host.clone(),
            owner: self
                .owner
                .as_ref()
                .and_then(|o| serde_json::to_value(o).ok()),
            group: self.group,
            published_ms: self.published_ms,
            mode: self.mode.map(|m| m.as_str().to_owned()),
            slots: self.slots,
            label: self.label.clone(),
            command: self.command.clone(),
            lease_ms: self.lease_ms,
            allowed_fs: self.allowed_fs.clone(),
        };
        // Serializing plain fields into a Vec cannot fail; an empty result
        // would be read as "not a bid", the safe side.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// Parses bid content. `None` means "not a bid" (junk, not an object,
    /// missing or mistyped `PID`/`CREATED`, duplicate keys, ...).
    pub fn parse(bytes: &[u8]) -> Option<BidRecord> {
        // serde would read `[pid, created]` into the struct too; a bid is an
        // object and nothing else.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return None;
        }
        let w: Wire = serde_json::from_slice(bytes).ok()?;
        if w.pid == 0 {
            return None;
        }
        let (owner, unreadable_owner) = match w.owner {
            None => (None, None),
            Some(v) => {
                let os = v
                    .get("os")
                    .and_then(|o| o.as_str())
                    .unwrap_or("an unnamed platform")
                    .to_owned();
                match serde_json::from_value::<Owner>(v) {
                    Ok(o) => (Some(o), None),
                    Err(_) => (None, Some(os)),
                }
            }
        };
        Some(BidRecord {
            pid: w.pid,
            created: w.created,
            version: w.version,
            host: w.host,
            owner,
            unreadable_owner,
            group: w.group,
            published_ms: w.published_ms,
            mode: w.mode.map(|m| match m.as_str() {
                "shared" => Mode::Shared,
                // Unknown modes conflict with everything.
                _ => Mode::Exclusive,
            }),
            slots: w.slots,
            label: w.label,
            command: w.command,
            lease_ms: w.lease_ms,
            allowed_fs: w.allowed_fs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{LinuxOwner, WindowsOwner};

    fn linux() -> Owner {
        Owner::Linux(LinuxOwner {
            boot_id: "0f6a0e2c-8e7d-4c1e-9a55-2b8c6e3f1d20".into(),
            machine_id: None,
            boot_time: 1_700_000_000,
            pid_ns: 4026531836,
            start_ticks: 932112,
            clk_tck: 100,
            tick_slack: false,
        })
    }

    #[test]
    fn legacy_and_native_parse() {
        let legacy = BidRecord::parse(br#"{"PID": 12, "CREATED": 1700000000}"#).unwrap();
        assert!(!legacy.is_native());
        assert_eq!(legacy.mode(), Mode::Exclusive);
        assert!(matches!(legacy.claim(), Claim::Legacy { pid: 12, .. }));
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
            owner: Some(linux()),
            label: Some("nightly \u{1F512}".into()),
            mode: Some(Mode::Shared),
            group: Some(5),
            ..Default::default()
        };
        let back = BidRecord::parse(&native.to_bytes()).unwrap();
        assert_eq!(back, native);
        assert!(matches!(
            back.claim(),
            Claim::Bid {
                pid: 5,
                group: Some(5),
                ..
            }
        ));
        let windows = BidRecord {
            owner: Some(Owner::Windows(WindowsOwner {
                machine_guid: "g".into(),
                created: 1,
            })),
            ..native
        };
        assert_eq!(BidRecord::parse(&windows.to_bytes()).unwrap(), windows);
    }

    #[test]
    fn unknown_owners_and_modes_fail_closed() {
        let other =
            br#"{"PID": 3, "CREATED": 4, "lockfolder": 3, "owner": {"os": "plan9", "x": 1}}"#;
        let rec = BidRecord::parse(other).unwrap();
        assert_eq!(
            rec.claim(),
            Claim::Unreadable(Unjudgeable::OtherPlatform("plan9".into()))
        );
        let broken = br#"{"PID": 3, "CREATED": 4, "lockfolder": 3, "owner": {"os": "linux"}}"#;
        assert!(matches!(
            BidRecord::parse(broken).unwrap().claim(),
            Claim::Unreadable(Unjudgeable::UnknownFormat(_))
        ));
        let v2 = br#"{"PID": 3, "CREATED": 4, "lockfolder": 2, "host": "h", "future": [1]}"#;
        assert!(matches!(
            BidRecord::parse(v2).unwrap().claim(),
            Claim::Unreadable(Unjudgeable::UnknownFormat(_))
        ));
        let mode = br#"{"PID": 3, "CREATED": 4, "lockfolder": 9, "mode": "upgradable"}"#;
        assert_eq!(BidRecord::parse(mode).unwrap().mode(), Mode::Exclusive);
    }
}
