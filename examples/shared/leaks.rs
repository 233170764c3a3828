//! Leaked tokens, in both example servers: GitHub's secret-scanning partner endpoint
//! ([`routes`]), and a scan of every uploaded package's files ([`scan_files`]) so that a
//! package holding a live token of this registry is refused and the token revoked.
//!
//! The partner endpoint (`POST /api/secret-scanning/github`) takes GitHub's report, a
//! JSON list of `{token, type, url, source}`, signed with ECDSA P-256 over SHA-256: the
//! key's id in `Github-Public-Key-Identifier`, the DER signature (base64) in
//! `Github-Public-Key-Signature`. The keys are GitHub's, from the file
//! `--secret-scanning-keys` names, in the form GitHub publishes them at
//! `https://api.github.com/meta/public_keys/secret_scanning`. A report is answered with
//! GitHub's feedback list, `[{token_hash, token_type, label}]`, the SHA-256 of each token
//! rather than the token; it never names an account.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, extract::DefaultBodyLimit};
use base64::Engine as _;
use feedkey::LeakVerdict;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::{Registry, error};

/// The largest report taken (GitHub sends batches far smaller).
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;
/// The longest source (a URL) kept for a reported token.
const MAX_SOURCE: usize = 1024;
/// GitHub waits 30 seconds for an answer; a report not done by then is answered 503 (the
/// revocations made stand, and a resent report changes nothing more).
const ANSWER_WITHIN: Duration = Duration::from_secs(25);

/// GitHub's secret-scanning public keys, by key id.
pub struct ScanningKeys(HashMap<String, VerifyingKey>);

#[derive(Deserialize)]
struct PublishedKeys {
    public_keys: Vec<PublishedKey>,
}

#[derive(Deserialize)]
struct PublishedKey {
    key_identifier: String,
    key: String,
}

impl ScanningKeys {
    /// Reads the keys from a file in the form GitHub publishes them:
    /// `{"public_keys": [{"key_identifier": "…", "key": "-----BEGIN PUBLIC KEY-----…"}]}`.
    pub fn load(path: &Path) -> Result<Self, Box<dyn std::error::Error>> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--secret-scanning-keys {}: {e}", path.display()))?;
        let published: PublishedKeys = serde_json::from_str(&text)
            .map_err(|e| format!("--secret-scanning-keys {}: {e}", path.display()))?;
        let mut keys = HashMap::new();
        for key in published.public_keys {
            let parsed = key.key.parse::<VerifyingKey>().map_err(|_| {
                format!(
                    "--secret-scanning-keys: key {:?} is not a P-256 public key in PEM",
                    key.key_identifier
                )
            })?;
            keys.insert(key.key_identifier, parsed);
        }
        if keys.is_empty() {
            return Err("--secret-scanning-keys: the file lists no key".into());
        }
        Ok(Self(keys))
    }

    /// Whether `signature` (DER, base64) by key `id` signs `body`.
    fn verifies(&self, id: &str, signature: &str, body: &[u8]) -> bool {
        let Some(key) = self.0.get(id) else {
            return false;
        };
        let Ok(der) = base64::engine::general_purpose::STANDARD.decode(signature.trim()) else {
            return false;
        };
        let Ok(signature) = Signature::from_der(&der) else {
            return false;
        };
        key.verify(body, &signature).is_ok()
    }
}

/// The partner endpoint's route, to merge into a server's router.
pub fn routes<R: Registry>() -> Router<Arc<R>> {
    Router::new()
        .route("/api/secret-scanning/github", post(report::<R>))
        .layer(DefaultBodyLimit::max(MAX_REPORT_BYTES))
}

/// One reported match.
#[derive(Deserialize)]
struct Reported {
    token: String,
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    source: String,
}

