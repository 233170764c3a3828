//! `feedkey`: the admin command line of the feedkey library, for the day-two work of a
//! registry's operator (accounts, tokens, incidents, key rotation, the audit trail), on
//! any backend. `feedkey --help` lists the commands; `docs/operations.md` gives one per
//! task.
//!
//! Exit codes, for cron and monitoring:
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | done |
//! | 1 | failed (a store error, a file that cannot be written); see stderr |
//! | 2 | bad usage (an unknown flag, a malformed scope, time or duration) |
//! | 3 | refused or not found (an unknown account or token, a key retirement that would end tokens without `--force`, the key does not match the store) |
//! | 4 | the database does not answer (or cannot be opened) |
//! | 5 | `doctor` found a warning (the clocks disagree) |

#![forbid(unsafe_code)]

mod accounts;
mod audit;
mod context;
mod failure;
mod health;
mod keyring;
mod keys;
mod maintenance;
mod parse;
mod revoke;
mod show;
mod tokens;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::failure::Failure;

/// The admin command line of feedkey: accounts, tokens, incidents, key rotation and the
/// audit trail, on SQLite, PostgreSQL or MySQL.
///
/// Exit codes: 0 done, 1 failed, 2 bad usage, 3 refused or not found, 4 database
/// unreachable, 5 doctor warning.
#[derive(Parser)]
#[command(name = "feedkey", version)]
struct Cli {
    /// The database: sqlite:PATH, postgres://… or mysql://…
    #[arg(long, env = "FEEDKEY_DATABASE_URL", global = true, value_name = "URL")]
    database: Option<String>,
    /// The key file: one key a line, `VERSION:BASE64` (a line without a version is
    /// version 1); the highest version is the current key, the others previous keys
    #[arg(long, env = "FEEDKEY_KEY_FILE", global = true, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Print JSON (one document) instead of text, for scripts
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Accounts: create, set or remove a password
    #[command(subcommand)]
    Account(accounts::AccountCommand),
    /// The primary key: regenerate it (the recovery for a lost one)
    #[command(subcommand)]
    Primary(accounts::PrimaryCommand),
    /// One account's tokens: list, show, issue, edit, refresh, revoke
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Incident response: revoke many tokens at once, each audited
    Revoke(revoke::RevokeArgs),
    /// The tokens that expire soon (for a daily mail job)
    Expiring(maintenance::ExpiringArgs),
    /// Revoke for good the tokens unused for longer than the idle limit
    RetireIdle(maintenance::RetireIdleArgs),
    /// Delete the records of tokens revoked long ago
    PurgeRevoked(maintenance::PurgeArgs),
    /// Token keys: add one, count the tokens under each, retire one, check the key
    #[command(subcommand)]
    Key(keys::KeyCommand),
    /// Bring the database's schema up to date
    Migrate,
    /// Check the database, the key and the clocks
    Doctor,
    /// The stored audit trail: read it, or replay revocations after a restore
    Audit(audit::AuditArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version are not errors; clap prints both kinds.
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(Failure::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("feedkey: cannot start the async runtime: {error}");
            return ExitCode::from(Failure::FAILED);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("feedkey: {failure}");
            ExitCode::from(failure.code())
        }
    }
}

/// Runs one command; returns the exit code of a command that succeeded (0, or 5 for a
/// doctor's warning).
async fn run(cli: Cli) -> Result<u8, Failure> {
    let global = context::Global {
        database: cli.database,
        key_file: cli.key_file,
        json: cli.json,
    };
    match cli.command {
        Command::Key(keys::KeyCommand::Add) => return keys::add(&global).map(|()| 0),
        Command::Migrate => return health::migrate(&global).await.map(|()| 0),
        Command::Doctor => return health::doctor(&global).await,
        _ => {}
    }
    let ctx = context::Context::open(&global).await?;
    let result = match cli.command {
        Command::Account(command) => accounts::run(&ctx, command).await,
        Command::Primary(command) => accounts::primary(&ctx, command).await,
        Command::Token(command) => tokens::run(&ctx, command).await,
        Command::Revoke(args) => revoke::run(&ctx, args).await,
        Command::Expiring(args) => maintenance::expiring(&ctx, args).await,
        Command::RetireIdle(args) => maintenance::retire_idle(&ctx, args).await,
        Command::PurgeRevoked(args) => maintenance::purge(&ctx, args).await,
        Command::Key(command) => keys::run(&ctx, command).await,
        Command::Audit(args) => audit::run(&ctx, args).await,
        Command::Migrate | Command::Doctor => Ok(()),
    };
    // The audit events of what was done are written before the process ends, even
    // after a failure part-way.
    let flushed = ctx.keys.flush().await;
    result?;
    flushed.map_err(|e| Failure::failed(format!("writing the audit trail: {e}")))?;
    Ok(0)
}
