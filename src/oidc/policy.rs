//! Trusted-publishing policies: which CI identity an account trusts, and the one rule
//! ([`TrustRule::judge`]) that says whether a verified OIDC token is that identity.

use time::Duration;

use super::VerifiedClaims;
use crate::policy::lifetime::LifetimePolicy;

/// The CI identity an account trusts to publish.
///
/// Names (owner, repository, namespace, project) are compared as the forges compare
/// them, without regard to ASCII case; ids are compared exactly. A rule made with names
/// only is locked to the ids of the first token it accepts (as nuget.org does), so that
/// a repository deleted and created again under the same name, which gets a new id, is
/// not trusted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "forge", rename_all = "kebab-case", deny_unknown_fields)]
#[non_exhaustive]
pub enum TrustRule {
    /// A GitHub Actions workflow.
    GitHub {
        /// The issuer its tokens come from: [`OidcIssuer::GITHUB_ACTIONS`], or a GitHub
        /// Enterprise Server's. A token of any other issuer is never this identity, even
        /// with the same names.
        ///
        /// [`OidcIssuer::GITHUB_ACTIONS`]: super::OidcIssuer::GITHUB_ACTIONS
        issuer: String,
        /// The repository's owner (`repository_owner`).
        owner: String,
        /// The owner's id (`repository_owner_id`), once locked.
        owner_id: Option<String>,
        /// The repository's name, without its owner.
        repository: String,
        /// The repository's id (`repository_id`), once locked.
        repository_id: Option<String>,
        /// The workflow's file name under `.github/workflows/` (from `workflow_ref`).
        workflow: String,
        /// A reusable workflow the job must run (`job_workflow_ref`, as
        /// `owner/repo/.github/workflows/file.yml`, any ref), if required.
        reusable_workflow: Option<String>,
        /// The deployment environment (`environment`), if required.
        environment: Option<String>,
    },
    /// A GitLab CI/CD pipeline.
    GitLab {
        /// The issuer its tokens come from: [`OidcIssuer::GITLAB`], or a self-managed
        /// GitLab's URL.
        ///
        /// [`OidcIssuer::GITLAB`]: super::OidcIssuer::GITLAB
        issuer: String,
        /// The group or user (`namespace_path`).
        namespace: String,
        /// Its id (`namespace_id`), once locked.
        namespace_id: Option<String>,
        /// The project's name, without its namespace.
        project: String,
        /// Its id (`project_id`), once locked.
        project_id: Option<String>,
        /// The CI configuration file's path in the project (from `ci_config_ref_uri`),
        /// such as `.gitlab-ci.yml`.
        config_path: String,
        /// The environment (`environment`), if required.
        environment: Option<String>,
    },
}

/// The ids a rule made with names only is locked to at its first exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockedIds {
    /// The owner's or namespace's id.
    pub owner_id: String,
    /// The repository's or project's id.
    pub repository_id: String,
}

/// What [`TrustRule::judge`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The token is the identity the rule trusts. `lock` holds the ids to store in the
    /// rule when it had none yet.
    Trusted {
        /// The ids to lock the rule to, at its first exchange.
        lock: Option<LockedIds>,
    },
    /// It is not: the first claim that differs, for the log.
    Untrusted(&'static str),
}

fn same_name(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// The id a rule holds must be the token's; a rule without one takes the token's; a
/// token without one is not trusted (its rule could not be locked).
fn check_id(rule: Option<&String>, token: Option<&String>) -> Result<(), ()> {
    match (rule, token) {
        (Some(r), Some(t)) if r == t => Ok(()),
        (None, Some(_)) => Ok(()),
        _ => Err(()),
    }
}

/// `owner/repo/.github/workflows/release.yml@refs/heads/main` → `release.yml`, when it
/// is `repository`'s.
fn github_workflow_file<'a>(workflow_ref: &'a str, repository: &str) -> Option<&'a str> {
    let (path, _ref) = workflow_ref.split_once('@')?;
    let rest = path.get(repository.len()..)?;
    let head = path.get(..repository.len())?;
    if !same_name(head, repository) {
        return None;
    }
    rest.strip_prefix("/.github/workflows/")
}

impl TrustRule {
    /// Whether `claims` (a verified token of the rule's issuer) are the identity this rule
    /// trusts. The one rule every exchange asks.
    pub fn judge(&self, claims: &VerifiedClaims) -> Trust {
        match self.judge_inner(claims) {
            Ok(lock) => Trust::Trusted { lock },
            Err(why) => Trust::Untrusted(why),
        }
    }

