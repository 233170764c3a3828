-- Version 3: account ids compared byte for byte. Under utf8mb4_bin (version 1),
-- "alice " found "alice"; a NO PAD binary collation tells them apart.
--
-- Two steps of this version are Rust's (src/store/server/migrations.rs):
-- * Before these statements, Rust drops the foreign key feedkey_tokens_account_fk if it
--   exists (`MYSQL_FOREIGN_KEYS_DROPPED`): neither column's collation can change under
--   it, even with FOREIGN_KEY_CHECKS = 0 on MariaDB. Checked rather than assumed, so
--   that a run a crash cut short (MySQL's DDL is not transactional) runs again.
-- * {nopad_bin} is replaced by the first NO PAD binary collation of utf8mb4 this server
--   has (`nopad_bin`): utf8mb4_nopad_bin on MariaDB, utf8mb4_0900_bin on MySQL 8.
--
-- Five statements, run one by one.
ALTER TABLE feedkey_accounts MODIFY id
    VARCHAR(256) CHARACTER SET utf8mb4 COLLATE {nopad_bin} NOT NULL;

ALTER TABLE feedkey_tokens MODIFY account
    VARCHAR(256) CHARACTER SET utf8mb4 COLLATE {nopad_bin} NOT NULL;

-- A token issued under the old collation to a name that only matched an account with
-- padding ("alice " for "alice") belongs to no account now. It was issued through the
-- hole this closes, so it is revoked (its revision bumped), and moved to the account it
-- matched so that the foreign key holds and the record stays for the audit.
UPDATE feedkey_tokens t
    LEFT JOIN feedkey_accounts own ON own.id = t.account
    JOIN feedkey_accounts a
        ON a.id COLLATE utf8mb4_bin = t.account COLLATE utf8mb4_bin
    SET t.account = a.id,
        t.revoked_at = COALESCE(t.revoked_at,
            CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000000 AS SIGNED)),
        t.revision = t.revision + 1
    WHERE own.id IS NULL;

-- Every server is told to forget its cached tokens.
INSERT INTO feedkey_changes (token_id, changed_at)
    VALUES (NULL, CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED));

ALTER TABLE feedkey_tokens ADD CONSTRAINT feedkey_tokens_account_fk
    FOREIGN KEY (account) REFERENCES feedkey_accounts (id);
