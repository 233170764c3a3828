//! The stored audit trail, read from the facade: the events by filter and page, the
//! retention, and the revocations re-applied after a restore.

use time::{Duration, OffsetDateTime};

use crate::audit::{AuditFilter, AuditPage, RevokeCause, TrailKind, decode};
use crate::error::Error;
use crate::service::Feedkey;
use crate::store::{AuditStore, TokenStore};

impl<S: TokenStore + AuditStore> Feedkey<S> {
    /// A page of the stored audit trail (see [`StoredAudit`](crate::audit::StoredAudit)):
    /// the events `filter` selects, oldest first, at most its limit. The next page is
    /// `filter.after(cursor)` with the page's [`AuditPage::next`].
    ///
    /// ```
    /// # use feedkey::store::AuditStore;
    /// # async fn demo<S: feedkey::TokenStore + AuditStore>(
    /// #     keys: &feedkey::Feedkey<S>,
    /// #     alice: &feedkey::AccountId,
    /// # ) -> Result<(), feedkey::Error> {
    /// use feedkey::audit::AuditFilter;
    ///
    /// let mut filter = AuditFilter::new().account(alice).kind("revoked");
    /// loop {
    ///     let page = keys.audit_events(&filter).await?;
    ///     for event in &page.events {
    ///         println!("{} {:?} {:?}", event.at, event.token, event.kind);
    ///     }
    ///     let Some(next) = page.next else { break };
    ///     filter = filter.after(next);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// A store failure, or [`StoreError::Corrupt`](crate::store::StoreError::Corrupt)
    /// naming a row that cannot be read.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<AuditPage, Error> {
        page_of(&self.store, filter).await
    }

    /// Deletes the stored audit events older than `older_than`; returns how many. (Or
    /// let the sink do it: [`StoredAuditBuilder::retention`].)
    ///
    /// [`StoredAuditBuilder::retention`]: crate::audit::StoredAuditBuilder::retention
    ///
    /// # Errors
    /// A store failure.
    pub async fn purge_audit(&self, older_than: Duration) -> Result<u64, Error> {
        let before = self.now().saturating_sub(older_than);
        Ok(self.store.purge_audit(before).await?)
    }

    /// Re-applies the revocations of this store's own trail made at or after `since`: for
    /// a restore that brought back the token tables of a backup and kept `feedkey_audit`
    /// as it was. See [`Feedkey::replay_revocations_from`], and the runbook in
    /// `docs/operations.md` ("Restoring a backup").
    ///
    /// # Errors
    /// As [`Feedkey::replay_revocations_from`].
    pub async fn replay_revocations(&self, since: OffsetDateTime) -> Result<u64, Error> {
        self.replay_revocations_from(&self.store, since).await
    }
}

impl<S: TokenStore> Feedkey<S> {
    /// Re-applies the revocations recorded in `trail` at or after `since` to this
    /// (restored) store: each token revoked then that is alive here again is revoked again,
    /// with its first cause, and the revocation is audited as any other. Returns how many
    /// tokens were revoked. Idempotent: a token revoked already, or missing (issued after
    /// the backup), is left alone.
    ///
    /// `trail` is where the revocations since the backup still are: the database as it
    /// was before the restore (kept aside, opened as a second store), or this store when
    /// only its token tables were restored ([`Feedkey::replay_revocations`]). `since` is
    /// the time of the backup, minus a margin: a revocation replayed twice costs nothing.
    ///
    /// ```
    /// # #[cfg(feature = "sqlite")]
    /// # async fn demo(
    /// #     keys: &feedkey::Feedkey<feedkey::store::SqliteStore>,
    /// #     backup_taken_at: feedkey::time::OffsetDateTime,
    /// # ) -> Result<(), Box<dyn std::error::Error>> {
    /// use feedkey::store::SqliteStore;
    /// use feedkey::time::Duration;
    ///
    /// // The database as it was before the restore, kept aside.
    /// let before_restore = SqliteStore::open("/var/lib/registry/tokens.db.before-restore")?;
    /// let since = backup_taken_at - Duration::hours(1);
    /// let revoked = keys.replay_revocations_from(&before_restore, since).await?;
    /// println!("{revoked} revocations re-applied");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// A store failure (of either store), or a trail row that cannot be read; the tokens
    /// revoked before it stay revoked, and a second run picks up the rest.
    pub async fn replay_revocations_from(
        &self,
        trail: &impl AuditStore,
        since: OffsetDateTime,
    ) -> Result<u64, Error> {
        self.keys_ready().await?;
        let mut filter = AuditFilter::new()
            .kind("revoked")
            .since(since)
            .limit(AuditFilter::MAX_LIMIT);
        let mut revoked = 0;
        loop {
            // Raw rows, each decoded alone: a row this release cannot read (a cause a
            // newer release wrote, a spoiled detail) must not stop the replay; its
            // token is revoked all the same, as by its owner.
            let limit = filter.limit_is() as usize;
            let mut rows = trail.audit_rows(&filter.one_more()).await?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let last = rows.last().map(|r| r.id);
            for stored in rows {
                let (Some(account), Some(token)) = (stored.row.account.clone(), stored.row.token)
                else {
                    continue;
                };
                let client = stored.row.client_addr;
                let cause = match decode(stored) {
                    Ok(event) => match event.kind {
                        TrailKind::Revoked { cause } => cause,
                        _ => continue,
                    },
                    Err(_) => RevokeCause::Owner,
                };
                match self.revoke_as(&account, token, cause, client).await {
                    Ok(()) => revoked += 1,
                    // Revoked already, or not in this store: nothing to re-apply.
                    Err(Error::TokenNotFound) => {}
                    Err(e) => return Err(e),
                }
            }
            match (more, last) {
                (true, Some(next)) => filter = filter.after(next),
                _ => break,
            }
        }
        Ok(revoked)
    }
}

