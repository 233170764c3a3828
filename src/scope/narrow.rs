//! The rule "an edit never widens": [`Scope::narrowed_by`], pure, decided here only.

use super::{Feeds, Networks, Packages, Permissions, Scope, ScopeError};

/// What an edit tried to widen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Widening {
    /// A permission the token does not have.
    #[error("permissions")]
    Permissions,
    /// A feed the token does not cover.
    #[error("feeds")]
    Feeds,
    /// A client network the token does not allow.
    #[error("networks")]
    Networks,
}

/// Why [`Scope::narrowed_by`] refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NarrowingError {
    /// The change would widen this part.
    #[error("an edit cannot widen a token's {0}")]
    Widens(Widening),
    /// The result would not be a scope (no permissions left).
    #[error(transparent)]
    Invalid(#[from] ScopeError),
}

/// A change to a scope's parts; a part left `None` stays as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScopeChange {
    /// New permissions: a subset of the current ones.
    pub permissions: Option<Permissions>,
    /// New feeds: covered by the current ones.
    pub feeds: Option<Feeds>,
    /// New client networks: inside the current ones.
    pub networks: Option<Networks>,
    /// A new package list: any, as NuGet lets an owner point a key at other packages.
    /// (A derived token still acts only inside its parent's scope, checked on every
    /// request.)
    pub packages: Option<Packages>,
}

