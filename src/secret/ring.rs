//! The key file: every token key a server has, one a line, so that a key can be rotated
//! by adding a line and retired by removing one, and every tool (the servers, the admin
//! CLI) reads the same file the same way.
//!
//! The format: `VERSION:BASE64` of 32 bytes a line; a line without `VERSION:` is version
//! 1 (a file holding one bare key, as the first releases wrote it); blank lines and lines
//! starting with `#` are ignored. The highest version is the current key (new tokens are
//! hashed under it); the others are previous keys, which still verify the tokens hashed
//! under them until each is next used (and rehashed) or its version is retired.

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use super::key::TokenKey;

/// Why a key file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRingError {
    /// The file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// A line is not `VERSION:BASE64` of 32 bytes.
    #[error("key file line {line}: {reason}")]
    Line {
        /// The line's number, from 1.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two lines give one version.
    #[error("key file: version {0} appears twice")]
    DuplicateVersion(u32),
    /// The file holds no key.
    #[error("the key file holds no key")]
    Empty,
    /// No version is left after the highest.
    #[error("no key version is left after {0}")]
    NoVersionLeft(u32),
    /// The operating system's random source failed.
    #[error("the random source failed")]
    Entropy,
}

/// The token keys of a key file ([`KeyRing::read`]), in the file's order.
///
/// ```
/// use feedkey::KeyRing;
///
/// let mut ring = KeyRing::parse("1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n")?;
/// assert_eq!(ring.add()?, 2); // a new random key, now the current one
/// let (current, previous) = ring.keys()?;
/// assert_eq!(current.version(), 2);
/// assert_eq!(previous.iter().map(|k| k.version()).collect::<Vec<_>>(), [1]);
/// // Feedkey::builder(store, current).previous_keys(previous)
/// # Ok::<(), feedkey::KeyRingError>(())
/// ```
#[derive(Default, Clone)]
pub struct KeyRing {
    keys: Vec<(u32, Zeroizing<[u8; 32]>)>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("versions", &self.versions().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// The keys written in `text`.
    ///
    /// # Errors
    /// [`KeyRingError::Line`] naming the first bad line, or
    /// [`KeyRingError::DuplicateVersion`].
    pub fn parse(text: &str) -> Result<Self, KeyRingError> {
        let mut ring = Self::default();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason| KeyRingError::Line {
                line: index.saturating_add(1),
                reason,
            };
            let (version, material) = match line.split_once(':') {
                Some((version, material)) => (
                    version
                        .trim()
                        .parse::<u32>()
                        .map_err(|_| bad("the version is not a number"))?,
                    material.trim(),
                ),
                None => (1, line),
            };
            let material =
                decode(material).ok_or_else(|| bad("the key is not 32 bytes of base64"))?;
            if ring.keys.iter().any(|(v, _)| *v == version) {
                return Err(KeyRingError::DuplicateVersion(version));
            }
            ring.keys.push((version, material));
        }
        Ok(ring)
    }

    /// The keys of the file at `path`.
    ///
    /// # Errors
    /// [`KeyRingError::Io`] when it cannot be read, or as [`KeyRing::parse`].
    pub fn read(path: &Path) -> Result<Self, KeyRingError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| io(path, e))?);
        Self::parse(&text)
    }

    /// The keys of the file at `path`; when there is no such file, a new one holding one
    /// random key (version 1), written first (readable by its owner only). For a server
    /// that makes its key on first start.
    ///
    /// # Errors
    /// As [`KeyRing::read`] and [`KeyRing::write`].
    pub fn read_or_create(path: &Path) -> Result<Self, KeyRingError> {
        match std::fs::metadata(path) {
            Ok(_) => Self::read(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut ring = Self::default();
                ring.add()?;
                ring.write(path)?;
                Ok(ring)
            }
            Err(e) => Err(io(path, e)),
        }
    }

    /// The versions, in the file's order.
    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().map(|(v, _)| *v)
    }

    /// The highest version, if any: the current key's.
    pub fn current_version(&self) -> Option<u32> {
        self.versions().max()
    }

    /// The current key and the previous ones, for
    /// [`Feedkey::builder`](crate::Feedkey::builder) and
    /// [`FeedkeyBuilder::previous_keys`](crate::FeedkeyBuilder::previous_keys).
    ///
    /// # Errors
    /// [`KeyRingError::Empty`] when the ring holds no key.
    pub fn keys(&self) -> Result<(TokenKey, Vec<TokenKey>), KeyRingError> {
        let current = self.current_version().ok_or(KeyRingError::Empty)?;
        let mut previous = Vec::new();
        let mut first = None;
        for (version, material) in &self.keys {
            let key = TokenKey::new(*version, material);
            if *version == current {
                first = Some(key);
            } else {
                previous.push(key);
            }
        }
        let current = first.ok_or(KeyRingError::Empty)?;
        Ok((current, previous))
    }

    /// Adds a new random key with the next version, which becomes the current key;
    /// returns the version.
    ///
    /// # Errors
    /// [`KeyRingError::NoVersionLeft`], or [`KeyRingError::Entropy`].
    pub fn add(&mut self) -> Result<u32, KeyRingError> {
        let version = match self.current_version() {
            None => 1,
            Some(highest) => highest
                .checked_add(1)
                .ok_or(KeyRingError::NoVersionLeft(highest))?,
        };
        let mut material = Zeroizing::new([0u8; 32]);
        getrandom::fill(material.as_mut_slice()).map_err(|_| KeyRingError::Entropy)?;
        self.keys.push((version, material));
        Ok(version)
    }

    /// Removes a version; returns whether it was there.
    pub fn remove(&mut self, version: u32) -> bool {
        let before = self.keys.len();
        self.keys.retain(|(v, _)| *v != version);
        self.keys.len() != before
    }

    /// The file's text.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::from(
            "# feedkey token keys: VERSION:BASE64, the highest is current\n",
        ));
        for (version, material) in &self.keys {
            let encoded = Zeroizing::new(STANDARD.encode(material.as_slice()));
            text.push_str(&format!("{version}:"));
            text.push_str(&encoded);
            text.push('\n');
        }
        text
    }

    /// Writes the ring to `path`, readable by its owner only, replacing the file whole:
    /// a crash leaves the old file or the new one, never half of one.
    ///
    /// # Errors
    /// [`KeyRingError::Io`].
    pub fn write(&self, path: &Path) -> Result<(), KeyRingError> {
        use std::io::Write as _;
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".new");
        let temporary = std::path::PathBuf::from(temporary);
        let text = self.to_text();
        {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                options.mode(0o600);
            }
            let mut file = options.open(&temporary).map_err(|e| io(path, e))?;
            file.write_all(text.as_bytes()).map_err(|e| io(path, e))?;
            file.sync_all().map_err(|e| io(path, e))?;
        }
        std::fs::rename(&temporary, path).map_err(|e| io(path, e))
    }
}

