//! Packages on disk: `{data}/feeds/{feed}/{id}/{version}.nupkg` with a `.json` beside it,
//! both written to a temporary file and renamed, so nothing is ever half-written.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha512};

/// What can be wrong with an upload or a lookup; each maps to one status.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("bad upload: {0}")]
    BadUpload(String),
    #[error("the package is not a zip archive")]
    NotZip,
    #[error("the package has no .nuspec at its root")]
    NoNuspec,
    #[error("the .nuspec is invalid: {0}")]
    BadNuspec(String),
    #[error("invalid package id {0:?}")]
    BadId(String),
    #[error("invalid version {0:?}")]
    BadVersion(String),
    #[error("this version already exists")]
    Exists,
    #[error("no such package")]
    NotFound,
    #[error("storage failure")]
    Io(#[from] std::io::Error),
}

impl IntoResponse for PackageError {
    fn into_response(self) -> Response {
        let status = match &self {
            PackageError::Exists => StatusCode::CONFLICT,
            PackageError::NotFound => StatusCode::NOT_FOUND,
            PackageError::Io(e) => {
                tracing::error!("storage failure: {e}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::BAD_REQUEST,
        };
        (status, self.to_string()).into_response()
    }
}

/// What the .nuspec says, plus what the server records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PackageMeta {
    pub id: String,
    pub version: String,
    pub description: String,
    pub authors: String,
    #[serde(default)]
    pub published: String,
    #[serde(default = "yes")]
    pub listed: bool,
    #[serde(default)]
    pub hash: String,
    #[serde(default)]
    pub size: u64,
}

fn yes() -> bool {
    true
}

/// NuGet ids: word characters joined by `.`, `_` or `-`, at most 100 characters.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// `1.2`, `1.2.3`, `1.2.3.4`, with an optional `-prerelease` and `+metadata`.
fn valid_version(version: &str) -> bool {
    let (core, rest) = match version.find(['-', '+']) {
        Some(i) => version.split_at(i),
        None => (version, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    let core_ok = (2..=4).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 9 && p.chars().all(|c| c.is_ascii_digit()));
    let rest_ok = rest.len() <= 64
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'));
    core_ok && rest_ok
}

/// The package bytes of a push: the first part of a multipart/form-data body, or the
/// whole body otherwise. NuGet 2.8 ends its part with a bare `\n` before the closing
/// boundary, which strict multipart parsers refuse; this one accepts both.
pub fn upload<'a>(
    headers: &axum::http::HeaderMap,
    body: &'a [u8],
) -> Result<&'a [u8], PackageError> {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(boundary) = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
    else {
        return Ok(body);
    };
    let delimiter = format!("--{boundary}");
    let start = find(body, delimiter.as_bytes())
        .ok_or_else(|| PackageError::BadUpload("no multipart boundary".into()))?;
    let after = body.get(start + delimiter.len()..).unwrap_or_default();
    let headers_end = find(after, b"\r\n\r\n")
        .ok_or_else(|| PackageError::BadUpload("no part headers".into()))?;
    let content = after.get(headers_end + 4..).unwrap_or_default();
    let end = find(content, format!("\n{delimiter}").as_bytes())
        .ok_or_else(|| PackageError::BadUpload("unterminated part".into()))?;
    let content = content.get(..end).unwrap_or_default();
    Ok(content.strip_suffix(b"\r").unwrap_or(content))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads the id, version, description and authors from the package's .nuspec.
pub fn inspect(bytes: &[u8]) -> Result<PackageMeta, PackageError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| PackageError::NotZip)?;
    let name = (0..zip.len())
        .filter_map(|i| {
            zip.name_for_index(i)
                .and_then(Result::ok)
                .map(|n| n.into_owned())
        })
        .find(|n| n.ends_with(".nuspec") && !n.contains('/'))
        .ok_or(PackageError::NoNuspec)?;
    let mut text = String::new();
    zip.by_name(&name)
        .map_err(|_| PackageError::NoNuspec)?
        .take(1 << 20)
        .read_to_string(&mut text)
        .map_err(|e| PackageError::BadNuspec(e.to_string()))?;
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut current = String::new();
    let (mut id, mut version, mut description, mut authors) =
        (String::new(), String::new(), String::new(), String::new());
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(e)) => {
                current = e.local_name().as_ref().to_owned();
            }
            Ok(quick_xml::events::Event::Text(t)) => {
                let value = quick_xml::escape::unescape(&t.xml10_content())
                    .map_err(|e| PackageError::BadNuspec(e.to_string()))?
                    .trim()
                    .to_owned();
                let slot = match current.as_str() {
                    "id" => &mut id,
                    "version" => &mut version,
                    "description" => &mut description,
                    "authors" => &mut authors,
                    _ => continue,
                };
                if slot.is_empty() {
                    *slot = value;
                }
            }
            Ok(quick_xml::events::Event::End(_)) => current.clear(),
            Ok(quick_xml::events::Event::Eof) => break,
            Err(e) => return Err(PackageError::BadNuspec(e.to_string())),
            Ok(_) => {}
        }
    }
    if !valid_id(&id) {
        return Err(PackageError::BadId(id));
    }
    if !valid_version(&version) {
        return Err(PackageError::BadVersion(version));
    }
    Ok(PackageMeta {
        id,
        version,
        description,
        authors,
        published: String::new(),
        listed: true,
        hash: String::new(),
        size: 0,
    })
}