/// A page of `trail`: one row more than the limit is read, to know whether another page
/// follows.
async fn page_of(trail: &impl AuditStore, filter: &AuditFilter) -> Result<AuditPage, Error> {
    let limit = filter.limit_is();
    let mut rows = trail.audit_rows(&filter.one_more()).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let events = rows
        .into_iter()
        .map(decode)
        .collect::<Result<Vec<_>, _>>()?;
    let next = if more {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditPage { events, next })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use time::OffsetDateTime;

    use crate::audit::AuditFilter;
    use crate::store::{AuditRow, AuditStore};
    use crate::{Feedkey, MemoryStore, TokenKey};

    #[tokio::test(flavor = "current_thread")]
    async fn a_page_of_the_largest_size_still_says_that_another_follows() {
        let store = Arc::new(MemoryStore::new());
        let row = AuditRow {
            at: OffsetDateTime::UNIX_EPOCH,
            kind: "issued".to_owned(),
            account: None,
            token: None,
            client_addr: None,
            detail: "{}".to_owned(),
        };
        let rows = vec![row; AuditFilter::MAX_LIMIT as usize + 1];
        store.append_audit(&rows).await.unwrap();
        let keys = Feedkey::builder(Arc::clone(&store), TokenKey::new(1, &[7; 32]))
            .build()
            .unwrap();
        let filter = AuditFilter::new().limit(AuditFilter::MAX_LIMIT);
        let first = keys.audit_events(&filter).await.unwrap();
        assert_eq!(first.events.len(), AuditFilter::MAX_LIMIT as usize);
        let next = first.next.expect("one more row follows");
        let second = keys.audit_events(&filter.after(next)).await.unwrap();
        assert_eq!(second.events.len(), 1);
        assert_eq!(second.next, None);
    }

    /// A revocation row this release cannot read (a cause from a newer release) still
    /// revokes its token in a replay, and the rows after it are replayed too.
    #[tokio::test(flavor = "current_thread")]
    async fn an_unreadable_revocation_row_does_not_stop_the_replay() {
        use crate::{AccountId, Expiry, NewToken, Scope};

        let store = Arc::new(MemoryStore::new());
        let keys = Feedkey::builder(Arc::clone(&store), TokenKey::new(1, &[7; 32]))
            .build()
            .unwrap();
        let alice = AccountId::new("alice").unwrap();
        keys.create_account(&alice, Expiry::Never).await.unwrap();
        let a = keys
            .issue(&alice, NewToken::new("a", Scope::read_only()))
            .await
            .unwrap();
        let b = keys
            .issue(&alice, NewToken::new("b", Scope::read_only()))
            .await
            .unwrap();
        let row = |token, detail: &str| AuditRow {
            at: OffsetDateTime::now_utc(),
            kind: "revoked".to_owned(),
            account: Some(alice.clone()),
            token: Some(token),
            client_addr: None,
            detail: detail.to_owned(),
        };
        store
            .append_audit(&[
                row(a.token.id(), r#"{"cause":"from-a-newer-release"}"#),
                row(b.token.id(), r#"{"cause":"owner"}"#),
            ])
            .await
            .unwrap();
        let since = OffsetDateTime::now_utc() - time::Duration::hours(1);
        assert_eq!(keys.replay_revocations(since).await.unwrap(), 2);
        for t in [&a, &b] {
            assert!(
                keys.token(&alice, t.token.id()).await.is_err(),
                "still live"
            );
        }
    }
}
