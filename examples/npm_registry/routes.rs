//! The paths npm asks for, read into a [`Route`] before anything else looks at them.
//!
//! npm escapes a scoped name's slash (`/@acme%2futil`); tarball URLs and people write it
//! plainly (`/@acme/util/-/util-1.0.0.tgz`). Both are read here, segment by segment,
//! each percent-decoded once, so no handler ever sees a raw path.
//!
//! A token revoked by value travels in the path of `DELETE /-/npm/v1/tokens/token/…`
//! and of `npm logout`'s `DELETE /-/user/token/…`: that segment is held as a [`Secret`],
//! whose `Debug` shows nothing, and no path is ever logged.

use std::fmt;

use crate::names::valid_name;

/// A path segment that may be a whole token: never printed.
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// What a path names.
#[derive(Debug)]
pub enum Route {
    /// `/-/ping`.
    Ping,
    /// `/-/whoami`.
    Whoami,
    /// `/-/user/org.couchdb.user:{name}`: sign-in (`npm login`, `npm adduser`).
    User(String),
    /// `/-/user/token/{token}`: `npm logout`, ending the token it names.
    Logout(Secret),
    /// `/-/npm/v1/tokens`: create and list tokens.
    Tokens,
    /// `/-/npm/v1/tokens/token/{key or token}`: revoke one.
    Token(Secret),
    /// `/-/package/{name}/dist-tags`.
    DistTags(String),
    /// `/-/package/{name}/dist-tags/{tag}`.
    DistTag(String, String),
    /// `/{name}`: the packument.
    Package(String),
    /// `/{name}/-rev/{rev}`: the packument at a revision (unpublish).
    PackageRev(String, String),
    /// `/{name}/-/{file}`: a tarball.
    Tarball(String, String),
    /// `/{name}/-/{file}/-rev/{rev}`: a tarball at a revision (unpublish).
    TarballRev(String, String, String),
}

/// Decodes `%XX` escapes; `None` for a bad escape, a result that is not UTF-8, or one
/// holding a control character.
pub fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    (!text.chars().any(char::is_control)).then_some(text)
}

/// Reads a request path (without its query). `None`: no route here (a 404).
pub fn parse(path: &str) -> Option<Route> {
    let raw = path.strip_prefix('/')?;
    let mut segments = raw
        .split('/')
        .map(decode)
        .collect::<Option<Vec<String>>>()?;
    if segments.first().is_some_and(|s| s == "-") {
        return special(segments.get(1..)?);
    }
    // `@scope` and `name` as two segments are one name.
    if segments.len() >= 2
        && segments
            .first()
            .is_some_and(|s| s.starts_with('@') && !s.contains('/'))
    {
        let bare = segments.remove(1);
        if let Some(scope) = segments.first_mut() {
            scope.push('/');
            scope.push_str(&bare);
        }
    }
    let (name, rest) = segments.split_first()?;
    if !valid_name(name) {
        return None;
    }
    let name = name.clone();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match rest.as_slice() {
        [] => Some(Route::Package(name)),
        ["-rev", rev] => Some(Route::PackageRev(name, (*rev).to_owned())),
        ["-", file] => Some(Route::Tarball(name, (*file).to_owned())),
        ["-", file, "-rev", rev] => Some(Route::TarballRev(
            name,
            (*file).to_owned(),
            (*rev).to_owned(),
        )),
        _ => None,
    }
}

/// The routes under `/-/`.
fn special(segments: &[String]) -> Option<Route> {
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["ping"] => Some(Route::Ping),
        ["whoami"] => Some(Route::Whoami),
        ["user", id] => id
            .strip_prefix("org.couchdb.user:")
            .map(|name| Route::User(name.to_owned())),
        ["user", "token", token] => Some(Route::Logout(Secret((*token).to_owned()))),
        ["npm", "v1", "tokens"] => Some(Route::Tokens),
        ["npm", "v1", "tokens", "token", key] => Some(Route::Token(Secret((*key).to_owned()))),
        ["package", name, "dist-tags"] if valid_name(name) => {
            Some(Route::DistTags((*name).to_owned()))
        }
        ["package", name, "dist-tags", tag] if valid_name(name) => {
            Some(Route::DistTag((*name).to_owned(), (*tag).to_owned()))
        }
        // `/-/package/@acme/util/dist-tags`, the scope's slash unescaped.
        ["package", scope, bare, "dist-tags", rest @ ..] if rest.len() <= 1 => {
            let name = format!("{scope}/{bare}");
            if !valid_name(&name) {
                return None;
            }
            match rest {
                [] => Some(Route::DistTags(name)),
                [tag] => Some(Route::DistTag(name, (*tag).to_owned())),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_of(path: &str) -> Option<String> {
        match parse(path)? {
            Route::Package(n) | Route::Tarball(n, _) | Route::DistTags(n) => Some(n),
            _ => None,
        }
    }

    #[test]
    fn scoped_names_read_escaped_or_not() {
        assert_eq!(name_of("/@acme%2futil").as_deref(), Some("@acme/util"));
        assert_eq!(name_of("/@acme%2Futil").as_deref(), Some("@acme/util"));
        assert_eq!(name_of("/@acme/util").as_deref(), Some("@acme/util"));
        assert_eq!(
            name_of("/@acme/util/-/util-1.0.0.tgz").as_deref(),
            Some("@acme/util")
        );
        assert_eq!(
            name_of("/-/package/@acme%2futil/dist-tags").as_deref(),
            Some("@acme/util")
        );
        assert_eq!(
            name_of("/-/package/@acme/util/dist-tags").as_deref(),
            Some("@acme/util")
        );
        assert_eq!(name_of("/left-pad").as_deref(), Some("left-pad"));
    }

    #[test]
    fn bad_paths_are_no_route() {
        for path in [
            "/", "/Left", "/%zz", "/a/b", "/%2e%2e", "/@acme", "/a/-/x/y", "/-/nope",
        ] {
            assert!(parse(path).is_none(), "{path}");
        }
    }
}