    /// The lower-cased `owner/repository` (or `namespace/project`) the rule names: the
    /// key its policy is found by, as [`VerifiedClaims::subject`] is a token's.
    pub fn subject(&self) -> String {
        match self {
            TrustRule::GitHub {
                owner, repository, ..
            } => format!("{owner}/{repository}"),
            TrustRule::GitLab {
                namespace, project, ..
            } => format!("{namespace}/{project}"),
        }
        .to_ascii_lowercase()
    }

    /// This rule locked to `ids` (the first accepted token's).
    #[must_use]
    pub fn locked_to(&self, ids: &LockedIds) -> Self {
        let mut rule = self.clone();
        match &mut rule {
            TrustRule::GitHub {
                owner_id,
                repository_id,
                ..
            } => {
                *owner_id = Some(ids.owner_id.clone());
                *repository_id = Some(ids.repository_id.clone());
            }
            TrustRule::GitLab {
                namespace_id,
                project_id,
                ..
            } => {
                *namespace_id = Some(ids.owner_id.clone());
                *project_id = Some(ids.repository_id.clone());
            }
        }
        rule
    }

    /// The environment the rule requires, if any.
    pub fn environment(&self) -> Option<&str> {
        match self {
            TrustRule::GitHub { environment, .. } | TrustRule::GitLab { environment, .. } => {
                environment.as_deref()
            }
        }
    }

    /// This rule requiring `environment` (an edit that narrows: a rule that required
    /// none now requires one).
    #[must_use]
    pub fn with_environment(&self, required: &str) -> Self {
        let mut rule = self.clone();
        match &mut rule {
            TrustRule::GitHub { environment, .. } | TrustRule::GitLab { environment, .. } => {
                *environment = Some(required.to_owned());
            }
        }
        rule
    }

    /// The issuer the rule trusts.
    pub fn issuer(&self) -> &str {
        match self {
            TrustRule::GitHub { issuer, .. } | TrustRule::GitLab { issuer, .. } => issuer,
        }
    }

    fn judge_inner(&self, claims: &VerifiedClaims) -> Result<Option<LockedIds>, &'static str> {
        // Names are only unique within one issuer: check whose token it is first.
        if claims.issuer != self.issuer() {
            return Err("iss");
        }
        match self {
            TrustRule::GitHub {
                issuer: _,
                owner,
                owner_id,
                repository,
                repository_id,
                workflow,
                reusable_workflow,
                environment,
            } => {
                let claim_owner = claims.text("repository_owner").ok_or("repository_owner")?;
                if !same_name(&claim_owner, owner) {
                    return Err("repository_owner");
                }
                let full = claims.text("repository").ok_or("repository")?;
                let expected = format!("{owner}/{repository}");
                if !same_name(&full, &expected) {
                    return Err("repository");
                }
                let token_owner_id = claims.text("repository_owner_id");
                let token_repository_id = claims.text("repository_id");
                check_id(owner_id.as_ref(), token_owner_id.as_ref())
                    .map_err(|()| "repository_owner_id")?;
                check_id(repository_id.as_ref(), token_repository_id.as_ref())
                    .map_err(|()| "repository_id")?;
                let workflow_ref = claims.text("workflow_ref").ok_or("workflow_ref")?;
                if github_workflow_file(&workflow_ref, &full) != Some(workflow.as_str()) {
                    return Err("workflow_ref");
                }
                if let Some(reusable) = reusable_workflow {
                    let job = claims.text("job_workflow_ref").ok_or("job_workflow_ref")?;
                    let path = job.split_once('@').map_or(job.as_str(), |(p, _)| p);
                    if !same_name(path, reusable) {
                        return Err("job_workflow_ref");
                    }
                }
                if let Some(environment) = environment
                    && claims.text("environment").as_deref() != Some(environment.as_str())
                {
                    return Err("environment");
                }
                Ok(lock(
                    owner_id,
                    repository_id,
                    token_owner_id,
                    token_repository_id,
                ))
            }
            TrustRule::GitLab {
                issuer: _,
                namespace,
                namespace_id,
                project,
                project_id,
                config_path,
                environment,
            } => {
                let claim_namespace = claims.text("namespace_path").ok_or("namespace_path")?;
                if !same_name(&claim_namespace, namespace) {
                    return Err("namespace_path");
                }
                let full = claims.text("project_path").ok_or("project_path")?;
                if !same_name(&full, &format!("{namespace}/{project}")) {
                    return Err("project_path");
                }
                let token_namespace_id = claims.text("namespace_id");
                let token_project_id = claims.text("project_id");
                check_id(namespace_id.as_ref(), token_namespace_id.as_ref())
                    .map_err(|()| "namespace_id")?;
                check_id(project_id.as_ref(), token_project_id.as_ref())
                    .map_err(|()| "project_id")?;
                // `gitlab.com/group/project//.gitlab-ci.yml@refs/heads/main`
                let uri = claims
                    .text("ci_config_ref_uri")
                    .ok_or("ci_config_ref_uri")?;
                let path = uri
                    .split_once("//")
                    .and_then(|(_, rest)| rest.split_once('@'))
                    .map(|(path, _)| path);
                if path != Some(config_path.as_str()) {
                    return Err("ci_config_ref_uri");
                }
                if let Some(environment) = environment
                    && claims.text("environment").as_deref() != Some(environment.as_str())
                {
                    return Err("environment");
                }
                Ok(lock(
                    namespace_id,
                    project_id,
                    token_namespace_id,
                    token_project_id,
                ))
            }
        }
    }
}

