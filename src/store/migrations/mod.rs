//! The schema of the SQL backends: per dialect, its migrations, one `.sql` file a version
//! (`sqlite/`, `postgres/`, `mysql/` here), and the splitter that cuts a file into the
//! statements the server backends run one by one.
//!
//! A file is applied once, in order, to a database at the version before it; a released
//! file never changes (a database that ran it would not run it again), so a change of
//! schema is a new file. What cannot be plain SQL (MySQL's dropped foreign key and its
//! collation, see `server::migrations`) is done in Rust, and the file says which step.

/// One version of the schema: the SQL that brings a database to it from the version
/// before.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The version the database is at once this ran, counted from 1.
    pub(crate) version: i64,
    /// The file, `dialect/NNNN_what.sql` (read by the splitter's errors and the tests).
    #[cfg_attr(
        not(any(feature = "postgres", feature = "mysql", test)),
        allow(dead_code)
    )]
    pub(crate) file: &'static str,
    /// The file's text.
    pub(crate) sql: &'static str,
}

/// The migrations of one dialect, from its directory: `version => "file"`, in order.
macro_rules! migrations {
    ($dir:literal: $($version:literal => $file:literal),+ $(,)?) => {
        &[$(Migration {
            version: $version,
            file: concat!($dir, "/", $file),
            sql: include_str!(concat!($dir, "/", $file)),
        }),+]
    };
}

/// SQLite: each file runs whole (`execute_batch`), in the transaction that records it.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: &[Migration] = migrations!("sqlite":
    1 => "0001_tables.sql",
    2 => "0002_keys.sql",
    3 => "0003_parent_secret.sql",
    4 => "0004_audit.sql",
    5 => "0005_account_state.sql",
    6 => "0006_trust.sql",
);

/// PostgreSQL: each file's [`Migration::statements`] run one by one.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) const POSTGRES: &[Migration] = migrations!("postgres":
    1 => "0001_tables.sql",
    2 => "0002_keys.sql",
    3 => "0003_parent_secret.sql",
    4 => "0004_audit.sql",
    5 => "0005_account_state.sql",
    6 => "0006_trust.sql",
);

/// MySQL and MariaDB: each file's [`Migration::statements`] run one by one, `{nopad_bin}`
/// replaced by the server's `NO PAD` binary collation, after the foreign keys Rust drops
/// (see `server::migrations`).
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) const MYSQL: &[Migration] = migrations!("mysql":
    1 => "0001_tables.sql",
    2 => "0002_change_feed.sql",
    3 => "0003_account_ids_nopad.sql",
    4 => "0004_keys.sql",
    5 => "0005_parent_secret.sql",
    6 => "0006_audit.sql",
    7 => "0007_account_state.sql",
    8 => "0008_trust.sql",
);

/// A migration file [`Migration::statements`] cannot split for certain.
#[cfg(any(feature = "postgres", feature = "mysql", test))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{file} cannot be split into statements at byte {at}: {why}")]
pub(crate) struct Unsplittable {
    file: &'static str,
    at: usize,
    why: &'static str,
}

#[cfg(any(feature = "postgres", feature = "mysql", test))]
impl Migration {
    /// The file's statements, in order (see [`split`]).
    ///
    /// # Errors
    /// [`Unsplittable`] when [`split`] refuses the file.
    pub(crate) fn statements(&self) -> Result<Vec<&'static str>, Unsplittable> {
        split(self.sql).map_err(|(at, why)| Unsplittable {
            file: self.file,
            at,
            why,
        })
    }
}

