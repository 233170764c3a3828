//! Issuing tokens and listing them: what a "my tokens" page shows and creates.

use crate::account::{AccountId, check_description};
use crate::audit::AuditKind;
use crate::error::Error;
use crate::policy::lifetime::Expiry;
use crate::record::{TokenInfo, TokenKind, TokenRecord};
use crate::scope::Scope;
use crate::service::Feedkey;
use crate::store::TokenStore;
use crate::token::{PlainToken, TokenId};

/// A token just issued: the plaintext, shown once, and what is stored about it.
#[derive(Debug)]
pub struct IssuedToken {
    /// The token itself: show it to the user once, then drop it.
    pub token: PlainToken,
    /// The token's public details.
    pub info: TokenInfo,
}

/// What a new token should be: a description, a scope and an expiry.
///
/// ```
/// use feedkey::{NewToken, Scope, Expiry};
/// use feedkey::time::Duration;
///
/// let ci = NewToken::new("TeamCity", Scope::read_only()).expires(Expiry::After(Duration::days(90)));
/// ```
#[derive(Debug, Clone)]
pub struct NewToken {
    description: String,
    scope: Scope,
    expiry: Expiry,
}

impl NewToken {
    /// A token with this description and scope that never expires (where the policy
    /// allows that).
    pub fn new(description: impl Into<String>, scope: Scope) -> Self {
        Self {
            description: description.into(),
            scope,
            expiry: Expiry::Never,
        }
    }

    /// Sets the expiry.
    #[must_use]
    pub fn expires(mut self, expiry: Expiry) -> Self {
        self.expiry = expiry;
        self
    }
}

impl<S: TokenStore> Feedkey<S> {
    /// Issues a new token, returning it once.
    ///
    /// # Errors
    /// [`Error::AccountNotFound`], [`Error::Record`] for a bad description,
    /// [`Error::Lifetime`] when the expiry breaks the policy, or a store failure.
    pub async fn issue(&self, account: &AccountId, new: NewToken) -> Result<IssuedToken, Error> {
        self.keys_ready().await?;
        check_description(&new.description)?;
        let now = self.now();
        let expires_at = self
            .policy
            .resolve(now, new.expiry, new.scope.can_write())?;
        let (id, token, secret_hash) = self.mint()?;
        let mut record = TokenRecord::new(
            id,
            account.clone(),
            TokenKind::Scoped,
            new.scope,
            secret_hash,
            now,
        );
        record.description = new.description.into();
        record.expires_at = expires_at;
        self.insert(record, None, token, AuditKind::Issued).await
    }

    /// The account's tokens, revoked ones left out: the primary key first, then the
    /// others oldest first. Nothing in them is secret. A derived token whose parent is
    /// gone shows as revoked.
    ///
    /// # Errors
    /// A store failure.
    pub async fn tokens(&self, account: &AccountId) -> Result<Vec<TokenInfo>, Error> {
        self.keys_ready().await?;
        let all = self.store.account_tokens(account).await?;
        // A parent is one of the account's tokens, so the list holds it (a parent missing
        // from it is gone, or another account's: the child is dead either way).
        let find = |id: TokenId| all.iter().find(|t| t.record.id == id);
        let mut tokens: Vec<TokenInfo> = all
            .iter()
            .filter(|t| t.record.reachable_by(account, false))
            .map(|t| self.info_with(t, t.record.parent.and_then(find)))
            .collect();
        // Stable: the store's oldest-first order stays within each kind.
        tokens.sort_by_key(|t| t.kind != TokenKind::Primary);
        Ok(tokens)
    }

    /// One of the account's tokens.
    ///
    /// # Errors
    /// [`Error::TokenNotFound`] (also for another account's or a revoked token), or a
    /// store failure.
    pub async fn token(&self, account: &AccountId, id: TokenId) -> Result<TokenInfo, Error> {
        self.keys_ready().await?;
        let stored = self.owned(account, id).await?;
        self.info(&stored).await
    }
}
