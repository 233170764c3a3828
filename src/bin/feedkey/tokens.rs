//! `token …`: one account's tokens.

use clap::{Args, Subcommand};
use feedkey::TokenStore as _;
use feedkey::{AccountId, Error, Expiry, NewToken, Scope, TokenEdit, TokenId};
use serde_json::json;

use crate::context::Context;
use crate::failure::Failure;
use crate::parse;
use crate::show;

/// A scope in the README's terms.
#[derive(Args)]
pub struct ScopeArgs {
    /// A preset (read-only, write-only, push-version-only, full) or a comma-separated
    /// list of read, push-new, push-version, unlist
    #[arg(long)]
    permissions: Option<String>,
    /// A feed the token may use; repeat for several [default: every feed]
    #[arg(long = "feed", value_name = "NAME")]
    feeds: Vec<String>,
    /// A package pattern (`Contoso.*`); repeat for several [default: every package]
    #[arg(long = "package", value_name = "PATTERN")]
    packages: Vec<String>,
    /// A CIDR range the token may be used from; repeat for several [default: any]
    #[arg(long = "network", value_name = "CIDR")]
    networks: Vec<String>,
}

impl ScopeArgs {
    fn scope(&self) -> Result<Scope, Failure> {
        let permissions = parse::permissions(self.permissions.as_deref().unwrap_or("read-only"))?;
        let networks = parse::networks(&self.networks)?;
        Scope::new(
            permissions,
            parse::feeds(&self.feeds)?,
            parse::packages(&self.packages)?,
        )
        .map(|scope| scope.within(networks))
        .map_err(|e| Failure::usage(format!("bad scope: {e}")))
    }
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// List an account's tokens (revoked ones left out)
    List {
        #[arg(long, value_parser = parse::account)]
        account: AccountId,
    },
    /// Show one token
    Show {
        #[arg(long, value_parser = parse::account)]
        account: AccountId,
        #[arg(value_parser = parse::token_id, allow_hyphen_values = true)]
        id: TokenId,
    },
    /// Issue a token (printed once)
    Issue {
        #[arg(long, value_parser = parse::account)]
        account: AccountId,
        /// What it is for
        #[arg(long)]
        description: String,
        #[command(flatten)]
        scope: ScopeArgs,
        /// When it expires: never, a duration (90d) or an RFC 3339 time
        #[arg(long, default_value = "never", value_parser = parse::expiry)]
        expires: Expiry,
    },
    /// Edit a token: the description and packages freely, the rest only narrower
    Edit {
        #[arg(long, value_parser = parse::account)]
        account: AccountId,
        #[arg(value_parser = parse::token_id, allow_hyphen_values = true)]
        id: TokenId,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        permissions: Option<String>,
        #[arg(long = "feed", value_name = "NAME")]
        feeds: Vec<String>,
        #[arg(long = "package", value_name = "PATTERN")]
        packages: Vec<String>,
        #[arg(long = "network", value_name = "CIDR")]
        networks: Vec<String>,
    },
    /// Give a token a new secret (printed once); the old one stops at once
    Refresh {
        #[arg(long, value_parser = parse::account)]
        account: AccountId,
        #[arg(value_parser = parse::token_id, allow_hyphen_values = true)]
        id: TokenId,
    },
    /// Revoke a token for good
    Revoke {
        #[arg(long, value_parser = parse::account)]
        account: AccountId,
        #[arg(value_parser = parse::token_id, allow_hyphen_values = true)]
        id: TokenId,
    },
}

pub async fn run(ctx: &Context, command: TokenCommand) -> Result<(), Failure> {
    match command {
        TokenCommand::List { account } => {
            // An account with no tokens is not a mistyped one.
            if ctx
                .store
                .account(&account)
                .await
                .map_err(Error::from)?
                .is_none()
            {
                return Err(Error::AccountNotFound.into());
            }
            let tokens = ctx.keys.tokens(&account).await?;
            show::tokens(ctx, &tokens)
        }
        TokenCommand::Show { account, id } => {
            let info = ctx.keys.token(&account, id).await?;
            if ctx.json {
                return ctx.print_json(&show::token_json(&info)?);
            }
            println!("{}", show::token_detail(&info)?);
            Ok(())
        }
        TokenCommand::Issue {
            account,
            description,
            scope,
            expires,
        } => {
            let new = NewToken::new(description, scope.scope()?).expires(expires);
            let issued = ctx.keys.issue(&account, new).await?;
            show::issued(ctx, &issued)
        }
        TokenCommand::Edit {
            account,
            id,
            description,
            permissions,
            feeds,
            packages,
            networks,
        } => {
            let mut edit = TokenEdit::new();
            if let Some(description) = description {
                edit = edit.description(description);
            }
            if let Some(permissions) = permissions {
                edit = edit.permissions(parse::permissions(&permissions)?);
            }
            if !feeds.is_empty() {
                edit = edit.feeds(parse::feeds(&feeds)?);
            }
            if !packages.is_empty() {
                edit = edit.packages(parse::packages(&packages)?);
            }
            if !networks.is_empty() {
                edit = edit.networks(parse::networks(&networks)?);
            }
            let info = ctx.keys.edit(&account, id, edit).await?;
            if ctx.json {
                return ctx.print_json(&show::token_json(&info)?);
            }
            println!("{}", show::token_detail(&info)?);
            Ok(())
        }
        TokenCommand::Refresh { account, id } => {
            let issued = ctx.keys.refresh(&account, id).await?;
            show::issued(ctx, &issued)
        }
        TokenCommand::Revoke { account, id } => {
            ctx.keys.revoke(&account, id).await?;
            if ctx.json {
                return ctx.print_json(&json!({ "revoked": 1 }));
            }
            println!("1 token revoked");
            Ok(())
        }
    }
}
