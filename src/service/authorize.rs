//! The evaluator: `authorize` on every request, and `sign_in` for the website.
//!
//! Order of checks for a token, and why:
//! 1. shape, prefix and checksum: cheap, public, stops typos and garbage before any lookup;
//! 2. lookup by id, then one keyed hash and a fixed number of constant-time comparisons
//!    (the current secret and every retired-secret slot, decoys standing in for missing
//!    ones), so an unknown id costs what a wrong secret costs;
//! 3. only then retired-secret reuse, revocation, expiry, idleness, network and scope, and
//!    for a derived token its parent's state and scope: no one learns anything of a
//!    token's state or scope without its secret.

use std::net::IpAddr;

use crate::account::AccountId;
use crate::audit::{AuditEvent, AuditKind, RevokeCause};
use crate::decision::{Denial, DenyReason, Grant, password_may};
use crate::policy::liveness::{self, Dead};
use crate::policy::rotation::{RetiredUse, retired_use};
use crate::record::{StoredToken, TokenRecord};
use crate::request::{Action, Target};
use crate::request::{Credential, Request};
use crate::secret::Matched;
use crate::service::Feedkey;
use crate::store::TokenStore;
use crate::telemetry;
use crate::token::PresentedToken;

impl From<Dead> for DenyReason {
    fn from(dead: Dead) -> Self {
        match dead {
            Dead::Revoked => DenyReason::Revoked,
            Dead::Expired => DenyReason::Expired,
            Dead::Idle => DenyReason::Idle,
            Dead::ParentGone | Dead::ParentRenewed => DenyReason::ParentInvalid,
            Dead::Suspended => DenyReason::AccountDisabled,
        }
    }
}

/// Why a presented secret matched nothing: the one rule, for every exit of the verifier.
/// `known`: the store had the id; `unknown_key`: its current hash was made with a key
/// this server does not hold.
fn unmatched(known: bool, unknown_key: bool) -> DenyReason {
    match (known, unknown_key) {
        (false, _) => DenyReason::UnknownToken,
        (true, true) => DenyReason::UnknownKey,
        (true, false) => DenyReason::WrongSecret,
    }
}

