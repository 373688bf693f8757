//! Kill storm against lockfolder (issue 6, part 2).
//!
//! `lockfolder-storm storm` starts N worker processes on one lock folder and
//! SIGKILLs them at random moments, and at chosen ones (the moment a bid
//! appears, the moment a holder's occupancy marker appears), starting
//! replacements, for a set time. Then it stops killing and checks:
//!
//! * no overlap: the critical section's occupancy marker never finds a live
//!   owner, and the read-modify-write counter never loses an update;
//! * no wedge: every surviving worker acquires within 1 s;
//! * no leftovers: once every worker has finished, the lock folder is empty
//!   without any final `clean()`: the protocol itself removed the stale bids
//!   and temporaries of killed workers.
//!
//! With `--cli PATH` the workers are `lockfolder run DIR -- lockfolder-storm
//! cs` loops and the killer kills launchers, commands, or both.
//! With `--dirs A,B` the lock folder is one folder seen through several
//! mounts (a network filesystem): workers alternate between the paths while
//! the detectors stay on a local folder. `lockfolder-storm freshness`
//! measures how often a listing through one mount misses an entry just
//! published through the other. `docs/storm.md` tells how to run it and what it measured.

#![forbid(unsafe_code)]

pub mod arena;
pub mod folder;
pub mod fresh;
pub mod procfs;
pub mod storm;
pub mod worker;
