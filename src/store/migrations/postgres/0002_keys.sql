-- Version 2: the token keys this database was used with, each version's fingerprint
-- (see `TokenStore::remember_key`), so that a server started with the wrong key is
-- refused.
CREATE TABLE IF NOT EXISTS feedkey_keys (
    version BIGINT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    remembered_at BIGINT NOT NULL
);
