//! Kill storm harness (issue 6).
