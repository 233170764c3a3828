-- Version 6: the audit trail (`feedkey::audit::StoredAudit`), one row per event: `at`
-- in nanoseconds since the epoch (as every time of the token tables), `kind` the
-- event's code, `detail` the JSON of the kind's own fields. Never a secret, a hash or a
-- header value. A read pages by number, so the account and token indexes end with it.
--
-- {nopad_bin} is replaced by Rust, as in version 3 (`nopad_bin`): account ids compare
-- byte for byte here too.
--
-- One statement.
CREATE TABLE IF NOT EXISTS feedkey_audit (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    at BIGINT NOT NULL,
    kind VARCHAR(64) NOT NULL,
    account VARCHAR(256) CHARACTER SET utf8mb4 COLLATE {nopad_bin} NULL,
    token VARBINARY(16) NULL,
    client_addr VARCHAR(64) NULL,
    detail TEXT NOT NULL,
    INDEX feedkey_audit_account (account, id),
    INDEX feedkey_audit_token (token, id),
    INDEX feedkey_audit_at (at)
) ENGINE = InnoDB;