/// How a Basic-auth password is to be read.
enum Secret<'a> {
    Token(&'a str),
    Password(&'a str),
}

/// What a request presents: a token, or an account's user name and password.
pub(crate) enum Presented<'a> {
    /// A token's text, from any header it may come in.
    Token(&'a str),
    /// Basic auth whose password is not token-shaped.
    Password {
        /// The user name sent.
        username: &'a str,
        /// The password sent.
        password: &'a str,
    },
}

/// A live token whose secret was proven: the record, its parent's record for a derived
/// token, and whether a retired secret (inside its overlap window) was the one presented.
pub(crate) struct Proven {
    pub stored: StoredToken,
    pub parent: Option<StoredToken>,
    pub previous_secret: bool,
    /// The stamp of the secret presented ([`liveness::current_secret_set_at`]): what a
    /// child derived with it records as derived under.
    pub secret_set_at: Option<time::OffsetDateTime>,
}

impl<S: TokenStore> Feedkey<S> {
    /// Whether `password` is meant as a token: it has this registry's prefix and a token's
    /// length. Such a string never goes to the password check, so a mistyped token is
    /// logged as a malformed token, not as a wrong password.
    fn classify<'a>(&self, password: &'a str) -> Secret<'a> {
        if self.format.has_token_shape(password) {
            Secret::Token(password)
        } else {
            Secret::Password(password)
        }
    }

    /// What `request` presents: the one reading of a credential every entry point uses
    /// (`authorize`, `authenticate`, `derive`). A Basic-auth password shaped like a token
    /// is a token.
    pub(crate) fn presented<'r>(&self, request: &'r Request<'_>) -> Result<Presented<'r>, Denial> {
        let credential = request
            .credential()
            .map_err(|e| Denial::new(DenyReason::MalformedCredential(e)))?;
        Ok(match credential {
            Credential::Token(text) => Presented::Token(text),
            Credential::Basic { username, password } => match self.classify(password) {
                Secret::Token(text) => Presented::Token(text),
                Secret::Password(password) => Presented::Password { username, password },
            },
        })
    }

    /// Proves the token `request` presents and checks that it may act from the request's
    /// address; the account password is refused (it only reads, through `authorize`).
    /// What `authenticate` and `derive` do before anything else.
    pub(crate) async fn prove_token(&self, request: &Request<'_>) -> Result<Proven, Denial> {
        self.keys_ready().await.map_err(|e| Denial::new(e.into()))?;
        let text = match self.presented(request)? {
            Presented::Token(text) => text,
            // A password never proves who holds a token: `password_may(None)` is false.
            Presented::Password { .. } => return Err(Denial::new(DenyReason::PasswordCannotWrite)),
        };
        let client = request.client_addr();
        let proven = self.verify_text(text, client).await?;
        self.acting_from(&proven, client)?;
        Ok(proven)
    }

    /// Parses and verifies a token's text.
    async fn verify_text(&self, text: &str, client: Option<IpAddr>) -> Result<Proven, Denial> {
        let presented = self
            .format
            .parse(text)
            .map_err(|e| Denial::new(DenyReason::MalformedToken(e)))?;
        self.verify_token(&presented, client).await
    }

    /// The address rule, [`liveness::may_act_from`], as a denial.
    fn acting_from(&self, proven: &Proven, client: Option<IpAddr>) -> Result<(), Denial> {
        let record = &proven.stored.record;
        let parent = proven.parent.as_ref().map(|p| &*p.record);
        if liveness::may_act_from(record, parent, client) {
            Ok(())
        } else {
            Err(Denial::for_record(DenyReason::AddressNotAllowed, record))
        }
    }

    /// Decides whether `request` may do `action` on `target`.
    ///
    /// A token may do what its scope names, and nothing at all once revoked, expired or
    /// retired for idleness. The account password (Basic auth with a password that is not
    /// a token) may only read. A denial carries its reason for logs; answer the client
    /// with [`Denial::status`] and a generic message.
    ///
    /// ```
    /// use feedkey::*;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let keys = Feedkey::builder(MemoryStore::new(), TokenKey::generate(1)?).build()?;
    /// let alice = AccountId::new("alice")?;
    /// keys.create_account(&alice, Expiry::Never).await?;
    /// let reader = keys.issue(&alice, NewToken::new("laptop", Scope::read_only())).await?;
    ///
    /// let request = Request::from_headers(Some(reader.token.expose_secret().as_bytes()), None);
    /// let grant = keys.authorize(&request, Action::Read, &Target::package("main", "Acme.Util")).await?;
    /// assert_eq!(grant.account(), &alice);
    ///
    /// let denial = keys
    ///     .authorize(&request, Action::Push, &Target::new_package("main", "Acme.Util"))
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(denial.status(), DenyStatus::Forbidden);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// A [`Denial`] whenever the answer is no, including when the store fails
    /// ([`DenyReason::Store`], status 503).
    pub async fn authorize(
        &self,
        request: &Request<'_>,
        action: Action,
        target: &Target<'_>,
    ) -> Result<Grant, Denial> {
        let decision = self.decide(request, action, target).await;
        match &decision {
            Ok(grant) => telemetry::granted(grant.granted_by().code()),
            Err(denial) => telemetry::denied(denial.reason().code()),
        }
        if self.audit.enabled() {
            self.audit_decision(request, action, &decision);
        }
        decision
    }

    fn audit_decision(
        &self,
        request: &Request<'_>,
        action: Action,
        decision: &Result<Grant, Denial>,
    ) {
        let (kind, account, token) = match decision {
            Ok(grant) => (
                AuditKind::Used {
                    action,
                    by: grant.granted_by(),
                },
                Some(grant.account().clone()),
                grant.token_id(),
            ),
            Err(denial) => (
                AuditKind::Denied {
                    reason: denial.reason().clone(),
                },
                denial.account().cloned(),
                denial.token_id(),
            ),
        };
        self.emit(AuditEvent {
            kind,
            account,
            token,
            client_addr: request.client_addr(),
            at: self.clock.now(),
        });
    }

    async fn decide(
        &self,
        request: &Request<'_>,
        action: Action,
        target: &Target<'_>,
    ) -> Result<Grant, Denial> {
        self.keys_ready().await.map_err(|e| Denial::new(e.into()))?;
        let client = request.client_addr();
        let text = match self.presented(request)? {
            Presented::Token(text) => text,
            Presented::Password { .. } if !password_may(Some(action)) => {
                // Refused before the slow hash: the answer is the same whatever the
                // password, so it tells nothing, and costs nothing.
                return Err(Denial::new(DenyReason::PasswordCannotWrite));
            }
            Presented::Password { username, password } => {
                // Boxed: the password path's state would otherwise swell every
                // token request's future.
                let account = Box::pin(self.verify_password(username, password)).await?;
                if !target.is_well_formed() {
                    return Err(Denial::for_account(DenyReason::InvalidTarget, account));
                }
                return Ok(Grant::password(account));
            }
        };
        let proven = self.verify_text(text, client).await?;
        self.acting_from(&proven, client)?;
        let record = &proven.stored.record;
        // Only now, with the credential proven, is the target looked at.
        if !target.is_well_formed() {
            return Err(Denial::for_record(DenyReason::InvalidTarget, record));
        }
        record
            .scope
            .check(action, target)
            .map_err(|reason| Denial::for_record(reason, record))?;
        if let Some(parent) = &proven.parent {
            parent
                .record
                .scope
                .check(action, target)
                .map_err(|_| Denial::for_record(DenyReason::ParentOutOfScope, record))?;
        }
        Ok(Grant::token(proven.stored.record, proven.previous_secret))
    }

    /// Checks a token's secret (current, or retired inside its overlap window), then its
    /// standing ([`liveness::check`]: revocation, expiry, idleness, and its parent's for
    /// a derived token); records its use.
    pub(crate) async fn verify_token(
        &self,
        presented: &PresentedToken,
        client: Option<IpAddr>,
    ) -> Result<Proven, Denial> {
        let id = presented.id();
        let stored = self
            .store
            .token(&id)
            .await
            .map_err(|e| Denial::for_token(DenyReason::Store(e), id))?;
        // One keyed hash and a fixed number of constant-time comparisons on every path: an
        // unknown id is verified against a decoy hash just as a known one is.
        let verified = self.hasher.verify(
            presented,
            Some(match &stored {
                Some(s) => (&s.record.secret_hash, s.record.retired.as_slice()),
                None => (self.hasher.decoy(), &[][..]),
            }),
        );
        // Nothing matched, an unknown id included (its decoy hash matches no secret): one
        // way out, the reason picked there, so that an unknown id and a wrong secret take
        // the same branches (a mispredicted branch on one of them alone would show).
        let (stored, retired) = match (stored, verified.matched) {
            (Some(stored), Matched::Current) => (stored, None),
            (Some(stored), Matched::Retired(i)) => (stored, Some(i)),
            (stored, _) => {
                let reason = unmatched(stored.is_some(), verified.unknown_key);
                return Err(Denial::for_token(reason, id));
            }
        };
        let record = &stored.record;
        // The clock is read only once the secret matched, so that an unknown id and a
        // wrong secret do the same work.
        let now = self.clock.now();
        let (previous_secret, secret_set_at) = match retired {
            None => (false, liveness::current_secret_set_at(record)),
            Some(i) => match record.retired.get(i).map(|r| retired_use(r, now)) {
                Some(RetiredUse::Works) => (true, liveness::retired_secret_set_at(record, i)),
                Some(RetiredUse::Reuse) => {
                    Box::pin(self.on_reuse(&stored, client)).await;
                    return Err(Denial::for_record(DenyReason::RetiredSecretReused, record));
                }
                Some(RetiredUse::Forgotten) | None => {
                    return Err(Denial::for_token(DenyReason::WrongSecret, id));
                }
            },
        };
        // The token's standing, its parent's included: the one rule, in `liveness`.
        let parent = match record.parent {
            Some(parent_id) => Box::pin(self.store.token(&parent_id))
                .await
                .map_err(|e| Denial::for_record(DenyReason::Store(e), record))?,
            None => None,
        };
        liveness::check(&stored, parent.as_ref(), &self.policy, now)
            .map_err(|dead| Denial::for_record(dead.into(), record))?;
        let due = stored
            .last_used_at
            .is_none_or(|last| now - last >= self.last_used_every);
        if due {
            // Best effort: a failed write of the last-used time denies nothing.
            let _ = self.store.touch_token(&id, now).await;
        }
        if verified.stale {
            Box::pin(self.rehash(&stored, presented)).await;
        }
        Ok(Proven {
            stored,
            parent,
            previous_secret,
            secret_set_at,
        })
    }

    /// A retired secret came back after its window: audit it, and revoke the token if the
    /// policy says so.
    async fn on_reuse(&self, stored: &StoredToken, client: Option<IpAddr>) {
        let record = &stored.record;
        let now = self.clock.now();
        self.emit(AuditEvent {
            kind: AuditKind::RetiredSecretReused,
            account: Some(record.account.clone()),
            token: Some(record.id),
            client_addr: client,
            at: now,
        });
        if self.rotation.revokes_on_reuse() && record.revoked_at.is_none() {
            // Retried on a concurrent change: the leak is assumed, the token must go.
            // (It audits itself; a failure leaves the next reuse to try again.)
            let _ = self
                .revoke_as(
                    &record.account,
                    record.id,
                    RevokeCause::RetiredSecretReused,
                    client,
                )
                .await;
        }
    }

    /// Rehashes a secret verified under an old key. Best effort: a concurrent change
    /// wins, and the next good verify tries again.
    async fn rehash(&self, stored: &StoredToken, presented: &PresentedToken) {
        let mut record = TokenRecord::clone(&stored.record);
        let expected = record.revision;
        let Some(revision) = expected.checked_add(1) else {
            return;
        };
        record.secret_hash = self.hasher.hash(&record.id, presented.secret());
        record.revision = revision;
        let _ = self.store.update_token(record, expected).await;
    }

    /// Checks an account password (Argon2id, or a remembered good verify).
    async fn verify_password(&self, username: &str, password: &str) -> Result<AccountId, Denial> {
        let now = self.clock.now();
        let account_id = AccountId::new(username).ok();
        let account = match &account_id {
            Some(id) => self
                .store
                .account(id)
                .await
                .map_err(|e| Denial::new(DenyReason::Store(e)))?,
            None => None,
        };
        // The decoy stands in for an unknown account, so timing tells nothing.
        let decoy_id;
        let id_for_check = match &account_id {
            Some(id) => id,
            None => {
                decoy_id =
                    AccountId::new("-").map_err(|_| Denial::new(DenyReason::UnknownAccount))?;
                &decoy_id
            }
        };
        let check = self
            .passwords
            .verify(
                id_for_check,
                account.as_ref().map_or(0, |a| a.revision),
                password,
                account.as_ref().and_then(|a| a.password.as_ref()),
                now,
            )
            .await;
        if check.busy {
            return Err(Denial::new(DenyReason::Busy));
        }
        // A store must answer for exactly the id asked; one that matched another (a
        // collation that ignores trailing spaces, say) found no such account.
        let (Some(account), Some(id)) = (account, account_id) else {
            return Err(Denial::new(DenyReason::UnknownAccount));
        };
        if !account.is_for(&id) {
            return Err(Denial::new(DenyReason::UnknownAccount));
        }
        if !check.matched {
            return Err(Denial::for_account(DenyReason::WrongPassword, id));
        }
        // Told only to the one who knows the password.
        if !account.is_active() {
            return Err(Denial::for_account(DenyReason::AccountDisabled, id));
        }
        if check.stale {
            // Rehash under the configured parameters. Best effort, as for tokens.
            if let Some(revision) = account.revision.checked_add(1)
                && let Ok(hash) = self.passwords.hash(password).await
            {
                let mut updated = account.clone();
                updated.password = Some(hash);
                updated.revision = revision;
                let _ = self.store.update_account(updated, account.revision).await;
            }
        }
        // The id the store holds, never the name the client sent: a store that compared
        // names loosely could otherwise hand out an account that does not exist.
        Ok(account.id)
    }

    /// Checks the token a request presents — secret, revocation, expiry, idleness and
    /// client networks — without asking about any feed or package: for a management API
    /// that needs to know who is calling (and, with [`Grant::granted_by`], whether with
    /// the primary key). The account password is refused here, as for writes.
    ///
    /// # Errors
    /// A [`Denial`], as from [`Feedkey::authorize`].
    pub async fn authenticate(&self, request: &Request<'_>) -> Result<Grant, Denial> {
        let proven = self.prove_token(request).await?;
        Ok(Grant::token(proven.stored.record, proven.previous_secret))
    }

    /// Interactive sign-in to the website: the account password only. A token is refused
    /// here whatever its scope (MyGet: "all authentication purposes, except logging into
    /// the website").
    ///
    /// # Errors
    /// A [`Denial`]: [`DenyReason::TokenCannotSignIn`], [`DenyReason::UnknownAccount`],
    /// [`DenyReason::WrongPassword`] or [`DenyReason::Store`].
    pub async fn sign_in(&self, username: &str, password: &str) -> Result<AccountId, Denial> {
        self.keys_ready().await.map_err(|e| Denial::new(e.into()))?;
        if let Secret::Token(_) = self.classify(password) {
            return Err(Denial::new(DenyReason::TokenCannotSignIn));
        }
        self.verify_password(username, password).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_that_matched_nothing_is_told_by_what_the_store_had() {
        let table = [
            (false, false, DenyReason::UnknownToken),
            (false, true, DenyReason::UnknownToken),
            (true, true, DenyReason::UnknownKey),
            (true, false, DenyReason::WrongSecret),
        ];
        for (known, unknown_key, reason) in table {
            assert_eq!(
                unmatched(known, unknown_key),
                reason,
                "{known} {unknown_key}"
            );
        }
    }
}
