//! The key file: the token keys, one a line, `VERSION:BASE64` of 32 bytes. A line
//! without a version is version 1 (the file the examples keep). The highest version is
//! the current key; the others are previous keys, still verifying the tokens hashed under
//! them until each is next used (and rehashed) or its version is retired.

use std::path::Path;

use base64::Engine as _;
use feedkey::TokenKey;

use crate::failure::Failure;

/// The keys of a key file, in the file's order.
#[derive(Debug, Default)]
pub struct KeyRing {
    lines: Vec<(u32, String)>,
}

impl KeyRing {
    /// Reads `path`; a missing file is an empty ring only when `missing_ok`.
    pub fn read(path: &Path, missing_ok: bool) -> Result<Self, Failure> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            Err(e) => {
                return Err(Failure::failed(format!(
                    "cannot read the key file {}: {e}",
                    path.display()
                )));
            }
        };
        let mut lines = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (version, material) = match line.split_once(':') {
                Some((version, material)) => {
                    let version = version.trim().parse::<u32>().map_err(|_| {
                        Failure::failed(format!(
                            "key file {} line {}: the version is not a number",
                            path.display(),
                            number + 1
                        ))
                    })?;
                    (version, material.trim())
                }
                None => (1, line),
            };
            // Checked now, so that a bad line is named.
            TokenKey::from_base64(version, material).map_err(|e| {
                Failure::failed(format!(
                    "key file {} line {}: {e}",
                    path.display(),
                    number + 1
                ))
            })?;
            if lines.iter().any(|(v, _)| *v == version) {
                return Err(Failure::failed(format!(
                    "key file {}: version {version} appears twice",
                    path.display()
                )));
            }
            lines.push((version, material.to_owned()));
        }
        Ok(Self { lines })
    }

    /// The versions, in the file's order.
    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.lines.iter().map(|(v, _)| *v)
    }

    /// The highest version, if any.
    pub fn current_version(&self) -> Option<u32> {
        self.versions().max()
    }

    /// The current key and the previous ones.
    pub fn keys(&self, path: &Path) -> Result<(TokenKey, Vec<TokenKey>), Failure> {
        let current = self.current_version().ok_or_else(|| {
            Failure::failed(format!(
                "the key file {} holds no key (make one with `feedkey key add`)",
                path.display()
            ))
        })?;
        let mut previous = Vec::new();
        let mut first = None;
        for (version, material) in &self.lines {
            let key = TokenKey::from_base64(*version, material)
                .map_err(|e| Failure::failed(format!("key file {}: {e}", path.display())))?;
            if *version == current {
                first = Some(key);
            } else {
                previous.push(key);
            }
        }
        let current = first.ok_or_else(|| Failure::failed("no current key"))?;
        Ok((current, previous))
    }

    /// Adds a new random key with the next version; returns the version.
    pub fn add(&mut self) -> Result<u32, Failure> {
        let version = self
            .current_version()
            .map_or(Some(1), |v| v.checked_add(1))
            .ok_or_else(|| Failure::failed("no version is left after the highest"))?;
        let mut material = [0u8; 32];
        getrandom::fill(&mut material)
            .map_err(|e| Failure::failed(format!("the random source failed: {e}")))?;
        let text = base64::engine::general_purpose::STANDARD.encode(material);
        material.fill(0);
        self.lines.push((version, text));
        Ok(version)
    }

    /// Removes a version; returns whether it was there.
    pub fn remove(&mut self, version: u32) -> bool {
        let before = self.lines.len();
        self.lines.retain(|(v, _)| *v != version);
        self.lines.len() != before
    }

    /// Writes the ring to `path` (readable by its owner only), replacing the file
    /// whole: a crash leaves the old file or the new one.
    pub fn write(&self, path: &Path) -> Result<(), Failure> {
        let mut text =
            String::from("# feedkey token keys: VERSION:BASE64, the highest is current\n");
        for (version, material) in &self.lines {
            text.push_str(&format!("{version}:{material}\n"));
        }
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".new");
        let temporary = std::path::PathBuf::from(temporary);
        let fail = |e: std::io::Error| {
            Failure::failed(format!("cannot write the key file {}: {e}", path.display()))
        };
        {
            use std::io::Write as _;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt as _;
                options.mode(0o600);
            }
            let mut file = options.open(&temporary).map_err(fail)?;
            file.write_all(text.as_bytes()).map_err(fail)?;
            file.sync_all().map_err(fail)?;
        }
        std::fs::rename(&temporary, path).map_err(fail)
    }
}
