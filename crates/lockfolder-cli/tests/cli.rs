//! Integration tests of the `lockfolder` binary: real processes, each with a deadline.
