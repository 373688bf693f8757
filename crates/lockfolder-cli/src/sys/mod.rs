//! The platform seam: everything that talks to the operating system about
//! processes, signals, pipes and terminals lives behind this module, so the
//! rest of the CLI carries no `cfg`.
//!
//! `unix.rs` serves Linux, macOS and FreeBSD (Linux-only calls such as
//! `pidfd_open` sit inside `cfg(target_os = "linux")` there, each with a
//! portable fallback). A `windows.rs` will join it when `lockfolder run` is
//! ported; until then other platforms are refused at compile time with a
//! clear message rather than half-working.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(not(unix))]
compile_error!("the lockfolder command supports Unix (Linux, macOS, FreeBSD) only for now");