/// The ids to lock a rule to: only when it had none and the token has both.
fn lock(
    rule_owner: &Option<String>,
    rule_repository: &Option<String>,
    token_owner: Option<String>,
    token_repository: Option<String>,
) -> Option<LockedIds> {
    match (rule_owner, rule_repository, token_owner, token_repository) {
        (None, None, Some(owner_id), Some(repository_id)) => Some(LockedIds {
            owner_id,
            repository_id,
        }),
        _ => None,
    }
}

/// How long a key minted by an exchange lives: the policy's lifetime (an hour unless it
/// says otherwise), never longer than the lifetime policy's caps for derived and for
/// write tokens.
pub fn minted_lifetime(policy: Option<Duration>, lifetimes: &LifetimePolicy) -> Duration {
    let mut lifetime = policy.unwrap_or(Duration::HOUR).max(Duration::MINUTE);
    lifetime = lifetime.min(lifetimes.max_child_lifetime());
    if let Some(write) = lifetimes.max_write_lifetime() {
        lifetime = lifetime.min(write);
    }
    lifetime
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use time::OffsetDateTime;

    use super::*;

    fn claims(pairs: &[(&str, &str)]) -> VerifiedClaims {
        VerifiedClaims {
            issuer: "https://token.actions.githubusercontent.com".into(),
            jti: "j".into(),
            expires_at: OffsetDateTime::UNIX_EPOCH,
            claims: pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), serde_json::Value::String((*v).to_owned())))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn github(owner_id: Option<&str>, repository_id: Option<&str>) -> TrustRule {
        TrustRule::GitHub {
            issuer: "https://token.actions.githubusercontent.com".into(),
            owner: "Contoso".into(),
            owner_id: owner_id.map(Into::into),
            repository: "Service".into(),
            repository_id: repository_id.map(Into::into),
            workflow: "release.yml".into(),
            reusable_workflow: None,
            environment: None,
        }
    }

    const RUN: &[(&str, &str)] = &[
        ("repository_owner", "contoso"),
        ("repository_owner_id", "100"),
        ("repository", "contoso/service"),
        ("repository_id", "200"),
        (
            "workflow_ref",
            "contoso/service/.github/workflows/release.yml@refs/tags/v1.0.0",
        ),
        ("environment", "production"),
    ];

    fn with(change: (&'static str, &'static str)) -> VerifiedClaims {
        let mut pairs: Vec<(&str, &str)> = RUN
            .iter()
            .filter(|(k, _)| *k != change.0)
            .copied()
            .collect();
        if !change.1.is_empty() {
            pairs.push(change);
        }
        claims(&pairs)
    }

    /// The rule, one case a row: a GitHub run against a rule, and the answer.
    #[test]
    fn judge_github_table() {
        let locked = github(Some("100"), Some("200"));
        let names = github(None, None);
        let lock = Some(LockedIds {
            owner_id: "100".into(),
            repository_id: "200".into(),
        });
        let cases: Vec<(&str, TrustRule, VerifiedClaims, Trust)> = vec![
            (
                "names only: trusted, ids to lock",
                names.clone(),
                claims(RUN),
                Trust::Trusted { lock: lock.clone() },
            ),
            (
                "locked: trusted",
                locked.clone(),
                claims(RUN),
                Trust::Trusted { lock: None },
            ),
            (
                "recreated repository",
                locked.clone(),
                with(("repository_id", "201")),
                Trust::Untrusted("repository_id"),
            ),
            (
                "new owner of the name",
                locked.clone(),
                with(("repository_owner_id", "101")),
                Trust::Untrusted("repository_owner_id"),
            ),
            (
                "locked, token without ids",
                locked.clone(),
                with(("repository_id", "")),
                Trust::Untrusted("repository_id"),
            ),
            // Every GitHub token carries its ids; one without them is not trusted, since
            // the rule could not be locked.
            (
                "names only, token without ids",
                names.clone(),
                with(("repository_id", "")),
                Trust::Untrusted("repository_id"),
            ),
            (
                "another repository",
                names.clone(),
                with(("repository", "contoso/other")),
                Trust::Untrusted("repository"),
            ),
            (
                "another owner",
                names.clone(),
                with(("repository_owner", "fabrikam")),
                Trust::Untrusted("repository_owner"),
            ),
            (
                "another workflow",
                names.clone(),
                with((
                    "workflow_ref",
                    "contoso/service/.github/workflows/ci.yml@refs/heads/main",
                )),
                Trust::Untrusted("workflow_ref"),
            ),
            (
                "a workflow of another repository",
                names.clone(),
                with((
                    "workflow_ref",
                    "contoso/other/.github/workflows/release.yml@refs/heads/main",
                )),
                Trust::Untrusted("workflow_ref"),
            ),
            (
                "no workflow_ref",
                names.clone(),
                with(("workflow_ref", "")),
                Trust::Untrusted("workflow_ref"),
            ),
        ];
        for (what, rule, claims, expected) in cases {
            assert_eq!(rule.judge(&claims), expected, "{what}");
        }
    }

    #[test]
    fn judge_github_environment_and_reusable_workflow() {
        let mut rule = github(None, None);
        if let TrustRule::GitHub {
            environment,
            reusable_workflow,
            ..
        } = &mut rule
        {
            *environment = Some("production".into());
            *reusable_workflow = Some("contoso/shared/.github/workflows/publish.yml".into());
        }
        let mut run: Vec<(&str, &str)> = RUN.to_vec();
        assert_eq!(
            rule.judge(&claims(&run)),
            Trust::Untrusted("job_workflow_ref")
        );
        run.push((
            "job_workflow_ref",
            "Contoso/Shared/.github/workflows/publish.yml@refs/heads/main",
        ));
        assert!(matches!(rule.judge(&claims(&run)), Trust::Trusted { .. }));
        run.retain(|(k, _)| *k != "environment");
        run.push(("environment", "staging"));
        assert_eq!(rule.judge(&claims(&run)), Trust::Untrusted("environment"));
    }

    #[test]
    fn judge_gitlab() {
        let rule = TrustRule::GitLab {
            issuer: "https://gitlab.com".into(),
            namespace: "acme".into(),
            namespace_id: Some("7".into()),
            project: "util".into(),
            project_id: Some("8".into()),
            config_path: ".gitlab-ci.yml".into(),
            environment: None,
        };
        let run = [
            ("namespace_path", "acme"),
            ("namespace_id", "7"),
            ("project_path", "acme/util"),
            ("project_id", "8"),
            (
                "ci_config_ref_uri",
                "gitlab.com/acme/util//.gitlab-ci.yml@refs/heads/main",
            ),
        ];
        let mut from_gitlab = claims(&run);
        from_gitlab.issuer = "https://gitlab.com".into();
        assert_eq!(rule.judge(&from_gitlab), Trust::Trusted { lock: None });
        // The same names from another issuer (the test claims say GitHub's).
        assert_eq!(rule.judge(&claims(&run)), Trust::Untrusted("iss"));
        let gitlab = |pairs: &[(&str, &str)]| {
            let mut c = claims(pairs);
            c.issuer = "https://gitlab.com".into();
            c
        };
        let mut moved = run;
        moved[3] = ("project_id", "9");
        assert_eq!(rule.judge(&gitlab(&moved)), Trust::Untrusted("project_id"));
        let mut other_file = run;
        other_file[4] = (
            "ci_config_ref_uri",
            "gitlab.com/acme/util//ci/other.yml@refs/heads/main",
        );
        assert_eq!(
            rule.judge(&gitlab(&other_file)),
            Trust::Untrusted("ci_config_ref_uri")
        );
    }

    #[test]
    fn minted_keys_live_an_hour_within_the_caps() {
        let open = LifetimePolicy::unlimited();
        assert_eq!(
            minted_lifetime(None, &open),
            Duration::HOUR.min(open.max_child_lifetime())
        );
        let tight = LifetimePolicy::unlimited().with_max_child_lifetime(Duration::minutes(30));
        assert_eq!(
            minted_lifetime(Some(Duration::hours(2)), &tight),
            Duration::minutes(30)
        );
        let write = LifetimePolicy::unlimited().with_max_write_lifetime(Duration::minutes(10));
        assert_eq!(minted_lifetime(None, &write), Duration::minutes(10));
        assert_eq!(
            minted_lifetime(Some(Duration::ZERO), &open),
            Duration::MINUTE
        );
    }
}
