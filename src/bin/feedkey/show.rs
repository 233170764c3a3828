//! How tokens are printed: a line each for people, the library's `TokenInfo` for
//! `--json`.

use feedkey::time::OffsetDateTime;
use feedkey::time::format_description::well_known::Rfc3339;
use feedkey::{IssuedToken, TokenInfo};
use serde_json::json;

use crate::context::Context;
use crate::failure::Failure;

/// RFC 3339, or `-`.
pub fn time(at: Option<OffsetDateTime>) -> String {
    at.and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".to_owned())
}

/// A token as JSON.
pub fn token_json(info: &TokenInfo) -> Result<serde_json::Value, Failure> {
    serde_json::to_value(info).map_err(|e| Failure::failed(format!("printing JSON: {e}")))
}

/// A token on one line.
pub fn token_line(info: &TokenInfo) -> String {
    format!(
        "{}  {}  {:<8} {:<7} expires {}  {}",
        info.id,
        info.account,
        format!("{:?}", info.kind).to_lowercase(),
        format!("{:?}", info.status).to_lowercase(),
        time(info.expires_at),
        info.description
    )
}

/// A token in full.
pub fn token_detail(info: &TokenInfo) -> Result<String, Failure> {
    let scope = serde_json::to_string(&info.scope)
        .map_err(|e| Failure::failed(format!("printing the scope: {e}")))?;
    Ok(format!(
        "id:          {}\naccount:     {}\nkind:        {}\nstatus:      {}\ndescription: {}\n\
         scope:       {scope}\ncreated:     {}\nexpires:     {}\nlast used:   {}\nparent:      {}",
        info.id,
        info.account,
        format!("{:?}", info.kind).to_lowercase(),
        format!("{:?}", info.status).to_lowercase(),
        info.description,
        time(Some(info.created_at)),
        time(info.expires_at),
        time(info.last_used_at),
        info.parent
            .map_or_else(|| "-".to_owned(), |p| p.to_string()),
    ))
}

/// A list of tokens.
pub fn tokens(ctx: &Context, tokens: &[TokenInfo]) -> Result<(), Failure> {
    if ctx.json {
        let list = tokens
            .iter()
            .map(token_json)
            .collect::<Result<Vec<_>, _>>()?;
        return ctx.print_json(&serde_json::Value::Array(list));
    }
    for info in tokens {
        println!("{}", token_line(info));
    }
    Ok(())
}

/// A token just issued or given a new secret: the secret, shown this once.
pub fn issued(ctx: &Context, issued: &IssuedToken) -> Result<(), Failure> {
    if ctx.json {
        return ctx.print_json(&json!({
            "token": issued.token.expose_secret(),
            "info": token_json(&issued.info)?,
        }));
    }
    println!("{}", issued.token.expose_secret());
    eprintln!("(the token above is shown once: store it now)");
    println!("{}", token_detail(&issued.info)?);
    Ok(())
}

/// A count of what a command did, as `{"KEY": N}` or `N WHAT`.
/// `n` and what was counted (`(one, many)`: "1 token revoked", "2 tokens revoked"), or
/// `{key: n}` for `--json`.
pub fn count(ctx: &Context, key: &str, n: u64, (one, many): (&str, &str)) -> Result<(), Failure> {
    if ctx.json {
        return ctx.print_json(&json!({ key: n }));
    }
    println!("{n} {}", if n == 1 { one } else { many });
    Ok(())
}

/// A progress bar on stderr (hidden when stderr is not a terminal, or for `--json`).
pub fn progress(ctx: &Context, message: &'static str) -> indicatif::ProgressBar {
    if ctx.json {
        return indicatif::ProgressBar::hidden();
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
    {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar
}
