//! Trusted-publishing policies (feature `oidc`): add, list, edit (narrow only) and
//! remove, each audited.
//!
//! A policy is a row of [`TrustStore`] (its rule and the minted keys' lifetime) and a
//! hidden token record of the same id ([`TokenKind::TrustPolicy`]) holding its scope.
//! Keys minted from the policy are that record's children, so the parent rule every
//! request already asks ([`liveness::check`](crate::policy::liveness), and the parent's
//! scope in `authorize`) makes a narrowed policy narrow them and a removed one end them.
//! The one rule of an edit is [`narrowed`].

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::account::AccountId;
use crate::audit::AuditKind;
use crate::error::Error;
use crate::oidc::TrustRule;
use crate::record::{TokenKind, TokenRecord};
use crate::scope::{Scope, ScopeChange};
use crate::service::Feedkey;
use crate::service::shared::{MAX_ATTEMPTS, next_revision};
use crate::store::{
    MAX_TRUST_KEY_LEN, StoreError, StoredToken, TokenStore, TrustPolicyRow, TrustStore,
};
use crate::token::TokenId;

/// The most a minted key may be asked to live: a day (the lifetime policy's caps apply
/// as well).
pub const MAX_MINTED_LIFETIME: Duration = Duration::DAY;

/// A policy to add: which CI identity, what its keys may do, and how long they live
/// (an hour unless set).
///
/// ```
/// use feedkey::oidc::{OidcIssuer, TrustRule};
/// use feedkey::{Feeds, NewTrustPolicy, Packages, Permissions, Scope};
///
/// let rule = TrustRule::GitHub {
///     issuer: OidcIssuer::GITHUB_ACTIONS.into(),
///     owner: "contoso".into(),
///     owner_id: None,
///     repository: "service".into(),
///     repository_id: None,
///     workflow: "release.yml".into(),
///     reusable_workflow: None,
///     environment: None,
/// };
/// let scope = Scope::new(
///     Permissions::WRITE_ONLY,
///     Feeds::Any,
///     Packages::only(["Contoso.Service*"])?,
/// )?;
/// let policy = NewTrustPolicy::new(rule, scope);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct NewTrustPolicy {
    rule: TrustRule,
    scope: Scope,
    lifetime: Option<Duration>,
}

impl NewTrustPolicy {
    /// A policy trusting `rule`'s identity with keys of `scope`.
    pub fn new(rule: TrustRule, scope: Scope) -> Self {
        Self {
            rule,
            scope,
            lifetime: None,
        }
    }

    /// Minted keys live `lifetime` (at most [`MAX_MINTED_LIFETIME`], and within the
    /// lifetime policy's caps).
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }
}

/// A stored policy, as a management page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TrustPolicy {
    /// The policy's id.
    pub id: TokenId,
    /// The account whose packages it publishes.
    pub account: AccountId,
    /// The CI identity it trusts (with the ids it was locked to, once exchanged).
    pub rule: TrustRule,
    /// What a minted key may do.
    pub scope: Scope,
    /// How long a minted key lives, if the policy says (an hour otherwise).
    pub lifetime: Option<Duration>,
    /// When it was added.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// An edit of a policy: each part only narrows (the rule `service::trust::narrowed`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TrustPolicyEdit {
    /// The scope's change: permissions, feeds, networks and packages only narrower.
    pub scope: ScopeChange,
    /// A shorter lifetime for keys minted from now on.
    pub lifetime: Option<Duration>,
    /// An environment to require, where the rule required none.
    pub environment: Option<String>,
}

/// A policy's changeable parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyParts {
    pub(crate) rule: TrustRule,
    pub(crate) scope: Scope,
    pub(crate) lifetime: Option<Duration>,
}

/// The one rule of a policy edit: the parts after `edit`, when it only narrows. The
/// scope must be provably inside the current one (packages included: unlike a token's,
/// a policy's package list never moves, since its keys would follow); the lifetime may
/// only shorten (from the default hour when unset); an environment may be added where
/// none was required, never changed or dropped.
pub(crate) fn narrowed(
    current: &PolicyParts,
    edit: &TrustPolicyEdit,
) -> Result<PolicyParts, Error> {
    let scope = current.scope.narrowed_by(&edit.scope)?;
    current
        .scope
        .covers(&scope)
        .map_err(|_| Error::PolicyWidens("packages"))?;
    let lifetime = match edit.lifetime {
        None => current.lifetime,
        Some(shorter)
            if shorter > Duration::ZERO
                && shorter <= current.lifetime.unwrap_or(Duration::HOUR) =>
        {
            Some(shorter)
        }
        Some(_) => return Err(Error::PolicyWidens("lifetime")),
    };
    let rule = match (&edit.environment, current.rule.environment()) {
        (None, _) => current.rule.clone(),
        (Some(wanted), Some(required)) if wanted == required => current.rule.clone(),
        (Some(_), Some(_)) => return Err(Error::PolicyWidens("environment")),
        (Some(wanted), None) => {
            check_name(wanted)?;
            current.rule.with_environment(wanted)
        }
    };
    Ok(PolicyParts {
        rule,
        scope,
        lifetime,
    })
}

