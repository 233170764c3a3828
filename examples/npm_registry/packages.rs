//! The packages on disk: one directory per name (`left-pad/`, `@acme/util/`) holding the
//! packument as `packument.json` and the tarballs beside it. Every write goes to a
//! temporary file and is renamed into place, the packument last, so a crash never leaves
//! a listed version without its tarball. One lock serialises writes.
//!
//! The stored packument never holds tarball URLs: they are made from the request's host
//! when it is served ([`Packages::packument`]).

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use feedkey::time::OffsetDateTime;
use feedkey::time::format_description::well_known::Rfc3339;
use serde_json::{Map, Value, json};
use tokio::sync::Mutex;

use crate::errors::npm_error;
use crate::names::tarball;
use crate::publish::Upload;

/// What can go wrong with the packages on disk, or with a request to change them.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("not found")]
    NotFound,
    #[error("You cannot publish over the previously published versions: {0}.")]
    VersionExists(String),
    #[error("{0}")]
    Invalid(String),
    #[error("document update conflict: the package changed since it was read")]
    Conflict,
    #[error("the packument of `{0}` is unreadable")]
    Corrupt(String),
    #[error("storage failed: {0}")]
    Io(#[from] io::Error),
}

impl IntoResponse for PackageError {
    fn into_response(self) -> Response {
        let status = match &self {
            PackageError::NotFound => StatusCode::NOT_FOUND,
            // npm's public registry answers a republished version with 403.
            PackageError::VersionExists(_) => StatusCode::FORBIDDEN,
            PackageError::Invalid(_) => StatusCode::BAD_REQUEST,
            PackageError::Conflict => StatusCode::CONFLICT,
            PackageError::Corrupt(_) | PackageError::Io(_) => {
                tracing::error!("{self}");
                return npm_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
            }
        };
        npm_error(status, self)
    }
}

/// What an edit of the packument did (for the log).
#[derive(Debug, Default)]
pub struct Edit {
    pub removed: Vec<String>,
    pub deprecated: Vec<String>,
}

impl Edit {
    /// Whether it changes anything.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.deprecated.is_empty()
    }
}

/// The packages of one registry.
pub struct Packages {
    root: PathBuf,
    writing: Mutex<()>,
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

fn versions(doc: &Value) -> Option<&Map<String, Value>> {
    doc.get("versions").and_then(Value::as_object)
}

/// A version's manifest as compared by an edit: without what an edit may change
/// (`deprecated`) and what the server makes (`dist.tarball`).
fn comparable(manifest: &Value) -> Value {
    let mut m = manifest.clone();
    if let Some(fields) = m.as_object_mut() {
        fields.remove("deprecated");
        if let Some(dist) = fields.get_mut("dist").and_then(Value::as_object_mut) {
            dist.remove("tarball");
        }
    }
    m
}

fn next_rev(doc: &Value) -> String {
    let n = doc
        .get("_rev")
        .and_then(Value::as_str)
        .and_then(|r| r.split_once('-'))
        .and_then(|(n, _)| n.parse::<u64>().ok())
        .unwrap_or(0);
    format!("{}-feedkey", n.saturating_add(1))
}

impl Packages {
    /// Opens (or creates) the packages under `root`.
    pub fn open(root: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(root)?;
        Ok(Self {
            root: root.to_owned(),
            writing: Mutex::new(()),
        })
    }

    /// The directory of a (valid) name: `root/left-pad`, `root/@acme/util`.
    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn doc_file(&self, name: &str) -> PathBuf {
        self.dir(name).join("packument.json")
    }

    /// Whether the registry has the package.
    pub fn exists(&self, name: &str) -> bool {
        self.doc_file(name).is_file()
    }

    fn read(&self, name: &str) -> Result<Value, PackageError> {
        let bytes = match std::fs::read(self.doc_file(name)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(PackageError::NotFound),
            Err(e) => return Err(e.into()),
        };
        serde_json::from_slice(&bytes).map_err(|_| PackageError::Corrupt(name.to_owned()))
    }

    fn write(&self, name: &str, doc: &Value) -> Result<(), PackageError> {
        write_atomically(&self.doc_file(name), doc.to_string().as_bytes())
    }

    /// The packument as npm reads it, each version's `dist.tarball` at `base`.
    pub fn packument(&self, name: &str, base: &str) -> Result<Value, PackageError> {
        let mut doc = self.read(name)?;
        if let Some(versions) = doc.get_mut("versions").and_then(Value::as_object_mut) {
            for (version, manifest) in versions.iter_mut() {
                if let Some(dist) = manifest.get_mut("dist").and_then(Value::as_object_mut) {
                    let url = format!("{base}/{name}/-/{}", tarball(name, version));
                    dist.insert("tarball".to_owned(), Value::String(url));
                }
            }
        }
        Ok(doc)
    }

