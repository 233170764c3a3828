-- Version 6: trusted publishing (`feedkey::store::TrustStore`). A policy row holds its
-- rule as JSON text; its scope is in its hidden parent token record of the same id
-- (kind `trust-policy`), whose children are the keys minted from it. `subject` is the
-- lower-cased `owner/repository` the rule names, to find the policies a CI token may
-- match. A used OIDC token id is kept as a digest until the token's own expiry: its
-- primary key makes each id usable once, across every server.
--
-- Five statements, run one by one.
CREATE TABLE IF NOT EXISTS feedkey_trust_policies (
    id BYTEA PRIMARY KEY,
    account TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    rule TEXT NOT NULL,
    lifetime_secs BIGINT,
    created_at BIGINT NOT NULL,
    revision BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS feedkey_trust_policies_account
    ON feedkey_trust_policies (account, created_at);

CREATE INDEX IF NOT EXISTS feedkey_trust_policies_subject
    ON feedkey_trust_policies (issuer, subject);

CREATE TABLE IF NOT EXISTS feedkey_oidc_used (
    digest BYTEA PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS feedkey_oidc_used_expires ON feedkey_oidc_used (expires_at);
