//! [`DynTokenStore`]: the [`TokenStore`] seam in a form that can be a trait object, so a
//! server can hold any store, a third party's included, behind one `Arc<dyn …>`.

use std::future::Future;
use std::pin::Pin;

use time::OffsetDateTime;

use super::{KeyFingerprint, StoreError, TokenStore};
use crate::account::AccountId;
use crate::record::{AccountRecord, StoredToken, TokenRecord};
use crate::token::TokenId;

/// A boxed, sendable future: what a [`DynTokenStore`] method returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`TokenStore`] with boxed futures, so that `dyn DynTokenStore` exists. Every
/// `TokenStore` is one (a blanket implementation), and `dyn DynTokenStore` is a
/// `TokenStore` again, so `Feedkey<Arc<dyn DynTokenStore>>` works with whatever store the
/// configuration names, at the cost of one allocation per call. Implement
/// [`TokenStore`], never this.
///
/// ```
/// use std::sync::Arc;
/// use feedkey::store::DynTokenStore;
/// use feedkey::{Feedkey, MemoryStore, TokenKey};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store: Arc<dyn DynTokenStore> = Arc::new(MemoryStore::new()); // or a third party's
/// let keys = Feedkey::builder(store, TokenKey::new(1, &[7; 32])).build()?;
/// # drop(keys);
/// # Ok(())
/// # }
/// ```
#[allow(missing_docs)] // each method is the `TokenStore` method of the same name
pub trait DynTokenStore: Send + Sync {
    fn insert_account(
        &self,
        account: AccountRecord,
        primary: TokenRecord,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    fn account<'a>(
        &'a self,
        id: &'a AccountId,
    ) -> BoxFuture<'a, Result<Option<AccountRecord>, StoreError>>;
    fn update_account(
        &self,
        account: AccountRecord,
        expected_revision: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    fn insert_token(&self, record: TokenRecord) -> BoxFuture<'_, Result<(), StoreError>>;
    fn token<'a>(
        &'a self,
        id: &'a TokenId,
    ) -> BoxFuture<'a, Result<Option<StoredToken>, StoreError>>;
    fn account_tokens<'a>(
        &'a self,
        account: &'a AccountId,
    ) -> BoxFuture<'a, Result<Vec<StoredToken>, StoreError>>;
    fn update_token(
        &self,
        record: TokenRecord,
        expected_revision: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>>;
    fn touch_token<'a>(
        &'a self,
        id: &'a TokenId,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    fn tokens_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> BoxFuture<'_, Result<Vec<StoredToken>, StoreError>>;
    fn tokens_unused_since(
        &self,
        before: OffsetDateTime,
    ) -> BoxFuture<'_, Result<Vec<StoredToken>, StoreError>>;
    fn purge_revoked(&self, before: OffsetDateTime) -> BoxFuture<'_, Result<u64, StoreError>>;
    fn key_fingerprints(&self) -> BoxFuture<'_, Result<Vec<(u32, KeyFingerprint)>, StoreError>>;
    fn remember_key(
        &self,
        version: u32,
        fingerprint: KeyFingerprint,
    ) -> BoxFuture<'_, Result<KeyFingerprint, StoreError>>;
    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>>;
    fn accounts<'a>(
        &'a self,
        after: Option<&'a AccountId>,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<AccountRecord>, StoreError>>;
}

impl std::fmt::Debug for dyn DynTokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn DynTokenStore")
    }
}

