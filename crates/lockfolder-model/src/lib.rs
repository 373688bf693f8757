//! Model check of the lockfolder protocol (issue 6).
