-- Version 2: the token keys this database was used with, each version's fingerprint
-- (see `TokenStore::remember_key`), so that a server started with the wrong key is
-- refused.
--
-- The text inside each statement (its indentation too) is kept as first released:
-- SQLite stores a CREATE statement's text in sqlite_master, and a database made now
-- must hold the same schema as one made before. Executed whole (`execute_batch`).
CREATE TABLE feedkey_keys (
            version INTEGER PRIMARY KEY NOT NULL,
            fingerprint TEXT NOT NULL,
            remembered_at INTEGER NOT NULL
        );