/// A rule's name or path: not empty, at most [`MAX_TRUST_KEY_LEN`] bytes, no control
/// characters.
fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty() || name.len() > MAX_TRUST_KEY_LEN || name.chars().any(char::is_control) {
        return Err(Error::InvalidPolicy(
            "a name is empty, too long or has control characters",
        ));
    }
    Ok(())
}

/// Whether `rule` can be stored and matched: every name present and sane.
fn check_rule(rule: &TrustRule) -> Result<(), Error> {
    let names: Vec<&str> = match rule {
        TrustRule::GitHub {
            issuer,
            owner,
            repository,
            workflow,
            ..
        } => vec![issuer, owner, repository, workflow],
        TrustRule::GitLab {
            issuer,
            namespace,
            project,
            config_path,
            ..
        } => vec![issuer, namespace, project, config_path],
    };
    names.into_iter().try_for_each(check_name)?;
    if rule.subject().len() > MAX_TRUST_KEY_LEN {
        return Err(Error::InvalidPolicy(
            "the repository's full name is too long",
        ));
    }
    if let Some(environment) = rule.environment() {
        check_name(environment)?;
    }
    Ok(())
}

fn lifetime_secs(lifetime: Option<Duration>) -> Option<i64> {
    lifetime.map(|d| d.whole_seconds())
}

fn check_lifetime(lifetime: Option<Duration>) -> Result<(), Error> {
    match lifetime {
        Some(d) if d < Duration::MINUTE || d > MAX_MINTED_LIFETIME => Err(Error::InvalidPolicy(
            "a minted key lives between a minute and a day",
        )),
        _ => Ok(()),
    }
}

/// The rule a row holds.
pub(crate) fn rule_of(row: &TrustPolicyRow) -> Result<TrustRule, Error> {
    serde_json::from_str(&row.rule).map_err(|e| {
        Error::Store(StoreError::Corrupt {
            what: format!("trust policy {}", row.id),
            detail: format!("bad rule: {e}"),
        })
    })
}

fn rule_text(rule: &TrustRule) -> Result<String, Error> {
    serde_json::to_string(rule).map_err(|_| Error::InvalidPolicy("the rule cannot be written"))
}

impl<S: TokenStore + TrustStore> Feedkey<S> {
    /// Adds a trusted-publishing policy to `account`: a CI job whose OIDC token is
    /// `policy`'s identity may exchange it ([`Feedkey::exchange`]) for a short-lived key
    /// of `policy`'s scope.
    ///
    /// # Errors
    /// [`Error::AccountNotFound`], [`Error::InvalidPolicy`] for an empty or oversized
    /// name or a lifetime outside a minute to a day, or a store failure.
    pub async fn add_trust_policy(
        &self,
        account: &AccountId,
        policy: NewTrustPolicy,
    ) -> Result<TrustPolicy, Error> {
        self.keys_ready().await?;
        check_rule(&policy.rule)?;
        check_lifetime(policy.lifetime)?;
        let now = self.now();
        // The hidden parent's secret is dropped here: no one can ever present it.
        let (id, _secret, secret_hash) = self.mint()?;
        let mut parent = TokenRecord::new(
            id,
            account.clone(),
            TokenKind::TrustPolicy,
            policy.scope.clone(),
            secret_hash,
            now,
        );
        parent.description = "trusted-publishing policy".into();
        // Only for an account in good standing, as every record an account gains.
        self.store_admitted(&parent).await?;
        let mut row = TrustPolicyRow::new(
            id,
            account.clone(),
            policy.rule.issuer().to_owned(),
            policy.rule.subject(),
            rule_text(&policy.rule)?,
            now,
        );
        row.lifetime_secs = lifetime_secs(policy.lifetime);
        if let Err(e) = self.store.insert_trust_policy(row).await {
            // The parent without its row would be an orphan: end it (best effort; it
            // has no children and no one knows its secret).
            let _ = self.revoke_policy_record(account, id).await;
            return Err(e.into());
        }
        self.audit_event(AuditKind::TrustPolicyAdded, account, Some(id));
        Ok(TrustPolicy {
            id,
            account: account.clone(),
            rule: policy.rule,
            scope: policy.scope,
            lifetime: policy.lifetime,
            created_at: now,
        })
    }

