//! What npm shows of a token that feedkey does not hold: its `--name` and
//! `--token-description` (feedkey keeps one description, the name), and whether it is a
//! login session (`npm login`), which may manage tokens. Kept in `token-notes.json`
//! beside the tokens, written whole and renamed into place on every change.
//!
//! Everything a token may do (permission, packages, CIDR ranges, expiry) is read from
//! feedkey's record, never from here: the list shows what is enforced.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use feedkey::TokenId;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// One token's note.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Note {
    /// `npm token create --name`.
    pub name: String,
    /// `npm token create --token-description`.
    #[serde(default)]
    pub description: String,
    /// Issued by `npm login`: may list, create (with the password) and revoke tokens.
    #[serde(default)]
    pub session: bool,
}

/// The notes of every token, by token id.
pub struct Notes {
    file: PathBuf,
    notes: Mutex<BTreeMap<String, Note>>,
}

impl Notes {
    /// Reads `file`, or starts empty when there is none.
    pub fn open(file: &Path) -> io::Result<Self> {
        let notes = match std::fs::read(file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Self {
            file: file.to_owned(),
            notes: Mutex::new(notes),
        })
    }

    /// The note of `id`, if it has one.
    pub async fn get(&self, id: TokenId) -> Option<Note> {
        self.notes.lock().await.get(&id.to_string()).cloned()
    }

    /// Whether `id` is a login session.
    pub async fn is_session(&self, id: TokenId) -> bool {
        self.get(id).await.is_some_and(|n| n.session)
    }

    /// Records the note of `id`.
    pub async fn put(&self, id: TokenId, note: Note) -> io::Result<()> {
        let mut notes = self.notes.lock().await;
        notes.insert(id.to_string(), note);
        self.save(&notes)
    }

    /// Forgets `id` (revoked).
    pub async fn forget(&self, id: TokenId) -> io::Result<()> {
        let mut notes = self.notes.lock().await;
        if notes.remove(&id.to_string()).is_some() {
            self.save(&notes)?;
        }
        Ok(())
    }

    fn save(&self, notes: &BTreeMap<String, Note>) -> io::Result<()> {
        let tmp = self.file.with_extension("tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(notes).map_err(io::Error::other)?,
        )?;
        std::fs::rename(&tmp, &self.file)
    }
}
