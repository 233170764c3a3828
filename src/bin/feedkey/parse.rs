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

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    #[test]
    fn durations_are_a_number_and_a_unit() {
        for (text, seconds) in [
            ("90s", 90),
            ("30m", 1800),
            ("12h", 43_200),
            ("10d", 864_000),
            ("2w", 1_209_600),
            ("0s", 0),
        ] {
            assert_eq!(
                duration(text).unwrap(),
                Duration::seconds(seconds),
                "{text}"
            );
        }
        for bad in [
            "",
            "10",
            "d",
            "-1d",
            "1.5d",
            "10 days",
            "1y",
            "99999999999999999d",
            "3200000000s",
        ] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instants_are_rfc_3339_or_a_duration_ago() {
        let at = instant("2026-11-30T12:00:00Z").unwrap();
        assert_eq!(at, feedkey::time::macros::datetime!(2026-11-30 12:00 UTC));
        let ago = instant("1h").unwrap();
        let expected = OffsetDateTime::now_utc() - Duration::hours(1);
        assert!((ago - expected).abs() < Duration::seconds(5));
        assert!(instant("yesterday").is_err());
    }

    #[test]
    fn expiries_are_never_a_duration_or_an_instant() {
        assert_eq!(expiry("never").unwrap(), Expiry::Never);
        assert_eq!(expiry("90d").unwrap(), Expiry::After(Duration::days(90)));
        assert!(matches!(
            expiry("2027-01-01T00:00:00Z").unwrap(),
            Expiry::At(_)
        ));
        assert!(expiry("soon").is_err());
    }

    #[test]
    fn permissions_are_a_preset_or_a_list() {
        assert_eq!(permissions("read-only").unwrap(), Permissions::READ_ONLY);
        assert_eq!(permissions("full").unwrap(), Permissions::FULL);
        assert_eq!(
            permissions("push-new, push-version").unwrap(),
            Permissions::WRITE_ONLY
        );
        for bad in ["", "write", "read,,unlist", "READ"] {
            let failure = permissions(bad).unwrap_err();
            assert_eq!(failure.code(), Failure::USAGE, "{bad}");
        }
    }

    #[test]
    fn no_feed_package_or_network_means_every_one() {
        assert_eq!(feeds(&[]).unwrap(), Feeds::Any);
        assert_eq!(packages(&[]).unwrap(), Packages::Any);
        assert_eq!(networks(&[]).unwrap(), Networks::Any);
        assert!(networks(&["10.0.0.0/33".to_owned()]).is_err());
        assert!(packages(&["bad pattern".to_owned()]).is_err());
    }
}
