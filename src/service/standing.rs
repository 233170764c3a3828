//! An account's standing: disabling it (its password and every token refused, until it
//! is enabled again), enabling it, and deleting it (every token revoked for good).
//!
//! A disabled account's tokens are each marked suspended
//! ([`TokenRecord::suspended_at`]), so that `authorize` decides from the token's record
//! alone, as for a revocation, and every server of a cluster learns it the way it learns
//! a revocation. The account is marked first and its tokens after, and every path that
//! stores a new token reads the account again once the token is stored ([`admits`] is
//! the one rule both reads ask): a token stored while a disable walks the account is
//! either seen by the walk or refused by that second read, never left working.

use time::OffsetDateTime;

use crate::account::AccountId;
use crate::audit::{AuditKind, RevokeCause};
use crate::error::Error;
use crate::record::{AccountRecord, TokenRecord};
use crate::service::Feedkey;
use crate::store::{StoreError, TokenStore};

use super::shared::MAX_ATTEMPTS;

/// Whether `account` may be given a new token (or sign in): the one rule of an
/// account's standing. A deleted account answers [`Error::AccountDeleted`], a disabled
/// one [`Error::AccountDisabled`].
pub(super) fn admits(account: &AccountRecord) -> Result<(), Error> {
    if account.deleted_at.is_some() {
        return Err(Error::AccountDeleted);
    }
    if account.disabled_at.is_some() {
        return Err(Error::AccountDisabled);
    }
    Ok(())
}

/// What a change of standing does to one token, at `now`: the record to write, or
/// `None` when the token is already as the change leaves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Suspend,
    Resume,
}

impl Change {
    fn apply(self, record: &TokenRecord, now: OffsetDateTime) -> Option<TokenRecord> {
        let wanted = match self {
            Change::Suspend => record.suspended_at.or(Some(now)),
            Change::Resume => None,
        };
        (record.suspended_at != wanted).then(|| {
            let mut changed = record.clone();
            changed.suspended_at = wanted;
            changed
        })
    }
}

impl<S: TokenStore> Feedkey<S> {
    /// Disables an account: its password and every one of its tokens are refused
    /// ([`DenyReason::AccountDisabled`](crate::DenyReason::AccountDisabled)), and no
    /// token can be issued or derived for it, until [`Feedkey::enable_account`]. Nothing
    /// is revoked: enabling it gives back exactly what it had. Returns how many tokens
    /// were suspended. Running it again finishes a run that a failure cut short.
    ///
    /// ```
    /// # async fn demo(keys: &feedkey::Feedkey<feedkey::MemoryStore>) -> Result<(), feedkey::Error> {
    /// let mallory = feedkey::AccountId::new("mallory")?;
    /// let suspended = keys.disable_account(&mallory).await?;
    /// println!("{suspended} tokens suspended");
    /// keys.enable_account(&mallory).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::AccountNotFound`], [`Error::AccountDeleted`], or a store failure (the
    /// tokens suspended before it stay suspended; the account stays disabled).
    pub async fn disable_account(&self, account: &AccountId) -> Result<u64, Error> {
        self.keys_ready().await?;
        let now = self.now();
        let changed = self
            .change_account(account, |record| {
                if record.deleted_at.is_some() {
                    return Err(Error::AccountDeleted);
                }
                Ok(record.disabled_at.is_none().then(|| {
                    let mut record = record.clone();
                    record.disabled_at = Some(now);
                    record
                }))
            })
            .await?;
        if changed {
            self.audit_event(AuditKind::AccountDisabled, account, None);
        }
        self.change_tokens(account, Change::Suspend).await
    }

    /// Enables a disabled account: its password and its tokens work again (those not
    /// revoked or expired meanwhile). Returns how many tokens were resumed. Enabling an
    /// account that is not disabled changes nothing.
    ///
    /// # Errors
    /// [`Error::AccountNotFound`], [`Error::AccountDeleted`], or a store failure (run it
    /// again).
    pub async fn enable_account(&self, account: &AccountId) -> Result<u64, Error> {
        self.keys_ready().await?;
        let changed = self
            .change_account(account, |record| {
                if record.deleted_at.is_some() {
                    return Err(Error::AccountDeleted);
                }
                Ok(record.disabled_at.is_some().then(|| {
                    let mut record = record.clone();
                    record.disabled_at = None;
                    record
                }))
            })
            .await?;
        if changed {
            self.audit_event(AuditKind::AccountEnabled, account, None);
        }
        self.change_tokens(account, Change::Resume).await
    }

