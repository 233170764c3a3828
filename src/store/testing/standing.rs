//! An account's standing, on every backend: disabled (everything refused, reversibly),
//! enabled again, deleted (everything revoked for good).

use crate::time::Duration;
use crate::{
    Action, DenyReason, Error, Expiry, Feedkey, NewChild, NewToken, PasswordConfig, TokenStatus,
    TokenStore,
};

use super::{Backend, PUSH, api_key, ci_scope, feedkey_on, key};

/// What `authorize` answers for `secret`: `None` when allowed, else the reason.
async fn refusal<S: TokenStore>(keys: &Feedkey<S>, secret: &str) -> Option<DenyReason> {
    keys.authorize(&api_key(secret), Action::Push, &PUSH)
        .await
        .err()
        .map(|d| d.reason().clone())
}

/// The statuses of the account's tokens, in a fixed order.
async fn statuses<S: TokenStore>(
    keys: &Feedkey<S>,
    account: &crate::AccountId,
) -> Vec<TokenStatus> {
    let mut listed: Vec<TokenStatus> = keys
        .tokens(account)
        .await
        .unwrap()
        .iter()
        .map(|t| t.status)
        .collect();
    listed.sort_by_key(|s| format!("{s:?}"));
    listed
}

/// A disabled account's password and every token (primary, scoped, derived) are refused
/// and nothing can be issued for it, as a second server on the same storage reads too;
/// enabling it gives back exactly what it had (a token revoked meanwhile stays revoked);
/// another account is untouched. A deleted account has every token revoked for good, its
/// password removed and its id kept; it cannot be enabled or given tokens.
pub async fn a_disabled_account_is_refused_until_enabled_and_a_deleted_one_for_good<B: Backend>(
    backend: &B,
) {
    let (keys, _clock, alice) = feedkey_on(backend).await;
    let bob = crate::AccountId::new("bob").unwrap();
    let bobs = keys.create_account(&bob, Expiry::Never).await.unwrap();
    keys.set_password(&alice, "correct horse").await.unwrap();
    let primary = keys
        .regenerate_primary(&alice, Expiry::Never)
        .await
        .unwrap();
    let scoped = keys
        .issue(&alice, NewToken::new("ci", ci_scope()))
        .await
        .unwrap();
    let child = keys
        .derive(
            &api_key(scoped.token.expose_secret()),
            NewChild::new("build", ci_scope(), Duration::minutes(30)),
        )
        .await
        .unwrap();
    let secrets = [
        primary.token.expose_secret(),
        scoped.token.expose_secret(),
        child.token.expose_secret(),
    ];

    assert_eq!(keys.disable_account(&alice).await.unwrap(), 3);
    for secret in secrets {
        assert_eq!(
            refusal(&keys, secret).await,
            Some(DenyReason::AccountDisabled)
        );
        let authenticated = keys.authenticate(&api_key(secret)).await;
        assert_eq!(
            authenticated.err().map(|d| d.reason().clone()),
            Some(DenyReason::AccountDisabled)
        );
    }
    let signed_in = keys.sign_in("alice", "correct horse").await;
    assert_eq!(
        signed_in.err().map(|d| d.reason().clone()),
        Some(DenyReason::AccountDisabled)
    );
    // Only the one who knows the password learns that the account is disabled.
    let guessed = keys.sign_in("alice", "wrong").await;
    assert_eq!(
        guessed.err().map(|d| d.reason().clone()),
        Some(DenyReason::WrongPassword)
    );
    assert_eq!(statuses(&keys, &alice).await, [TokenStatus::Suspended; 3]);
    assert!(matches!(
        keys.issue(&alice, NewToken::new("new", ci_scope())).await,
        Err(Error::AccountDisabled)
    ));
    let derived = keys
        .derive(
            &api_key(scoped.token.expose_secret()),
            NewChild::new("build 2", ci_scope(), Duration::minutes(30)),
        )
        .await;
    assert!(
        matches!(&derived, Err(Error::Denied(d)) if d.reason() == &DenyReason::AccountDisabled),
        "{derived:?}"
    );
    // Another account is untouched.
    assert_eq!(refusal(&keys, bobs.token.expose_secret()).await, None);
    // A second server on the same storage reads the same standing.
    if backend.persistent() {
        let other = Feedkey::builder(backend.store().await, key(1))
            .passwords(PasswordConfig::insecure_fast_for_tests())
            .build()
            .unwrap();
        assert_eq!(
            refusal(&other, scoped.token.expose_secret()).await,
            Some(DenyReason::AccountDisabled)
        );
        let record = other.store().account(&alice).await.unwrap().unwrap();
        assert!(record.disabled_at.is_some() && record.deleted_at.is_none());
    }
    // Disabling again changes nothing.
    assert_eq!(keys.disable_account(&alice).await.unwrap(), 0);

    // Revoked while disabled: it stays revoked when the account comes back.
    keys.revoke(&alice, scoped.token.id()).await.unwrap();
    assert_eq!(keys.enable_account(&alice).await.unwrap(), 2);
    assert_eq!(refusal(&keys, primary.token.expose_secret()).await, None);
    assert_eq!(
        refusal(&keys, scoped.token.expose_secret()).await,
        Some(DenyReason::Revoked)
    );
    assert_eq!(
        refusal(&keys, child.token.expose_secret()).await,
        Some(DenyReason::ParentInvalid)
    );
    assert_eq!(keys.sign_in("alice", "correct horse").await.unwrap(), alice);
    assert_eq!(keys.enable_account(&alice).await.unwrap(), 0);
    let after = keys
        .issue(&alice, NewToken::new("after", ci_scope()))
        .await
        .unwrap();

    // Deleted: every token revoked, the primary key too; nothing to undo.
    assert_eq!(keys.delete_account(&alice).await.unwrap(), 3);
    for secret in [primary.token.expose_secret(), after.token.expose_secret()] {
        assert_eq!(refusal(&keys, secret).await, Some(DenyReason::Revoked));
    }
    // The password is gone with the account.
    assert_eq!(
        keys.sign_in("alice", "correct horse")
            .await
            .map_err(|d| d.reason().clone()),
        Err(DenyReason::WrongPassword)
    );
    assert!(matches!(
        keys.enable_account(&alice).await,
        Err(Error::AccountDeleted)
    ));
    assert!(matches!(
        keys.disable_account(&alice).await,
        Err(Error::AccountDeleted)
    ));
    assert!(matches!(
        keys.issue(&alice, NewToken::new("new", ci_scope())).await,
        Err(Error::AccountDeleted)
    ));
    assert!(matches!(
        keys.create_account(&alice, Expiry::Never).await,
        Err(Error::AccountExists)
    ));
    assert_eq!(keys.delete_account(&alice).await.unwrap(), 0);
    assert_eq!(refusal(&keys, bobs.token.expose_secret()).await, None);
    assert!(matches!(
        keys.disable_account(&crate::AccountId::new("nobody").unwrap())
            .await,
        Err(Error::AccountNotFound)
    ));
}
