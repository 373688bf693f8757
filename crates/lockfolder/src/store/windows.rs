//! The folder on Windows (being written: see docs/safety.md, platforms).
