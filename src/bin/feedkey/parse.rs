//! The arguments clap cannot check alone: durations (`10d`), instants (RFC 3339 or a
//! duration ago), expiries, and scopes in the README's terms (permissions, feeds,
//! packages, networks).

use feedkey::time::format_description::well_known::Rfc3339;
use feedkey::time::{Duration, OffsetDateTime};
use feedkey::{AccountId, Expiry, Feeds, Networks, Packages, Permission, Permissions, TokenId};

use crate::failure::Failure;

/// `90s`, `30m`, `12h`, `10d`, `2w`: a positive whole number and a unit.
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit: write 90s, 30m, 12h, 10d or 2w"))?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 10d"))?;
    let seconds_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("`{text}`: the unit is one of s, m, h, d, w")),
    };
    let seconds = number
        .checked_mul(seconds_per)
        .filter(|s| *s <= 100 * 365 * 86_400)
        .ok_or_else(|| format!("`{text}` is too long (at most 100 years)"))?;
    Ok(Duration::seconds(seconds))
}

/// An instant: RFC 3339 (`2026-11-30T12:00:00Z`), or a duration ago (`7d`).
pub fn instant(text: &str) -> Result<OffsetDateTime, String> {
    if let Ok(at) = OffsetDateTime::parse(text.trim(), &Rfc3339) {
        return Ok(at);
    }
    duration(text)
        .map(|ago| OffsetDateTime::now_utc() - ago)
        .map_err(|_| {
            format!("`{text}` is neither an RFC 3339 time (2026-11-30T12:00:00Z) nor a duration ago (7d)")
        })
}

/// `never`, a duration from now (`90d`), or an RFC 3339 instant.
pub fn expiry(text: &str) -> Result<Expiry, String> {
    if text.trim() == "never" {
        return Ok(Expiry::Never);
    }
    if let Ok(at) = OffsetDateTime::parse(text.trim(), &Rfc3339) {
        return Ok(Expiry::At(at));
    }
    duration(text).map(Expiry::After).map_err(|_| {
        format!("`{text}` is not an expiry: write never, a duration (90d) or an RFC 3339 time")
    })
}

/// An account id, checked.
pub fn account(text: &str) -> Result<AccountId, String> {
    AccountId::new(text).map_err(|e| format!("`{text}` is not an account id: {e}"))
}

/// A token id, checked.
pub fn token_id(text: &str) -> Result<TokenId, String> {
    text.parse::<TokenId>()
        .map_err(|e| format!("`{text}` is not a token id: {e}"))
}

/// Permissions: a preset (`read-only`, `write-only`, `push-version-only`, `full`) or a
/// comma-separated list of `read`, `push-new`, `push-version`, `unlist`.
pub fn permissions(text: &str) -> Result<Permissions, Failure> {
    let preset = match text.trim() {
        "read-only" => Some(Permissions::READ_ONLY),
        "write-only" => Some(Permissions::WRITE_ONLY),
        "push-version-only" => Some(Permissions::PUSH_VERSION_ONLY),
        "full" => Some(Permissions::FULL),
        _ => None,
    };
    if let Some(preset) = preset {
        return Ok(preset);
    }
    let mut permissions = Permissions::NONE;
    for name in text.split(',') {
        let permission: Permission = name.trim().parse().map_err(|_| {
            Failure::usage(format!(
                "`{name}` is not a permission: read, push-new, push-version, unlist, or a preset \
                 read-only, write-only, push-version-only, full"
            ))
        })?;
        permissions = permissions.with(permission);
    }
    Ok(permissions)
}

/// The feeds: every one when none is named.
pub fn feeds(names: &[String]) -> Result<Feeds, Failure> {
    if names.is_empty() {
        return Ok(Feeds::Any);
    }
    Feeds::only(names).map_err(|e| Failure::usage(format!("bad --feed: {e}")))
}

/// The packages: every one when no pattern is given.
pub fn packages(patterns: &[String]) -> Result<Packages, Failure> {
    if patterns.is_empty() {
        return Ok(Packages::Any);
    }
    Packages::only(patterns).map_err(|e| Failure::usage(format!("bad --package: {e}")))
}

/// The networks: any when no range is given.
pub fn networks(ranges: &[String]) -> Result<Networks, Failure> {
    if ranges.is_empty() {
        return Ok(Networks::Any);
    }
    Networks::only(ranges).map_err(|e| Failure::usage(format!("bad --network: {e}")))
}
