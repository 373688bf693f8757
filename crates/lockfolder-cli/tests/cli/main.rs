//! Integration tests of the `lockfolder` binary: real processes, each with a
//! deadline, each in its own temporary folder. One test binary (several
//! modules) keeps link time low.

mod common;
mod groups;
mod input;
mod inspect;
mod leases;
mod modes;
mod pipes;
mod run;
mod signals;
mod terminal;
