//! Trusted publishing's exchange (feature `oidc`): a CI job's OIDC token for a
//! short-lived key of the matching policy's scope. The one rule of which policy answers
//! is [`choose`]; the token's own checks are `OidcIssuer::verify`'s and the identity's
//! `TrustRule::judge`'s.

use time::Duration;

use crate::account::{AccountId, MAX_DESCRIPTION_LEN};
use crate::audit::AuditKind;
use crate::error::Error;
use crate::oidc::{
    IssuerKeys, LockedIds, OidcIssuer, Refusal, Trust, VerifiedClaims, minted_lifetime,
    unverified_issuer,
};
use crate::record::{TokenKind, TokenRecord};
use crate::service::Feedkey;
use crate::service::issue::IssuedToken;
use crate::service::shared::MAX_ATTEMPTS;
use crate::service::trust::rule_of;
use crate::store::{StoreError, TokenStore, TrustPolicyRow, TrustStore, token_id_digest};

/// A policy that trusts the token, and the ids to lock it to.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) row: TrustPolicyRow,
    pub(crate) lock: Option<LockedIds>,
}

/// The one rule of which policy answers an exchange, from the policies that trust the
/// token (`trusted`, oldest first) and the first claim that differed in those that did
/// not (`differed`): none is [`Refusal::NoMatchingPolicy`]; policies of several accounts,
/// unless the request named one (`account`), are [`Refusal::SeveralAccounts`]; otherwise
/// the account's oldest trusting policy.
pub(crate) fn choose(
    trusted: Vec<Candidate>,
    differed: Option<&'static str>,
    account: Option<&AccountId>,
) -> Result<Candidate, Refusal> {
    let mut trusted: Vec<Candidate> = trusted
        .into_iter()
        .filter(|c| account.is_none_or(|a| c.row.account == *a))
        .collect();
    let Some(first) = trusted.first() else {
        return Err(Refusal::NoMatchingPolicy(differed.unwrap_or("repository")));
    };
    if trusted.iter().any(|c| c.row.account != first.row.account) {
        return Err(Refusal::SeveralAccounts);
    }
    Ok(trusted.swap_remove(0))
}

/// What a minted key's description says of where it came from: the issuer, the
/// repository, the workflow and the run, cut to what a description holds.
fn provenance(claims: &VerifiedClaims) -> String {
    let field = |name: &str| claims.text(name).unwrap_or_else(|| "?".to_owned());
    let (repository, workflow, run) = if claims.claims.contains_key("repository") {
        (field("repository"), field("workflow_ref"), field("run_id"))
    } else {
        (
            field("project_path"),
            field("ci_config_ref_uri"),
            field("pipeline_id"),
        )
    };
    let text = format!(
        "trusted publishing: {} {repository} {workflow} run {run}",
        claims.issuer
    );
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    let mut cut = clean.len().min(MAX_DESCRIPTION_LEN);
    while !clean.is_char_boundary(cut) {
        cut -= 1;
    }
    clean.get(..cut).unwrap_or_default().to_owned()
}