    /// Deletes an account: its password is removed and every token, the primary key
    /// included, is revoked for good (each audited as
    /// [`RevokeCause::AccountDeleted`]). The account's id stays taken, so that no one
    /// else can take over a name its users' configurations still hold; nothing can
    /// undo it. Returns how many tokens were revoked. Running it again finishes a run
    /// that a failure cut short.
    ///
    /// # Errors
    /// [`Error::AccountNotFound`], or a store failure (the tokens revoked before it stay
    /// revoked; the account stays deleted).
    pub async fn delete_account(&self, account: &AccountId) -> Result<u64, Error> {
        self.keys_ready().await?;
        let now = self.now();
        let changed = self
            .change_account(account, |record| {
                Ok(
                    (record.deleted_at.is_none() || record.password.is_some()).then(|| {
                        let mut record = record.clone();
                        record.deleted_at = record.deleted_at.or(Some(now));
                        record.password = None;
                        record
                    }),
                )
            })
            .await?;
        if changed {
            self.audit_event(AuditKind::AccountDeleted, account, None);
        }
        let mut revoked = 0;
        for stored in self.store.account_tokens(account).await? {
            // Live, and reached by an owner's calls (a revoked token is not).
            if !stored.record.reachable_by(account, false) {
                continue;
            }
            match self
                .revoke_as(account, stored.record.id, RevokeCause::AccountDeleted, None)
                .await
            {
                Ok(()) => revoked += 1,
                // Revoked or purged meanwhile.
                Err(Error::TokenNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(revoked)
    }

    /// Applies `change` to the account's record with compare-and-swap, reading again when
    /// a concurrent write won. `change` returns the record to write, or `None` when there
    /// is nothing to change. Returns whether a record was written.
    async fn change_account(
        &self,
        account: &AccountId,
        mut change: impl FnMut(&AccountRecord) -> Result<Option<AccountRecord>, Error>,
    ) -> Result<bool, Error> {
        for _ in 0..MAX_ATTEMPTS {
            let current = self.account_record(account).await?;
            let Some(mut record) = change(&current)? else {
                return Ok(false);
            };
            record.revision = current.revision.checked_add(1).ok_or_else(|| {
                Error::Store(StoreError::Corrupt {
                    what: account.to_string(),
                    detail: "revision overflow".to_owned(),
                })
            })?;
            match self.store.update_account(record, current.revision).await {
                Ok(()) => return Ok(true),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// Suspends or resumes every live token of the account; returns how many changed.
    async fn change_tokens(&self, account: &AccountId, change: Change) -> Result<u64, Error> {
        let now = self.now();
        let mut changed = 0;
        for stored in self.store.account_tokens(account).await? {
            let record = &stored.record;
            if !record.reachable_by(account, false) || change.apply(record, now).is_none() {
                continue;
            }
            let result = self
                .update_token_with(account, record.id, false, |latest| {
                    change
                        .apply(&latest.record, now)
                        .map(|r| (r, ()))
                        .ok_or(Error::TokenNotFound)
                })
                .await;
            match result {
                Ok(_) => changed += 1,
                // Revoked, purged, or changed meanwhile by another run.
                Err(Error::TokenNotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::macros::datetime;

    use super::*;
    use crate::record::TokenKind;
    use crate::scope::Scope;
    use crate::secret::{TokenHasher, TokenKey};
    use crate::token::TokenId;

    const T0: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    #[test]
    fn the_standing_table() {
        let alice = AccountId::new("alice").unwrap();
        let active = AccountRecord::new(alice, TokenId::from_bytes([1; 16]), T0);
        let mut disabled = active.clone();
        disabled.disabled_at = Some(T0);
        let mut deleted = active.clone();
        deleted.deleted_at = Some(T0);
        let mut both = disabled.clone();
        both.deleted_at = Some(T0);
        for (name, record, want) in [
            ("active", &active, Ok(())),
            ("disabled", &disabled, Err(Error::AccountDisabled)),
            ("deleted", &deleted, Err(Error::AccountDeleted)),
            ("disabled, then deleted", &both, Err(Error::AccountDeleted)),
        ] {
            assert_eq!(
                admits(record).map_err(|e| e.to_string()),
                want.map_err(|e| e.to_string()),
                "{name}"
            );
            assert_eq!(record.is_active(), admits(record).is_ok(), "{name}");
        }
    }

    #[test]
    fn a_change_touches_only_tokens_not_already_as_it_leaves_them() {
        let hasher = TokenHasher::new(TokenKey::new(1, &[1; 32]), Vec::new()).unwrap();
        let id = TokenId::from_bytes([2; 16]);
        let live = TokenRecord::new(
            id,
            AccountId::new("alice").unwrap(),
            TokenKind::Scoped,
            Scope::read_only(),
            hasher.hash(&id, &[3; 32]),
            T0,
        );
        let later = T0 + time::Duration::hours(1);
        let suspended = Change::Suspend.apply(&live, T0).unwrap();
        assert_eq!(suspended.suspended_at, Some(T0));
        // A second disable keeps the first instant, and writes nothing.
        assert!(Change::Suspend.apply(&suspended, later).is_none());
        let resumed = Change::Resume.apply(&suspended, later).unwrap();
        assert_eq!(resumed.suspended_at, None);
        assert!(Change::Resume.apply(&live, later).is_none());
    }
}
