-- Version 4: the audit trail (`feedkey::audit::StoredAudit`), one row per event: `at`
-- in nanoseconds since the epoch (as every time of the token tables), `kind` the
-- event's code, `detail` the JSON of the kind's own fields. Never a secret, a hash or a
-- header value. A read pages by number, so the account and token indexes end with it.
--
-- Four statements, run one by one.
CREATE TABLE IF NOT EXISTS feedkey_audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    account TEXT,
    token BYTEA,
    client_addr TEXT,
    detail TEXT NOT NULL
);

CREATE INDEX IF NOT EXISTS feedkey_audit_account ON feedkey_audit (account, id);

CREATE INDEX IF NOT EXISTS feedkey_audit_token ON feedkey_audit (token, id);

CREATE INDEX IF NOT EXISTS feedkey_audit_at ON feedkey_audit (at);
