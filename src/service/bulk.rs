//! Many tokens at once, for an operator: revoking a selection (an incident, a key
//! retired) and counting the live tokens under each key version.
//!
//! Each walks the live tokens through [`TokenStore::tokens_unused_since`] (every token not
//! revoked), or one account's through [`TokenStore::account_tokens`]; each revocation is
//! one revocation as [`Feedkey::revoke`] makes it, audited with its cause.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use time::OffsetDateTime;

use crate::account::AccountId;
use crate::audit::RevokeCause;
use crate::error::Error;
use crate::policy::LATEST_EXPIRY;
use crate::record::{StoredToken, TokenKind};
use crate::service::Feedkey;
use crate::store::TokenStore;
use crate::token::TokenId;

/// Which live tokens [`Feedkey::revoke_selected`] revokes. Primary keys are never
/// selected: regenerate one instead ([`Feedkey::regenerate_primary`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokeSelection {
    /// Every token of this account.
    Account(AccountId),
    /// Every token created strictly before this instant, of one account or of all.
    CreatedBefore {
        /// Tokens created before this are selected.
        before: OffsetDateTime,
        /// Only this account's, or every account's.
        account: Option<AccountId>,
    },
    /// Every token derived from this one.
    DerivedFrom(TokenId),
    /// Every token whose secret is hashed under this key version (a key retired while
    /// tokens remain under it).
    KeyVersion(u32),
}

/// How many revocations [`Feedkey::revoke_selected`] has in flight at once.
const CONCURRENT_REVOCATIONS: usize = 16;

