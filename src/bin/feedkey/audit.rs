//! `audit`: the stored trail, and the revocations replayed after a restore.

use clap::{Args, Subcommand};
use feedkey::audit::AuditFilter;
use feedkey::time::OffsetDateTime;
use feedkey::{AccountId, TokenId};
use serde_json::json;

use crate::context::Context;
use crate::failure::Failure;
use crate::parse;
use crate::show;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    /// Only this account's events
    #[arg(long, value_parser = parse::account)]
    account: Option<AccountId>,
    /// Only this token's events
    #[arg(long, value_parser = parse::token_id, allow_hyphen_values = true)]
    token: Option<TokenId>,
    /// Only events of this kind (revoked, issued, refreshed, …)
    #[arg(long)]
    kind: Option<String>,
    /// Only events at or after this time (RFC 3339, or a duration ago such as 7d)
    #[arg(long, value_parser = parse::instant, value_name = "TIME")]
    since: Option<OffsetDateTime>,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Re-apply the revocations the trail holds since TIME, after a restore brought back
    /// the token tables of a backup (see docs/operations.md, "Restoring a backup")
    ReplayRevocations {
        /// The time of the backup, minus a margin (RFC 3339, or a duration ago)
        #[arg(long, value_parser = parse::instant, value_name = "TIME")]
        since: OffsetDateTime,
    },
}

pub async fn run(ctx: &Context, args: AuditArgs) -> Result<(), Failure> {
    if let Some(AuditCommand::ReplayRevocations { since }) = args.command {
        let replayed = ctx.keys.replay_revocations(since).await?;
        return show::count(
            ctx,
            "revoked",
            replayed,
            ("revocation re-applied", "revocations re-applied"),
        );
    }
    let mut filter = AuditFilter::new().limit(AuditFilter::MAX_LIMIT);
    if let Some(account) = &args.account {
        filter = filter.account(account);
    }
    if let Some(token) = args.token {
        filter = filter.token(token);
    }
    if let Some(kind) = &args.kind {
        filter = filter.kind(kind);
    }
    if let Some(since) = args.since {
        filter = filter.since(since);
    }
    let mut rows = Vec::new();
    loop {
        let page = ctx.keys.audit_events(&filter).await?;
        for event in &page.events {
            let kind = format!("{:?}", event.kind);
            if ctx.json {
                rows.push(json!({
                    "id": event.id,
                    "at": show::time(Some(event.at)),
                    "kind": kind,
                    "account": event.account.as_ref().map(AccountId::as_str),
                    "token": event.token.map(|t| t.to_string()),
                    "client": event.client_addr.map(|a| a.to_string()),
                }));
            } else {
                println!(
                    "{}  {}  {}  {}",
                    show::time(Some(event.at)),
                    event.account.as_ref().map_or("-", AccountId::as_str),
                    event
                        .token
                        .map_or_else(|| "-".to_owned(), |t| t.to_string()),
                    kind
                );
            }
        }
        let Some(next) = page.next else { break };
        filter = filter.after(next);
    }
    if ctx.json {
        return ctx.print_json(&serde_json::Value::Array(rows));
    }
    Ok(())
}
