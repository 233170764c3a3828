//! Web sessions kept in the site database ([`Site`]), for `tower-sessions`: a session
//! survives a restart, and every session of an account can be ended at once (when its
//! password changes), because each row names the account signed in.

use std::sync::Arc;

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use crate::site::Site;

/// The session key that holds the signed-in account's name.
pub const ACCOUNT: &str = "account";

/// The session store on the site database.
#[derive(Clone)]
pub struct SiteSessions(pub Arc<Site>);

impl std::fmt::Debug for SiteSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SiteSessions")
    }
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

/// The row's parts: the JSON, the account signed in, the expiry.
fn row(record: &Record) -> session_store::Result<(String, Option<String>, i64)> {
    let data =
        serde_json::to_string(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
    let account = record
        .data
        .get(ACCOUNT)
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    Ok((data, account, record.expiry_date.unix_timestamp()))
}

#[async_trait]
impl SessionStore for SiteSessions {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        // A fresh random id that collides is drawn again, never overwritten.
        loop {
            let (data, account, expires) = row(record)?;
            let id = record.id.to_string();
            if self
                .0
                .create_session(&id, account.as_deref(), &data, expires)
                .map_err(backend)?
            {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let (data, account, expires) = row(record)?;
        self.0
            .save_session(&record.id.to_string(), account.as_deref(), &data, expires)
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self.0.session(&id.to_string()).map_err(backend)? {
            Some(data) => serde_json::from_str(&data)
                .map(Some)
                .map_err(|e| session_store::Error::Decode(e.to_string())),
            None => Ok(None),
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.0.delete_session(&id.to_string()).map_err(backend)
    }
}