fn io(path: &Path, source: std::io::Error) -> KeyRingError {
    KeyRingError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// 32 bytes from base64, standard or URL-safe, padded or not (as
/// [`TokenKey::from_base64`] takes them).
fn decode(text: &str) -> Option<Zeroizing<[u8; 32]>> {
    let cleaned: Zeroizing<String> = Zeroizing::new(
        text.trim_end_matches('=')
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect(),
    );
    let mut material = Zeroizing::new([0u8; 32]);
    match base64::engine::general_purpose::STANDARD_NO_PAD
        .decode_slice(cleaned.as_bytes(), material.as_mut_slice())
    {
        Ok(32) => Some(material),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const ONES: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

    #[test]
    fn the_key_file_table() {
        let cases: [(&str, Result<Vec<u32>, &str>); 9] = [
            ("", Ok(vec![])),
            (ONES, Ok(vec![1])),
            (
                &*format!("# a comment\n\n2:{ONES}\n1:{ONES}\n"),
                Ok(vec![2, 1]),
            ),
            (
                "1:AQEB",
                Err("key file line 1: the key is not 32 bytes of base64"),
            ),
            (
                &*format!("x:{ONES}"),
                Err("key file line 1: the version is not a number"),
            ),
            (
                &*format!("-1:{ONES}"),
                Err("key file line 1: the version is not a number"),
            ),
            (
                &*format!("1:{ONES}\n1:{ONES}"),
                Err("key file: version 1 appears twice"),
            ),
            (
                &*format!("1:{ONES}\n\n3:*{ONES}"),
                Err("key file line 3: the key is not 32 bytes of base64"),
            ),
            // URL-safe and unpadded, as TokenKey::from_base64 takes it.
            ("7:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE", Ok(vec![7])),
        ];
        for (text, want) in cases {
            let got = KeyRing::parse(text)
                .map(|r| r.versions().collect::<Vec<_>>())
                .map_err(|e| e.to_string());
            assert_eq!(got, want.map_err(str::to_owned), "{text:?}");
        }
    }

    #[test]
    fn the_highest_version_is_current_and_the_same_key_as_a_bare_line() {
        let ring = KeyRing::parse(&format!("1:{ONES}\n")).unwrap();
        let (current, previous) = ring.keys().unwrap();
        assert_eq!(current.version(), 1);
        assert!(previous.is_empty());
        let bare = TokenKey::from_base64(1, ONES).unwrap();
        assert_eq!(current.fingerprint(), bare.fingerprint());
        assert!(matches!(
            KeyRing::default().keys(),
            Err(KeyRingError::Empty)
        ));
    }

    #[test]
    fn a_written_ring_reads_back_the_same_keys() {
        let dir = std::env::temp_dir().join(format!("feedkey-ring-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token.key");
        let _ = std::fs::remove_file(&path);
        let mut ring = KeyRing::read_or_create(&path).unwrap();
        assert_eq!(ring.versions().collect::<Vec<_>>(), [1]);
        assert_eq!(ring.add().unwrap(), 2);
        ring.write(&path).unwrap();
        let back = KeyRing::read(&path).unwrap();
        assert_eq!(back.versions().collect::<Vec<_>>(), [1, 2]);
        let fingerprints = |r: &KeyRing| {
            let (c, p) = r.keys().unwrap();
            (
                c.fingerprint(),
                p.iter().map(TokenKey::fingerprint).collect::<Vec<_>>(),
            )
        };
        assert_eq!(fingerprints(&back), fingerprints(&ring));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(ring.remove(1));
        assert!(!ring.remove(1));
        assert_eq!(ring.keys().unwrap().0.version(), 2);
        // Debug shows versions, never key material.
        assert!(!format!("{back:?}").contains("AQEB"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
