//! Editing a token (never wider than it was) and revoking one.

use std::net::IpAddr;

use time::OffsetDateTime;

use crate::account::{AccountId, check_description};
use crate::audit::{AuditKind, RevokeCause};
use crate::error::Error;
use crate::record::{TokenInfo, TokenKind, TokenRecord};
use crate::scope::{Feeds, Networks, Packages, Permissions, ScopeChange};
use crate::service::Feedkey;
use crate::store::TokenStore;
use crate::token::TokenId;

/// A change to a token that keeps its secret: a new description, a new package list,
/// fewer permissions, feeds or networks. Never more permissions, feeds or networks.
#[derive(Debug, Clone, Default)]
pub struct TokenEdit {
    description: Option<String>,
    scope: ScopeChange,
}

impl TokenEdit {
    /// An edit that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets the package list (NuGet lets an owner point a key at other packages).
    #[must_use]
    pub fn packages(mut self, packages: Packages) -> Self {
        self.scope.packages = Some(packages);
        self
    }

    /// Narrows the permissions to `permissions`, which must be a subset of the current
    /// ones.
    #[must_use]
    pub fn permissions(mut self, permissions: Permissions) -> Self {
        self.scope.permissions = Some(permissions);
        self
    }

    /// Narrows the feeds to `feeds`, which must be covered by the current ones.
    #[must_use]
    pub fn feeds(mut self, feeds: Feeds) -> Self {
        self.scope.feeds = Some(feeds);
        self
    }

    /// Narrows the client networks to `networks`, which must lie inside the current ones.
    #[must_use]
    pub fn networks(mut self, networks: Networks) -> Self {
        self.scope.networks = Some(networks);
        self
    }
}

impl<S: TokenStore> Feedkey<S> {
    /// Revokes a token for good. It fails at once, and so do the tokens derived from it;
    /// nothing can make it valid again.
    ///
    /// # Errors
    /// [`Error::TokenNotFound`], [`Error::PrimaryKey`] for the primary key (regenerate it
    /// instead), or a store failure.
    pub async fn revoke(&self, account: &AccountId, id: TokenId) -> Result<(), Error> {
        self.keys_ready().await?;
        self.revoke_as(account, id, RevokeCause::Owner, None).await
    }

    pub(crate) async fn revoke_as(
        &self,
        account: &AccountId,
        id: TokenId,
        cause: RevokeCause,
        client: Option<IpAddr>,
    ) -> Result<(), Error> {
        let now = self.now();
        self.update_token_with(account, id, false, |stored| {
            if stored.record.kind == TokenKind::Primary && cause == RevokeCause::Owner {
                return Err(Error::PrimaryKey);
            }
            let mut record = TokenRecord::clone(&stored.record);
            record.revoked_at = Some(now);
            Ok((record, ()))
        })
        .await?;
        self.audit_from(AuditKind::Revoked { cause }, account, Some(id), client);
        Ok(())
    }

    /// Edits a token without changing its secret: the description and package list
    /// freely, permissions, feeds and networks only narrower. The result must still meet
    /// the lifetime policy.
    ///
    /// # Errors
    /// [`Error::TokenNotFound`], [`Error::Widens`], [`Error::PrimaryKey`] for a scope
    /// change to the primary key, [`Error::Scope`] or [`Error::Record`] for bad input,
    /// [`Error::Lifetime`], or a store failure.
    pub async fn edit(
        &self,
        account: &AccountId,
        id: TokenId,
        edit: TokenEdit,
    ) -> Result<TokenInfo, Error> {
        self.keys_ready().await?;
        let now = self.now();
        // A derived token's parent, read before the edit, so that nothing can fail once
        // the edit is written (a parent never changes).
        let parent = match self.owned(account, id).await?.record.parent {
            Some(parent) => self.store.token(&parent).await?,
            None => None,
        };
        let (record, stored, ()) = self
            .update_token_with(account, id, false, |stored| {
                Ok((self.edited(&stored.record, &edit, now)?, ()))
            })
            .await?;
        self.audit_event(AuditKind::Edited, account, Some(id));
        Ok(self.info_of(record, stored.last_used_at, parent.as_ref()))
    }

    /// `record` with `edit` applied, if the edit is allowed.
    fn edited(
        &self,
        record: &TokenRecord,
        edit: &TokenEdit,
        now: OffsetDateTime,
    ) -> Result<TokenRecord, Error> {
        let mut record = record.clone();
        if !edit.scope.is_empty() && record.kind == TokenKind::Primary {
            return Err(Error::PrimaryKey);
        }
        if let Some(description) = &edit.description {
            check_description(description)?;
            record.description = description.as_str().into();
        }
        record.scope = record.scope.narrowed_by(&edit.scope)?;
        if !record.kind.has_parent() {
            self.policy
                .check(now, record.expires_at, record.scope.can_write())?;
        }
        Ok(record)
    }
}
