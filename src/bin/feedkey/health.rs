//! `migrate` and `doctor`.

use feedkey::TokenStore as _;
use serde_json::json;

use crate::context::{Context, Global, open_store, redacted};
use crate::failure::Failure;

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

/// The exit code of a doctor that found something to look at.
const WARNING: u8 = 5;

/// Checks the database (reachable, migrated), the keys (the key file's against the
/// store's), and that every key version the store has tokens under is in the key file.
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
    let current = ctx.ring.current_version().unwrap_or_default();
    let fingerprint = ctx
        .ring
        .keys(&ctx.key_file)
        .map(|(key, _)| key.fingerprint().to_string())?;
    if ctx.json {
        let keys: Vec<_> = remembered
            .iter()
            .map(|(v, f)| json!({ "version": v, "fingerprint": f.to_string() }))
            .collect();
        ctx.print_json(&json!({
            "database": redacted(url),
            "reachable": true,
            "schema": "up to date",
            "current_key": { "version": current, "fingerprint": fingerprint },
            "store_keys": keys,
            "warnings": warnings,
        }))?;
    } else {
        println!("database:    {} answers; schema up to date", redacted(url));
        println!("current key: version {current}, fingerprint {fingerprint} (matches the store)");
        for (version, fingerprint) in &remembered {
            println!("store knows: version {version}, fingerprint {fingerprint}");
        }
        for warning in &warnings {
            println!("WARNING: {warning}");
        }
    }
    Ok(if warnings.is_empty() { 0 } else { WARNING })
}
