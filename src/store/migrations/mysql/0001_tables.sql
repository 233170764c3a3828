-- Version 1: the accounts and their tokens, with the indexes that list an account's
-- tokens and find the tokens about to expire. Token ids are bytes. MySQL compares text
-- case-insensitively unless told otherwise, hence utf8mb4_bin; that collation still
-- ignores trailing spaces (PAD SPACE), which version 3 mends for account ids.
--
-- Two statements, run one by one.
CREATE TABLE IF NOT EXISTS feedkey_accounts (
    id VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    password TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
    primary_token VARBINARY(16) NOT NULL,
    created_at BIGINT NOT NULL,
    revision BIGINT NOT NULL
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS feedkey_tokens (
    id VARBINARY(16) NOT NULL PRIMARY KEY,
    account VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    kind VARCHAR(16) NOT NULL,
    description TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    scope MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    secret_hash VARCHAR(128) NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NULL,
    revoked_at BIGINT NULL,
    parent VARBINARY(16) NULL,
    retired TEXT NOT NULL,
    last_used_at BIGINT NULL,
    revision BIGINT NOT NULL,
    INDEX feedkey_tokens_account (account, created_at),
    INDEX feedkey_tokens_expires (expires_at),
    CONSTRAINT feedkey_tokens_account_fk FOREIGN KEY (account)
        REFERENCES feedkey_accounts (id)
) ENGINE = InnoDB;