impl<S: TokenStore + TrustStore> Feedkey<S> {
    /// Exchanges a CI job's OIDC token for a short-lived key: the token is verified with
    /// its issuer's keys (`issuers`), the policies naming its repository are judged,
    /// its `jti` is recorded once (a second exchange of the same token is refused, on
    /// every server sharing the store), a policy made with names only is locked to the
    /// repository's ids, and a key of the policy's scope is minted, living the policy's
    /// lifetime (an hour unless it says) within the lifetime policy's child and write
    /// caps. The key is a child of the policy: narrowing the policy narrows it, removing
    /// the policy ends it, and it can be revoked like any token.
    ///
    /// `account` names the account when the client said whose key it wants (NuGet's
    /// `username`); without it, a token matching policies of several accounts is
    /// refused.
    ///
    /// # Errors
    /// [`Error::NotAllowed`] with the reason for the log (tell the client only
    /// [`Refusal::CLIENT_MESSAGE`]); [`Error::Lifetime`] when the lifetime policy leaves
    /// no room for a key; a store failure.
    pub async fn exchange(
        &self,
        issuers: &impl IssuerKeys,
        oidc_token: &str,
        account: Option<&AccountId>,
    ) -> Result<IssuedToken, Error> {
        self.keys_ready().await?;
        let (iss, kid) = unverified_issuer(oidc_token).map_err(Error::NotAllowed)?;
        let issuer = issuers
            .issuer(&iss, &kid)
            .await
            .map_err(Error::NotAllowed)?;
        let claims = issuer.verify(oidc_token, self.now()).map_err(|e| match e {
            crate::oidc::OidcError::Rejected(why) => Error::NotAllowed(why),
            crate::oidc::OidcError::Config(_) => Error::NotAllowed(Refusal::UnknownIssuer),
        })?;
        let subject = claims
            .subject()
            .ok_or(Error::NotAllowed(Refusal::NoMatchingPolicy("repository")))?;
        let mut trusted = Vec::new();
        let mut differed = None;
        for row in self
            .store
            .trust_policies_for(&claims.issuer, &subject)
            .await?
        {
            if row.issuer != claims.issuer || row.subject != subject {
                continue;
            }
            // A policy whose hidden record is gone was removed.
            if self.policy_record(&row.account, row.id).await?.is_none() {
                continue;
            }
            match rule_of(&row)?.judge(&claims) {
                Trust::Trusted { lock } => trusted.push(Candidate { row, lock }),
                Trust::Untrusted(claim) => {
                    differed.get_or_insert(claim);
                }
            }
        }
        let chosen = choose(trusted, differed, account).map_err(Error::NotAllowed)?;
        // Once: the id is kept past the token's expiry by the most leeway any issuer
        // allows, so it is remembered for as long as the token verifies.
        let digest = token_id_digest(&claims.issuer, &claims.jti);
        let keep_until = claims.expires_at.saturating_add(OidcIssuer::MAX_LEEWAY);
        if !self.store.use_token_id(digest, keep_until).await? {
            return Err(Error::NotAllowed(Refusal::Replayed));
        }
        let row = self.lock_ids(chosen, &claims).await?;
        self.mint_from(&row, &claims).await
    }

    /// Forgets the ids of used OIDC tokens that can no longer verify (past their expiry
    /// and the most leeway an issuer allows): a daily job's chore, which keeps the table
    /// of used ids to the tokens of the last few minutes. Returns how many were forgotten.
    ///
    /// # Errors
    /// A store failure.
    pub async fn forget_used_oidc_tokens(&self) -> Result<u64, Error> {
        Ok(self.store.purge_token_ids(self.now()).await?)
    }

