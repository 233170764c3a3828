-- Version 8: trusted publishing (`feedkey::store::TrustStore`). A policy row holds its
-- rule as JSON text; its scope is in its hidden parent token record of the same id
-- (kind `trust-policy`), whose children are the keys minted from it. `subject` is the
-- lower-cased `owner/repository` the rule names, to find the policies a CI token may
-- match. A used OIDC token id is kept as a digest until the token's own expiry: its
-- primary key makes each id usable once, across every server.
--
-- {nopad_bin} is replaced by Rust, as in version 3: ids and names compare byte for byte.
--
-- Two statements.
CREATE TABLE IF NOT EXISTS feedkey_trust_policies (
    id VARBINARY(16) NOT NULL PRIMARY KEY,
    account VARCHAR(256) CHARACTER SET utf8mb4 COLLATE {nopad_bin} NOT NULL,
    issuer VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {nopad_bin} NOT NULL,
    subject VARCHAR(255) CHARACTER SET utf8mb4 COLLATE {nopad_bin} NOT NULL,
    rule TEXT NOT NULL,
    lifetime_secs BIGINT NULL,
    created_at BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    INDEX feedkey_trust_policies_account (account, created_at),
    INDEX feedkey_trust_policies_subject (issuer, subject)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS feedkey_oidc_used (
    digest VARBINARY(32) NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL,
    INDEX feedkey_oidc_used_expires (expires_at)
) ENGINE = InnoDB;
