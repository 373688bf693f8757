//! The folder itself: listings, reading an entry without trusting it,
//! publishing a bid without ever replacing an entry, removing by exact name.
//! One implementation per platform family, selected here; the rest of the
//! crate sees only [`Folder`].
//!
//! What the protocol needs from a store (`docs/safety.md`, property E):
//! a listing that begins after our own publish shows every entry published
//! before it; publishing never replaces an existing name; removal names the
//! exact entry.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::Folder;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::{verbatim_wide, Folder};

/// One name from a listing, with the type the directory reported for it.
pub(crate) struct RawEntry {
    pub name: Vec<u8>,
    pub kind: EntryType,
}

/// File types as far as the protocol cares. (Windows listings always say
/// what an entry is, and have no FIFOs or sockets.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(windows, allow(dead_code))]
pub(crate) enum EntryType {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    Device,
    /// The directory did not say (`DT_UNKNOWN`); `lstat` will.
    Unknown,
}

impl EntryType {
    pub fn describe(self) -> &'static str {
        match self {
            EntryType::File => "file",
            EntryType::Dir => "directory",
            EntryType::Symlink => "symlink",
            EntryType::Fifo => "FIFO",
            EntryType::Socket => "socket",
            EntryType::Device => "device",
            EntryType::Unknown => "unknown type",
        }
    }
}

/// What reading an entry gave.
pub(crate) enum Content {
    Bytes(Vec<u8>),
    NotRegular(EntryType),
    TooLarge(u64),
    Unreadable(std::io::Error),
    /// Deleted between the listing and the read.
    Vanished,
}