/// The SHA-256 of a token, hex: how the feedback names it without echoing it.
fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn report<R: Registry>(
    State(app): State<Arc<R>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(keys) = app.scanning_keys() else {
        return error(
            StatusCode::NOT_FOUND,
            "this registry takes no secret-scanning reports",
        );
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(signature)) = (
        header("github-public-key-identifier"),
        header("github-public-key-signature"),
    ) else {
        tracing::warn!("secret-scanning report refused: unsigned");
        return error(StatusCode::UNAUTHORIZED, "the report is not signed");
    };
    if !keys.verifies(id, signature, &body) {
        tracing::warn!(
            key = id,
            "secret-scanning report refused: the signature does not verify"
        );
        return error(StatusCode::UNAUTHORIZED, "the signature does not verify");
    }
    let reported: Vec<Reported> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("report: {e}")),
    };
    let work = async {
        let mut feedback = Vec::with_capacity(reported.len());
        let mut revoked = 0usize;
        for item in &reported {
            let mut place = if item.url.is_empty() {
                format!("GitHub secret scanning ({})", item.source)
            } else {
                item.url.clone()
            };
            // The owner learns where; a kilobyte says it (the audit trail keeps it).
            if place.len() > MAX_SOURCE {
                let cut = (0..=MAX_SOURCE)
                    .rev()
                    .find(|i| place.is_char_boundary(*i))
                    .unwrap_or(0);
                place.truncate(cut);
            }
            let verdict = app
                .keys()
                .report_leaked([item.token.as_str()], &place)
                .await?
                .first()
                .copied()
                .unwrap_or(LeakVerdict::FalsePositive);
            revoked += usize::from(verdict == LeakVerdict::Revoked);
            let label = if verdict.is_true_positive() {
                "true_positive"
            } else {
                "false_positive"
            };
            feedback.push(json!({
                "token_hash": token_hash(&item.token),
                "token_type": item.kind,
                "label": label,
            }));
        }
        Ok::<_, feedkey::Error>((feedback, revoked))
    };
    match tokio::time::timeout(ANSWER_WITHIN, work).await {
        Ok(Ok((feedback, revoked))) => {
            tracing::info!(
                reported = reported.len(),
                revoked,
                "secret-scanning report from GitHub"
            );
            Json(feedback).into_response()
        }
        Ok(Err(e)) => {
            tracing::error!("secret-scanning report: {e}");
            error(StatusCode::SERVICE_UNAVAILABLE, "try again later")
        }
        Err(_) => {
            tracing::warn!("secret-scanning report: not done within {ANSWER_WITHIN:?}");
            error(StatusCode::SERVICE_UNAVAILABLE, "try again later")
        }
    }
}

/// How much an upload may unpack to, so a small archive cannot make the scan read
/// gigabytes: at most this many bytes in all, and at most [`MAX_RATIO`] times the
/// archive's own size.
pub const MAX_UNPACKED: u64 = 512 * 1024 * 1024;
/// The largest ratio of unpacked to packed bytes taken (ordinary packages compress 3 to
/// 10 times).
pub const MAX_RATIO: u64 = 100;

/// Why an upload could not be scanned.
#[derive(Debug)]
pub enum ScanError {
    /// The archive is not what it claims to be.
    Malformed(String),
    /// It unpacks to more than the limits allow.
    TooLarge,
}

impl std::fmt::Display for ScanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(e) => write!(f, "the package cannot be read: {e}"),
            Self::TooLarge => write!(
                f,
                "the package unpacks to more than {MAX_UNPACKED} bytes or {MAX_RATIO} times its size"
            ),
        }
    }
}

/// The unpacked bytes an archive of `packed` bytes may have.
fn budget(packed: usize) -> u64 {
    MAX_UNPACKED.min((packed as u64).saturating_mul(MAX_RATIO).max(1024 * 1024))
}

/// Reads one file of an archive into `buffer`, spending `left` of the budget.
fn read_limited(reader: impl Read, left: &mut u64, buffer: &mut Vec<u8>) -> Result<(), ScanError> {
    buffer.clear();
    let read = reader
        .take(left.saturating_add(1))
        .read_to_end(buffer)
        .map_err(|e| ScanError::Malformed(e.to_string()))?;
    let read = read as u64;
    if read > *left {
        return Err(ScanError::TooLarge);
    }
    *left -= read;
    Ok(())
}