impl<T: TokenStore> DynTokenStore for T {
    fn insert_account(
        &self,
        account: AccountRecord,
        primary: TokenRecord,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(TokenStore::insert_account(self, account, primary))
    }
    fn account<'a>(
        &'a self,
        id: &'a AccountId,
    ) -> BoxFuture<'a, Result<Option<AccountRecord>, StoreError>> {
        Box::pin(TokenStore::account(self, id))
    }
    fn update_account(
        &self,
        account: AccountRecord,
        expected_revision: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(TokenStore::update_account(self, account, expected_revision))
    }
    fn insert_token(&self, record: TokenRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(TokenStore::insert_token(self, record))
    }
    fn token<'a>(
        &'a self,
        id: &'a TokenId,
    ) -> BoxFuture<'a, Result<Option<StoredToken>, StoreError>> {
        Box::pin(TokenStore::token(self, id))
    }
    fn account_tokens<'a>(
        &'a self,
        account: &'a AccountId,
    ) -> BoxFuture<'a, Result<Vec<StoredToken>, StoreError>> {
        Box::pin(TokenStore::account_tokens(self, account))
    }
    fn update_token(
        &self,
        record: TokenRecord,
        expected_revision: u64,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(TokenStore::update_token(self, record, expected_revision))
    }
    fn touch_token<'a>(
        &'a self,
        id: &'a TokenId,
        at: OffsetDateTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(TokenStore::touch_token(self, id, at))
    }
    fn tokens_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> BoxFuture<'_, Result<Vec<StoredToken>, StoreError>> {
        Box::pin(TokenStore::tokens_expiring(self, from, until))
    }
    fn tokens_unused_since(
        &self,
        before: OffsetDateTime,
    ) -> BoxFuture<'_, Result<Vec<StoredToken>, StoreError>> {
        Box::pin(TokenStore::tokens_unused_since(self, before))
    }
    fn purge_revoked(&self, before: OffsetDateTime) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(TokenStore::purge_revoked(self, before))
    }
    fn key_fingerprints(&self) -> BoxFuture<'_, Result<Vec<(u32, KeyFingerprint)>, StoreError>> {
        Box::pin(TokenStore::key_fingerprints(self))
    }
    fn remember_key(
        &self,
        version: u32,
        fingerprint: KeyFingerprint,
    ) -> BoxFuture<'_, Result<KeyFingerprint, StoreError>> {
        Box::pin(TokenStore::remember_key(self, version, fingerprint))
    }
    fn flush(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(TokenStore::flush(self))
    }
    fn accounts<'a>(
        &'a self,
        after: Option<&'a AccountId>,
        limit: u32,
    ) -> BoxFuture<'a, Result<Vec<AccountRecord>, StoreError>> {
        Box::pin(TokenStore::accounts(self, after, limit))
    }
}

/// A store behind `dyn` is a store: `Arc<dyn DynTokenStore>` goes wherever a
/// [`TokenStore`] does. (The calls taking two references are `async fn`s awaiting the boxed future:
/// it may borrow both for as long as each lives.)
impl TokenStore for dyn DynTokenStore {
    fn insert_account(
        &self,
        account: AccountRecord,
        primary: TokenRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        DynTokenStore::insert_account(self, account, primary)
    }
    async fn account(&self, id: &AccountId) -> Result<Option<AccountRecord>, StoreError> {
        DynTokenStore::account(self, id).await
    }
    fn update_account(
        &self,
        account: AccountRecord,
        expected_revision: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        DynTokenStore::update_account(self, account, expected_revision)
    }
    fn insert_token(
        &self,
        record: TokenRecord,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        DynTokenStore::insert_token(self, record)
    }
    async fn token(&self, id: &TokenId) -> Result<Option<StoredToken>, StoreError> {
        DynTokenStore::token(self, id).await
    }
    async fn account_tokens(&self, account: &AccountId) -> Result<Vec<StoredToken>, StoreError> {
        DynTokenStore::account_tokens(self, account).await
    }
    fn update_token(
        &self,
        record: TokenRecord,
        expected_revision: u64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        DynTokenStore::update_token(self, record, expected_revision)
    }
    async fn touch_token(&self, id: &TokenId, at: OffsetDateTime) -> Result<(), StoreError> {
        DynTokenStore::touch_token(self, id, at).await
    }
    fn tokens_expiring(
        &self,
        from: OffsetDateTime,
        until: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoredToken>, StoreError>> + Send {
        DynTokenStore::tokens_expiring(self, from, until)
    }
    fn tokens_unused_since(
        &self,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<Vec<StoredToken>, StoreError>> + Send {
        DynTokenStore::tokens_unused_since(self, before)
    }
    fn purge_revoked(
        &self,
        before: OffsetDateTime,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send {
        DynTokenStore::purge_revoked(self, before)
    }
    fn key_fingerprints(
        &self,
    ) -> impl Future<Output = Result<Vec<(u32, KeyFingerprint)>, StoreError>> + Send {
        DynTokenStore::key_fingerprints(self)
    }
    fn remember_key(
        &self,
        version: u32,
        fingerprint: KeyFingerprint,
    ) -> impl Future<Output = Result<KeyFingerprint, StoreError>> + Send {
        DynTokenStore::remember_key(self, version, fingerprint)
    }
    fn flush(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        DynTokenStore::flush(self)
    }
    async fn accounts(
        &self,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<AccountRecord>, StoreError> {
        DynTokenStore::accounts(self, after, limit).await
    }
}
