//! One conformance suite, run against every backend: memory, SQLite on a temporary file,
//! PostgreSQL and MySQL/MariaDB. The checks themselves are the public kit
//! `feedkey::store::testing` (feature `test-util`), which a third party's backend runs
//! the same way.
//!
//! The server backends read their URLs from `FEEDKEY_TEST_POSTGRES_URL` and
//! `FEEDKEY_TEST_MYSQL_URL`; unset, their tests print that they were skipped and pass.
//! Each test gets its own PostgreSQL schema or MySQL database, so tests run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

#[allow(unused_imports)]
use common::{api_key, key};
#[allow(unused_imports)]
use feedkey::store::testing::{Backend, PUSH, ci_scope};
#[allow(unused_imports)]
use feedkey::{
    AccountId, Action, DenyReason, Expiry, Feedkey, MemoryStore, NewToken, PasswordConfig, TokenId,
    TokenStatus, TokenStore,
};

mod memory {
    feedkey::store::testing::conformance_tests!(feedkey::store::testing::MemoryBackend);
}

/// A third party's store held behind `dyn` (here a `MemoryStore`, as any `TokenStore`
/// would be): the whole suite holds through `Arc<dyn DynTokenStore>`.
struct BehindDyn;

impl Backend for BehindDyn {
    type Store = std::sync::Arc<dyn feedkey::store::DynTokenStore>;
    async fn store(&self) -> Self::Store {
        std::sync::Arc::new(MemoryStore::new())
    }
    fn persistent(&self) -> bool {
        false
    }
}

mod behind_dyn {
    feedkey::store::testing::conformance_tests!(super::BehindDyn);
}

/// A server that reads its backend from its configuration: one type, `AnyStore`, whatever
/// the choice.
struct Configured {
    choice: String,
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code, reason = "SQLite's file"))]
    dir: tempfile::TempDir,
}

