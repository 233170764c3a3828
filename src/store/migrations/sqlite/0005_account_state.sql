-- Version 5: an account's standing. `disabled_at`: disabled (its password and tokens
-- refused until enabled); `deleted_at`: deleted (its tokens revoked, its id kept). A
-- token's `suspended_at`: refused because its account is disabled, until it is enabled.
ALTER TABLE feedkey_accounts ADD COLUMN disabled_at INTEGER;
ALTER TABLE feedkey_accounts ADD COLUMN deleted_at INTEGER;
ALTER TABLE feedkey_tokens ADD COLUMN suspended_at INTEGER;