    /// A tarball, if its version is listed.
    pub fn tarball(&self, name: &str, version: &str) -> Result<Vec<u8>, PackageError> {
        let doc = self.read(name)?;
        if !versions(&doc).is_some_and(|v| v.contains_key(version)) {
            return Err(PackageError::NotFound);
        }
        Ok(std::fs::read(self.dir(name).join(tarball(name, version)))?)
    }

    /// Adds a version: its tarball, then the packument naming it.
    ///
    /// Refused with [`PackageError::Conflict`] when whether the package exists is no
    /// longer what the push was authorized for (`Some(existed)`):
    /// a token that may only push new versions never creates a package, even if the
    /// package was unpublished between its check and its write.
    pub async fn publish(
        &self,
        name: &str,
        upload: &Upload,
        existed: Option<bool>,
    ) -> Result<(), PackageError> {
        let _writing = self.writing.lock().await;
        let read = self.read(name);
        if existed.is_some_and(|e| e != read.is_ok()) {
            return Err(PackageError::Conflict);
        }
        let mut doc = match read {
            Ok(doc) => doc,
            Err(PackageError::NotFound) => json!({
                "_id": name, "name": name, "dist-tags": {}, "versions": {},
                "time": { "created": now() },
            }),
            Err(e) => return Err(e),
        };
        // A version once published is never published again, even after an unpublish.
        let seen = doc
            .get("time")
            .and_then(|t| t.get(&upload.version))
            .is_some();
        if seen || versions(&doc).is_some_and(|v| v.contains_key(&upload.version)) {
            return Err(PackageError::VersionExists(upload.version.clone()));
        }
        write_atomically(
            &self.dir(name).join(tarball(name, &upload.version)),
            &upload.tarball,
        )?;
        let rev = next_rev(&doc);
        let fields = doc
            .as_object_mut()
            .ok_or_else(|| PackageError::Corrupt(name.to_owned()))?;
        fields.insert("_rev".to_owned(), Value::String(rev));
        if let Some(description) = upload.manifest.get("description") {
            fields.insert("description".to_owned(), description.clone());
        }
        let stamp = now();
        set(fields, "versions", &upload.version, upload.manifest.clone());
        for tag in &upload.tags {
            set(
                fields,
                "dist-tags",
                tag,
                Value::String(upload.version.clone()),
            );
        }
        set(
            fields,
            "time",
            &upload.version,
            Value::String(stamp.clone()),
        );
        set(fields, "time", "modified", Value::String(stamp));
        self.write(name, &doc)
    }

    /// What a whole-packument `PUT` (`npm deprecate`, or `npm unpublish` of one version)
    /// would change, compared with the stored packument: versions removed, and
    /// deprecation messages set or cleared. Anything else that differs is refused.
    pub fn compare(&self, name: &str, body: &Value) -> Result<Edit, PackageError> {
        let doc = self.read(name)?;
        let stored = versions(&doc).ok_or_else(|| PackageError::Corrupt(name.to_owned()))?;
        let sent = versions(body)
            .ok_or_else(|| PackageError::Invalid("the packument has no versions".to_owned()))?;
        let mut edit = Edit::default();
        for (version, manifest) in stored {
            let Some(new) = sent.get(version) else {
                edit.removed.push(version.clone());
                continue;
            };
            if comparable(new) != comparable(manifest) {
                return Err(PackageError::Invalid(format!(
                    "only deprecation messages and removals may change here; {version} differs"
                )));
            }
            if new.get("deprecated") != manifest.get("deprecated") {
                let ok = match new.get("deprecated") {
                    None | Some(Value::String(_)) => true,
                    Some(_) => false,
                };
                if !ok {
                    return Err(PackageError::Invalid(
                        "`deprecated` is a message".to_owned(),
                    ));
                }
                edit.deprecated.push(version.clone());
            }
        }
        if let Some(added) = sent.keys().find(|v| !stored.contains_key(*v)) {
            return Err(PackageError::Invalid(format!(
                "{added} is not published here; publish it with its tarball"
            )));
        }
        if edit.removed.len() == stored.len() && !stored.is_empty() {
            return Err(PackageError::Invalid(
                "remove the last version by unpublishing the package".to_owned(),
            ));
        }
        Ok(edit)
    }

