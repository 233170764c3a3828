//! The key file, read and written by the library's [`feedkey::KeyRing`] (the servers read
//! the same file the same way), with its errors as the CLI reports them.

use std::path::Path;

use feedkey::{KeyRing, KeyRingError, TokenKey};

use crate::failure::Failure;

/// A key-file error as a failure naming the file; `doing` is "read" or "write".
fn failure(path: &Path, error: KeyRingError, doing: &str) -> Failure {
    match error {
        KeyRingError::Empty => Failure::failed(format!(
            "the key file {} holds no key (make one with `feedkey key add`)",
            path.display()
        )),
        KeyRingError::Io { source, .. } => Failure::failed(format!(
            "cannot {doing} the key file {}: {source}",
            path.display()
        )),
        other => Failure::failed(format!("{}: {other}", path.display())),
    }
}

/// The ring at `path`; a missing file is an empty ring only when `missing_ok`.
pub fn read(path: &Path, missing_ok: bool) -> Result<KeyRing, Failure> {
    if missing_ok && !path.exists() {
        return Ok(KeyRing::default());
    }
    KeyRing::read(path).map_err(|e| failure(path, e, "read"))
}

/// The current key and the previous ones.
pub fn keys(ring: &KeyRing, path: &Path) -> Result<(TokenKey, Vec<TokenKey>), Failure> {
    ring.keys().map_err(|e| failure(path, e, "read"))
}

/// Adds a new random key with the next version; returns the version.
pub fn add(ring: &mut KeyRing, path: &Path) -> Result<u32, Failure> {
    ring.add().map_err(|e| failure(path, e, "write"))
}

/// Writes the ring to `path`, whole.
pub fn write(ring: &KeyRing, path: &Path) -> Result<(), Failure> {
    ring.write(path).map_err(|e| failure(path, e, "write"))
}
