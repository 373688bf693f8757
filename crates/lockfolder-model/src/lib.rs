//! Exhaustive model check of the lockfolder protocol (issue 6).
//!
//! [`model`] is the protocol of `crates/lockfolder/src/protocol.rs` and
//! `wait.rs` as a state machine; [`check`] explores every reachable state and
//! answers: never two holders? never wedged? any livelock? [`configs`] names
//! the configurations CI checks. `docs/model.md` explains the mapping, the
//! abstractions and the bounds.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod check;
pub mod configs;
pub mod model;

pub use check::{check, Checks, Report};
pub use model::{Config, Flavor, Mode, Mutant, Reader};
