//! Integration tests of the core crate, with real processes.
//!
//! This binary has its own harness (libtest-mimic): run with `LF_ROLE` set,
//! it is the child process that the multi-process tests start; run without,
//! it runs the tests. One binary keeps link time low and guarantees the child
//! is the same build as the test.

mod child;
mod contention;
mod folder;
mod hostile;
mod identity;
mod leases;
mod modes;
#[cfg(target_os = "linux")]
mod namespaces;
mod queue;
mod util;
mod waiting;

use libtest_mimic::{Arguments, Trial};

fn main() {
    if let Ok(role) = std::env::var("LF_ROLE") {
        std::process::exit(child::run(&role));
    }
    let args = Arguments::from_args();
    let mut trials: Vec<Trial> = Vec::new();
    // Linux namespaces (containers, time namespaces) exist only there.
    #[cfg(target_os = "linux")]
    let namespaces = namespaces::TESTS;
    #[cfg(not(target_os = "linux"))]
    let namespaces: &[util::TestFn] = &[];
    for (name, f) in contention::TESTS
        .iter()
        .chain(folder::TESTS)
        .chain(hostile::TESTS)
        .chain(identity::TESTS)
        .chain(leases::TESTS)
        .chain(modes::TESTS)
        .chain(namespaces)
        .chain(queue::TESTS)
        .chain(waiting::TESTS)
    {
        let f = *f;
        trials.push(Trial::test(*name, move || {
            f();
            Ok(())
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}