    /// Applies what [`compare`](Self::compare) found, at revision `rev` if one is given.
    pub async fn apply(
        &self,
        name: &str,
        rev: Option<&str>,
        body: &Value,
    ) -> Result<Edit, PackageError> {
        let _writing = self.writing.lock().await;
        let edit = self.compare(name, body)?;
        let mut doc = self.read(name)?;
        check_rev(&doc, rev)?;
        if edit.is_empty() {
            return Ok(edit);
        }
        let new_rev = next_rev(&doc);
        let fields = doc
            .as_object_mut()
            .ok_or_else(|| PackageError::Corrupt(name.to_owned()))?;
        fields.insert("_rev".to_owned(), Value::String(new_rev));
        let sent = versions(body);
        if let Some(stored) = fields.get_mut("versions").and_then(Value::as_object_mut) {
            for version in &edit.removed {
                stored.remove(version);
            }
            for version in &edit.deprecated {
                let message = sent
                    .and_then(|s| s.get(version))
                    .and_then(|m| m.get("deprecated"))
                    .cloned();
                if let Some(manifest) = stored.get_mut(version).and_then(Value::as_object_mut) {
                    match message {
                        Some(Value::String(m)) if !m.is_empty() => {
                            manifest.insert("deprecated".to_owned(), Value::String(m));
                        }
                        _ => {
                            manifest.remove("deprecated");
                        }
                    }
                }
            }
        }
        retag(fields);
        set(fields, "time", "modified", Value::String(now()));
        self.write(name, &doc)?;
        Ok(edit)
    }

    /// Removes the whole package (`npm unpublish NAME --force`), at revision `rev`.
    pub async fn remove(&self, name: &str, rev: &str) -> Result<(), PackageError> {
        let _writing = self.writing.lock().await;
        let doc = self.read(name)?;
        check_rev(&doc, Some(rev))?;
        std::fs::remove_dir_all(self.dir(name))?;
        Ok(())
    }

