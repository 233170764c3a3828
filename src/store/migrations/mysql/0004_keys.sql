-- Version 4: the token keys this database was used with, each version's fingerprint
-- (see `TokenStore::remember_key`), so that a server started with the wrong key is
-- refused.
CREATE TABLE IF NOT EXISTS feedkey_keys (
    version BIGINT NOT NULL PRIMARY KEY,
    fingerprint VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    remembered_at BIGINT NOT NULL
) ENGINE = InnoDB;
