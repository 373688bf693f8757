//! Python binding (issue 5), being written.
