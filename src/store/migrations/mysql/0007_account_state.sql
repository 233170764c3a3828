-- Version 7: an account's standing. `disabled_at`: disabled (its password and tokens
-- refused until enabled); `deleted_at`: deleted (its tokens revoked, its id kept). A
-- token's `suspended_at`: refused because its account is disabled, until it is enabled.
--
-- MySQL 8 has no ADD COLUMN IF NOT EXISTS: when a run a crash cut short added a column
-- already, Rust takes the "duplicate column" error (1060) as done.
ALTER TABLE feedkey_accounts ADD COLUMN disabled_at BIGINT NULL;
ALTER TABLE feedkey_accounts ADD COLUMN deleted_at BIGINT NULL;
ALTER TABLE feedkey_tokens ADD COLUMN suspended_at BIGINT NULL;
