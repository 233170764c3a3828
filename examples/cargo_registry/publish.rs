//! `cargo publish`'s upload: its framing, its metadata, and the index entry made from it.
//!
//! The body is a little-endian `u32` length, that many bytes of JSON metadata, another
//! `u32` length and the `.crate` file itself.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::crates::{valid_name, valid_version};

/// What is wrong with an upload.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the upload is cut short")]
    Truncated,
    #[error("the upload has bytes after the crate file")]
    TrailingBytes,
    #[error("the metadata is not valid: {0}")]
    Metadata(#[from] serde_json::Error),
    #[error("`{0}` is not a valid crate name")]
    Name(String),
    #[error("`{0}` is not a valid version")]
    Version(String),
}

/// The metadata cargo sends (the fields the index needs; the rest is ignored).
#[derive(Debug, Deserialize)]
pub struct Metadata {
    pub name: String,
    pub vers: String,
    #[serde(default)]
    deps: Vec<Dependency>,
    #[serde(default)]
    features: BTreeMap<String, Vec<String>>,
    links: Option<String>,
    rust_version: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Dependency {
    name: String,
    version_req: String,
    #[serde(default)]
    features: Vec<String>,
    #[serde(default)]
    optional: bool,
    #[serde(default = "yes")]
    default_features: bool,
    target: Option<String>,
    kind: Option<String>,
    registry: Option<String>,
    explicit_name_in_toml: Option<String>,
}

fn yes() -> bool {
    true
}

/// An upload, read and checked.
pub struct Upload<'a> {
    pub meta: Metadata,
    pub file: &'a [u8],
}

fn take_u32(body: &[u8]) -> Result<(usize, &[u8]), UploadError> {
    let (len, rest) = body
        .split_first_chunk::<4>()
        .ok_or(UploadError::Truncated)?;
    let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| UploadError::Truncated)?;
    Ok((len, rest))
}

fn take(body: &[u8]) -> Result<(&[u8], &[u8]), UploadError> {
    let (len, rest) = take_u32(body)?;
    rest.split_at_checked(len).ok_or(UploadError::Truncated)
}

/// Reads the framing and the metadata.
pub fn read(body: &[u8]) -> Result<Upload<'_>, UploadError> {
    let (json, rest) = take(body)?;
    let (file, rest) = take(rest)?;
    if !rest.is_empty() {
        return Err(UploadError::TrailingBytes);
    }
    let meta: Metadata = serde_json::from_slice(json)?;
    if !valid_name(&meta.name) {
        return Err(UploadError::Name(meta.name));
    }
    if !valid_version(&meta.vers) {
        return Err(UploadError::Version(meta.vers));
    }
    Ok(Upload { meta, file })
}

impl Upload<'_> {
    /// The index line for this version (format 2 when a feature uses `dep:` or `?/`).
    pub fn index_entry(&self) -> Value {
        let deps: Vec<Value> = self
            .meta
            .deps
            .iter()
            .map(|d| {
                // A renamed dependency is listed under its name in the manifest, with
                // the crate's real name as `package`.
                let (name, package) = match &d.explicit_name_in_toml {
                    Some(alias) => (alias.as_str(), Some(d.name.as_str())),
                    None => (d.name.as_str(), None),
                };
                json!({
                    "name": name,
                    "req": d.version_req,
                    "features": d.features,
                    "optional": d.optional,
                    "default_features": d.default_features,
                    "target": d.target,
                    "kind": d.kind.as_deref().unwrap_or("normal"),
                    "registry": d.registry,
                    "package": package,
                })
            })
            .collect();
        let (features2, features): (BTreeMap<_, _>, BTreeMap<_, _>) =
            self.meta.features.iter().partition(|(_, values)| {
                values
                    .iter()
                    .any(|v| v.starts_with("dep:") || v.contains("?/"))
            });
        let cksum: String = Sha256::digest(self.file)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        json!({
            "name": self.meta.name,
            "vers": self.meta.vers,
            "deps": deps,
            "cksum": cksum,
            "features": features,
            "features2": (!features2.is_empty()).then_some(&features2),
            "yanked": false,
            "links": self.meta.links,
            "rust_version": self.meta.rust_version,
            "v": if features2.is_empty() { 1 } else { 2 },
        })
    }
}
