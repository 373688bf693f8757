//! The platform seam: everything that talks to the operating system about
//! processes, signals, pipes and terminals lives behind this module, so the
//! rest of the CLI carries no `cfg`.
//!
//! `unix.rs` serves Linux, macOS and FreeBSD (Linux-only calls such as
//! `pidfd_open` sit inside `cfg(target_os = "linux")` there, each with a
//! portable fallback). `windows.rs` has the same functions; what has no
//! Windows meaning (process groups, a fencing token in the environment) it
//! refuses by name through [`unsupported`]. Other platforms are refused at
//! compile time with a clear message rather than half-working.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::*;

#[cfg(not(any(unix, windows)))]
compile_error!("the lockfolder command supports Unix (Linux, macOS, FreeBSD) and Windows only");