    /// Removes the tarball of a version no longer listed (the second step of
    /// `npm unpublish NAME@VERSION`).
    pub async fn remove_tarball(
        &self,
        name: &str,
        version: &str,
        rev: &str,
    ) -> Result<(), PackageError> {
        let _writing = self.writing.lock().await;
        let doc = self.read(name)?;
        check_rev(&doc, Some(rev))?;
        if versions(&doc).is_some_and(|v| v.contains_key(version)) {
            return Err(PackageError::Invalid(format!(
                "{version} is still listed; unpublish it first"
            )));
        }
        match std::fs::remove_file(self.dir(name).join(tarball(name, version))) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(PackageError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// The dist-tags.
    pub fn dist_tags(&self, name: &str) -> Result<Value, PackageError> {
        Ok(self
            .read(name)?
            .get("dist-tags")
            .cloned()
            .unwrap_or_else(|| json!({})))
    }

    /// Points `tag` at `version` (`Some`), or removes it (`None`; never `latest`).
    pub async fn set_tag(
        &self,
        name: &str,
        tag: &str,
        version: Option<&str>,
    ) -> Result<(), PackageError> {
        let _writing = self.writing.lock().await;
        let mut doc = self.read(name)?;
        if let Some(version) = version
            && !versions(&doc).is_some_and(|v| v.contains_key(version))
        {
            return Err(PackageError::Invalid(format!(
                "{name}@{version} is not published"
            )));
        }
        let new_rev = next_rev(&doc);
        let fields = doc
            .as_object_mut()
            .ok_or_else(|| PackageError::Corrupt(name.to_owned()))?;
        fields.insert("_rev".to_owned(), Value::String(new_rev));
        match version {
            Some(version) => set(fields, "dist-tags", tag, Value::String(version.to_owned())),
            None if tag == "latest" => {
                return Err(PackageError::Invalid(
                    "the latest tag cannot be removed".to_owned(),
                ));
            }
            None => {
                let removed = fields
                    .get_mut("dist-tags")
                    .and_then(Value::as_object_mut)
                    .and_then(|tags| tags.remove(tag));
                if removed.is_none() {
                    return Err(PackageError::NotFound);
                }
            }
        }
        self.write(name, &doc)
    }
}

/// Sets `fields[object][key] = value`, making the object if it is missing.
fn set(fields: &mut Map<String, Value>, object: &str, key: &str, value: Value) {
    let entry = fields
        .entry(object.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    if let Some(map) = entry.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}

/// Drops dist-tags naming removed versions; `latest` moves to the newest version left
/// (by publish time).
fn retag(fields: &mut Map<String, Value>) {
    let listed: BTreeSet<String> = fields
        .get("versions")
        .and_then(Value::as_object)
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default();
    let newest = fields
        .get("time")
        .and_then(Value::as_object)
        .and_then(|time| {
            listed
                .iter()
                .filter_map(|v| Some((time.get(v)?.as_str()?.to_owned(), v.clone())))
                .max()
                .map(|(_, v)| v)
        });
    if let Some(tags) = fields.get_mut("dist-tags").and_then(Value::as_object_mut) {
        tags.retain(|_, v| v.as_str().is_some_and(|v| listed.contains(v)));
        if !tags.contains_key("latest")
            && let Some(newest) = newest
        {
            tags.insert("latest".to_owned(), Value::String(newest));
        }
    }
}

fn check_rev(doc: &Value, rev: Option<&str>) -> Result<(), PackageError> {
    match rev {
        Some(rev) if doc.get("_rev").and_then(Value::as_str) != Some(rev) => {
            Err(PackageError::Conflict)
        }
        _ => Ok(()),
    }
}

fn write_atomically(file: &Path, bytes: &[u8]) -> Result<(), PackageError> {
    let dir = file
        .parent()
        .ok_or_else(|| io::Error::other("a file with no directory"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(version: &str) -> Upload {
        Upload {
            version: version.to_owned(),
            manifest: json!({"name": "@acme/util", "version": version, "dist": {"integrity": "sha512-x"}}),
            tarball: version.as_bytes().to_vec(),
            tags: vec!["latest".to_owned()],
        }
    }

    /// A push authorized as a new version of an existing package never creates one (the
    /// package went meanwhile), and one authorized as a new package never adds to an
    /// existing one.
    #[tokio::test]
    async fn a_publish_lands_only_as_it_was_authorized() {
        let dir = tempfile::tempdir().unwrap();
        let packages = Packages::open(dir.path()).unwrap();
        let name = "@acme/util";
        assert!(matches!(
            packages.publish(name, &upload("1.0.0"), Some(true)).await,
            Err(PackageError::Conflict)
        ));
        assert!(!packages.exists(name));
        packages
            .publish(name, &upload("1.0.0"), Some(false))
            .await
            .unwrap();
        assert!(matches!(
            packages.publish(name, &upload("1.1.0"), Some(false)).await,
            Err(PackageError::Conflict)
        ));
        packages
            .publish(name, &upload("1.1.0"), Some(true))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_edit_may_only_deprecate_or_remove() {
        let dir = tempfile::tempdir().unwrap();
        let packages = Packages::open(dir.path()).unwrap();
        let name = "@acme/util";
        packages
            .publish(name, &upload("1.0.0"), None)
            .await
            .unwrap();
        packages
            .publish(name, &upload("1.1.0"), None)
            .await
            .unwrap();
        assert!(matches!(
            packages.publish(name, &upload("1.1.0"), None).await,
            Err(PackageError::VersionExists(_))
        ));

        // What npm sends back: the served packument, tarball URLs included.
        let mut doc = packages.packument(name, "http://x").unwrap();
        doc["versions"]["1.0.0"]["deprecated"] = json!("use 1.1");
        let edit = packages.apply(name, None, &doc).await.unwrap();
        assert_eq!(edit.deprecated, ["1.0.0"]);
        assert!(edit.removed.is_empty());

        let mut doc = packages.packument(name, "http://x").unwrap();
        doc["versions"]["1.0.0"]["main"] = json!("evil.js");
        assert!(matches!(
            packages.apply(name, None, &doc).await,
            Err(PackageError::Invalid(_))
        ));

        // Removing 1.1.0 at the current revision moves `latest` back to 1.0.0, keeps
        // the deprecation, and the version can never be published again.
        let mut doc = packages.packument(name, "http://x").unwrap();
        let rev = doc["_rev"].as_str().unwrap().to_owned();
        doc["versions"].as_object_mut().unwrap().remove("1.1.0");
        assert!(matches!(
            packages.apply(name, Some("1-old"), &doc).await,
            Err(PackageError::Conflict)
        ));
        let edit = packages.apply(name, Some(&rev), &doc).await.unwrap();
        assert_eq!(edit.removed, ["1.1.0"]);
        let doc = packages.packument(name, "http://x").unwrap();
        assert_eq!(doc["dist-tags"]["latest"], "1.0.0");
        assert_eq!(doc["versions"]["1.0.0"]["deprecated"], "use 1.1");
        assert_eq!(
            doc["versions"]["1.0.0"]["dist"]["tarball"],
            "http://x/@acme/util/-/util-1.0.0.tgz"
        );
        assert!(matches!(
            packages.publish(name, &upload("1.1.0"), None).await,
            Err(PackageError::VersionExists(_))
        ));
        let rev = doc["_rev"].as_str().unwrap().to_owned();
        packages.remove_tarball(name, "1.1.0", &rev).await.unwrap();
        assert!(packages.tarball(name, "1.0.0").is_ok());
    }
}
