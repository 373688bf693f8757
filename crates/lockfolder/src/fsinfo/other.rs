//! Platforms whose filesystem identification is not written yet: unknown,
//! which is never treated as local.

use super::Filesystem;

pub(crate) fn identify<F>(_dir: &F, _path: &std::path::Path) -> Filesystem {
    Filesystem::unknown("unknown")
}