/// One feed's packages.
pub struct Feed {
    dir: PathBuf,
    /// The account that owns the feed: only its tokens push, unlist, or read it.
    pub owner: feedkey::AccountId,
    pub private: bool,
    writes: Mutex<()>,
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

impl Feed {
    pub fn open(
        data: &Path,
        name: &str,
        owner: feedkey::AccountId,
        private: bool,
    ) -> std::io::Result<Self> {
        let dir = data.join("feeds").join(name);
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            owner,
            private,
            writes: Mutex::new(()),
        })
    }

    fn paths(&self, id: &str, version: &str) -> Option<(PathBuf, PathBuf)> {
        if !valid_id(id) || !valid_version(version) {
            return None;
        }
        let dir = self.dir.join(id.to_ascii_lowercase());
        let stem = version.to_ascii_lowercase();
        Some((
            dir.join(format!("{stem}.nupkg")),
            dir.join(format!("{stem}.json")),
        ))
    }

    /// Whether the feed has ever had this id (case-insensitively).
    pub fn has_id(&self, id: &str) -> bool {
        valid_id(id) && self.dir.join(id.to_ascii_lowercase()).is_dir()
    }

    pub fn store_package(&self, meta: &PackageMeta, bytes: &[u8]) -> Result<(), PackageError> {
        let (nupkg, json) = self
            .paths(&meta.id, &meta.version)
            .ok_or_else(|| PackageError::BadId(meta.id.clone()))?;
        let _guard = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        if json.exists() {
            return Err(PackageError::Exists);
        }
        if let Some(dir) = nupkg.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut meta = meta.clone();
        meta.published = feedkey::time::OffsetDateTime::now_utc()
            .format(&feedkey::time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        use base64::Engine as _;
        meta.hash = base64::engine::general_purpose::STANDARD.encode(Sha512::digest(bytes));
        meta.size = bytes.len() as u64;
        // The package first, its record last: a package without a record does not exist.
        write_atomically(&nupkg, bytes)?;
        let record = serde_json::to_vec(&meta).map_err(std::io::Error::other)?;
        write_atomically(&json, &record)?;
        Ok(())
    }

    pub fn read_package(&self, id: &str, version: &str) -> Result<Vec<u8>, PackageError> {
        let (nupkg, json) = self.paths(id, version).ok_or(PackageError::NotFound)?;
        if !json.exists() {
            return Err(PackageError::NotFound);
        }
        std::fs::read(nupkg).map_err(|_| PackageError::NotFound)
    }

    pub fn unlist(&self, id: &str, version: &str) -> Result<(), PackageError> {
        let (_, json) = self.paths(id, version).ok_or(PackageError::NotFound)?;
        let _guard = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        let mut meta: PackageMeta = std::fs::read(&json)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(PackageError::NotFound)?;
        meta.listed = false;
        let record = serde_json::to_vec(&meta).map_err(std::io::Error::other)?;
        write_atomically(&json, &record)?;
        Ok(())
    }

    /// Every package version the feed holds.
    pub fn all(&self) -> Vec<PackageMeta> {
        let mut out = Vec::new();
        let Ok(ids) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for id in ids.flatten() {
            let Ok(files) = std::fs::read_dir(id.path()) else {
                continue;
            };
            for file in files.flatten() {
                let path = file.path();
                if path.extension().is_some_and(|e| e == "json")
                    && let Some(meta) = std::fs::read(&path)
                        .ok()
                        .and_then(|b| serde_json::from_slice::<PackageMeta>(&b).ok())
                {
                    out.push(meta);
                }
            }
        }
        out.sort_by(|a, b| {
            a.id.to_ascii_lowercase()
                .cmp(&b.id.to_ascii_lowercase())
                .then_with(|| version_key(&a.version).cmp(&version_key(&b.version)))
        });
        out
    }
}

/// A sort key for versions: numeric parts numerically, a release after its prereleases.
pub fn version_key(version: &str) -> (Vec<u64>, bool, String) {
    let (core, pre) = match version.split_once('-') {
        Some((c, p)) => (c, p.to_owned()),
        None => (version.split('+').next().unwrap_or(version), String::new()),
    };
    let mut nums: Vec<u64> = core.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    while nums.len() < 4 {
        nums.push(0);
    }
    (nums, pre.is_empty(), pre)
}
