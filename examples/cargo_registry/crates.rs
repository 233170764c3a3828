//! The crates on disk: index files laid out as cargo's sparse index expects, and the
//! `.crate` files. Every write goes to a temporary file first and is renamed into place,
//! the index entry last, so a crash never leaves an entry without its file.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::sync::RwLock;

use crate::shared::error;

/// How feedkey sees a crate name: cargo treats `-` and `_` as the same character and
/// names as case-insensitive, so `Acme_Util` and `acme-util` are one crate, one package
/// id for scopes, and one match for a glob.
pub fn canonical(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// Whether `name` is a crate name cargo could publish: ASCII letters, digits, `-` and
/// `_`, starting with a letter, at most 64 characters.
pub fn valid_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Whether `version` is safe to use in a file name and looks like semver.
pub fn valid_version(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= 64
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
}

/// The sparse-index path of a (lowercased) crate name: `1/a`, `2/ab`, `3/a/abc`,
/// `ab/cd/abcd…`.
pub fn index_path(lower: &str) -> Option<String> {
    match lower.len() {
        0 => None,
        1 => Some(format!("1/{lower}")),
        2 => Some(format!("2/{lower}")),
        3 => Some(format!("3/{}/{lower}", lower.get(..1)?)),
        _ => Some(format!("{}/{}/{lower}", lower.get(..2)?, lower.get(2..4)?)),
    }
}

/// What can go wrong with the crates on disk.
#[derive(Debug, thiserror::Error)]
pub enum CrateError {
    #[error("crate `{0}` not found")]
    NotFound(String),
    #[error("version {1} of `{0}` not found")]
    VersionNotFound(String, String),
    #[error("crate version `{0}@{1}` is already uploaded")]
    VersionExists(String, String),
    #[error("crate `{0}` is already published as `{1}`")]
    NameTaken(String, String),
    #[error("the index entry of `{0}` is unreadable")]
    Corrupt(String),
    #[error("storage failed: {0}")]
    Io(#[from] io::Error),
}

impl IntoResponse for CrateError {
    fn into_response(self) -> Response {
        let status = match &self {
            CrateError::NotFound(_) | CrateError::VersionNotFound(..) => StatusCode::NOT_FOUND,
            CrateError::VersionExists(..) | CrateError::NameTaken(..) => StatusCode::CONFLICT,
            CrateError::Corrupt(_) | CrateError::Io(_) => {
                tracing::error!("{self}");
                return error(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
            }
        };
        error(status, self)
    }
}

/// The crates of one registry.
pub struct Crates {
    root: PathBuf,
    /// Canonical name → the name as first published (lowercased, as in the index).
    names: RwLock<HashMap<String, String>>,
}

impl Crates {
    /// Opens (or creates) the crates under `root`, reading the names the index holds.
    pub fn open(root: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(root.join("index"))?;
        std::fs::create_dir_all(root.join("crates"))?;
        let mut names = HashMap::new();
        let mut stack = vec![root.join("index")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir)? {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    stack.push(entry.path());
                } else if let Some(name) = entry.file_name().to_str()
                    && valid_name(name)
                {
                    names.insert(canonical(name), name.to_owned());
                }
            }
        }
        Ok(Self {
            root: root.to_owned(),
            names: RwLock::new(names),
        })
    }

    /// The index name (lowercased, as first published) of the crate `name` names.
    pub async fn lookup(&self, name: &str) -> Option<String> {
        self.names.read().await.get(&canonical(name)).cloned()
    }

    /// Whether the registry has the crate `name` names.
    pub async fn exists(&self, name: &str) -> bool {
        self.lookup(name).await.is_some()
    }

    fn index_file(&self, lower: &str) -> Option<PathBuf> {
        index_path(lower).map(|p| self.root.join("index").join(p))
    }

    fn crate_file(&self, lower: &str, version: &str) -> PathBuf {
        self.root
            .join("crates")
            .join(lower)
            .join(format!("{version}.crate"))
    }

    /// The index file at `path` (as cargo asks for it), if the crate exists.
    pub async fn index(&self, lower: &str) -> Result<Vec<u8>, CrateError> {
        let _read = self.names.read().await;
        let file = self
            .index_file(lower)
            .ok_or_else(|| CrateError::NotFound(lower.to_owned()))?;
        match std::fs::read(file) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(CrateError::NotFound(lower.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The `.crate` file of `name` at `version`.
    pub async fn download(&self, name: &str, version: &str) -> Result<Vec<u8>, CrateError> {
        let lower = self
            .lookup(name)
            .await
            .ok_or_else(|| CrateError::NotFound(name.to_owned()))?;
        if !valid_version(version) {
            return Err(CrateError::VersionNotFound(lower, version.to_owned()));
        }
        match std::fs::read(self.crate_file(&lower, version)) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(CrateError::VersionNotFound(lower, version.to_owned()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Adds a version: the `.crate` file, then its index line.
    pub async fn publish(
        &self,
        name: &str,
        version: &str,
        entry: &serde_json::Value,
        file: &[u8],
    ) -> Result<(), CrateError> {
        let mut names = self.names.write().await;
        let lower = name.to_ascii_lowercase();
        if let Some(existing) = names.get(&canonical(name))
            && *existing != lower
        {
            return Err(CrateError::NameTaken(name.to_owned(), existing.clone()));
        }
        let index_file = self
            .index_file(&lower)
            .ok_or_else(|| CrateError::NotFound(name.to_owned()))?;
        let mut lines = read_lines(&index_file, &lower)?;
        if lines.iter().any(|l| version_of(l) == Some(version)) {
            return Err(CrateError::VersionExists(
                name.to_owned(),
                version.to_owned(),
            ));
        }
        write_atomically(&self.crate_file(&lower, version), file)?;
        lines.push(entry.clone());
        write_lines(&index_file, &lines)?;
        names.insert(canonical(name), lower);
        Ok(())
    }

    /// Sets the `yanked` flag of one version.
    pub async fn set_yanked(
        &self,
        name: &str,
        version: &str,
        yanked: bool,
    ) -> Result<(), CrateError> {
        let names = self.names.write().await;
        let lower = names
            .get(&canonical(name))
            .cloned()
            .ok_or_else(|| CrateError::NotFound(name.to_owned()))?;
        let index_file = self
            .index_file(&lower)
            .ok_or_else(|| CrateError::NotFound(name.to_owned()))?;
        let mut lines = read_lines(&index_file, &lower)?;
        let line = lines
            .iter_mut()
            .find(|l| version_of(l) == Some(version))
            .ok_or_else(|| CrateError::VersionNotFound(lower.clone(), version.to_owned()))?;
        if let Some(fields) = line.as_object_mut() {
            fields.insert("yanked".to_owned(), serde_json::Value::Bool(yanked));
        }
        write_lines(&index_file, &lines)?;
        drop(names);
        Ok(())
    }
}

fn version_of(line: &serde_json::Value) -> Option<&str> {
    line.get("vers").and_then(serde_json::Value::as_str)
}

fn read_lines(file: &Path, lower: &str) -> Result<Vec<serde_json::Value>, CrateError> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|_| CrateError::Corrupt(lower.to_owned())))
        .collect()
}

fn write_lines(file: &Path, lines: &[serde_json::Value]) -> Result<(), CrateError> {
    let mut text = String::new();
    for line in lines {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    write_atomically(file, text.as_bytes())
}

fn write_atomically(file: &Path, bytes: &[u8]) -> Result<(), CrateError> {
    let dir = file
        .parent()
        .ok_or_else(|| io::Error::other("a file with no directory"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, file)?;
    Ok(())
}
