//! `revoke …`: incident response, many tokens at once.

use clap::Args;
use feedkey::time::OffsetDateTime;
use feedkey::{AccountId, RevokeSelection, TokenId};

use crate::context::Context;
use crate::failure::Failure;
use crate::parse;
use crate::show;

/// Which tokens: one of `--all` (with `--account`), `--created-before`, `--derived-from`.
/// Primary keys are never revoked: regenerate one instead.
#[derive(Args)]
#[command(group = clap::ArgGroup::new("which").required(true).args(["all", "created_before", "derived_from"]))]
pub struct RevokeArgs {
    /// Only this account's tokens (needed with --all)
    #[arg(long, value_parser = parse::account)]
    account: Option<AccountId>,
    /// Every token of the account
    #[arg(long, requires = "account")]
    all: bool,
    /// The tokens created before this time (RFC 3339, or a duration ago such as 2h)
    #[arg(long, value_parser = parse::instant, value_name = "TIME")]
    created_before: Option<OffsetDateTime>,
    /// The tokens derived from this token
    #[arg(
        long,
        value_parser = parse::token_id,
        value_name = "ID",
        conflicts_with = "account",
        allow_hyphen_values = true
    )]
    derived_from: Option<TokenId>,
}

pub async fn run(ctx: &Context, args: RevokeArgs) -> Result<(), Failure> {
    let selection = match (
        args.all,
        args.created_before,
        args.derived_from,
        args.account,
    ) {
        (true, _, _, Some(account)) => RevokeSelection::Account(account),
        (_, Some(before), _, account) => RevokeSelection::CreatedBefore { before, account },
        (_, _, Some(parent), _) => RevokeSelection::DerivedFrom(parent),
        _ => {
            return Err(Failure::usage(
                "say which tokens: --account A --all, --created-before T or --derived-from ID",
            ));
        }
    };
    let revoked = revoke_with_progress(ctx, &selection, "revoking").await?;
    show::count(ctx, "revoked", revoked, ("token revoked", "tokens revoked"))
}

/// Revokes the selection with a progress bar; returns how many were revoked.
pub async fn revoke_with_progress(
    ctx: &Context,
    selection: &RevokeSelection,
    message: &'static str,
) -> Result<u64, Failure> {
    let bar = show::progress(ctx, message);
    let result = ctx
        .keys
        .revoke_selected(selection, |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await;
    bar.finish_and_clear();
    Ok(result?)
}
