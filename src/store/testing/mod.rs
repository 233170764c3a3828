//! The conformance suite every [`TokenStore`] must pass, for a third party's backend as for
//! the built-in ones (feature `test-util`).
//!
//! Describe how to make your store with a [`Backend`], then generate one `#[test]` per check
//! with [`conformance_tests!`](crate::store::testing::conformance_tests) inside a module of
//! your own tests:
//!
//! ```
//! use feedkey::store::testing::Backend;
//! use feedkey::MemoryStore;
//!
//! /// Your store, on private, empty storage for each test.
//! struct MyBackend;
//!
//! impl Backend for MyBackend {
//!     type Store = MemoryStore;
//!     async fn store(&self) -> MemoryStore {
//!         MemoryStore::new()
//!     }
//!     fn persistent(&self) -> bool {
//!         false
//!     }
//! }
//!
//! mod my_store {
//!     feedkey::store::testing::conformance_tests!(super::MyBackend);
//! }
//! # fn main() {}
//! ```
//!
//! A backend that needs set-up which may be absent (a database URL in the environment)
//! passes a future of an `Option` instead, and its tests pass with a notice when it is
//! `None`: `conformance_tests!(setup = MyServer::from_env())`. Or run every check in one
//! test with [`run_all`]. Each check is also a public function of this module, to call
//! from a test of your own.
//!
//! The checks run on a multi-threaded Tokio runtime of two workers ([`run_test`]); they
//! spawn tasks, so the store's futures must be `Send`.

// A test kit: a failed assertion is the report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test kit reports a failure by panicking"
)]

use std::future::Future;

use time::OffsetDateTime;
use time::macros::datetime;

use crate::time::Duration;
use crate::{
    AccountId, Expiry, Feedkey, Feeds, LifetimePolicy, ManualClock, MemoryStore, Packages,
    PasswordConfig, Permissions, Request, Scope, Target, TokenId, TokenKey, TokenStore,
};

mod checks;
mod listing;
mod rules;
mod standing;
mod trust;

pub use checks::*;
pub use listing::*;
pub use rules::*;
pub use standing::*;
pub use trust::*;

/// A backend under test: how to make a store on its storage, and (optionally) how to spoil
/// a stored row behind the store's back.
///
/// Each check is given a new `Backend` value, whose storage must start empty and be its
/// own (a temporary directory, a schema of its own), so checks run in parallel.
pub trait Backend: Send + Sync + 'static {
    /// The store under test.
    type Store: TokenStore + 'static;

    /// A store on this backend's storage. Called several times, as several servers would
    /// open one database: unless [`Backend::persistent`] says otherwise, every store made
    /// by one `Backend` value sees what the others wrote.
    fn store(&self) -> impl Future<Output = Self::Store> + Send;

    /// Overwrites a column of a token's row behind the store's back, with `value`, and
    /// returns `true`; or returns `false`, and the check that needs it passes with a notice.
    /// The columns are named as in this crate's SQL schema: `secret_hash`, `scope`,
    /// `retired`, `kind`. Provided: unsupported (`false`).
    fn spoil(&self, id: TokenId, column: &str, value: &str) -> impl Future<Output = bool> + Send {
        let _ = (id, column, value);
        std::future::ready(false)
    }

    /// Whether two stores made by [`Backend::store`] share their storage. Provided: `true`.
    fn persistent(&self) -> bool {
        true
    }

    /// Releases the storage after a check (drops a schema, say). Provided: nothing to do.
    fn cleanup(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// [`MemoryStore`] as a [`Backend`]: each store is new and empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryBackend;

impl Backend for MemoryBackend {
    type Store = MemoryStore;

    async fn store(&self) -> MemoryStore {
        MemoryStore::new()
    }

    fn persistent(&self) -> bool {
        false
    }
}

/// Where the checks' clock starts.
pub const START: OffsetDateTime = datetime!(2026-03-01 09:00 UTC);

/// The token key of `version` the checks use: 32 bytes of `version`.
#[must_use]
pub fn key(version: u32) -> TokenKey {
    TokenKey::new(version, &[version.to_le_bytes()[0]; 32])
}

/// A request presenting `token` in the API-key header, as `nuget push` does.
#[must_use]
pub fn api_key(token: &str) -> Request<'_> {
    Request::from_headers(Some(token.as_bytes()), None)
}

