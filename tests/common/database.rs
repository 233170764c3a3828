//! A private PostgreSQL schema or MySQL database for one test, on the server whose URL an
//! environment variable gives (unset: the test prints that it skipped).

use sqlx::{AssertSqlSafe, Executor};

/// A PostgreSQL schema or MySQL database of its own.
pub struct Server {
    /// The URL that reaches it (PostgreSQL: the schema as the search path).
    pub url: String,
    pub postgres: bool,
    base: String,
    pub name: String,
}

fn unique(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}_{hex}")
}

impl Server {
    /// Makes the schema or database, or returns `None` (with a notice) when `var` is unset.
    pub async fn new(var: &str) -> Option<Self> {
        let Ok(base) = std::env::var(var) else {
            println!("skipped: {var} is not set");
            return None;
        };
        sqlx::any::install_default_drivers();
        let admin = sqlx::AnyPool::connect(&base).await.unwrap();
        let postgres = base.starts_with("postgres");
        let name = unique("feedkey_t");
        let url = if postgres {
            admin
                .execute(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
                .await
                .unwrap();
            let sep = if base.contains('?') { '&' } else { '?' };
            format!("{base}{sep}options=-c%20search_path%3D{name}")
        } else {
            admin
                .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .await
                .unwrap();
            let (head, _) = base.rsplit_once('/').unwrap();
            format!("{head}/{name}")
        };
        admin.close().await;
        Some(Self {
            url,
            postgres,
            base,
            name,
        })
    }

    /// A pool on the server as the test's admin.
    pub async fn admin(&self) -> sqlx::AnyPool {
        sqlx::AnyPool::connect(&self.base).await.unwrap()
    }

    /// Drops the schema or database.
    pub async fn cleanup(&self) {
        let admin = self.admin().await;
        let sql = if self.postgres {
            format!("DROP SCHEMA {} CASCADE", self.name)
        } else {
            format!("DROP DATABASE {}", self.name)
        };
        admin.execute(AssertSqlSafe(sql)).await.unwrap();
        admin.close().await;
    }
}
