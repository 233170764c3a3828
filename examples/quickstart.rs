//! The seeds' story in a terminal: an account, a scoped CI key, requests allowed and
//! refused, a refresh and a revoke.
//!
//! Run it with `cargo run --example quickstart`.

use feedkey::time::Duration;
use feedkey::{
    AccountId, Action, Expiry, Feedkey, Feeds, LifetimePolicy, MemoryStore, NewToken, Packages,
    PasswordConfig, Permissions, Request, Scope, Target, TokenKey,
};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Asks feedkey, and prints the answer as a registry's log would.
async fn ask(
    keys: &Feedkey<MemoryStore>,
    who: &str,
    request: &Request<'_>,
    action: Action,
    target: &Target<'_>,
) {
    let what = format!(
        "{who:<22} {action:?} {}{}",
        target.feed_name(),
        target
            .package_id()
            .map(|id| format!("/{id}"))
            .unwrap_or_default()
    );
    match keys.authorize(request, action, target).await {
        Ok(grant) => println!("  ALLOW {what:<60} as {}", grant.account()),
        Err(denial) => println!(
            "  DENY  {what:<60} -> client sees {}, log says: {}",
            denial.status().as_u16(),
            denial.reason()
        ),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    // One key to hash token secrets, kept outside the database. A real registry loads
    // it from its secret store; an in-memory demo can make one up.
    let keys = Feedkey::builder(MemoryStore::new(), TokenKey::generate(1)?)
        .lifetime_policy(LifetimePolicy::nuget())
        .passwords(PasswordConfig::new().max_concurrent(2))
        .build()?;

    println!("1. An account, with its primary key (shown once):");
    let contoso = AccountId::new("contoso")?;
    let primary = keys
        .create_account(&contoso, Expiry::After(Duration::days(365)))
        .await?;
    println!("  primary key: {}", primary.token.expose_secret());
    keys.set_password(&contoso, "a long and private passphrase")
        .await?;

    println!("\n2. A scoped key: `Contoso service CI`, push Contoso.Service.*, 365 days:");
    let ci = keys
        .issue(
            &contoso,
            NewToken::new(
                "Contoso service CI",
                Scope::new(
                    Permissions::WRITE_ONLY,
                    Feeds::only(["ci"])?,
                    Packages::only(["Contoso.Service.*"])?,
                )?,
            )
            .expires(Expiry::After(Duration::days(365))),
        )
        .await?;
    println!("  CI key:      {}", ci.token.expose_secret());
    println!("  id (public): {}", ci.token.id());

    println!("\n3. Requests, as a registry sees them:");
    let push = Request::from_headers(Some(ci.token.expose_secret().as_bytes()), None);
    ask(
        &keys,
        "CI key",
        &push,
        Action::Push,
        &Target::new_package("ci", "Contoso.Service.Core"),
    )
    .await;
    ask(
        &keys,
        "CI key",
        &push,
        Action::Push,
        &Target::new_package("ci", "Fabrikam.Other"),
    )
    .await;
    ask(
        &keys,
        "CI key",
        &push,
        Action::Push,
        &Target::package("release", "Contoso.Service.Core"),
    )
    .await;
    ask(&keys, "CI key", &push, Action::Read, &Target::feed("ci")).await;
    ask(
        &keys,
        "CI key",
        &push,
        Action::Unlist,
        &Target::package("ci", "Contoso.Service.Core"),
    )
    .await;

    // A server that has decoded `Authorization: Basic` itself hands over the two halves;
    // `Request::from_headers` decodes the raw header value just the same.
    let basic = Request::basic;
    let password = basic("contoso", "a long and private passphrase");
    ask(
        &keys,
        "password (Basic)",
        &password,
        Action::Read,
        &Target::feed("ci"),
    )
    .await;
    ask(
        &keys,
        "password (Basic)",
        &password,
        Action::Push,
        &Target::package("ci", "Contoso.Service.Core"),
    )
    .await;
    let token_as_password = basic("contoso", ci.token.expose_secret());
    ask(
        &keys,
        "CI key (Basic)",
        &token_as_password,
        Action::Push,
        &Target::package("ci", "Contoso.Service.Core"),
    )
    .await;
    match keys.sign_in("contoso", ci.token.expose_secret()).await {
        Ok(_) => println!("  ALLOW website sign-in with the CI key"),
        Err(denial) => println!(
            "  DENY  website sign-in with the CI key -> {}",
            denial.reason()
        ),
    }

    println!("\n4. Refresh: same id, scope and expiry, new secret; the old one dies at once:");
    let fresh = keys.refresh(&contoso, ci.token.id()).await?;
    println!("  new CI key:  {}", fresh.token.expose_secret());
    let new_push = Request::from_headers(Some(fresh.token.expose_secret().as_bytes()), None);
    ask(
        &keys,
        "old CI key",
        &push,
        Action::Push,
        &Target::package("ci", "Contoso.Service.Core"),
    )
    .await;
    ask(
        &keys,
        "new CI key",
        &new_push,
        Action::Push,
        &Target::package("ci", "Contoso.Service.Core"),
    )
    .await;

    println!("\n5. The \"my tokens\" page (no secrets in it):");
    for token in keys.tokens(&contoso).await? {
        println!(
            "  {} {:<20} {:?} expires {}",
            token.id,
            token.description,
            token.status,
            token
                .expires_at
                .map(|e| e.date().to_string())
                .unwrap_or_else(|| "never".into())
        );
    }

    println!("\n6. Revoke: gone for good:");
    keys.revoke(&contoso, ci.token.id()).await?;
    ask(
        &keys,
        "revoked CI key",
        &new_push,
        Action::Push,
        &Target::package("ci", "Contoso.Service.Core"),
    )
    .await;
    println!("  tokens left: {}", keys.tokens(&contoso).await?.len());
    Ok(())
}
