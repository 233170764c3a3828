//! Accounts: creating one with its primary key, and setting or removing its password.

use crate::account::AccountId;
use crate::audit::AuditKind;
use crate::error::Error;
use crate::policy::lifetime::Expiry;
use crate::record::{AccountRecord, TokenKind, TokenRecord};
use crate::scope::Scope;
use crate::secret::PasswordError;
use crate::service::Feedkey;
use crate::store::{StoreError, TokenStore};

use super::IssuedToken;
use super::shared::MAX_ATTEMPTS;

impl<S: TokenStore> Feedkey<S> {
    /// Creates an account and its primary key (full access), returning the key once.
    ///
    /// # Errors
    /// [`Error::AccountExists`], [`Error::Lifetime`] when the expiry breaks the policy,
    /// or a store failure.
    pub async fn create_account(
        &self,
        account: &AccountId,
        primary_expiry: Expiry,
    ) -> Result<IssuedToken, Error> {
        self.keys_ready().await?;
        let now = self.now();
        let expires_at = self.policy.resolve(now, primary_expiry, true)?;
        let (id, token, secret_hash) = self.mint()?;
        let mut primary = TokenRecord::new(
            id,
            account.clone(),
            TokenKind::Primary,
            Scope::full(),
            secret_hash,
            now,
        );
        primary.description = "Primary key".into();
        primary.expires_at = expires_at;
        let record = AccountRecord::new(account.clone(), id, now);
        match self.store.insert_account(record, primary.clone()).await {
            Err(StoreError::Duplicate) => Err(Error::AccountExists),
            other => other.map_err(Error::from),
        }?;
        self.audit_event(AuditKind::AccountCreated, account, Some(id));
        Ok(IssuedToken {
            token,
            info: self.info_of(primary, None, None),
        })
    }

    /// Sets (or replaces) the account password, hashed with Argon2id. Remembered verifies
    /// of the old password are forgotten at once.
    ///
    /// # Errors
    /// [`Error::AccountNotFound`], [`Error::Password`] for an empty, over-long or
    /// token-shaped password, or a store failure ([`StoreError::Conflict`] if the account changed meanwhile).
    pub async fn set_password(&self, account: &AccountId, password: &str) -> Result<(), Error> {
        self.keys_ready().await?;
        if self.format.has_token_shape(password) {
            return Err(PasswordError::LooksLikeToken.into());
        }
        let hash = self.passwords.hash(password).await?;
        self.change_password(account, Some(hash)).await
    }

    /// Removes the account password: only tokens work afterwards.
    ///
    /// # Errors
    /// [`Error::AccountNotFound`] or a store failure.
    pub async fn remove_password(&self, account: &AccountId) -> Result<(), Error> {
        self.keys_ready().await?;
        self.change_password(account, None).await
    }

    async fn change_password(
        &self,
        account: &AccountId,
        hash: Option<crate::secret::PasswordHash>,
    ) -> Result<(), Error> {
        for _ in 0..MAX_ATTEMPTS {
            let mut record = self.account_record(account).await?;
            let expected = record.revision;
            record.revision = expected.checked_add(1).ok_or_else(|| StoreError::Corrupt {
                what: account.to_string(),
                detail: "revision overflow".to_owned(),
            })?;
            record.password = hash.clone();
            match self.store.update_account(record, expected).await {
                Ok(()) => {
                    self.audit_event(AuditKind::PasswordChanged, account, None);
                    return Ok(());
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }
}
