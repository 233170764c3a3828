-- Version 6: trusted publishing (`feedkey::store::TrustStore`). A policy row holds its
-- rule as JSON text; its scope is in its hidden parent token record of the same id
-- (kind `trust-policy`), whose children are the keys minted from it. `subject` is the
-- lower-cased `owner/repository` the rule names, to find the policies a CI token may
-- match. A used OIDC token id is kept as a digest until the token's own expiry: its
-- primary key makes each id usable once.
--
-- Executed whole (`execute_batch`).
CREATE TABLE feedkey_trust_policies (
    id BLOB PRIMARY KEY,
    account TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    rule TEXT NOT NULL,
    lifetime_secs INTEGER,
    created_at INTEGER NOT NULL,
    revision INTEGER NOT NULL
);
CREATE INDEX feedkey_trust_policies_account ON feedkey_trust_policies(account, created_at);
CREATE INDEX feedkey_trust_policies_subject ON feedkey_trust_policies(issuer, subject);
CREATE TABLE feedkey_oidc_used (
    digest BLOB PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX feedkey_oidc_used_expires ON feedkey_oidc_used(expires_at);