    /// The account's policies, oldest first.
    ///
    /// # Errors
    /// A store failure, or [`StoreError::Corrupt`] for a row that cannot be read.
    pub async fn trust_policies(&self, account: &AccountId) -> Result<Vec<TrustPolicy>, Error> {
        self.keys_ready().await?;
        let mut policies = Vec::new();
        for row in self.store.account_trust_policies(account).await? {
            if row.account != *account {
                continue;
            }
            if let Some(parent) = self.policy_record(account, row.id).await? {
                policies.push(view(&row, &parent)?);
            }
        }
        Ok(policies)
    }

    /// One of the account's policies.
    ///
    /// # Errors
    /// [`Error::PolicyNotFound`] (also for another account's), or a store failure.
    pub async fn trust_policy(
        &self,
        account: &AccountId,
        id: TokenId,
    ) -> Result<TrustPolicy, Error> {
        self.keys_ready().await?;
        let (row, parent) = self.owned_policy(account, id).await?;
        view(&row, &parent)
    }

    /// Narrows a policy (the rule `service::trust::narrowed`): its scope, and with it every key already minted
    /// from it (they act inside their parent's current scope); the lifetime of keys
    /// minted from now on; a required environment.
    ///
    /// # Errors
    /// [`Error::PolicyNotFound`], [`Error::Widens`] for an edit that would widen,
    /// [`Error::Scope`] or [`Error::InvalidPolicy`] for bad input, or a store failure.
    pub async fn edit_trust_policy(
        &self,
        account: &AccountId,
        id: TokenId,
        edit: TrustPolicyEdit,
    ) -> Result<TrustPolicy, Error> {
        self.keys_ready().await?;
        for _ in 0..MAX_ATTEMPTS {
            let (row, parent) = self.owned_policy(account, id).await?;
            let current = PolicyParts {
                rule: rule_of(&row)?,
                scope: parent.record.scope.clone(),
                lifetime: row.lifetime_secs.map(Duration::seconds),
            };
            let next = narrowed(&current, &edit)?;
            // The scope first: a narrower parent narrows the minted keys at once.
            if next.scope != current.scope {
                let mut record = TokenRecord::clone(&parent.record);
                record.scope = next.scope.clone();
                record.revision = next_revision(&parent.record)?;
                match self
                    .store
                    .update_token(record, parent.record.revision)
                    .await
                {
                    Ok(()) => {}
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            if next.rule != current.rule || next.lifetime != current.lifetime {
                let mut updated = row.clone();
                updated.rule = rule_text(&next.rule)?;
                updated.lifetime_secs = lifetime_secs(next.lifetime);
                updated.revision = row.revision.saturating_add(1);
                match self.store.update_trust_policy(updated, row.revision).await {
                    Ok(()) => {}
                    // The scope, if changed, is written and stays narrowed; read again.
                    Err(StoreError::Conflict) => continue,
                    Err(StoreError::NotFound) => return Err(Error::PolicyNotFound),
                    Err(e) => return Err(e.into()),
                }
            }
            self.audit_event(AuditKind::TrustPolicyEdited, account, Some(id));
            return Ok(TrustPolicy {
                id,
                account: account.clone(),
                rule: next.rule,
                scope: next.scope,
                lifetime: next.lifetime,
                created_at: row.created_at,
            });
        }
        Err(StoreError::Conflict.into())
    }

    /// Removes a policy: its hidden record is revoked first, which ends every key minted
    /// from it, then its row is deleted.
    ///
    /// # Errors
    /// [`Error::PolicyNotFound`], or a store failure (after which the policy's keys may
    /// already be dead; removing again finishes the job).
    pub async fn remove_trust_policy(&self, account: &AccountId, id: TokenId) -> Result<(), Error> {
        self.keys_ready().await?;
        let row = self
            .store
            .trust_policy(&id)
            .await?
            .filter(|row| row.account == *account)
            .ok_or(Error::PolicyNotFound)?;
        match self.revoke_policy_record(account, row.id).await {
            Ok(()) | Err(Error::PolicyNotFound) => {}
            Err(e) => return Err(e),
        }
        match self.store.delete_trust_policy(&id).await {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
        self.audit_event(AuditKind::TrustPolicyRemoved, account, Some(id));
        Ok(())
    }

    /// The policy's live hidden record, if it stands.
    pub(crate) async fn policy_record(
        &self,
        account: &AccountId,
        id: TokenId,
    ) -> Result<Option<StoredToken>, Error> {
        Ok(self.store.token(&id).await?.filter(|stored| {
            let r = &stored.record;
            r.kind == TokenKind::TrustPolicy && r.account == *account && r.revoked_at.is_none()
        }))
    }

    /// The account's policy `id`: its row and its live hidden record.
    async fn owned_policy(
        &self,
        account: &AccountId,
        id: TokenId,
    ) -> Result<(TrustPolicyRow, StoredToken), Error> {
        let row = self
            .store
            .trust_policy(&id)
            .await?
            .filter(|row| row.account == *account)
            .ok_or(Error::PolicyNotFound)?;
        let parent = self
            .policy_record(account, id)
            .await?
            .ok_or(Error::PolicyNotFound)?;
        Ok((row, parent))
    }

    /// Revokes a policy's hidden record (retried when a concurrent write wins).
    async fn revoke_policy_record(&self, account: &AccountId, id: TokenId) -> Result<(), Error> {
        for _ in 0..MAX_ATTEMPTS {
            let Some(parent) = self.policy_record(account, id).await? else {
                return Err(Error::PolicyNotFound);
            };
            let mut record = TokenRecord::clone(&parent.record);
            record.revoked_at = Some(self.now());
            record.revision = next_revision(&parent.record)?;
            match self
                .store
                .update_token(record, parent.record.revision)
                .await
            {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }
}

/// The view of a policy from its row and its hidden record.
fn view(row: &TrustPolicyRow, parent: &StoredToken) -> Result<TrustPolicy, Error> {
    Ok(TrustPolicy {
        id: row.id,
        account: row.account.clone(),
        rule: rule_of(row)?,
        scope: parent.record.scope.clone(),
        lifetime: row.lifetime_secs.map(Duration::seconds),
        created_at: row.created_at,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::scope::{Feeds, Packages, Permissions};

    fn rule(environment: Option<&str>) -> TrustRule {
        TrustRule::GitHub {
            issuer: "https://token.actions.githubusercontent.com".into(),
            owner: "contoso".into(),
            owner_id: None,
            repository: "service".into(),
            repository_id: None,
            workflow: "release.yml".into(),
            reusable_workflow: None,
            environment: environment.map(Into::into),
        }
    }

    fn scope(permissions: Permissions, packages: &[&str]) -> Scope {
        Scope::new(
            permissions,
            Feeds::Any,
            Packages::only(packages.iter().copied()).unwrap(),
        )
        .unwrap()
    }

    /// The edit rule, one case a row: the edit, and whether it is taken.
    #[test]
    fn a_policy_edit_only_narrows() {
        let current = PolicyParts {
            rule: rule(None),
            scope: scope(Permissions::WRITE_ONLY, &["Contoso.*"]),
            lifetime: None,
        };
        let with = |f: &dyn Fn(&mut TrustPolicyEdit)| {
            let mut edit = TrustPolicyEdit::default();
            f(&mut edit);
            narrowed(&current, &edit)
        };
        let cases: Vec<(&str, Result<PolicyParts, Error>, bool)> = vec![
            ("nothing", with(&|_| {}), true),
            (
                "fewer permissions",
                with(&|e| e.scope.permissions = Some(Permissions::PUSH_VERSION_ONLY)),
                true,
            ),
            (
                "more permissions",
                with(&|e| e.scope.permissions = Some(Permissions::FULL)),
                false,
            ),
            (
                "packages inside",
                with(&|e| e.scope.packages = Some(Packages::only(["Contoso.Web"]).unwrap())),
                true,
            ),
            (
                "packages elsewhere",
                with(&|e| e.scope.packages = Some(Packages::only(["Fabrikam.*"]).unwrap())),
                false,
            ),
            (
                "every package",
                with(&|e| e.scope.packages = Some(Packages::Any)),
                false,
            ),
            (
                "shorter lifetime",
                with(&|e| e.lifetime = Some(Duration::minutes(15))),
                true,
            ),
            (
                "longer lifetime",
                with(&|e| e.lifetime = Some(Duration::hours(2))),
                false,
            ),
            (
                "zero lifetime",
                with(&|e| e.lifetime = Some(Duration::ZERO)),
                false,
            ),
            (
                "an environment where none was required",
                with(&|e| e.environment = Some("production".into())),
                true,
            ),
        ];
        for (what, result, taken) in cases {
            assert_eq!(result.is_ok(), taken, "{what}: {result:?}");
        }
        let required = PolicyParts {
            rule: rule(Some("production")),
            ..current.clone()
        };
        let environment = |name: &str| TrustPolicyEdit {
            environment: Some(name.into()),
            ..TrustPolicyEdit::default()
        };
        assert!(
            narrowed(&required, &environment("staging")).is_err(),
            "another environment"
        );
        assert_eq!(
            narrowed(&required, &environment("production")).unwrap(),
            required
        );
    }
}