/// The scope of a CI token: push and unlist on feed `ci`, packages `Contoso.Service.*`.
#[must_use]
pub fn ci_scope() -> Scope {
    Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::only(["ci"]).unwrap(),
        Packages::only(["Contoso.Service.*"]).unwrap(),
    )
    .unwrap()
}

/// A package [`ci_scope`] may push.
pub const PUSH: Target<'static> = Target::package("ci", "Contoso.Service.Core");

/// A [`Feedkey`] on a fresh store of `backend` (fast password hashing, idle expiry after
/// 400 days), its clock standing at [`START`], and account `alice`, made.
pub async fn feedkey_on<B: Backend>(backend: &B) -> (Feedkey<B::Store>, ManualClock, AccountId) {
    let clock = ManualClock::new(START);
    let keys = Feedkey::builder(backend.store().await, key(1))
        .clock(clock.clone())
        .passwords(PasswordConfig::insecure_fast_for_tests())
        .lifetime_policy(LifetimePolicy::default().with_idle_expiry(Duration::days(400)))
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    keys.create_account(&alice, Expiry::Never).await.unwrap();
    (keys, clock, alice)
}

/// Runs `test` to completion on a new multi-threaded Tokio runtime of two workers, as
/// every test [`conformance_tests!`](crate::store::testing::conformance_tests) writes does.
pub fn run_test<F: Future>(test: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a Tokio runtime")
        .block_on(test)
}

/// Writes one `#[test]` per conformance check, named after it, in the current module.
///
/// `conformance_tests!(backend)` makes a new backend from the expression `backend` for
/// each test; `conformance_tests!(setup = future)` awaits `future`, an
/// `Option` of a backend, for each test, and passes with a notice when it is `None`.
/// After each check, [`Backend::cleanup`] runs. Invoke it once per module.
#[doc(hidden)]
#[macro_export]
macro_rules! __feedkey_conformance_tests {
    (@tests $how:tt $($check:ident),* $(,)?) => {
        $( $crate::__feedkey_conformance_tests!(@one $how $check); )*
    };
    (@one [setup = $make:expr] $check:ident) => {
        #[test]
        fn $check() {
            $crate::store::testing::run_test(async {
                if let ::core::option::Option::Some(backend) = $make.await {
                    $crate::store::testing::$check(&backend).await;
                    $crate::store::testing::Backend::cleanup(&backend).await;
                } else {
                    ::std::println!("skipped: no backend");
                }
            });
        }
    };
    (@one [backend = $make:expr] $check:ident) => {
        #[test]
        fn $check() {
            $crate::store::testing::run_test(async {
                let backend = $make;
                $crate::store::testing::$check(&backend).await;
                $crate::store::testing::Backend::cleanup(&backend).await;
            });
        }
    };
    (@all $how:tt) => {
        // The same list as in `run_all`.
        $crate::__feedkey_conformance_tests!(@tests $how
            every_operation_behaves_alike,
            concurrent_refreshes_leave_one_secret,
            a_returned_revoke_is_seen_by_every_later_authorize,
            a_returned_refresh_kills_the_old_secret_for_every_later_authorize,
            hostile_text_is_stored_and_returned_unchanged,
            bad_rows_are_typed_errors_never_allows,
            store_writes_are_compare_and_swap,
            migrations_run_from_several_servers_at_once,
            a_revoked_parent_ends_its_children_on_every_path,
            a_regenerated_primary_key_ends_its_children,
            a_refreshed_parent_ends_its_children_when_its_window_closes,
            a_narrowed_parent_network_binds_its_children_on_every_path,
            a_child_derived_with_the_old_secret_lives_as_long_as_that_secret,
            a_child_derived_while_its_parent_is_renewed_dies_with_the_old_secret,
            an_idle_parent_derives_nothing_on_either_path,
            a_refresh_that_loses_a_race_says_so,
            expiries_every_store_can_hold_are_the_only_ones_accepted,
            ids_differing_in_spaces_case_or_normalisation_are_different_accounts,
            a_store_refuses_keys_it_was_never_used_with,
            a_flush_writes_the_held_back_last_uses,
            a_leak_report_revokes_exactly_what_verifies,
            accounts_are_listed_in_pages_each_once,
            a_disabled_account_is_refused_until_enabled_and_a_deleted_one_for_good,
        );
    };
    (setup = $make:expr) => {
        $crate::__feedkey_conformance_tests!(@all [setup = $make]);
    };
    ($make:expr) => {
        $crate::__feedkey_conformance_tests!(@all [backend = $make]);
    };
}

