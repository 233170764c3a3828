//! `npm publish`'s body: a packument holding the one new version, with the tarball as a
//! base64 attachment. Read and checked here before anything is stored: the names agree,
//! the attachment decodes to its stated length, and its SHA-512 is the `integrity` the
//! manifest states (npm sends SHA-512 and SHA-1; the SHA-1 `shasum` is older clients'
//! and is not kept, so everything served is verified).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sha2::{Digest, Sha512};

use crate::names::{valid_tag, valid_version};

/// What is wrong with a publish body (a 400, with this message).
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the body names `{0}`, not the package in the URL")]
    Name(String),
    #[error("publish exactly one version at a time")]
    Versions,
    #[error("`{0}` is not a valid version")]
    Version(String),
    #[error("the manifest of {0} does not name that package and version")]
    Manifest(String),
    #[error("publish exactly one tarball, named `{0}`")]
    Attachment(String),
    #[error("the tarball is not valid base64")]
    Base64,
    #[error("the tarball is {actual} bytes, not the {stated} stated")]
    Length { stated: u64, actual: usize },
    #[error("the tarball's sha512 is not the manifest's dist.integrity")]
    Integrity,
    #[error("dist-tags must name the version published, with valid tag names")]
    Tags,
}

/// A publish, read and checked.
#[derive(Debug)]
pub struct Upload {
    pub version: String,
    /// The version's manifest as stored: npm's, less `dist.tarball` (made when served)
    /// and `dist.shasum` (unverified).
    pub manifest: Value,
    pub tarball: Vec<u8>,
    /// The dist-tags to point at this version (`latest`, or `--tag`).
    pub tags: Vec<String>,
}

/// Whether a PUT body is a publish (it carries attachments) rather than an edit of the
/// packument (deprecate, unpublish of a version).
pub fn is_publish(body: &Value) -> bool {
    body.get("_attachments")
        .and_then(Value::as_object)
        .is_some_and(|a| !a.is_empty())
}

/// The `integrity` string of `bytes`: `sha512-<base64>`.
pub fn integrity(bytes: &[u8]) -> String {
    format!("sha512-{}", STANDARD.encode(Sha512::digest(bytes)))
}

/// Reads the publish of `name`.
pub fn read(name: &str, body: &Value) -> Result<Upload, UploadError> {
    let named = body.get("name").and_then(Value::as_str).unwrap_or("");
    if named != name {
        return Err(UploadError::Name(named.to_owned()));
    }
    let versions = body
        .get("versions")
        .and_then(Value::as_object)
        .ok_or(UploadError::Versions)?;
    let mut entries = versions.iter();
    let (Some((version, manifest)), None) = (entries.next(), entries.next()) else {
        return Err(UploadError::Versions);
    };
    if !valid_version(version) {
        return Err(UploadError::Version(version.clone()));
    }
    let mut manifest = manifest.clone();
    let agrees = manifest.get("name").and_then(Value::as_str) == Some(name)
        && manifest.get("version").and_then(Value::as_str) == Some(version);
    if !agrees {
        return Err(UploadError::Manifest(format!("{name}@{version}")));
    }

    let file = format!("{name}-{version}.tgz");
    let attachments = body
        .get("_attachments")
        .and_then(Value::as_object)
        .ok_or_else(|| UploadError::Attachment(file.clone()))?;
    let attachment = match (attachments.len(), attachments.get(&file)) {
        (1, Some(a)) => a,
        _ => return Err(UploadError::Attachment(file)),
    };
    let data = attachment
        .get("data")
        .and_then(Value::as_str)
        .ok_or(UploadError::Base64)?;
    let tarball = STANDARD.decode(data).map_err(|_| UploadError::Base64)?;
    if let Some(stated) = attachment.get("length").and_then(Value::as_u64)
        && usize::try_from(stated).ok() != Some(tarball.len())
    {
        return Err(UploadError::Length {
            stated,
            actual: tarball.len(),
        });
    }
    let dist = manifest
        .get_mut("dist")
        .and_then(Value::as_object_mut)
        .ok_or(UploadError::Integrity)?;
    if dist.get("integrity").and_then(Value::as_str) != Some(integrity(&tarball).as_str()) {
        return Err(UploadError::Integrity);
    }
    dist.remove("tarball");
    dist.remove("shasum");

    let tags: BTreeMap<String, String> = body
        .get("dist-tags")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|_| UploadError::Tags)?
        .unwrap_or_default();
    if tags.is_empty() || tags.iter().any(|(t, v)| v != version || !valid_tag(t)) {
        return Err(UploadError::Tags);
    }
    Ok(Upload {
        version: version.clone(),
        manifest,
        tarball,
        tags: tags.into_keys().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(data: &[u8], integrity: &str) -> Value {
        json!({
            "name": "@acme/util",
            "dist-tags": {"latest": "1.0.0"},
            "versions": {"1.0.0": {"name": "@acme/util", "version": "1.0.0",
                "dist": {"integrity": integrity, "shasum": "x", "tarball": "http://x"}}},
            "_attachments": {"@acme/util-1.0.0.tgz": {"data": STANDARD.encode(data), "length": data.len()}},
        })
    }

    #[test]
    fn a_publish_is_read_when_its_integrity_holds() {
        let upload = read("@acme/util", &body(b"tgz", &integrity(b"tgz"))).unwrap();
        assert_eq!(upload.version, "1.0.0");
        assert_eq!(upload.tarball, b"tgz");
        assert_eq!(upload.tags, ["latest"]);
        assert!(upload.manifest["dist"].get("shasum").is_none());
        assert!(matches!(
            read("@acme/util", &body(b"tgz", &integrity(b"other"))),
            Err(UploadError::Integrity)
        ));
        assert!(matches!(
            read("left-pad", &body(b"tgz", &integrity(b"tgz"))),
            Err(UploadError::Name(_))
        ));
    }
}