/// Every well-formed token of `format` in the files of a zip archive (a .nupkg).
pub fn tokens_in_zip(
    format: &feedkey::TokenFormat,
    archive: &[u8],
) -> Result<Vec<String>, ScanError> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive))
        .map_err(|e| ScanError::Malformed(e.to_string()))?;
    let mut left = budget(archive.len());
    let mut found = Vec::new();
    let mut buffer = Vec::new();
    for i in 0..zip.len() {
        let file = zip
            .by_index(i)
            .map_err(|e| ScanError::Malformed(e.to_string()))?;
        read_limited(file, &mut left, &mut buffer)?;
        collect(format, &buffer, &mut found);
    }
    Ok(found)
}

/// Every well-formed token of `format` in the files of a gzipped tar archive (a .crate).
pub fn tokens_in_tar_gz(
    format: &feedkey::TokenFormat,
    archive: &[u8],
) -> Result<Vec<String>, ScanError> {
    // Every unpacked byte is charged, the archive's own header entries (GNU long names,
    // PAX records, which the tar reader consumes itself) included.
    let unpacked = flate2::read::GzDecoder::new(archive).take(budget(archive.len()));
    let mut tar = tar::Archive::new(unpacked);
    let mut left = budget(archive.len());
    let mut found = Vec::new();
    let mut buffer = Vec::new();
    let entries = tar
        .entries()
        .map_err(|e| ScanError::Malformed(e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| ScanError::Malformed(e.to_string()))?;
        read_limited(entry, &mut left, &mut buffer)?;
        collect(format, &buffer, &mut found);
    }
    Ok(found)
}

/// At most this many candidates are kept from one upload (a package of nothing but
/// tokens is refused all the same: each one kept is revoked).
const MAX_CANDIDATES: usize = 10_000;

fn collect(format: &feedkey::TokenFormat, data: &[u8], found: &mut Vec<String>) {
    for candidate in format.find_in(data) {
        if found.len() >= MAX_CANDIDATES {
            return;
        }
        found.push(candidate.expose_secret().to_owned());
    }
}

/// The archive kinds [`refuse_leaks`] unpacks.
#[derive(Clone, Copy)]
#[allow(dead_code, reason = "each example server takes one kind of package")]
pub enum Archive {
    /// A .nupkg.
    Zip,
    /// A .crate.
    TarGz,
}

/// Scans an uploaded package (off the executor: unpacking is CPU work) and revokes the
/// live tokens of this registry it holds; a package that held any is refused with
/// [`LEAKED`] (400), and one that cannot be unpacked within the limits with 400 too.
pub async fn refuse_leaks<R: Registry>(
    app: &R,
    archive: Archive,
    bytes: Bytes,
    package: &str,
) -> Result<(), (StatusCode, String)> {
    let format = app.keys().token_format().clone();
    let scanned = tokio::task::spawn_blocking(move || match archive {
        Archive::Zip => tokens_in_zip(&format, &bytes),
        Archive::TarGz => tokens_in_tar_gz(&format, &bytes),
    })
    .await;
    let found = match scanned {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return Err((StatusCode::BAD_REQUEST, e.to_string())),
        Err(e) => {
            tracing::error!("package scan: {e}");
            return Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()));
        }
    };
    match revoke_found(app, found, package).await {
        Ok(0) => Ok(()),
        Ok(_) => Err((StatusCode::BAD_REQUEST, LEAKED.into())),
        Err(e) => {
            tracing::error!("package scan: {e}");
            Err((StatusCode::SERVICE_UNAVAILABLE, "try again later".into()))
        }
    }
}

/// Reports the tokens found in an upload as leaked (they are revoked if they are live
/// tokens of this registry), and says how many were revoked: a push that revoked any is
/// refused by its caller, with [`LEAKED`].
pub async fn revoke_found<R: Registry>(
    app: &R,
    found: Vec<String>,
    package: &str,
) -> Result<usize, feedkey::Error> {
    if found.is_empty() {
        return Ok(0);
    }
    let source = format!("the uploaded package {package}");
    let verdicts = app.keys().report_leaked(&found, &source).await?;
    let revoked = verdicts
        .iter()
        .filter(|v| **v == LeakVerdict::Revoked)
        .count();
    if revoked > 0 {
        tracing::warn!(
            package,
            revoked,
            "upload refused: it holds live tokens, now revoked"
        );
    }
    Ok(revoked)
}

/// What a push holding a live token is told.
pub const LEAKED: &str = "The package contains an access token of this registry; the token has been revoked. Remove it from the package and create a new token";
