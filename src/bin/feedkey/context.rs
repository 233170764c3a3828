//! What every command works with: the store the database URL names, and a `Feedkey` on
//! it with the key file's keys and the stored audit trail.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use feedkey::audit::StoredAudit;
use feedkey::store::{AnyStore, SqlStore, SqliteStore};
use feedkey::{Feedkey, LifetimePolicy};

use crate::failure::Failure;
use crate::keyring;
use feedkey::KeyRing;

/// The global flags.
pub struct Global {
    pub database: Option<String>,
    pub key_file: Option<PathBuf>,
    pub json: bool,
}

impl Global {
    pub fn database(&self) -> Result<&str, Failure> {
        self.database.as_deref().ok_or_else(|| {
            Failure::usage("no database: give --database URL or set FEEDKEY_DATABASE_URL")
        })
    }

    pub fn key_file(&self) -> Result<&Path, Failure> {
        self.key_file.as_deref().ok_or_else(|| {
            Failure::usage("no key file: give --key-file PATH or set FEEDKEY_KEY_FILE")
        })
    }
}

/// Opens (and migrates) the store `url` names: `sqlite:PATH` (or `sqlite://PATH`),
/// `postgres://…`, `postgresql://…`, `mysql://…`, `mariadb://…`.
pub async fn open_store(url: &str) -> Result<AnyStore, Failure> {
    if let Some(path) = url.strip_prefix("sqlite:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(Failure::usage("a SQLite URL names a file: sqlite:PATH"));
        }
        let path = PathBuf::from(path);
        // Opening is blocking file work.
        let opened = tokio::task::spawn_blocking(move || SqliteStore::open(path))
            .await
            .map_err(|e| Failure::failed(format!("opening the SQLite database: {e}")))?;
        return opened
            .map(AnyStore::from)
            .map_err(|e| Failure::unreachable(format!("cannot open the database {url}: {e}")));
    }
    let known = ["postgres://", "postgresql://", "mysql://", "mariadb://"];
    if !known.iter().any(|scheme| url.starts_with(scheme)) {
        return Err(Failure::usage(
            "a database URL starts with sqlite:, postgres://, postgresql://, mysql:// or mariadb://",
        ));
    }
    SqlStore::connect(url)
        .await
        .map(AnyStore::from)
        .map_err(|e| {
            Failure::unreachable(format!(
                "the database does not answer ({}): {e}",
                redacted(url)
            ))
        })
}

/// `url` without its password, for messages.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}

/// The store, the keys, the output mode.
pub struct Context {
    pub store: Arc<AnyStore>,
    pub keys: Feedkey<Arc<AnyStore>>,
    pub json: bool,
    pub ring: KeyRing,
    pub key_file: PathBuf,
    audit: StoredAudit,
}

impl Context {
    /// Opens the store and reads the key file.
    pub async fn open(global: &Global) -> Result<Self, Failure> {
        let key_file = global.key_file()?.to_path_buf();
        let ring = keyring::read(&key_file, false)?;
        let (current, previous) = keyring::keys(&ring, &key_file)?;
        let store = Arc::new(open_store(global.database()?).await?);
        let audit = StoredAudit::new(Arc::clone(&store))
            .map_err(|e| Failure::failed(format!("starting the audit writer: {e}")))?;
        let keys = Feedkey::builder(Arc::clone(&store), current)
            .previous_keys(previous)
            .lifetime_policy(LifetimePolicy::default())
            .audit(audit.clone())
            .build()
            .map_err(|e| Failure::failed(format!("configuration: {e}")))?;
        Ok(Self {
            store,
            keys,
            json: global.json,
            ring,
            key_file,
            audit,
        })
    }

    /// Another `Feedkey` on the same store, keys and audit trail, with `policy`.
    pub fn keys_with(&self, policy: LifetimePolicy) -> Result<Feedkey<Arc<AnyStore>>, Failure> {
        let (current, previous) = keyring::keys(&self.ring, &self.key_file)?;
        Feedkey::builder(Arc::clone(&self.store), current)
            .previous_keys(previous)
            .lifetime_policy(policy)
            .audit(self.audit.clone())
            .build()
            .map_err(|e| Failure::failed(format!("configuration: {e}")))
    }

    /// Prints `value` as JSON (pretty), for `--json`.
    pub fn print_json(&self, value: &serde_json::Value) -> Result<(), Failure> {
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| Failure::failed(format!("printing JSON: {e}")))?;
        println!("{text}");
        Ok(())
    }
}