impl Backend for Configured {
    type Store = feedkey::store::AnyStore;
    async fn store(&self) -> feedkey::store::AnyStore {
        match self.choice.as_str() {
            "memory" => MemoryStore::new().into(),
            "custom" => feedkey::store::AnyStore::custom(MemoryStore::new()),
            #[cfg(feature = "sqlite")]
            "sqlite" => feedkey::SqliteStore::open(self.dir.path().join("tokens.db"))
                .unwrap()
                .into(),
            other => panic!("no such store: {other}"),
        }
    }
    fn persistent(&self) -> bool {
        !matches!(self.choice.as_str(), "memory" | "custom")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feedkey_on_a_store_chosen_at_run_time_works() {
    // As read from a configuration file: names, not types.
    let configured = if cfg!(feature = "sqlite") {
        "memory,custom,sqlite"
    } else {
        "memory,custom"
    };
    for choice in configured.split(',') {
        let backend = || async {
            Configured {
                choice: choice.to_owned(),
                dir: tempfile::tempdir().unwrap(),
            }
        };
        // One type whatever the choice.
        let (_keys, _, _): (Feedkey<feedkey::store::AnyStore>, _, _) =
            feedkey::store::testing::feedkey_on(&backend().await).await;
        // And the whole conformance suite holds through it.
        feedkey::store::testing::run_all(backend).await;
    }
}

#[cfg(feature = "sqlite")]
struct Sqlite {
    dir: tempfile::TempDir,
}

#[cfg(feature = "sqlite")]
impl Sqlite {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

#[cfg(feature = "sqlite")]
impl Backend for Sqlite {
    type Store = feedkey::SqliteStore;
    async fn store(&self) -> feedkey::SqliteStore {
        feedkey::SqliteStore::open(self.dir.path().join("tokens.db")).unwrap()
    }
    async fn spoil(&self, id: TokenId, column: &str, value: &str) -> bool {
        let conn = rusqlite::Connection::open(self.dir.path().join("tokens.db")).unwrap();
        conn.execute(
            &format!("UPDATE feedkey_tokens SET {column} = ?1 WHERE id = ?2"),
            rusqlite::params![value, id.as_bytes().to_vec()],
        )
        .unwrap();
        true
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    feedkey::store::testing::conformance_tests!(super::Sqlite::new());
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
#[path = "common/database.rs"]
mod database;

#[cfg(any(feature = "postgres", feature = "mysql"))]
mod server {
    use super::*;
    use sqlx::AssertSqlSafe;

    pub use super::database::Server;

    impl Backend for Server {
        type Store = feedkey::SqlStore;
        async fn store(&self) -> feedkey::SqlStore {
            feedkey::SqlStore::connect(&self.url).await.unwrap()
        }
        async fn spoil(&self, id: TokenId, column: &str, value: &str) -> bool {
            let pool = sqlx::AnyPool::connect(&self.url).await.unwrap();
            let sql = if self.postgres {
                format!("UPDATE feedkey_tokens SET {column} = $1 WHERE id = $2")
            } else {
                format!("UPDATE feedkey_tokens SET {column} = ? WHERE id = ?")
            };
            sqlx::query(AssertSqlSafe(sql))
                .bind(value.to_owned())
                .bind(id.as_bytes().to_vec())
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            true
        }
        async fn cleanup(&self) {
            Server::cleanup(self).await;
        }
    }
}

/// A store on a pool the caller made and keeps: `SqlStore::from_pool`.
#[cfg(any(feature = "postgres", feature = "mysql"))]
struct CallersPool {
    server: server::Server,
    pool: sqlx::AnyPool,
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl Backend for CallersPool {
    type Store = feedkey::SqlStore;
    async fn store(&self) -> feedkey::SqlStore {
        feedkey::SqlStore::from_pool(self.pool.clone(), feedkey::CacheConfig::default())
            .await
            .unwrap()
    }
}

/// The whole facade works on a store made from the caller's own pool, and the pool is
/// still the caller's to use afterwards.
#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn a_store_on_the_callers_pool_works(var: &str) {
    use feedkey::store::testing::every_operation_behaves_alike;

    let Some(server) = server::Server::new(var).await else {
        return;
    };
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(4)
        .connect(&server.url)
        .await
        .unwrap();
    let backend = CallersPool { server, pool };
    every_operation_behaves_alike(&backend).await;
    let accounts: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM feedkey_accounts")
        .fetch_one(&backend.pool)
        .await
        .unwrap();
    assert_eq!(accounts, 1);
    backend.pool.close().await;
    backend.server.cleanup().await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_on_the_callers_pool_works_on_postgres() {
    a_store_on_the_callers_pool_works("FEEDKEY_TEST_POSTGRES_URL").await;
}

#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_on_the_callers_pool_works_on_mysql() {
    a_store_on_the_callers_pool_works("FEEDKEY_TEST_MYSQL_URL").await;
}

#[cfg(feature = "postgres")]
mod postgres {
    feedkey::store::testing::conformance_tests!(
        setup = super::server::Server::new("FEEDKEY_TEST_POSTGRES_URL")
    );
}

#[cfg(feature = "mysql")]
mod mysql {
    feedkey::store::testing::conformance_tests!(
        setup = super::server::Server::new("FEEDKEY_TEST_MYSQL_URL")
    );
}

/// A MySQL/MariaDB database made before account ids compared byte for byte (its ids in
/// `utf8mb4_bin`, which ignores trailing spaces) is migrated with its rows and its
/// foreign key, also after a migration that a crash cut short.
#[cfg(feature = "mysql")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_database_from_before_byte_comparison_is_migrated() {
    use sqlx::{AssertSqlSafe, Row};

    let Some(server) = server::Server::new("FEEDKEY_TEST_MYSQL_URL").await else {
        return;
    };
    let exec = |sql: &'static str| {
        let url = server.url.clone();
        async move {
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            sqlx::query(AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    };
    let collation_and_fk = || {
        let url = server.url.clone();
        async move {
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            let collations: Vec<String> = sqlx::query(
                "SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME, ' ', COLLATION_NAME) \
                 FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
                 AND ((TABLE_NAME = 'feedkey_accounts' AND COLUMN_NAME = 'id') \
                 OR (TABLE_NAME = 'feedkey_tokens' AND COLUMN_NAME = 'account')) \
                 ORDER BY TABLE_NAME",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get(0).unwrap())
            .collect();
            let fks: i64 = sqlx::query(
                "SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS \
                 WHERE CONSTRAINT_SCHEMA = DATABASE() \
                 AND CONSTRAINT_NAME = 'feedkey_tokens_account_fk'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
            .try_get(0)
            .unwrap();
            pool.close().await;
            (collations, fks)
        }
    };
    // Today's schema, with alice and a token; then set back to version 2.
    let keys = Feedkey::builder(server.store().await, key(1))
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    keys.create_account(&alice, Expiry::Never).await.unwrap();
    keys.issue(&alice, NewToken::new("ci", ci_scope()))
        .await
        .unwrap();
    exec("ALTER TABLE feedkey_tokens DROP FOREIGN KEY feedkey_tokens_account_fk").await;
    exec("ALTER TABLE feedkey_accounts MODIFY id VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL").await;
    exec("ALTER TABLE feedkey_tokens MODIFY account VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL").await;
    exec("ALTER TABLE feedkey_tokens ADD CONSTRAINT feedkey_tokens_account_fk FOREIGN KEY (account) REFERENCES feedkey_accounts (id)").await;
    exec("DELETE FROM feedkey_schema WHERE version >= 3").await;
    exec("DROP TABLE feedkey_keys").await;
    let (collations, fks) = collation_and_fk().await;
    assert!(
        collations.iter().all(|c| c.ends_with(" utf8mb4_bin")),
        "{collations:?}"
    );
    assert_eq!(fks, 1);
    // Through the old hole: a token stored under "alice ", which the old collation took
    // for alice's (as a release that issued to the name asked did).
    let spaced = AccountId::new("alice ").unwrap();
    let stray = keys
        .issue(&alice, NewToken::new("stray", ci_scope()))
        .await
        .unwrap();
    exec("UPDATE feedkey_tokens SET account = 'alice ' WHERE description = 'stray'").await;
    // The old collation hands it out with alice's tokens.
    let stored = keys.store().account_tokens(&alice).await.unwrap();
    assert_eq!(stored.len(), 3);
    drop(keys);
    // Nor had version 2 the column of version 5.
    exec("ALTER TABLE feedkey_tokens DROP COLUMN parent_secret_set_at").await;

    // Connecting migrates it.
    let keys = Feedkey::builder(server.store().await, key(1))
        .passwords(PasswordConfig::insecure_fast_for_tests())
        .build()
        .unwrap();
    let (collations, fks) = collation_and_fk().await;
    assert!(
        collations
            .iter()
            .all(|c| c.ends_with("_bin") && !c.ends_with(" utf8mb4_bin")),
        "{collations:?}"
    );
    assert_eq!(fks, 1);
    // The stray token is revoked, and kept as alice's for the audit.
    assert_eq!(keys.tokens(&alice).await.unwrap().len(), 2);
    let denial = keys
        .authorize(&api_key(stray.token.expose_secret()), Action::Push, &PUSH)
        .await
        .unwrap_err();
    assert_eq!(denial.reason(), &DenyReason::Revoked);
    let kept = keys
        .store()
        .token(&stray.token.id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.record.account, alice);
    assert!(keys.tokens(&spaced).await.unwrap().is_empty());
    assert!(
        keys.store()
            .account_tokens(&spaced)
            .await
            .unwrap()
            .is_empty()
    );
    keys.create_account(&spaced, Expiry::Never).await.unwrap();
    assert_eq!(keys.tokens(&spaced).await.unwrap().len(), 1);
    assert_eq!(keys.tokens(&alice).await.unwrap().len(), 2);
    drop(keys);

    // A migration cut short after dropping the foreign key runs again.
    exec("ALTER TABLE feedkey_tokens DROP FOREIGN KEY feedkey_tokens_account_fk").await;
    exec("DELETE FROM feedkey_schema WHERE version >= 3").await;
    let keys = Feedkey::builder(server.store().await, key(1))
        .build()
        .unwrap();
    assert_eq!(collation_and_fk().await.1, 1);
    assert_eq!(keys.tokens(&spaced).await.unwrap().len(), 1);
    assert_eq!(keys.tokens(&alice).await.unwrap().len(), 2);
    let primary = keys.tokens(&spaced).await.unwrap().remove(0);
    assert_eq!(primary.status, TokenStatus::Active);
    server.cleanup().await;
}

/// Trusted publishing's store rules (`feedkey::store::testing::an_oidc_token_id_is_used_once_across_servers`
/// and `trust_policies_are_kept_and_replaced_by_revision`) on every backend.
mod trust {
    #[allow(unused_imports)]
    use feedkey::store::testing::{
        Backend, MemoryBackend, an_oidc_token_id_is_used_once_across_servers, run_test,
        trust_policies_are_kept_and_replaced_by_revision,
    };

    #[test]
    fn memory_uses_each_oidc_token_id_once() {
        run_test(an_oidc_token_id_is_used_once_across_servers(&MemoryBackend));
        run_test(trust_policies_are_kept_and_replaced_by_revision(
            &MemoryBackend,
        ));
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_uses_each_oidc_token_id_once() {
        run_test(an_oidc_token_id_is_used_once_across_servers(
            &super::Sqlite::new(),
        ));
        run_test(trust_policies_are_kept_and_replaced_by_revision(
            &super::Sqlite::new(),
        ));
    }

    #[cfg(any(feature = "postgres", feature = "mysql"))]
    fn on_server(var: &'static str) {
        run_test(async {
            for check in 0..2 {
                let Some(server) = super::server::Server::new(var).await else {
                    return;
                };
                if check == 0 {
                    an_oidc_token_id_is_used_once_across_servers(&server).await;
                } else {
                    trust_policies_are_kept_and_replaced_by_revision(&server).await;
                }
                server.cleanup().await;
            }
        });
    }

    #[cfg(any(feature = "postgres", feature = "mysql"))]
    #[test]
    fn postgres_uses_each_oidc_token_id_once() {
        on_server("FEEDKEY_TEST_POSTGRES_URL");
    }

    #[cfg(any(feature = "postgres", feature = "mysql"))]
    #[test]
    fn mysql_uses_each_oidc_token_id_once() {
        on_server("FEEDKEY_TEST_MYSQL_URL");
    }
}
