//! Maintenance a registry runs on a schedule: expiry warnings, retiring idle tokens and
//! purging revoked ones; and the flush a stopping server runs.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use time::Duration;

use crate::account::AccountId;
use crate::audit::{AuditKind, RevokeCause};
use crate::error::Error;
use crate::record::{StoredToken, TokenInfo};
use crate::service::Feedkey;
use crate::store::TokenStore;
use crate::token::TokenId;

impl<S: TokenStore> Feedkey<S> {
    /// Writes what is held back — the store's buffered last-used times, the audit sink's
    /// pending events — for a server that is stopping: call it from the SIGTERM handler,
    /// after the last request. Requests may still run meanwhile; anything they buffer
    /// after it waits for the next flush.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use feedkey::{Feedkey, MemoryStore, TokenKey};
    ///
    /// let keys = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[7; 32])).build()?;
    /// // … serve until SIGTERM, then:
    /// keys.flush().await?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// The audit sink's flush is awaited ([`AuditSink::flush_async`]): a sink that writes
    /// from a task of its own, as `audit::StoredAudit` does, has written every event
    /// recorded before this call when it returns.
    ///
    /// [`AuditSink::flush_async`]: crate::audit::AuditSink::flush_async
    ///
    /// # Errors
    /// A store failure, or the audit sink's failure to write; the audit sink is flushed
    /// all the same, and what the store or the sink held back stays for the next try.
    pub async fn flush(&self) -> Result<(), Error> {
        let stored = self.store.flush().await;
        let audited = self.audit.flush_async().await;
        stored?;
        Ok(audited?)
    }

    /// The account's tokens that expire within `within` from now, and those already
    /// expired (NuGet warns ten days ahead, and shows the expired ones).
    ///
    /// # Errors
    /// A store failure.
    pub async fn expiring_within(
        &self,
        account: &AccountId,
        within: Duration,
    ) -> Result<Vec<TokenInfo>, Error> {
        self.keys_ready().await?;
        let until = self.now().saturating_add(within);
        Ok(self
            .tokens(account)
            .await?
            .into_iter()
            .filter(|t| t.expires_at.is_some_and(|e| e < until))
            .collect())
    }

    /// Every account's tokens that are still valid but expire within `within`: what a
    /// daily job mails a warning about. Each account's list is also sent to the audit
    /// sink as an [`AuditKind::ExpiringSoon`] event.
    ///
    /// # Errors
    /// A store failure.
    pub async fn all_expiring_within(&self, within: Duration) -> Result<Vec<TokenInfo>, Error> {
        self.keys_ready().await?;
        let now = self.now();
        let expiring = self
            .store
            .tokens_expiring(now, now.saturating_add(within))
            .await?;
        // Each parent read once, however many of its children expire.
        let mut parents: HashMap<TokenId, Option<StoredToken>> = HashMap::new();
        for id in expiring.iter().filter_map(|t| t.record.parent) {
            if let Entry::Vacant(slot) = parents.entry(id) {
                slot.insert(self.store.token(&id).await?);
            }
        }
        let tokens: Vec<TokenInfo> = expiring
            .iter()
            .map(|t| {
                let parent = t.record.parent.and_then(|p| parents.get(&p)?.as_ref());
                self.info_with(t, parent)
            })
            .collect();
        if self.audit.enabled() {
            let mut accounts: Vec<&AccountId> = tokens.iter().map(|t| &t.account).collect();
            accounts.sort();
            accounts.dedup();
            for account in accounts {
                let list = tokens
                    .iter()
                    .filter(|t| &t.account == account)
                    .filter_map(|t| t.expires_at.map(|e| (t.id, e)))
                    .collect();
                self.audit_event(AuditKind::ExpiringSoon { tokens: list }, account, None);
            }
        }
        Ok(tokens)
    }

    /// Revokes for good every token (primary keys included) that the idle policy
    /// retires: unused for longer than [`LifetimePolicy::with_idle_expiry`] allows. Such
    /// tokens are already refused by `authorize`; this makes it final and audits it. Run
    /// it daily. Returns how many were retired.
    ///
    /// [`LifetimePolicy::with_idle_expiry`]: crate::LifetimePolicy::with_idle_expiry
    ///
    /// # Errors
    /// A store failure (tokens retired before it stay retired).
    pub async fn retire_idle(&self) -> Result<u64, Error> {
        self.keys_ready().await?;
        let Some(idle) = self.policy.idle_after() else {
            return Ok(0);
        };
        let now = self.now();
        let mut retired = 0;
        for stored in self
            .store
            .tokens_unused_since(now.saturating_sub(idle))
            .await?
        {
            if !self
                .policy
                .is_idle(stored.record.created_at, stored.last_used_at, now)
            {
                continue;
            }
            match self
                .revoke_as(
                    &stored.record.account,
                    stored.record.id,
                    RevokeCause::Idle,
                    None,
                )
                .await
            {
                Ok(()) => retired += 1,
                // Revoked or deleted meanwhile: nothing left to retire.
                Err(Error::TokenNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(retired)
    }

    /// Deletes the records of tokens revoked more than `older_than` ago. Until then a
    /// revoked token's use is logged as "revoked" rather than "unknown".
    ///
    /// # Errors
    /// A store failure.
    pub async fn purge_revoked(&self, older_than: Duration) -> Result<u64, Error> {
        self.keys_ready().await?;
        let before = self.now().saturating_sub(older_than);
        Ok(self.store.purge_revoked(before).await?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use crate::audit::{AuditEvent, AuditSink};
    use crate::{Feedkey, MemoryStore, TokenKey};

    /// Counts its flushes.
    struct Held(Arc<AtomicUsize>);

    impl AuditSink for Held {
        fn record(&self, _: &AuditEvent) {}
        fn flush(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_flush_reaches_the_audit_sink() {
        let flushes = Arc::new(AtomicUsize::new(0));
        let keys = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[7; 32]))
            .audit(Held(Arc::clone(&flushes)))
            .build()
            .unwrap();
        keys.flush().await.unwrap();
        assert_eq!(flushes.load(Ordering::SeqCst), 1);
    }
}
