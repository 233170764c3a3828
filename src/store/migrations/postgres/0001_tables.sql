-- Version 1: the accounts and their tokens, with the indexes that list an account's
-- tokens and find the tokens about to expire. PostgreSQL compares text byte for byte
-- (its deterministic collations break every tie by the bytes; TEXT never pads), so
-- account ids need no collation of their own.
--
-- Four statements, run one by one.
CREATE TABLE IF NOT EXISTS feedkey_accounts (
    id TEXT PRIMARY KEY,
    password TEXT,
    primary_token BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    revision BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS feedkey_tokens (
    id BYTEA PRIMARY KEY,
    account TEXT NOT NULL REFERENCES feedkey_accounts(id),
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    scope TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    parent BYTEA,
    retired TEXT NOT NULL,
    last_used_at BIGINT,
    revision BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS feedkey_tokens_account ON feedkey_tokens(account, created_at);

CREATE INDEX IF NOT EXISTS feedkey_tokens_expires ON feedkey_tokens(expires_at);