impl ScopeChange {
    /// Whether it changes anything.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl Scope {
    /// This scope with `change` applied, if the change never widens it: permissions,
    /// feeds and networks only narrower (or the same); the package list freely.
    ///
    /// ```
    /// use feedkey::scope::{NarrowingError, ScopeChange, Widening};
    /// use feedkey::{Feeds, Permissions, Scope};
    ///
    /// let ci = Scope::new(Permissions::WRITE_ONLY, Feeds::only(["ci"])?, feedkey::Packages::Any)?;
    /// let mut fewer = ScopeChange::default();
    /// fewer.permissions = Some(Permissions::PUSH_VERSION_ONLY);
    /// assert!(ci.narrowed_by(&fewer).is_ok());
    ///
    /// let mut more = ScopeChange::default();
    /// more.feeds = Some(Feeds::Any);
    /// assert_eq!(ci.narrowed_by(&more), Err(NarrowingError::Widens(Widening::Feeds)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`NarrowingError::Widens`] naming the first part, in the order permissions, feeds,
    /// networks, that `change` would widen; [`NarrowingError::Invalid`] when no
    /// permission is left.
    pub fn narrowed_by(&self, change: &ScopeChange) -> Result<Scope, NarrowingError> {
        let permissions = change.permissions.unwrap_or(self.0.permissions);
        if !permissions.is_subset_of(self.0.permissions) {
            return Err(NarrowingError::Widens(Widening::Permissions));
        }
        let feeds = change.feeds.as_ref().unwrap_or(&self.0.feeds);
        if !feeds.is_subset_of(&self.0.feeds) {
            return Err(NarrowingError::Widens(Widening::Feeds));
        }
        let networks = change.networks.as_ref().unwrap_or(&self.0.networks);
        if !networks.is_subset_of(&self.0.networks) {
            return Err(NarrowingError::Widens(Widening::Networks));
        }
        let packages = change.packages.as_ref().unwrap_or(&self.0.packages);
        Ok(Scope::new(permissions, feeds.clone(), packages.clone())?.within(networks.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(perms: Permissions, feeds: Feeds, nets: Networks) -> Scope {
        Scope::new(perms, feeds, Packages::only(["Contoso.*"]).unwrap())
            .unwrap()
            .within(nets)
    }

    fn change(
        permissions: Option<Permissions>,
        feeds: Option<Feeds>,
        networks: Option<Networks>,
        packages: Option<Packages>,
    ) -> ScopeChange {
        ScopeChange {
            permissions,
            feeds,
            networks,
            packages,
        }
    }

    /// Every part, narrower, equal and wider, against one scope; packages always free.
    #[test]
    fn an_edit_narrows_or_is_refused() {
        let ab = || Feeds::only(["a", "b"]).unwrap();
        let a = || Feeds::only(["a"]).unwrap();
        let ten = || Networks::only(["10.0.0.0/8"]).unwrap();
        let ten_one = || Networks::only(["10.1.0.0/16"]).unwrap();
        let base = scope(Permissions::WRITE_ONLY, ab(), ten());
        let push_new = Permissions::NONE.with(crate::Permission::PushNew);
        let widens = |part| Err(NarrowingError::Widens(part));
        let cases: Vec<(&str, ScopeChange, Result<Scope, NarrowingError>)> = vec![
            (
                "no permission left",
                change(Some(Permissions::NONE), None, None, None),
                Err(ScopeError::NoPermissions.into()),
            ),
            ("nothing", ScopeChange::default(), Ok(base.clone())),
            (
                "fewer permissions",
                change(Some(push_new), None, None, None),
                Ok(scope(push_new, ab(), ten())),
            ),
            (
                "same permissions",
                change(Some(Permissions::WRITE_ONLY), None, None, None),
                Ok(base.clone()),
            ),
            (
                "read added",
                change(Some(Permissions::FULL), None, None, None),
                widens(Widening::Permissions),
            ),
            (
                "read instead",
                change(Some(Permissions::READ_ONLY), None, None, None),
                widens(Widening::Permissions),
            ),
            (
                "fewer feeds",
                change(None, Some(a()), None, None),
                Ok(scope(Permissions::WRITE_ONLY, a(), ten())),
            ),
            (
                "every feed",
                change(None, Some(Feeds::Any), None, None),
                widens(Widening::Feeds),
            ),
            (
                "another feed",
                change(None, Some(Feeds::only(["c"]).unwrap()), None, None),
                widens(Widening::Feeds),
            ),
            (
                "a smaller network",
                change(None, None, Some(ten_one()), None),
                Ok(scope(Permissions::WRITE_ONLY, ab(), ten_one())),
            ),
            (
                "any network",
                change(None, None, Some(Networks::Any), None),
                widens(Widening::Networks),
            ),
            (
                "another network",
                change(
                    None,
                    None,
                    Some(Networks::only(["192.0.2.0/24"]).unwrap()),
                    None,
                ),
                widens(Widening::Networks),
            ),
            (
                "other packages",
                change(None, None, None, Some(Packages::Any)),
                Ok(Scope::new(Permissions::WRITE_ONLY, ab(), Packages::Any)
                    .unwrap()
                    .within(ten())),
            ),
            (
                "permissions first",
                change(
                    Some(Permissions::FULL),
                    Some(Feeds::Any),
                    Some(Networks::Any),
                    None,
                ),
                widens(Widening::Permissions),
            ),
            (
                "then feeds",
                change(None, Some(Feeds::Any), Some(Networks::Any), None),
                widens(Widening::Feeds),
            ),
        ];
        for (name, change, expected) in cases {
            assert_eq!(base.narrowed_by(&change), expected, "{name}");
        }
    }

    #[test]
    fn a_scope_with_any_part_takes_every_narrowing() {
        let full = Scope::full();
        let narrow = change(
            Some(Permissions::READ_ONLY),
            Some(Feeds::only(["a"]).unwrap()),
            Some(Networks::only(["10.0.0.0/8"]).unwrap()),
            None,
        );
        let got = full.narrowed_by(&narrow).unwrap();
        assert_eq!(got.permissions(), Permissions::READ_ONLY);
        assert!(!got.feeds().allows("b"));
        assert!(!got.networks().allows(Some("192.0.2.1".parse().unwrap())));
        assert!(ScopeChange::default().is_empty());
        assert!(!narrow.is_empty());
    }
}