    /// Locks a policy made with names only to the token's ids, once: when another
    /// exchange locked it first, its ids must be this token's.
    async fn lock_ids(
        &self,
        chosen: Candidate,
        claims: &VerifiedClaims,
    ) -> Result<TrustPolicyRow, Error> {
        let Candidate { mut row, mut lock } = chosen;
        for _ in 0..MAX_ATTEMPTS {
            let Some(ids) = &lock else {
                return Ok(row);
            };
            let mut locked = row.clone();
            locked.rule = serde_json::to_string(&rule_of(&row)?.locked_to(ids))
                .map_err(|_| Error::InvalidPolicy("the rule cannot be written"))?;
            locked.revision = row.revision.saturating_add(1);
            match self
                .store
                .update_trust_policy(locked.clone(), row.revision)
                .await
            {
                Ok(()) => {
                    self.audit_event(AuditKind::TrustPolicyEdited, &row.account, Some(row.id));
                    return Ok(locked);
                }
                Err(StoreError::Conflict) => {
                    row = self
                        .store
                        .trust_policy(&row.id)
                        .await?
                        .ok_or(Error::NotAllowed(Refusal::NoMatchingPolicy("repository")))?;
                    lock = match rule_of(&row)?.judge(claims) {
                        Trust::Trusted { lock } => lock,
                        Trust::Untrusted(claim) => {
                            return Err(Error::NotAllowed(Refusal::NoMatchingPolicy(claim)));
                        }
                    };
                }
                Err(StoreError::NotFound) => {
                    return Err(Error::NotAllowed(Refusal::NoMatchingPolicy("repository")));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    /// Mints the key: a child of the policy's hidden record.
    async fn mint_from(
        &self,
        row: &TrustPolicyRow,
        claims: &VerifiedClaims,
    ) -> Result<IssuedToken, Error> {
        let parent = self
            .policy_record(&row.account, row.id)
            .await?
            .ok_or(Error::NotAllowed(Refusal::NoMatchingPolicy("repository")))?;
        let now = self.now();
        let lifetime = minted_lifetime(row.lifetime_secs.map(Duration::seconds), &self.policy);
        let expires_at = self
            .policy
            .child_expiry(now, lifetime, parent.record.expires_at)?;
        // The policy's record counts as used: an idle policy would end its children.
        self.store.touch_token(&parent.record.id, now).await?;
        let (id, token, secret_hash) = self.mint()?;
        let mut record = TokenRecord::new(
            id,
            row.account.clone(),
            TokenKind::TrustedPublishing,
            parent.record.scope.clone(),
            secret_hash,
            now,
        );
        record.description = provenance(claims).into();
        record.expires_at = Some(expires_at);
        record.parent = Some(parent.record.id);
        record.parent_secret_set_at = None;
        self.insert(
            record,
            Some(&parent),
            token,
            AuditKind::Derived {
                parent: parent.record.id,
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use time::OffsetDateTime;

    use super::*;
    use crate::token::TokenId;

    fn candidate(account: &str, n: u8) -> Candidate {
        Candidate {
            row: TrustPolicyRow::new(
                TokenId::from_bytes([n; 16]),
                AccountId::new(account).unwrap(),
                "https://issuer".into(),
                "contoso/service".into(),
                "{}".into(),
                OffsetDateTime::UNIX_EPOCH,
            ),
            lock: None,
        }
    }

    /// Which policy answers, one case a row: the trusting policies, the account named,
    /// and the policy chosen or the refusal.
    #[test]
    fn the_policy_choice_table() {
        let alice = AccountId::new("alice").unwrap();
        let bob = AccountId::new("bob").unwrap();
        let id = |c: Result<Candidate, Refusal>| c.map(|c| c.row.id);
        type Case<'a> = (
            &'a str,
            Vec<Candidate>,
            Option<&'a AccountId>,
            Result<TokenId, Refusal>,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "none trusts",
                vec![],
                None,
                Err(Refusal::NoMatchingPolicy("workflow_ref")),
            ),
            (
                "one",
                vec![candidate("alice", 1)],
                None,
                Ok(TokenId::from_bytes([1; 16])),
            ),
            (
                "two of one account: the oldest",
                vec![candidate("alice", 1), candidate("alice", 2)],
                None,
                Ok(TokenId::from_bytes([1; 16])),
            ),
            (
                "two accounts, none named",
                vec![candidate("alice", 1), candidate("bob", 2)],
                None,
                Err(Refusal::SeveralAccounts),
            ),
            (
                "two accounts, one named",
                vec![candidate("alice", 1), candidate("bob", 2)],
                Some(&bob),
                Ok(TokenId::from_bytes([2; 16])),
            ),
            (
                "another account named",
                vec![candidate("bob", 2)],
                Some(&alice),
                Err(Refusal::NoMatchingPolicy("workflow_ref")),
            ),
        ];
        for (what, trusted, account, expected) in cases {
            assert_eq!(
                id(choose(trusted, Some("workflow_ref"), account)),
                expected,
                "{what}"
            );
        }
        assert_eq!(
            id(choose(vec![], None, None)),
            Err(Refusal::NoMatchingPolicy("repository"))
        );
    }
}
