//! What every management operation shares: the clock, audit events, minting secrets,
//! the views of a record, and the retried read-modify-write of a token.

use std::net::IpAddr;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::account::AccountId;
use crate::audit::{AuditEvent, AuditKind};
use crate::error::Error;
use crate::policy::liveness;
use crate::record::{AccountRecord, StoredToken, TokenInfo, TokenRecord};
use crate::secret::SecretHash;
use crate::service::Feedkey;
use crate::store::{StoreError, TokenStore};
use crate::token::{PlainToken, TokenId, random_secret};

use super::IssuedToken;
use super::standing;

/// How many times a management write is tried when concurrent writes keep winning.
pub(super) const MAX_ATTEMPTS: usize = 8;

/// The revision after `record`'s.
pub(super) fn next_revision(record: &TokenRecord) -> Result<u64, Error> {
    record.revision.checked_add(1).ok_or_else(|| {
        Error::Store(StoreError::Corrupt {
            what: record.id.to_string(),
            detail: "revision overflow".to_owned(),
        })
    })
}

impl<S: TokenStore> Feedkey<S> {
    pub(super) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    pub(super) fn audit_event(&self, kind: AuditKind, account: &AccountId, token: Option<TokenId>) {
        self.audit_from(kind, account, token, None);
    }

    pub(super) fn audit_from(
        &self,
        kind: AuditKind,
        account: &AccountId,
        token: Option<TokenId>,
        client_addr: Option<IpAddr>,
    ) {
        if self.audit.enabled() {
            self.emit(AuditEvent {
                kind,
                account: Some(account.clone()),
                token,
                client_addr,
                at: self.now(),
            });
        }
    }

    pub(super) fn mint(&self) -> Result<(TokenId, PlainToken, SecretHash), Error> {
        let id = TokenId::random().map_err(|_| Error::Entropy)?;
        self.mint_for(id).map(|(plain, hash)| (id, plain, hash))
    }

    pub(super) fn mint_for(&self, id: TokenId) -> Result<(PlainToken, SecretHash), Error> {
        let secret = random_secret().map_err(|_| Error::Entropy)?;
        Ok((
            self.format.encode(&id, &secret),
            self.hasher.hash(&id, &secret),
        ))
    }

    /// How a token shows at `now`, its standing decided by [`liveness::check`] against
    /// `parent` (the parent's record as looked up, for a derived token).
    pub(super) fn info_with(
        &self,
        stored: &StoredToken,
        parent: Option<&StoredToken>,
    ) -> TokenInfo {
        let now = self.now();
        TokenInfo::of(
            stored,
            liveness::status(stored, parent, &self.policy, now),
            now,
        )
    }

    /// As [`Feedkey::info_with`], looking the parent up for a derived token.
    pub(super) async fn info(&self, stored: &StoredToken) -> Result<TokenInfo, Error> {
        let parent = match stored.record.parent {
            Some(parent) => self.store.token(&parent).await?,
            None => None,
        };
        Ok(self.info_with(stored, parent.as_ref()))
    }

    /// The view of a record just written, whose parent (for a derived token) is known.
    pub(super) fn info_of(
        &self,
        record: TokenRecord,
        last_used_at: Option<OffsetDateTime>,
        parent: Option<&StoredToken>,
    ) -> TokenInfo {
        let stored = StoredToken {
            record: Arc::new(record),
            last_used_at,
        };
        self.info_with(&stored, parent)
    }

    /// The account whose id is exactly `account` (a store that matched another id, as a
    /// collation ignoring trailing spaces would, found no such account).
    pub(super) async fn account_record(&self, account: &AccountId) -> Result<AccountRecord, Error> {
        self.store
            .account(account)
            .await?
            .filter(|record| record.is_for(account))
            .ok_or(Error::AccountNotFound)
    }

    /// Stores a new record for an account in good standing ([`standing::admits`]): every
    /// record an account gains (a token issued, derived or minted, a trusted-publishing
    /// policy) is stored through here.
    pub(super) async fn store_admitted(&self, record: &TokenRecord) -> Result<(), Error> {
        standing::admits(&self.account_record(&record.account).await?)?;
        match self.store.insert_token(record.clone()).await {
            Err(StoreError::NotFound) => Err(Error::AccountNotFound),
            other => other.map_err(Error::from),
        }?;
        // Read again: a disable that marked the account after the read above may have
        // walked its tokens before this one was stored. The record was never handed out;
        // it is revoked. (A conflict means the walk got to it first and suspended it; a
        // store failure here leaves it for the next run of the disable, which is how a
        // disable cut short by a failure is finished anyway.)
        if let Err(refused) = standing::admits(&self.account_record(&record.account).await?) {
            let now = self.now();
            let mut revoked = record.clone();
            revoked.revoked_at = Some(now);
            revoked.suspended_at = Some(now);
            revoked.revision = next_revision(record)?;
            let _ = self.store.update_token(revoked, record.revision).await;
            return Err(refused);
        }
        Ok(())
    }

    pub(super) async fn insert(
        &self,
        record: TokenRecord,
        parent: Option<&StoredToken>,
        token: PlainToken,
        event: AuditKind,
    ) -> Result<IssuedToken, Error> {
        self.store_admitted(&record).await?;
        self.audit_event(event, &record.account, Some(record.id));
        Ok(IssuedToken {
            token,
            info: self.info_of(record, None, parent),
        })
    }

    /// A live (not revoked) token of `account`.
    pub(super) async fn owned(
        &self,
        account: &AccountId,
        id: TokenId,
    ) -> Result<StoredToken, Error> {
        match self.store.token(&id).await? {
            Some(t) if t.record.reachable_by(account, false) => Ok(t),
            _ => Err(Error::TokenNotFound),
        }
    }

    /// Applies `change` to a token of `account` and stores the result with
    /// compare-and-swap, reading again and reapplying when a concurrent write won (a use
    /// that rehashed the token, an edit), so that a revoke or an edit never fails merely
    /// because the token was in use. `change` sees the latest record and may refuse.
    /// Returns the record written, the one it replaced, and what `change` returned.
    pub(super) async fn update_token_with<T>(
        &self,
        account: &AccountId,
        id: TokenId,
        revoked_too: bool,
        mut change: impl FnMut(&StoredToken) -> Result<(TokenRecord, T), Error>,
    ) -> Result<(TokenRecord, StoredToken, T), Error> {
        for _ in 0..MAX_ATTEMPTS {
            let stored = match self.store.token(&id).await? {
                Some(t) if t.record.reachable_by(account, revoked_too) => t,
                _ => return Err(Error::TokenNotFound),
            };
            let (mut record, extra) = change(&stored)?;
            let expected = stored.record.revision;
            record.revision = next_revision(&stored.record)?;
            match self.store.update_token(record.clone(), expected).await {
                Ok(()) => return Ok((record, stored, extra)),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }
}
