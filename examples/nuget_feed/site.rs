//! The registry's own records, beside feedkey's tokens: who the users are (name and
//! e-mail), which account owns which feed, the web sessions, password-reset links and
//! the expiry warnings already sent. One SQLite file (`site.db`), separate from
//! feedkey's `tokens.db`, so that the token store stays the library's alone.
//!
//! Every statement is short and runs under one lock; nothing here is on the package
//! paths, which read the feed table once at start and keep it in memory.

use std::path::Path;
use std::sync::Mutex;

use feedkey::time::OffsetDateTime;
use rusqlite::{Connection, OptionalExtension as _, params};

/// Why a change to the site's records was refused.
#[derive(Debug)]
pub enum SiteError {
    /// The user name or e-mail address is someone else's.
    Taken(&'static str),
    /// The database failed.
    Database(rusqlite::Error),
}

impl std::fmt::Display for SiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Taken(what) => write!(f, "that {what} is taken"),
            Self::Database(e) => write!(f, "site database: {e}"),
        }
    }
}

impl std::error::Error for SiteError {}

impl From<rusqlite::Error> for SiteError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Database(e)
    }
}

/// A feed as the site records it.
pub struct FeedRow {
    pub name: String,
    pub owner: String,
    pub private: bool,
}

/// The site database.
pub struct Site {
    db: Mutex<Connection>,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS feeds (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    private INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    account TEXT,
    data TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_account ON sessions (account);
CREATE TABLE IF NOT EXISTS password_resets (
    digest BLOB PRIMARY KEY,
    account TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS password_changes (
    account TEXT PRIMARY KEY,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS expiry_warnings (
    token TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (token, expires_at)
);
";

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

impl Site {
    /// Opens (or makes) `site.db` in `data`.
    pub fn open(data: &Path) -> Result<Self, SiteError> {
        let db = Connection::open(data.join("site.db"))?;
        db.execute_batch(SCHEMA)?;
        Ok(Self { db: Mutex::new(db) })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, SiteError> {
        // A panic elsewhere while holding the lock leaves the connection usable: every
        // change here is one statement or one transaction.
        let mut db = self
            .db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(f(&mut db)?)
    }

    /// Records a new user; refused when the name or the e-mail address is taken.
    pub fn add_user(&self, name: &str, email: &str) -> Result<(), SiteError> {
        let taken = self.with(|db| {
            let name_taken = db
                .query_row("SELECT 1 FROM users WHERE name = ?1", [name], |_| Ok(()))
                .optional()?
                .is_some();
            let email_taken = db
                .query_row("SELECT 1 FROM users WHERE email = ?1", [email], |_| Ok(()))
                .optional()?
                .is_some();
            if !name_taken && !email_taken {
                db.execute(
                    "INSERT INTO users (name, email, created_at) VALUES (?1, ?2, ?3)",
                    params![name, email, now()],
                )?;
            }
            Ok((name_taken, email_taken))
        })?;
        match taken {
            (true, _) => Err(SiteError::Taken("user name")),
            (_, true) => Err(SiteError::Taken("e-mail address")),
            _ => Ok(()),
        }
    }

    /// Forgets a user recorded by [`Site::add_user`] whose account could not be made.
    pub fn remove_user(&self, name: &str) -> Result<(), SiteError> {
        self.with(|db| {
            db.execute("DELETE FROM users WHERE name = ?1", [name])
                .map(drop)
        })
    }

    /// The e-mail address of a user, if the site knows one.
    pub fn email(&self, name: &str) -> Result<Option<String>, SiteError> {
        self.with(|db| {
            db.query_row("SELECT email FROM users WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    /// The user name that has this e-mail address.
    pub fn user_by_email(&self, email: &str) -> Result<Option<String>, SiteError> {
        self.with(|db| {
            db.query_row("SELECT name FROM users WHERE email = ?1", [email], |r| {
                r.get(0)
            })
            .optional()
        })
    }

    /// Every feed.
    pub fn feeds(&self) -> Result<Vec<FeedRow>, SiteError> {
        self.with(|db| {
            let mut statement = db.prepare("SELECT name, owner, private FROM feeds")?;
            let rows = statement.query_map([], |r| {
                Ok(FeedRow {
                    name: r.get(0)?,
                    owner: r.get(1)?,
                    private: r.get(2)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Records a feed; `false` when the name is taken (by anyone).
    pub fn add_feed(&self, name: &str, owner: &str, private: bool) -> Result<bool, SiteError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO feeds (name, owner, private, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO NOTHING",
                params![name, owner, private, now()],
            )
            .map(|n| n == 1)
        })
    }

    /// Stores a session record (JSON) with its account, if signed in.
    pub fn save_session(
        &self,
        id: &str,
        account: Option<&str>,
        data: &str,
        expires_at: i64,
    ) -> Result<(), SiteError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO sessions (id, account, data, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET account = ?2, data = ?3, expires_at = ?4",
                params![id, account, data, expires_at],
            )
            .map(drop)
        })
    }

    /// Stores a new session record; `false` when the id is in use.
    pub fn create_session(
        &self,
        id: &str,
        account: Option<&str>,
        data: &str,
        expires_at: i64,
    ) -> Result<bool, SiteError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO sessions (id, account, data, expires_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO NOTHING",
                params![id, account, data, expires_at],
            )
            .map(|n| n == 1)
        })
    }

    /// A session record that has not expired.
    pub fn session(&self, id: &str) -> Result<Option<String>, SiteError> {
        self.with(|db| {
            db.query_row(
                "SELECT data FROM sessions WHERE id = ?1 AND expires_at > ?2",
                params![id, now()],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Ends one session.
    pub fn delete_session(&self, id: &str) -> Result<(), SiteError> {
        self.with(|db| {
            db.execute("DELETE FROM sessions WHERE id = ?1", [id])
                .map(drop)
        })
    }

    /// Keeps a password-reset link (its digest) for an account until `expires_at`.
    pub fn add_reset(
        &self,
        digest: &[u8; 32],
        account: &str,
        expires_at: i64,
    ) -> Result<(), SiteError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO password_resets (digest, account, expires_at) VALUES (?1, ?2, ?3)",
                params![&digest[..], account, expires_at],
            )
            .map(drop)
        })
    }

    /// The account a live reset link is for, without using it up.
    pub fn reset(&self, digest: &[u8; 32]) -> Result<Option<String>, SiteError> {
        self.with(|db| {
            db.query_row(
                "SELECT account FROM password_resets WHERE digest = ?1 AND expires_at > ?2",
                params![&digest[..], now()],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// Uses up a reset link, and every other link of its account; the account it was
    /// for, if it was live.
    pub fn take_reset(&self, digest: &[u8; 32]) -> Result<Option<String>, SiteError> {
        self.with(|db| {
            let tx = db.transaction()?;
            let account: Option<String> = tx
                .query_row(
                    "SELECT account FROM password_resets WHERE digest = ?1 AND expires_at > ?2",
                    params![&digest[..], now()],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(account) = &account {
                tx.execute("DELETE FROM password_resets WHERE account = ?1", [account])?;
            }
            tx.commit()?;
            Ok(account)
        })
    }

    /// Whether the expiry warning for this token and expiry was sent.
    pub fn warned(&self, token: &str, expires_at: i64) -> Result<bool, SiteError> {
        self.with(|db| {
            db.query_row(
                "SELECT 1 FROM expiry_warnings WHERE token = ?1 AND expires_at = ?2",
                params![token, expires_at],
                |_| Ok(()),
            )
            .optional()
            .map(|r| r.is_some())
        })
    }

    /// Records that the expiry warning for this token and expiry was sent.
    pub fn mark_warned(&self, token: &str, expires_at: i64) -> Result<(), SiteError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO expiry_warnings (token, expires_at, sent_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                params![token, expires_at, now()],
            )
            .map(drop)
        })
    }

    /// Drops expired sessions and reset links.
    pub fn sweep(&self) -> Result<(), SiteError> {
        self.with(|db| {
            let now = now();
            db.execute("DELETE FROM sessions WHERE expires_at <= ?1", [now])?;
            db.execute("DELETE FROM password_resets WHERE expires_at <= ?1", [now])?;
            Ok(())
        })
    }
}

/// Milliseconds since the epoch: sessions signed in before a password change end.
pub fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl Site {
    /// Records that an account's password changed now: its older sessions and its
    /// reset links are ended.
    pub fn password_changed(&self, account: &str) -> Result<i64, SiteError> {
        let at = now_ms();
        self.with(|db| {
            db.execute(
                "INSERT INTO password_changes (account, at) VALUES (?1, ?2)
                 ON CONFLICT (account) DO UPDATE SET at = ?2",
                params![account, at],
            )?;
            db.execute("DELETE FROM sessions WHERE account = ?1", [account])?;
            // Reset links mailed before the change stop working with it.
            db.execute("DELETE FROM password_resets WHERE account = ?1", [account])?;
            Ok(at)
        })
    }

    /// When the account's password last changed, if it ever did through the site.
    pub fn password_changed_at(&self, account: &str) -> Result<Option<i64>, SiteError> {
        self.with(|db| {
            db.query_row(
                "SELECT at FROM password_changes WHERE account = ?1",
                [account],
                |r| r.get(0),
            )
            .optional()
        })
    }
}

impl Site {
    /// Makes a feed public or private.
    pub fn set_private(&self, name: &str, private: bool) -> Result<(), SiteError> {
        self.with(|db| {
            db.execute(
                "UPDATE feeds SET private = ?2 WHERE name = ?1",
                params![name, private],
            )
            .map(drop)
        })
    }
}
