-- Version 1: the accounts and their tokens, with the indexes that list an account's
-- tokens and find the tokens about to expire.
--
-- The text inside each statement (its indentation too) is kept as first released:
-- SQLite stores a CREATE statement's text in sqlite_master, and a database made now
-- must hold the same schema as one made before. Executed whole (`execute_batch`).
CREATE TABLE feedkey_accounts (
        id TEXT PRIMARY KEY NOT NULL,
        password TEXT,
        primary_token BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        revision INTEGER NOT NULL
    );
CREATE TABLE feedkey_tokens (
        id BLOB PRIMARY KEY NOT NULL,
        account TEXT NOT NULL REFERENCES feedkey_accounts(id),
        kind TEXT NOT NULL,
        description TEXT NOT NULL,
        scope TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER,
        parent BLOB,
        retired TEXT NOT NULL,
        last_used_at INTEGER,
        revision INTEGER NOT NULL
    );
CREATE INDEX feedkey_tokens_account ON feedkey_tokens(account, created_at);
CREATE INDEX feedkey_tokens_expires ON feedkey_tokens(expires_at);