/// Runs `futures` together on this task; their outputs in order.
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all_ready = true;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => all_ready = false,
                }
            }
        }
        if all_ready {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

impl RevokeSelection {
    /// Whether `stored`, a live token, is selected.
    fn selects(&self, stored: &StoredToken) -> bool {
        let record = &stored.record;
        // Primary keys are regenerated, never revoked; a policy's hidden record is
        // removed with its policy.
        if matches!(record.kind, TokenKind::Primary | TokenKind::TrustPolicy) {
            return false;
        }
        match self {
            // The account's own tokens were read; every one is selected.
            RevokeSelection::Account(account) => &record.account == account,
            // Created before the instant, and of the account if one is named.
            RevokeSelection::CreatedBefore { before, account } => {
                record.created_at < *before && account.as_ref().is_none_or(|a| &record.account == a)
            }
            // Its parent is the one named.
            RevokeSelection::DerivedFrom(parent) => record.parent == Some(*parent),
            // Its current secret is hashed under the version.
            RevokeSelection::KeyVersion(version) => record.secret_hash.key_version() == *version,
        }
    }

    /// The one account whose tokens are enough to read, if there is one.
    fn account(&self) -> Option<&AccountId> {
        match self {
            RevokeSelection::Account(account) => Some(account),
            RevokeSelection::CreatedBefore { account, .. } => account.as_ref(),
            RevokeSelection::DerivedFrom(_) | RevokeSelection::KeyVersion(_) => None,
        }
    }
}

impl<S: TokenStore> Feedkey<S> {
    /// Every live (not revoked) token, of one account or of all.
    async fn live_tokens(&self, account: Option<&AccountId>) -> Result<Vec<StoredToken>, Error> {
        Ok(match account {
            Some(account) => {
                // The account must exist: a mistyped name is an error, not "0 revoked".
                self.account_record(account).await?;
                self.store
                    .account_tokens(account)
                    .await?
                    .into_iter()
                    .filter(|stored| stored.record.revoked_at.is_none())
                    .collect()
            }
            // Every token not revoked was last used (or created) before the latest
            // instant a store keeps.
            None => self.store.tokens_unused_since(LATEST_EXPIRY).await?,
        })
    }

    /// Revokes every live token `selection` picks (never a primary key), each audited as
    /// revoked by its owner (the operator acting for them), a few at a time. `progress`
    /// is told, as they go, how many are done out of how many were selected. Returns how many
    /// were revoked: a token revoked or deleted meanwhile is not counted.
    ///
    /// ```
    /// # async fn demo(keys: &feedkey::Feedkey<feedkey::MemoryStore>) -> Result<(), feedkey::Error> {
    /// use feedkey::{AccountId, RevokeSelection};
    ///
    /// let alice = AccountId::new("alice")?;
    /// let revoked = keys.revoke_selected(&RevokeSelection::Account(alice), |_, _| {}).await?;
    /// println!("{revoked} tokens revoked");
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::AccountNotFound`] when the selection names an account that does not
    /// exist, or a store failure: the tokens revoked before it stay revoked, and a second
    /// run revokes the rest.
    pub async fn revoke_selected(
        &self,
        selection: &RevokeSelection,
        mut progress: impl FnMut(u64, u64) + Send,
    ) -> Result<u64, Error> {
        self.keys_ready().await?;
        let selected: Vec<(AccountId, TokenId)> = self
            .live_tokens(selection.account())
            .await?
            .into_iter()
            .filter(|stored| selection.selects(stored))
            .map(|stored| (stored.record.account.clone(), stored.record.id))
            .collect();
        let total = selected.len() as u64;
        let mut done = 0;
        let mut revoked = 0;
        // A few at a time: a server store answers each over the network, and one at a
        // time would take a round trip per token.
        for chunk in selected.chunks(CONCURRENT_REVOCATIONS) {
            let results = join_all(
                chunk
                    .iter()
                    .map(|(account, id)| self.revoke_as(account, *id, RevokeCause::Owner, None))
                    .collect(),
            )
            .await;
            for result in results {
                match result {
                    Ok(()) => revoked += 1,
                    // Revoked or deleted meanwhile: nothing left to do.
                    Err(Error::TokenNotFound) => {}
                    Err(e) => return Err(e),
                }
                done += 1;
            }
            progress(done, total);
        }
        Ok(revoked)
    }

    /// The live (not revoked) tokens under each key version: how many, and which
    /// accounts' primary keys are among them. A token is rehashed under the current key
    /// when it is next used, so the tokens still under an old version are those unused
    /// since the key changed.
    ///
    /// # Errors
    /// A store failure.
    pub async fn tokens_by_key_version(&self) -> Result<BTreeMap<u32, KeyVersionUse>, Error> {
        let mut uses = BTreeMap::new();
        for stored in self.live_tokens(None).await? {
            let record = &stored.record;
            // A policy's hidden record is never verified: no key version is in use by it.
            if record.kind == TokenKind::TrustPolicy {
                continue;
            }
            let entry: &mut KeyVersionUse =
                uses.entry(record.secret_hash.key_version()).or_default();
            entry.tokens += 1;
            if record.kind == TokenKind::Primary {
                entry.primary_keys.push(record.account.clone());
            }
        }
        for entry in uses.values_mut() {
            entry.primary_keys.sort();
        }
        Ok(uses)
    }
}

/// The live tokens hashed under one key version ([`Feedkey::tokens_by_key_version`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyVersionUse {
    /// How many, primary keys included.
    pub tokens: u64,
    /// The accounts whose primary key is among them (regenerate one to move it to the
    /// current key: [`Feedkey::regenerate_primary`]).
    pub primary_keys: Vec<AccountId>,
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::RevokeSelection;
    use crate::{AccountId, Expiry, Feedkey, MemoryStore, NewToken, Scope, TokenKey};

    #[tokio::test(flavor = "current_thread")]
    async fn a_selection_revokes_exactly_its_tokens_and_never_a_primary_key() {
        let keys = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[7; 32]))
            .build()
            .unwrap();
        let alice = AccountId::new("alice").unwrap();
        let bob = AccountId::new("bob").unwrap();
        let primary = keys.create_account(&alice, Expiry::Never).await.unwrap();
        keys.create_account(&bob, Expiry::Never).await.unwrap();
        for account in [&alice, &alice, &bob] {
            keys.issue(
                account,
                NewToken::new("ci", Scope::read_only()).expires(Expiry::After(Duration::days(1))),
            )
            .await
            .unwrap();
        }
        let mut seen = Vec::new();
        let revoked = keys
            .revoke_selected(&RevokeSelection::Account(alice.clone()), |done, total| {
                seen.push((done, total));
            })
            .await
            .unwrap();
        assert_eq!(revoked, 2);
        assert_eq!(seen, [(2, 2)]);
        assert_eq!(
            keys.token(&alice, primary.info.id).await.unwrap().status,
            crate::TokenStatus::Active
        );
        let again = keys
            .revoke_selected(&RevokeSelection::Account(alice.clone()), |_, _| {})
            .await
            .unwrap();
        assert_eq!(again, 0);
        let uses = keys.tokens_by_key_version().await.unwrap();
        let version_1 = uses.get(&1).unwrap();
        assert_eq!(version_1.tokens, 3); // two primary keys and bob's token
        assert_eq!(version_1.primary_keys, [alice.clone(), bob.clone()]);
        let missing = AccountId::new("carol").unwrap();
        assert!(matches!(
            keys.revoke_selected(&RevokeSelection::Account(missing), |_, _| {})
                .await,
            Err(crate::Error::AccountNotFound)
        ));
    }
}
