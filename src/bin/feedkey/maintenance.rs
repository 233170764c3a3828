//! The daily jobs: `expiring`, `retire-idle`, `purge-revoked`.

use clap::Args;
use feedkey::LifetimePolicy;
use feedkey::time::Duration;

use crate::context::Context;
use crate::failure::Failure;
use crate::parse;
use crate::show;

#[derive(Args)]
pub struct ExpiringArgs {
    /// How far ahead to look (10d)
    #[arg(long, value_parser = parse::duration)]
    within: Duration,
}

#[derive(Args)]
pub struct RetireIdleArgs {
    /// The idle limit: tokens unused (or, never used, created) longer ago are retired
    #[arg(long, value_parser = parse::duration, value_name = "DURATION")]
    idle_after: Duration,
}

#[derive(Args)]
pub struct PurgeArgs {
    /// Delete the records of tokens revoked longer ago than this (90d)
    #[arg(long, value_parser = parse::duration, value_name = "DURATION")]
    older_than: Duration,
}

/// Lists every account's tokens that expire within the window (and audits a warning
/// per account, as the library does).
pub async fn expiring(ctx: &Context, args: ExpiringArgs) -> Result<(), Failure> {
    let tokens = ctx.keys.all_expiring_within(args.within).await?;
    show::tokens(ctx, &tokens)
}

pub async fn retire_idle(ctx: &Context, args: RetireIdleArgs) -> Result<(), Failure> {
    let keys = ctx.keys_with(LifetimePolicy::default().with_idle_expiry(args.idle_after))?;
    let retired = keys.retire_idle().await?;
    show::count(
        ctx,
        "retired",
        retired,
        ("idle token retired", "idle tokens retired"),
    )
}

pub async fn purge(ctx: &Context, args: PurgeArgs) -> Result<(), Failure> {
    let purged = ctx.keys.purge_revoked(args.older_than).await?;
    show::count(
        ctx,
        "purged",
        purged,
        (
            "revoked token record deleted",
            "revoked token records deleted",
        ),
    )
}
