-- Version 2: the change feed, one row per token write, that every server polls (MySQL
-- has no notifications) to forget the tokens it cached. A NULL token_id means "every
-- token". Times are the database's clock, in microseconds, so that servers' clocks
-- never matter.
CREATE TABLE IF NOT EXISTS feedkey_changes (
    seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    token_id VARBINARY(16) NULL,
    changed_at BIGINT NOT NULL,
    INDEX feedkey_changes_at (changed_at)
) ENGINE = InnoDB;
