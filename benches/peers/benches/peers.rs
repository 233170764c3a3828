//! One decision, three engines: may alice (via token T) push `Contoso.Service.Core` to feed
//! `ci`, when the rule is one push grant on feed `ci` for packages `Contoso.Service.*`,
//! beside 9 or 999 other package globs that do not match.
//!
//! - feedkey: `authorize` from the raw API-key header value to the decision, on a
//!   `MemoryStore`, for a token whose scope lists 10 / 1000 globs (matched case-insensitively).
//! - casbin: `Enforcer::enforce` with 10 / 1000 policy lines matched by `keyMatch`; the
//!   package id is lowercased in the timed loop, the policies are lowercased at set-up.
//!   casbin stops at the first allow, so the matching line is the last one.
//! - cedar: `Authorizer::is_authorized` over 10 / 1000 policies, one per glob, each a `like`
//!   pattern on `context.package`; the request (and its lowercased package) is built in the
//!   timed loop, as feedkey parses the header in its.
//!
//! `cargo bench` (in this directory)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::str::FromStr;
use std::task::{Context, Poll, Waker};

use casbin::prelude::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};
use cedar_policy::{
    Authorizer, Context as CedarContext, Decision, Entities, EntityUid, PolicySet,
    Request as CedarRequest, RestrictedExpression,
};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use feedkey::{
    AccountId, Action, Expiry, Feedkey, Feeds, MemoryStore, NewToken, Packages, Permissions,
    Request, Scope, Target, TokenKey,
};

/// Runs a future that is ready at once (every `MemoryStore` call is), without an executor.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a MemoryStore future was not ready"),
    }
}

const PACKAGE: &str = "Contoso.Service.Core";
const SIZES: [usize; 2] = [10, 1000];

/// `Contoso.Service.*` and `n - 1` other distinct globs; the matching one comes last.
fn globs(n: usize) -> Vec<String> {
    let mut g: Vec<String> = (1..n).map(|i| format!("Other{i}.Lib.*")).collect();
    g.push("Contoso.Service.*".to_owned());
    g
}

const CASBIN_MODEL: &str = r#"
[request_definition]
r = sub, feed, pkg, act

[policy_definition]
p = sub, feed, pkg, act

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.sub == p.sub && r.feed == p.feed && r.act == p.act && keyMatch(r.pkg, p.pkg)
"#;

fn peers(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut group = c.benchmark_group("peers");

    for n in SIZES {
        let globs = globs(n);

        // feedkey: one scoped token among 1000 others, as in benches/authorize.rs.
        let keys = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[7; 32]))
            .build()
            .unwrap();
        let alice = AccountId::new("alice").unwrap();
        ready(keys.create_account(&alice, Expiry::Never)).unwrap();
        for i in 0..1000 {
            ready(keys.issue(&alice, NewToken::new(format!("t{i}"), Scope::read_only()))).unwrap();
        }
        let scope = Scope::new(
            Permissions::WRITE_ONLY,
            Feeds::only(["ci"]).unwrap(),
            Packages::only(globs.iter()).unwrap(),
        )
        .unwrap();
        let token = ready(keys.issue(&alice, NewToken::new("CI", scope))).unwrap();
        let header = token.token.expose_secret().to_owned();
        let target = Target::package("ci", PACKAGE);
        {
            let request = Request::from_headers(Some(header.as_bytes()), None);
            let grant = ready(keys.authorize(&request, Action::Push, &target)).unwrap();
            assert_eq!(grant.account(), &alice);
        }

        // casbin: one policy line per glob.
        let enforcer = rt.block_on(async {
            let model = DefaultModel::from_str(CASBIN_MODEL).await.unwrap();
            let mut e = Enforcer::new(model, MemoryAdapter::default()).await.unwrap();
            let lines: Vec<Vec<String>> = globs
                .iter()
                .map(|g| {
                    vec!["alice".into(), "ci".into(), g.to_lowercase(), "push".into()]
                })
                .collect();
            assert!(e.add_policies(lines).await.unwrap());
            e
        });
        assert_eq!(enforcer.get_policy().len(), n);
        let casbin_decide = |package: &str| {
            enforcer
                .enforce(("alice", "ci", package.to_lowercase(), "push"))
                .unwrap()
        };
        assert!(casbin_decide(PACKAGE));
        assert!(!casbin_decide("Fabrikam.Web"));

        // cedar: one policy per glob.
        let policies: String = globs
            .iter()
            .map(|g| {
                format!(
                    "permit(principal == User::\"alice\", action == Action::\"push\", \
                     resource == Feed::\"ci\") when {{ context.package like \"{}\" }};\n",
                    g.to_lowercase()
                )
            })
            .collect();
        let policies = PolicySet::from_str(&policies).unwrap();
        assert_eq!(policies.policies().count(), n);
        let authorizer = Authorizer::new();
        let entities = Entities::empty();
        let principal = EntityUid::from_str(r#"User::"alice""#).unwrap();
        let push = EntityUid::from_str(r#"Action::"push""#).unwrap();
        let feed = EntityUid::from_str(r#"Feed::"ci""#).unwrap();
        let cedar_decide = |package: &str| {
            let context = CedarContext::from_pairs([(
                "package".to_owned(),
                RestrictedExpression::new_string(package.to_lowercase()),
            )])
            .unwrap();
            let request =
                CedarRequest::new(principal.clone(), push.clone(), feed.clone(), context, None)
                    .unwrap();
            authorizer.is_authorized(&request, &policies, &entities).decision()
        };
        assert_eq!(cedar_decide(PACKAGE), Decision::Allow);
        assert_eq!(cedar_decide("Fabrikam.Web"), Decision::Deny);

        group.bench_function(BenchmarkId::new("feedkey", n), |b| {
            b.iter(|| {
                let request = Request::from_headers(Some(black_box(header.as_bytes())), None);
                ready(keys.authorize(&request, Action::Push, black_box(&target))).unwrap()
            })
        });
        group.bench_function(BenchmarkId::new("casbin", n), |b| {
            b.iter(|| casbin_decide(black_box(PACKAGE)))
        });
        group.bench_function(BenchmarkId::new("cedar", n), |b| {
            b.iter(|| cedar_decide(black_box(PACKAGE)))
        });
    }
    group.finish();
}

criterion_group!(benches, peers);
criterion_main!(benches);
