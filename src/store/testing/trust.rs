//! Trusted publishing's store rules ([`TrustStore`]), for every backend that keeps its
//! state: an OIDC token id is used once, however many servers race for it, and policy
//! rows are kept, found, updated by revision and deleted.

use std::sync::Arc;

use super::{Backend, START};
use crate::store::{StoreError, TrustPolicyRow, TrustStore, token_id_digest};
use crate::time::Duration;
use crate::{AccountId, TokenId};

/// Two stores on the backend's storage (two servers), or one when it is not persistent.
async fn two_stores<B: Backend>(backend: &B) -> (Arc<B::Store>, Arc<B::Store>) {
    let first = Arc::new(backend.store().await);
    let second = if backend.persistent() {
        Arc::new(backend.store().await)
    } else {
        Arc::clone(&first)
    };
    (first, second)
}

/// One token id, recorded by 16 tasks at once on two stores sharing the storage: exactly
/// one is told it is the first use, and every later try is a replay until the id is
/// purged after its expiry. The same id from another issuer is another token.
pub async fn an_oidc_token_id_is_used_once_across_servers<B>(backend: &B)
where
    B: Backend,
    B::Store: TrustStore,
{
    let (a, b) = two_stores(backend).await;
    let expires = START + Duration::minutes(10);
    for round in 0..5 {
        let digest = token_id_digest(
            "https://token.actions.githubusercontent.com",
            &format!("run-{round}"),
        );
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = if i % 2 == 0 {
                    Arc::clone(&a)
                } else {
                    Arc::clone(&b)
                };
                tokio::spawn(async move { store.use_token_id(digest, expires).await })
            })
            .collect();
        let mut firsts = 0;
        for task in tasks {
            if task.await.unwrap().unwrap() {
                firsts += 1;
            }
        }
        assert_eq!(firsts, 1, "round {round}: exactly one first use");
        assert!(!b.use_token_id(digest, expires).await.unwrap(), "a replay");
    }
    let other = token_id_digest("https://gitlab.com", "run-0");
    assert!(
        a.use_token_id(other, expires).await.unwrap(),
        "another issuer's id"
    );
    assert_eq!(
        a.purge_token_ids(expires).await.unwrap(),
        0,
        "none expired yet"
    );
    assert_eq!(
        a.purge_token_ids(expires + Duration::SECOND).await.unwrap(),
        6,
        "every id purged after its expiry"
    );
    let digest = token_id_digest("https://token.actions.githubusercontent.com", "run-0");
    assert!(
        b.use_token_id(digest, expires).await.unwrap(),
        "forgotten once purged"
    );
}

/// Policy rows: kept whole, found by id, by account (oldest first) and by issuer and
/// subject (exactly), replaced only from their current revision, deleted once.
pub async fn trust_policies_are_kept_and_replaced_by_revision<B>(backend: &B)
where
    B: Backend,
    B::Store: TrustStore,
{
    let (a, b) = two_stores(backend).await;
    let alice = AccountId::new("alice").unwrap();
    let bob = AccountId::new("bob").unwrap();
    let github = "https://token.actions.githubusercontent.com";
    let row = |n: u8, account: &AccountId, subject: &str, minutes: i64| {
        let mut row = TrustPolicyRow::new(
            TokenId::from_bytes([n; 16]),
            account.clone(),
            github.to_owned(),
            subject.to_owned(),
            format!(r#"{{"forge":"git-hub","n":{n}}}"#),
            START + Duration::minutes(minutes),
        );
        row.lifetime_secs = Some(i64::from(n) * 60);
        row
    };
    let first = row(1, &alice, "contoso/service", 2);
    let second = row(2, &alice, "contoso/web", 1);
    let third = row(3, &bob, "contoso/service", 3);
    for r in [&first, &second, &third] {
        a.insert_trust_policy(r.clone()).await.unwrap();
    }
    assert_eq!(
        a.insert_trust_policy(first.clone()).await,
        Err(StoreError::Duplicate)
    );
    assert_eq!(
        b.trust_policy(&first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        b.trust_policy(&TokenId::from_bytes([9; 16])).await.unwrap(),
        None
    );
    assert_eq!(
        b.account_trust_policies(&alice).await.unwrap(),
        vec![second.clone(), first.clone()]
    );
    assert_eq!(
        b.trust_policies_for(github, "contoso/service")
            .await
            .unwrap(),
        vec![first.clone(), third.clone()]
    );
    assert!(
        b.trust_policies_for(github, "Contoso/Service")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        b.trust_policies_for("https://gitlab.com", "contoso/service")
            .await
            .unwrap()
            .is_empty()
    );

    let mut locked = first.clone();
    locked.rule = r#"{"forge":"git-hub","locked":true}"#.to_owned();
    locked.revision = 2;
    b.update_trust_policy(locked.clone(), 1).await.unwrap();
    assert_eq!(
        a.update_trust_policy(locked.clone(), 1).await,
        Err(StoreError::Conflict),
        "an update from an older revision"
    );
    assert_eq!(
        a.trust_policy(&first.id).await.unwrap(),
        Some(locked.clone())
    );
    assert_eq!(
        a.update_trust_policy(row(7, &alice, "x/y", 0), 1).await,
        Err(StoreError::NotFound)
    );
    a.delete_trust_policy(&first.id).await.unwrap();
    assert_eq!(
        b.delete_trust_policy(&first.id).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(b.trust_policy(&first.id).await.unwrap(), None);
    assert_eq!(
        b.trust_policies_for(github, "contoso/service")
            .await
            .unwrap(),
        vec![third]
    );
}
