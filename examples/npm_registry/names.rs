//! npm's names as this registry accepts them: package names (`left-pad`, `@acme/util`),
//! scopes (`@acme`), versions, dist-tags and tarball file names.
//!
//! Names follow npm's rules for new packages: lowercase, URL-safe (`a-z`, `0-9`, `-`,
//! `.`, `_`), at most 214 characters, not starting with `.` or `_`. npm once allowed
//! capitals, so two names could differ only in case; this registry takes lowercase names
//! only, so no two packages here ever do. None of these characters is a glob character,
//! so a name is also a package pattern that matches itself alone.

/// The longest package name npm accepts, scope included.
pub const MAX_NAME_LEN: usize = 214;

/// Whether `part` (a scope without its `@`, or a name without its scope) is made of the
/// characters npm allows in new names.
fn valid_part(part: &str) -> bool {
    !part.is_empty()
        && !part.starts_with(['.', '_'])
        && part.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'_')
        })
}

/// Whether `name` is a package name npm could publish: `name` or `@scope/name`.
pub fn valid_name(name: &str) -> bool {
    if name.len() > MAX_NAME_LEN || name == "node_modules" || name == "favicon.ico" {
        return false;
    }
    match name.strip_prefix('@') {
        Some(scoped) => scoped
            .split_once('/')
            .is_some_and(|(scope, bare)| valid_part(scope) && valid_part(bare)),
        None => valid_part(name),
    }
}

/// The scope `@acme` as written in `npm token create --scopes`, with or without its `@`;
/// `None` when it is not a valid scope.
pub fn scope(text: &str) -> Option<String> {
    let bare = text.strip_prefix('@').unwrap_or(text);
    valid_part(bare).then(|| format!("@{bare}"))
}

/// The part of a name after its scope: `util` for `@acme/util`.
pub fn bare(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Whether `version` looks like semver and is safe in a file name.
pub fn valid_version(version: &str) -> bool {
    version.len() <= 64
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
}

/// Whether `tag` is a dist-tag npm would set: not empty, not a version (npm refuses tags
/// that parse as a semver range; refusing those that start with a digit or `v` and a digit
/// is the same for any tag in use), URL-safe.
pub fn valid_tag(tag: &str) -> bool {
    let looks_like_version = tag.starts_with(|c: char| c.is_ascii_digit())
        || tag
            .strip_prefix('v')
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    !tag.is_empty()
        && tag.len() <= 64
        && !looks_like_version
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// The tarball file of `name` at `version`, as npm's public registry names it:
/// `util-1.0.0.tgz` for `@acme/util`.
pub fn tarball(name: &str, version: &str) -> String {
    format!("{}-{version}.tgz", bare(name))
}

/// The version a tarball file of `name` holds, if `file` is one.
pub fn version_of_tarball<'a>(name: &str, file: &'a str) -> Option<&'a str> {
    file.strip_prefix(bare(name))?
        .strip_prefix('-')?
        .strip_suffix(".tgz")
        .filter(|v| valid_version(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_npm_rules_for_new_packages() {
        for ok in ["left-pad", "@acme/util", "a.b_c", "x1", "@a/b"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Left-Pad",
            ".hidden",
            "_x",
            "@acme",
            "@acme/",
            "@/x",
            "a/b",
            "@a/b/c",
            "a b",
            "a*",
            "~x",
            "node_modules",
            "@Acme/util",
            "é",
        ] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(!valid_name(&"a".repeat(215)));
    }

    #[test]
    fn tarballs_are_named_by_the_bare_name() {
        assert_eq!(tarball("@acme/util", "1.0.0"), "util-1.0.0.tgz");
        assert_eq!(
            version_of_tarball("@acme/util", "util-1.0.0.tgz"),
            Some("1.0.0")
        );
        assert_eq!(
            version_of_tarball("left-pad", "left-pad-1.2.3-beta.1.tgz"),
            Some("1.2.3-beta.1")
        );
        assert_eq!(version_of_tarball("left-pad", "left-pad-../x.tgz"), None);
        assert_eq!(scope("acme").as_deref(), Some("@acme"));
        assert_eq!(scope("@acme").as_deref(), Some("@acme"));
        assert_eq!(scope("@Acme"), None);
        assert!(valid_tag("beta") && !valid_tag("1.0") && !valid_tag("v2") && valid_tag("vnext"));
    }
}
