//! `key …`: rotation of the token keys.

use clap::Subcommand;
use feedkey::RevokeSelection;
use serde_json::json;

use crate::context::{Context, Global};
use crate::failure::Failure;
use crate::keyring;
use crate::revoke::revoke_with_progress;

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Add a new random key to the key file, with the next version: it becomes the
    /// current key, and the others stay to verify the tokens hashed under them (creates
    /// the file, with version 1, when it does not exist)
    Add,
    /// How many live tokens are still hashed under each key version (a token is rehashed
    /// under the current key when it is next used)
    Status,
    /// Remove a key version from the key file. Refused while live tokens remain under it,
    /// unless --force, which revokes them (audited) so that their owners refresh them
    Retire {
        version: u32,
        /// Revoke the tokens still under the version
        #[arg(long)]
        force: bool,
    },
    /// Check that the key file's keys are the ones the store was used with
    Check,
}

/// `key add`: needs no database.
pub fn add(global: &Global) -> Result<(), Failure> {
    let path = global.key_file()?;
    let mut ring = keyring::read(path, true)?;
    let version = keyring::add(&mut ring, path)?;
    keyring::write(&ring, path)?;
    if global.json {
        println!("{}", json!({ "added": version }));
    } else {
        println!(
            "key version {version} added to {}: it is the current key now; restart the servers with this file",
            path.display()
        );
    }
    Ok(())
}

pub async fn run(ctx: &Context, command: KeyCommand) -> Result<(), Failure> {
    match command {
        KeyCommand::Add => Ok(()),
        KeyCommand::Status => status(ctx).await,
        KeyCommand::Retire { version, force } => retire(ctx, version, force).await,
        KeyCommand::Check => {
            ctx.keys.check_keys().await?;
            if ctx.json {
                return ctx.print_json(&json!({ "keys": "ok" }));
            }
            println!("the key file matches the keys the store was used with");
            Ok(())
        }
    }
}

async fn status(ctx: &Context) -> Result<(), Failure> {
    ctx.keys.check_keys().await?;
    let uses = ctx.keys.tokens_by_key_version().await?;
    let current = ctx.ring.current_version();
    let mut versions: Vec<u32> = ctx.ring.versions().chain(uses.keys().copied()).collect();
    versions.sort_unstable();
    versions.dedup();
    let rows: Vec<_> = versions
        .iter()
        .map(|version| {
            let use_ = uses.get(version);
            json!({
                "version": version,
                "current": Some(*version) == current,
                "in_key_file": ctx.ring.versions().any(|v| v == *version),
                "tokens": use_.map_or(0, |u| u.tokens),
                "primary_keys": use_.map_or(0, |u| u.primary_keys.len()),
            })
        })
        .collect();
    if ctx.json {
        return ctx.print_json(&serde_json::Value::Array(rows));
    }
    for version in versions {
        let use_ = uses.get(&version);
        let tokens = use_.map_or(0, |u| u.tokens);
        let primaries = use_.map_or(0, |u| u.primary_keys.len());
        let mark = if Some(version) == current {
            " (current)"
        } else if ctx.ring.versions().any(|v| v == version) {
            ""
        } else {
            " (NOT in the key file: these tokens cannot be verified)"
        };
        println!("version {version}{mark}: {tokens} live tokens ({primaries} primary keys)");
    }
    Ok(())
}

async fn retire(ctx: &Context, version: u32, force: bool) -> Result<(), Failure> {
    if Some(version) == ctx.ring.current_version() {
        return Err(Failure::refused(format!(
            "version {version} is the current key: add a new one first (feedkey key add)"
        )));
    }
    if !ctx.ring.versions().any(|v| v == version) {
        return Err(Failure::refused(format!(
            "version {version} is not in the key file {}",
            ctx.key_file.display()
        )));
    }
    ctx.keys.check_keys().await?;
    let uses = ctx.keys.tokens_by_key_version().await?;
    let remaining = uses.get(&version).cloned().unwrap_or_default();
    let mut revoked = 0;
    if remaining.tokens > 0 {
        if !force {
            return Err(Failure::refused(format!(
                "{} live tokens are still hashed under key version {version}: wait until they \
                 are used (and rehashed), or retire with --force to revoke them",
                remaining.tokens
            )));
        }
        if !remaining.primary_keys.is_empty() {
            let accounts: Vec<&str> = remaining.primary_keys.iter().map(|a| a.as_str()).collect();
            return Err(Failure::refused(format!(
                "the primary keys of {} are hashed under key version {version}: regenerate \
                 them first (feedkey primary regenerate ACCOUNT), then retire again",
                accounts.join(", ")
            )));
        }
        revoked =
            revoke_with_progress(ctx, &RevokeSelection::KeyVersion(version), "revoking").await?;
    }
    // Written only once nothing is left under the version.
    let mut ring = keyring::read(&ctx.key_file, false)?;
    ring.remove(version);
    keyring::write(&ring, &ctx.key_file)?;
    if ctx.json {
        return ctx.print_json(&json!({ "retired": version, "revoked": revoked }));
    }
    println!(
        "key version {version} retired from {} ({revoked} tokens revoked); restart the servers with this file",
        ctx.key_file.display()
    );
    Ok(())
}