/// The statements of `sql`, in order: the text between the `;`s that stand outside
/// quotes (`'…'`, `"…"`, `` `…` ``; a doubled quote stays inside) and comments (`--` to the
/// end of the line, `/* … */`), each without the whitespace and comments before it and
/// without the `;`. What follows the last `;` is a statement too, unless it is only
/// whitespace and comments. An empty statement (`;;`) is kept, as `""`.
///
/// Refused, with the byte where it starts and why: what the dialects read differently,
/// where a `;` could end a statement for one and not for another. That is a quote or
/// comment left open, a backslash inside quotes (an escape to MySQL), a `/*` inside a
/// comment (nested to PostgreSQL), `--` before anything but whitespace (no comment to
/// MySQL), and, outside quotes and comments, `#` (a comment to MySQL) and `$`
/// (PostgreSQL's dollar quotes).
#[cfg(any(feature = "postgres", feature = "mysql", test))]
fn split(sql: &str) -> Result<Vec<&str>, (usize, &'static str)> {
    let bytes = sql.as_bytes();
    // Where `pattern` is next, from byte `from` on.
    let find = |from: usize, pattern: &str| sql.get(from..)?.find(pattern).map(|i| from + i);
    // Every bound is at an ASCII byte or the end, so on a character boundary.
    let text = |from: usize, to: usize| sql.get(from..to).unwrap_or_default().trim_end();
    let mut found = Vec::new();
    // Where the statement being read starts, once it has started.
    let mut start = None;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let next = bytes.get(i + 1).copied();
        match b {
            b'-' if next == Some(b'-') => {
                if bytes.get(i + 2).is_some_and(|c| !c.is_ascii_whitespace()) {
                    return Err((i, "`--` before other than whitespace"));
                }
                i = find(i, "\n").unwrap_or(sql.len());
            }
            b'/' if next == Some(b'*') => {
                let end = find(i + 2, "*/").ok_or((i, "a comment left open"))?;
                if find(i + 2, "/*").is_some_and(|nested| nested < end) {
                    return Err((i, "a comment inside a comment"));
                }
                i = end + 2;
            }
            b'\'' | b'"' | b'`' => {
                start.get_or_insert(i);
                let quote = char::from(b).to_string();
                let end = find(i + 1, &quote).ok_or((i, "a quote left open"))?;
                if find(i + 1, "\\").is_some_and(|backslash| backslash < end) {
                    return Err((i, "a backslash inside quotes"));
                }
                i = end + 1;
            }
            b'#' => return Err((i, "`#` outside quotes")),
            b'$' => return Err((i, "`$` outside quotes")),
            b';' => {
                found.push(start.take().map_or("", |s| text(s, i)));
                i += 1;
            }
            _ => {
                if !b.is_ascii_whitespace() {
                    start.get_or_insert(i);
                }
                i += 1;
            }
        }
    }
    if let Some(s) = start {
        found.push(text(s, sql.len()));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every dialect's migrations, by name.
    fn dialects() -> Vec<(&'static str, &'static [Migration])> {
        vec![
            #[cfg(feature = "sqlite")]
            ("sqlite", SQLITE),
            #[cfg(any(feature = "postgres", feature = "mysql"))]
            ("postgres", POSTGRES),
            #[cfg(any(feature = "postgres", feature = "mysql"))]
            ("mysql", MYSQL),
        ]
    }

    #[test]
    fn every_dialect_counts_versions_from_1_without_a_gap_or_an_empty_statement() {
        for (dialect, migrations) in dialects() {
            assert!(!migrations.is_empty(), "{dialect}");
            for (version, m) in (1..).zip(migrations) {
                let file = m.file;
                assert_eq!(m.version, version, "{file}");
                assert!(
                    file.starts_with(&format!("{dialect}/{version:04}_")) && file.ends_with(".sql"),
                    "{file} is not {dialect}'s version {version}"
                );
                assert!(m.sql.starts_with("-- "), "{file}: no comment at the top");
                let statements = m.statements().unwrap();
                assert!(!statements.is_empty(), "{file}: no statement");
                assert!(
                    statements.iter().all(|s| !s.is_empty()),
                    "{file}: an empty statement"
                );
            }
        }
    }

    /// What the server backends run one by one, per version.
    #[test]
    fn the_files_split_into_the_statements_each_version_runs() {
        let counts = |migrations: &[Migration]| {
            migrations
                .iter()
                .map(|m| m.statements().unwrap().len())
                .collect::<Vec<_>>()
        };
        #[cfg(feature = "sqlite")]
        assert_eq!(counts(SQLITE), [4, 1, 1, 4, 3, 5]);
        #[cfg(any(feature = "postgres", feature = "mysql"))]
        {
            assert_eq!(counts(POSTGRES), [4, 1, 1, 4, 3, 5]);
            assert_eq!(counts(MYSQL), [2, 1, 5, 1, 1, 1, 3, 2]);
            let v3 = MYSQL[2].statements().unwrap();
            assert!(v3[0].starts_with("ALTER TABLE feedkey_accounts MODIFY id"));
            assert!(v3[0].ends_with("COLLATE {nopad_bin} NOT NULL"));
            assert!(v3[1].ends_with("COLLATE {nopad_bin} NOT NULL"));
            assert!(v3[2].starts_with("UPDATE feedkey_tokens t"));
            assert!(v3[3].starts_with("INSERT INTO feedkey_changes"));
            assert!(v3[4].ends_with("REFERENCES feedkey_accounts (id)"));
        }
    }

    /// SQLite keeps the text of each CREATE statement: a database migrated now holds, byte
    /// for byte, the schema of one migrated by the first releases.
    #[cfg(feature = "sqlite")]
    #[test]
    fn sqlite_stores_the_schema_text_of_the_first_releases() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for m in SQLITE {
            conn.execute_batch(m.sql).unwrap();
        }
        let mut stmt = conn
            .prepare("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")
            .unwrap();
        let schema: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let lines = |lines: &[&str]| lines.join("\n");
        let expected = [
            lines(&[
                "CREATE TABLE feedkey_accounts (",
                "        id TEXT PRIMARY KEY NOT NULL,",
                "        password TEXT,",
                "        primary_token BLOB NOT NULL,",
                "        created_at INTEGER NOT NULL,",
                "        revision INTEGER NOT NULL",
                "    , disabled_at INTEGER, deleted_at INTEGER)",
            ]),
            lines(&[
                "CREATE TABLE feedkey_tokens (",
                "        id BLOB PRIMARY KEY NOT NULL,",
                "        account TEXT NOT NULL REFERENCES feedkey_accounts(id),",
                "        kind TEXT NOT NULL,",
                "        description TEXT NOT NULL,",
                "        scope TEXT NOT NULL,",
                "        secret_hash TEXT NOT NULL,",
                "        created_at INTEGER NOT NULL,",
                "        expires_at INTEGER,",
                "        revoked_at INTEGER,",
                "        parent BLOB,",
                "        retired TEXT NOT NULL,",
                "        last_used_at INTEGER,",
                "        revision INTEGER NOT NULL",
                "    , parent_secret_set_at INTEGER, suspended_at INTEGER)",
            ]),
            "CREATE INDEX feedkey_tokens_account ON feedkey_tokens(account, created_at)".into(),
            "CREATE INDEX feedkey_tokens_expires ON feedkey_tokens(expires_at)".into(),
            lines(&[
                "CREATE TABLE feedkey_keys (",
                "            version INTEGER PRIMARY KEY NOT NULL,",
                "            fingerprint TEXT NOT NULL,",
                "            remembered_at INTEGER NOT NULL",
                "        )",
            ]),
            lines(&[
                "CREATE TABLE feedkey_audit (",
                "    id INTEGER PRIMARY KEY AUTOINCREMENT,",
                "    at INTEGER NOT NULL,",
                "    kind TEXT NOT NULL,",
                "    account TEXT,",
                "    token BLOB,",
                "    client_addr TEXT,",
                "    detail TEXT NOT NULL",
                ")",
            ]),
            "CREATE TABLE sqlite_sequence(name,seq)".into(),
            "CREATE INDEX feedkey_audit_account ON feedkey_audit(account, id)".into(),
            "CREATE INDEX feedkey_audit_token ON feedkey_audit(token, id)".into(),
            "CREATE INDEX feedkey_audit_at ON feedkey_audit(at)".into(),
            lines(&[
                "CREATE TABLE feedkey_trust_policies (",
                "    id BLOB PRIMARY KEY,",
                "    account TEXT NOT NULL,",
                "    issuer TEXT NOT NULL,",
                "    subject TEXT NOT NULL,",
                "    rule TEXT NOT NULL,",
                "    lifetime_secs INTEGER,",
                "    created_at INTEGER NOT NULL,",
                "    revision INTEGER NOT NULL",
                ")",
            ]),
            "CREATE INDEX feedkey_trust_policies_account ON feedkey_trust_policies(account, created_at)"
                .into(),
            "CREATE INDEX feedkey_trust_policies_subject ON feedkey_trust_policies(issuer, subject)"
                .into(),
            lines(&[
                "CREATE TABLE feedkey_oidc_used (",
                "    digest BLOB PRIMARY KEY,",
                "    expires_at INTEGER NOT NULL",
                ")",
            ]),
            "CREATE INDEX feedkey_oidc_used_expires ON feedkey_oidc_used(expires_at)".into(),
        ];
        assert_eq!(schema, expected);
    }

    #[test]
    fn statements_end_at_semicolons_outside_quotes_and_comments() {
        let sql = "-- a comment; not a statement\n\
            CREATE TABLE t (a TEXT DEFAULT 'x;y', b TEXT DEFAULT 'it''s;')  ;\n\
            /* a ; comment */ INSERT INTO \"we;ird\" (`c;d`) VALUES ('-- no comment;');\n\
            \n\
            UPDATE t SET a = '/* no comment; */' -- trailing; comment\n\
            ;\n\
            -- nothing after this\n";
        assert_eq!(
            split(sql).unwrap(),
            [
                "CREATE TABLE t (a TEXT DEFAULT 'x;y', b TEXT DEFAULT 'it''s;')",
                "INSERT INTO \"we;ird\" (`c;d`) VALUES ('-- no comment;')",
                "UPDATE t SET a = '/* no comment; */' -- trailing; comment",
            ]
        );
    }

    #[test]
    fn a_last_statement_needs_no_semicolon_and_an_empty_one_is_kept() {
        assert_eq!(split("SELECT 1").unwrap(), ["SELECT 1"]);
        assert_eq!(
            split("SELECT 1;\n  SELECT 2  ").unwrap(),
            ["SELECT 1", "SELECT 2"]
        );
        assert_eq!(split("SELECT 1;;").unwrap(), ["SELECT 1", ""]);
        assert_eq!(split("SELECT 1;\n-- x\n;").unwrap(), ["SELECT 1", ""]);
        assert!(split("").unwrap().is_empty());
        assert!(
            split("  -- only a comment\n/* and ; this */\n")
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            split("SELECT 'é;ü'; SELECT 2").unwrap(),
            ["SELECT 'é;ü'", "SELECT 2"]
        );
    }

    #[test]
    fn what_the_dialects_read_differently_is_refused() {
        for (sql, at) in [
            ("SELECT 'open", 7),
            ("SELECT \"open;", 7),
            ("SELECT 1 /* open;", 9),
            ("SELECT 'a\\'; SELECT 2", 7),
            ("SELECT 1 /* a /* b */ c */", 9),
            ("SELECT 1 --x; SELECT 2", 9),
            ("SELECT 1 # x; SELECT 2", 9),
            ("SELECT $$a;b$$", 7),
        ] {
            assert_eq!(split(sql).unwrap_err().0, at, "{sql}");
        }
        // Inside quotes or comments, the same characters are text.
        assert_eq!(
            split("SELECT '#$' -- $#\\ 'x\n; SELECT 1").unwrap(),
            ["SELECT '#$' -- $#\\ 'x", "SELECT 1"]
        );
    }

    #[test]
    fn a_refusal_names_the_file_and_the_byte() {
        let broken = Migration {
            version: 1,
            file: "mysql/0001_broken.sql",
            sql: "-- Broken.\nSELECT 'open;",
        };
        assert_eq!(
            broken.statements().unwrap_err().to_string(),
            "mysql/0001_broken.sql cannot be split into statements at byte 18: \
             a quote left open"
        );
    }
}
