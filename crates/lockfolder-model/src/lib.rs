//! Exhaustive model check of the lockfolder protocol (issue 6).
//!
//! [`model`] is the step sequence of `crates/lockfolder/src/protocol.rs` and
//! `wait.rs` as a state machine whose every decision is made by the core's
//! own rules (`lockfolder::decide`, public with the core's `model` feature);
//! [`check`] explores every reachable state and answers: never two holders?
//! never held back by a gone or frozen owner's queue marker? any livelock?
//! [`configs`] names the configurations CI checks. `docs/model.md` explains
//! the mapping, the abstractions and the bounds.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod check;
pub mod configs;
pub mod model;

pub use check::{check, Checks, Report};
pub use lockfolder::decide::{Mutant, Rules};
pub use lockfolder::Mode;
pub use model::{Config, Flavor, Listings, Publish, Timing, World};
