//! `account …` and `primary …`.

use clap::Subcommand;
use feedkey::{AccountId, Expiry, TokenStore as _};
use serde_json::json;

use crate::context::Context;
use crate::failure::Failure;
use crate::parse;
use crate::show;

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account and its primary key (printed once)
    Create {
        #[arg(value_parser = parse::account)]
        account: AccountId,
        /// When the primary key expires: never, a duration (365d) or an RFC 3339 time
        #[arg(long, default_value = "never", value_parser = parse::expiry)]
        expires: Expiry,
    },
    /// List every account
    List,
    /// Set or replace the account's password (read from stdin, one line)
    SetPassword {
        #[arg(value_parser = parse::account)]
        account: AccountId,
    },
    /// Remove the account's password
    RemovePassword {
        #[arg(value_parser = parse::account)]
        account: AccountId,
    },
    /// Disable the account: its password and every token refused until it is enabled
    /// (nothing is revoked)
    Disable {
        #[arg(value_parser = parse::account)]
        account: AccountId,
    },
    /// Enable a disabled account: its password and its tokens work again
    Enable {
        #[arg(value_parser = parse::account)]
        account: AccountId,
    },
    /// Delete the account: every token revoked for good (the primary key too), the
    /// password removed; the id stays taken. Cannot be undone
    Delete {
        #[arg(value_parser = parse::account)]
        account: AccountId,
        /// Say so: deleting cannot be undone
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
pub enum PrimaryCommand {
    /// Regenerate the primary key (printed once): the recovery for a lost one. The old
    /// key, and the tokens derived from it, stop working
    Regenerate {
        #[arg(value_parser = parse::account)]
        account: AccountId,
        /// When the new key expires: never, a duration (365d) or an RFC 3339 time
        #[arg(long, default_value = "never", value_parser = parse::expiry)]
        expires: Expiry,
    },
}

pub async fn run(ctx: &Context, command: AccountCommand) -> Result<(), Failure> {
    match command {
        AccountCommand::Create { account, expires } => {
            let issued = ctx.keys.create_account(&account, expires).await?;
            show::issued(ctx, &issued)
        }
        AccountCommand::List => list(ctx).await,
        AccountCommand::SetPassword { account } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| Failure::failed(format!("reading the password from stdin: {e}")))?;
            let password = password.trim_end_matches(['\r', '\n']);
            ctx.keys.set_password(&account, password).await?;
            done(ctx, &account, "password set")
        }
        AccountCommand::RemovePassword { account } => {
            ctx.keys.remove_password(&account).await?;
            done(ctx, &account, "password removed")
        }
        AccountCommand::Disable { account } => {
            let n = ctx.keys.disable_account(&account).await?;
            counted(ctx, &account, "disabled", "suspended", n)
        }
        AccountCommand::Enable { account } => {
            let n = ctx.keys.enable_account(&account).await?;
            counted(ctx, &account, "enabled", "resumed", n)
        }
        AccountCommand::Delete { account, yes } => {
            if !yes {
                return Err(Failure::usage(format!(
                    "deleting {account} revokes every token it has and cannot be undone: \
                     add --yes (or `account disable` to stop it reversibly)"
                )));
            }
            let n = ctx.keys.delete_account(&account).await?;
            counted(ctx, &account, "deleted", "revoked", n)
        }
    }
}

pub async fn primary(ctx: &Context, command: PrimaryCommand) -> Result<(), Failure> {
    match command {
        PrimaryCommand::Regenerate { account, expires } => {
            let issued = ctx.keys.regenerate_primary(&account, expires).await?;
            show::issued(ctx, &issued)
        }
    }
}

/// `active`, `disabled` or `deleted`.
fn state(account: &feedkey::AccountRecord) -> &'static str {
    if account.deleted_at.is_some() {
        "deleted"
    } else if account.disabled_at.is_some() {
        "disabled"
    } else {
        "active"
    }
}

/// Every account, read a page at a time.
async fn list(ctx: &Context) -> Result<(), Failure> {
    const PAGE: u32 = 1000;
    let mut rows = Vec::new();
    let mut after: Option<AccountId> = None;
    loop {
        let page = ctx
            .store
            .accounts(after.as_ref(), PAGE)
            .await
            .map_err(feedkey::Error::from)?;
        for account in &page {
            if ctx.json {
                rows.push(json!({
                    "account": account.id.as_str(),
                    "created_at": show::time(Some(account.created_at)),
                    "password": account.password.is_some(),
                    "state": state(account),
                    "primary": account.primary.to_string(),
                }));
            } else {
                println!(
                    "{}  {}  created {}  password {}  primary key {}",
                    account.id,
                    state(account),
                    show::time(Some(account.created_at)),
                    if account.password.is_some() {
                        "set"
                    } else {
                        "none"
                    },
                    account.primary
                );
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = Some(last.id.clone()),
            _ => break,
        }
    }
    if ctx.json {
        return ctx.print_json(&serde_json::Value::Array(rows));
    }
    Ok(())
}

/// `alice: disabled, 3 tokens suspended`, or its JSON.
fn counted(
    ctx: &Context,
    account: &AccountId,
    what: &str,
    tokens: &str,
    n: u64,
) -> Result<(), Failure> {
    if ctx.json {
        return ctx.print_json(&json!({ "account": account.as_str(), "done": what, tokens: n }));
    }
    let noun = if n == 1 { "token" } else { "tokens" };
    println!("{account}: {what}, {n} {noun} {tokens}");
    Ok(())
}

fn done(ctx: &Context, account: &AccountId, what: &str) -> Result<(), Failure> {
    if ctx.json {
        return ctx.print_json(&json!({ "account": account.as_str(), "done": what }));
    }
    println!("{account}: {what}");
    Ok(())
}
