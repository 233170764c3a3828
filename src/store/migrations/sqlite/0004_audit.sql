-- Version 4: the audit trail (`feedkey::audit::StoredAudit`), one row per event: `at`
-- in nanoseconds since the epoch (as every time of the token tables), `kind` the
-- event's code, `detail` the JSON of the kind's own fields. Never a secret, a hash or a
-- header value. AUTOINCREMENT: a number is never given twice, even after a purge, so a
-- reader's cursor (the last number it read) stays good. A read pages by number, so the
-- account and token indexes end with it.
--
-- Executed whole (`execute_batch`).
CREATE TABLE feedkey_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    account TEXT,
    token BLOB,
    client_addr TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX feedkey_audit_account ON feedkey_audit(account, id);
CREATE INDEX feedkey_audit_token ON feedkey_audit(token, id);
CREATE INDEX feedkey_audit_at ON feedkey_audit(at);