#[doc(inline)]
pub use crate::__feedkey_conformance_tests as conformance_tests;

/// Runs every check, one after the other, each on a new backend from `make`, cleaning up
/// after each. The same proof as [`conformance_tests!`](crate::store::testing::conformance_tests),
/// in one test.
///
/// ```
/// use feedkey::store::testing::{MemoryBackend, run_all, run_test};
///
/// run_test(run_all(|| async { MemoryBackend }));
/// ```
pub async fn run_all<B, F, Fut>(mut make: F)
where
    B: Backend,
    F: FnMut() -> Fut,
    Fut: Future<Output = B>,
{
    // The same list as in `conformance_tests!`.
    macro_rules! each {
        ($($check:ident),* $(,)?) => {
            $(
                let backend = make().await;
                $check(&backend).await;
                backend.cleanup().await;
            )*
        };
    }
    each!(
        every_operation_behaves_alike,
        concurrent_refreshes_leave_one_secret,
        a_returned_revoke_is_seen_by_every_later_authorize,
        a_returned_refresh_kills_the_old_secret_for_every_later_authorize,
        hostile_text_is_stored_and_returned_unchanged,
        bad_rows_are_typed_errors_never_allows,
        store_writes_are_compare_and_swap,
        migrations_run_from_several_servers_at_once,
        a_revoked_parent_ends_its_children_on_every_path,
        a_regenerated_primary_key_ends_its_children,
        a_refreshed_parent_ends_its_children_when_its_window_closes,
        a_narrowed_parent_network_binds_its_children_on_every_path,
        a_child_derived_with_the_old_secret_lives_as_long_as_that_secret,
        a_child_derived_while_its_parent_is_renewed_dies_with_the_old_secret,
        an_idle_parent_derives_nothing_on_either_path,
        a_refresh_that_loses_a_race_says_so,
        expiries_every_store_can_hold_are_the_only_ones_accepted,
        ids_differing_in_spaces_case_or_normalisation_are_different_accounts,
        a_store_refuses_keys_it_was_never_used_with,
        a_flush_writes_the_held_back_last_uses,
        a_leak_report_revokes_exactly_what_verifies,
        accounts_are_listed_in_pages_each_once,
        a_disabled_account_is_refused_until_enabled_and_a_deleted_one_for_good,
    );
}

#[cfg(test)]
mod tests {
    /// The checks `conformance_tests!` writes and the checks `run_all` runs: the same list,
    /// written twice (one is inside an exported macro), so read back here and compared.
    #[test]
    fn both_lists_of_checks_agree() {
        let source = include_str!("mod.rs");
        let list = |after: &str, end: &str| -> Vec<String> {
            let start = source.find(after).expect("marker") + after.len();
            let rest = &source[start..];
            let stop = rest.find(end).expect("end");
            rest[..stop]
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty() && s.chars().all(|c| c == '_' || c.is_ascii_lowercase()))
                .collect()
        };
        let in_macro = list("@tests $how\n", ");");
        let in_run_all = list("    each!(\n", ");");
        assert!(in_macro.len() > 20, "{in_macro:?}");
        assert_eq!(in_macro, in_run_all);
    }
}
