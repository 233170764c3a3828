//! `migrate` and `doctor`.

use feedkey::TokenStore as _;
use feedkey::store::AnyStore;
use feedkey::time::{Duration, OffsetDateTime};
use serde_json::json;

use crate::context::{Context, Global, open_store, redacted};
use crate::failure::Failure;
use crate::keyring;

/// Opens the store, which brings its schema up to date (every backend migrates when it
/// is opened), and closes it.
pub async fn migrate(global: &Global) -> Result<(), Failure> {
    let url = global.database()?;
    let store = open_store(url).await?;
    store
        .flush()
        .await
        .map_err(|e| Failure::failed(format!("closing the store: {e}")))?;
    if global.json {
        println!("{}", json!({ "schema": "up to date" }));
    } else {
        println!("{}: the schema is up to date", redacted(url));
    }
    Ok(())
}

/// The most the database's clock may differ from this host's without a warning.
const MAX_SKEW: Duration = Duration::seconds(5);

/// The exit code of a doctor that found something to look at.
const WARNING: u8 = 5;

/// Checks the database (reachable, migrated), the keys (the key file's against the
/// store's), that every key version the store has tokens under is in the key file, and
/// that the database server's clock agrees with this host's within a few seconds.
pub async fn doctor(global: &Global) -> Result<u8, Failure> {
    let url = global.database()?;
    let ctx = Context::open(global).await?;
    let mut warnings = Vec::new();
    ctx.keys.check_keys().await?;
    let remembered = ctx
        .store
        .key_fingerprints()
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    let uses = ctx.keys.tokens_by_key_version().await?;
    for (version, use_) in &uses {
        if !ctx.ring.versions().any(|v| v == *version) {
            warnings.push(format!(
                "{} live tokens are hashed under key version {version}, which the key file does not hold: they cannot be verified",
                use_.tokens
            ));
        }
    }
    // The clocks: expiry is judged by this host's clock.
    let clock = match &*ctx.store {
        AnyStore::Sql(store) => {
            let before = OffsetDateTime::now_utc();
            let database = store
                .database_time()
                .await
                .map_err(|e| Failure::unreachable(format!("reading the database's clock: {e}")))?;
            let after = OffsetDateTime::now_utc();
            let host = before + (after - before) / 2;
            let skew: Duration = database - host;
            if skew.abs() > MAX_SKEW {
                warnings.push(format!(
                    "the database's clock is {:.3} s {} this host's: expiry is judged by this \
                     host's clock; set both by NTP",
                    skew.abs().as_seconds_f64(),
                    if skew.is_positive() {
                        "ahead of"
                    } else {
                        "behind"
                    }
                ));
            }
            Some(skew)
        }
        // SQLite runs on this host, by this host's clock.
        _ => None,
    };
    let current = ctx.ring.current_version().unwrap_or_default();
    let fingerprint =
        keyring::keys(&ctx.ring, &ctx.key_file).map(|(key, _)| key.fingerprint().to_string())?;
    let (schema, latest) = match &*ctx.store {
        AnyStore::Sql(store) => store.schema_version().await,
        AnyStore::Sqlite(store) => store.schema_version(),
        _ => Ok((0, 0)),
    }
    .map_err(|e| Failure::unreachable(format!("reading the schema version: {e}")))?;
    if schema > latest {
        warnings.push(format!(
            "the database is at schema version {schema}, newer than this build's {latest}: \
             upgrade feedkey here before it writes to it"
        ));
    }
    if ctx.json {
        let keys: Vec<_> = remembered
            .iter()
            .map(|(v, f)| json!({ "version": v, "fingerprint": f.to_string() }))
            .collect();
        ctx.print_json(&json!({
            "database": redacted(url),
            "reachable": true,
            "schema": "up to date",
            "schema_version": schema,
            "current_key": { "version": current, "fingerprint": fingerprint },
            "store_keys": keys,
            "clock_skew_seconds": clock.map(|skew| skew.as_seconds_f64()),
            "warnings": warnings,
        }))?;
    } else {
        println!(
            "database:    {} answers; schema version {schema} (up to date)",
            redacted(url)
        );
        println!("current key: version {current}, fingerprint {fingerprint} (matches the store)");
        for (version, fingerprint) in &remembered {
            println!("store knows: version {version}, fingerprint {fingerprint}");
        }
        match clock {
            Some(skew) => println!(
                "clocks:      the database's is {:+.3} s from this host's (expiry is judged by this host's)",
                skew.as_seconds_f64()
            ),
            None => println!("clocks:      SQLite runs on this host's clock"),
        }
        for warning in &warnings {
            println!("WARNING: {warning}");
        }
    }
    Ok(if warnings.is_empty() { 0 } else { WARNING })
}
