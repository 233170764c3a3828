//! Mail: password-reset links, and the daily warning of keys about to expire (nuget.org:
//! "a warning e-mail to the account holder ten days before the expiration"), one mail
//! per account listing its keys, each key warned once.
//!
//! Sent by SMTP with `lettre` to the relay `--smtp` names (a local MTA, such as postfix on
//! `127.0.0.1:25`, which relays with TLS onward); without `--smtp`, no mail is sent and
//! the reset page says so.

use std::collections::BTreeMap;
use std::time::Duration as StdDuration;

use feedkey::time::Duration;
use feedkey::{AccountId, TokenInfo, TokenKind};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};

use crate::App;
use crate::web::tokens::WARN_DAYS;
use crate::web::when;

/// The SMTP relay and the sender.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// A mailer through the relay at `host:port`, plain SMTP (a relay on this host or
    /// this network).
    pub fn new(relay: &str, from: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let (host, port) = relay
            .rsplit_once(':')
            .ok_or("--smtp takes HOST:PORT, such as 127.0.0.1:25")?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("--smtp: bad port {port:?}"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .timeout(Some(StdDuration::from_secs(20)))
            .build();
        Ok(Self {
            transport,
            from: from.parse()?,
        })
    }

    /// Sends one plain-text message.
    pub async fn send(
        &self,
        to: &str,
        subject: &str,
        body: String,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.parse()?)
            .subject(subject)
            .body(body)?;
        self.transport.send(message).await?;
        Ok(())
    }
}

/// Sends the expiry warnings now, then every `every`, for as long as the server runs.
pub async fn expiry_job(app: std::sync::Arc<App>, every: StdDuration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        match warn_expiring(&app).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("expiry warnings: {n} accounts mailed"),
            Err(e) => tracing::error!("expiry warnings: {e}"),
        }
        if let Err(e) = app.site.sweep() {
            tracing::error!("site sweep: {e}");
        }
        app.limits.sweep();
    }
}

/// One mail per account whose keys expire within [`WARN_DAYS`] days and were not warned
/// of yet; returns how many accounts were mailed. A key is marked warned only once its
/// mail is sent, so a failed send is tried again next time.
pub async fn warn_expiring(app: &App) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let Some(mail) = &app.mail else {
        return Ok(0);
    };
    let expiring = app
        .keys
        .all_expiring_within(Duration::days(WARN_DAYS))
        .await?;
    let mut by_account: BTreeMap<AccountId, Vec<TokenInfo>> = BTreeMap::new();
    for info in expiring {
        let Some(at) = info.expires_at else { continue };
        if !app.site.warned(&info.id.to_string(), at.unix_timestamp())? {
            by_account
                .entry(info.account.clone())
                .or_default()
                .push(info);
        }
    }
    let mut mailed = 0;
    for (account, infos) in by_account {
        let Some(address) = app.site.email(account.as_str())? else {
            tracing::info!(account = %account, "keys expire soon; the account has no e-mail address");
            continue;
        };
        let mut body = format!(
            "Hello {account},\n\nThese API keys of your account on {} expire within {WARN_DAYS} days:\n\n",
            app.public_url
        );
        for info in &infos {
            let name = if info.kind == TokenKind::Primary {
                "Primary API key"
            } else {
                info.description.as_str()
            };
            let at = info.expires_at.map(when).unwrap_or_default();
            body.push_str(&format!("  - {name}: expires {at}\n"));
        }
        body.push_str(&format!(
            "\nRefresh or replace them on your access tokens page: {}/account/tokens\n",
            app.public_url
        ));
        let subject = format!("{} of your API keys expire soon", infos.len());
        match mail.send(&address, &subject, body).await {
            Ok(()) => {
                for info in &infos {
                    if let Some(at) = info.expires_at {
                        app.site
                            .mark_warned(&info.id.to_string(), at.unix_timestamp())?;
                    }
                }
                mailed += 1;
            }
            Err(e) => tracing::error!(account = %account, "expiry warning not sent: {e}"),
        }
    }
    Ok(mailed)
}
