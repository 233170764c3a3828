//! Deriving short-lived children from a token, inside its parent's scope.

use time::{Duration, OffsetDateTime};

use crate::account::{AccountId, check_description};
use crate::audit::AuditKind;
use crate::error::Error;
use crate::policy::liveness::{self, Dead};
use crate::record::{StoredToken, TokenKind, TokenRecord};
use crate::request::Request;
use crate::scope::Scope;
use crate::service::Feedkey;
use crate::store::TokenStore;
use crate::token::TokenId;

use super::IssuedToken;

/// What a derived (child) token should be: a description, a scope inside its parent's,
/// and a short lifetime.
///
/// ```
/// use feedkey::{NewChild, Scope, Permissions, Feeds, Packages};
/// use feedkey::time::Duration;
///
/// // One CI job may push one package for fifteen minutes.
/// let job = NewChild::new(
///     "build 4711",
///     Scope::new(Permissions::PUSH_VERSION_ONLY, Feeds::only(["ci"])?, Packages::only(["Contoso.Service.Core"])?)?,
///     Duration::minutes(15),
/// );
/// # Ok::<(), feedkey::scope::ScopeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct NewChild {
    description: String,
    scope: Scope,
    lifetime: Duration,
}

impl NewChild {
    /// A child with this description and scope, living for `lifetime`.
    pub fn new(description: impl Into<String>, scope: Scope, lifetime: Duration) -> Self {
        Self {
            description: description.into(),
            scope,
            lifetime,
        }
    }
}

impl<S: TokenStore> Feedkey<S> {
    /// Mints a short-lived child of the token a request presents (a CI pipeline holding a
    /// long-lived key hands each job a key for one package and fifteen minutes). The
    /// child's scope must be provably inside the parent's; its lifetime is capped by the
    /// policy's child cap and by the parent's expiry. At each use the child must pass its
    /// own scope and its parent's current one.
    ///
    /// # Errors
    /// [`Error::Denied`] when the request's token is refused (the account password cannot
    /// derive), [`Error::DerivedToken`] for a derived parent, [`Error::NotCovered`],
    /// [`Error::Lifetime`], [`Error::Record`], or a store failure.
    pub async fn derive(
        &self,
        parent: &Request<'_>,
        child: NewChild,
    ) -> Result<IssuedToken, Error> {
        self.keys_ready().await?;
        let proven = self
            .prove_token(parent)
            .await
            .map_err(|d| Error::Denied(Box::new(d)))?;
        self.derive_from(&proven.stored, proven.secret_set_at, child)
            .await
    }

    /// Mints a child of one of the account's tokens, from the management page. Same
    /// rules as [`Feedkey::derive`].
    ///
    /// # Errors
    /// As [`Feedkey::derive`], with [`Error::TokenNotFound`] for a missing parent.
    pub async fn derive_for(
        &self,
        account: &AccountId,
        parent: TokenId,
        child: NewChild,
    ) -> Result<IssuedToken, Error> {
        self.keys_ready().await?;
        let stored = self.owned(account, parent).await?;
        if stored.record.kind.has_parent() {
            return Err(Error::DerivedToken);
        }
        // The parent must stand now, by the rule `authorize` uses (a parent is never
        // derived, so it has no parent of its own to consult).
        match liveness::check(&stored, None, &self.policy, self.now()) {
            Ok(()) => {}
            Err(Dead::Expired) => return Err(Error::TokenExpired),
            Err(Dead::Idle) => return Err(Error::TokenIdle),
            Err(Dead::Suspended) => return Err(Error::AccountDisabled),
            Err(Dead::Revoked | Dead::ParentGone | Dead::ParentRenewed) => {
                return Err(Error::TokenNotFound);
            }
        }
        let under = liveness::current_secret_set_at(&stored.record);
        self.derive_from(&stored, under, child).await
    }

    /// Mints a child of `parent`, derived under the parent secret stamped `under` (see
    /// [`TokenRecord::parent_secret_set_at`]).
    async fn derive_from(
        &self,
        parent: &StoredToken,
        under: Option<OffsetDateTime>,
        child: NewChild,
    ) -> Result<IssuedToken, Error> {
        let p = &parent.record;
        if p.kind.has_parent() {
            return Err(Error::DerivedToken);
        }
        check_description(&child.description)?;
        p.scope.covers(&child.scope)?;
        let now = self.now();
        let expires_at = self
            .policy
            .child_expiry(now, child.lifetime, p.expires_at)?;
        let (id, token, secret_hash) = self.mint()?;
        let mut record = TokenRecord::new(
            id,
            p.account.clone(),
            TokenKind::Derived,
            child.scope,
            secret_hash,
            now,
        );
        record.description = child.description.into();
        record.expires_at = Some(expires_at);
        record.parent = Some(p.id);
        record.parent_secret_set_at = under;
        self.insert(
            record,
            Some(parent),
            token,
            AuditKind::Derived { parent: p.id },
        )
        .await
    }
}
