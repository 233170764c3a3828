//! Leaked tokens: a report from a secret scanner (or from the registry's own scan of an
//! upload, [`TokenFormat::find_in`](crate::TokenFormat::find_in)) revokes each reported
//! token whose secret verifies, at once.

use crate::audit::{AuditEvent, AuditKind, RevokeCause};
use crate::error::Error;
use crate::policy::liveness;
use crate::secret::Matched;
use crate::service::Feedkey;
use crate::store::TokenStore;

/// What a leak report found for one reported string: the answer a scanner is given. It
/// never says which account owns a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeakVerdict {
    /// One of this registry's tokens, its secret verified: revoked by this report.
    Revoked,
    /// One of this registry's tokens, its secret verified, that was revoked or expired
    /// already: nothing changed (a report sent twice lands here the second time).
    AlreadyDead,
    /// Not a token of this registry (another format, a bad checksum, an unknown id), or
    /// a real id with a secret that does not verify (a forged report): nothing changed.
    FalsePositive,
}

impl LeakVerdict {
    /// Whether the string was one of this registry's tokens (a scanner's "true
    /// positive"), live or not.
    pub fn is_true_positive(self) -> bool {
        !matches!(self, Self::FalsePositive)
    }
}

/// The longest source kept: a report's URL or label is cut to this many bytes, so that
/// no sink (a database column included) is handed more.
pub(crate) const MAX_LEAK_SOURCE: usize = 1024;

fn bounded_source(source: &str) -> &str {
    if source.len() <= MAX_LEAK_SOURCE {
        return source;
    }
    let cut = (0..=MAX_LEAK_SOURCE)
        .rev()
        .find(|i| source.is_char_boundary(*i))
        .unwrap_or(0);
    source.get(..cut).unwrap_or("")
}

impl<S: TokenStore> Feedkey<S> {
    /// Acts on a report of leaked tokens: each string that is one of this registry's
    /// tokens, with a secret that verifies (in constant time, as
    /// [`authorize`](Feedkey::authorize) verifies it), is revoked at once with
    /// [`RevokeCause::Leaked`] naming `source` (the URL or label the reporter gave, cut to
    /// 1 KiB), and
    /// audited as such, which is how its owner is told. Its derived tokens die with it.
    /// A primary key is revoked too: its owner regenerates it. A retired secret reported
    /// is a reuse: audited as [`AuditKind::RetiredSecretReused`], and the token revoked.
    /// A token already revoked or expired is left as it is. Nothing else changes: a
    /// forged report naming a real id with a wrong secret does nothing.
    ///
    /// The strings are taken one at a time, so a report of any size is processed in
    /// memory bounded by one string (and the verdicts), with two store reads and at most
    /// one write each; it is never refused for its size. Replaying a report changes
    /// nothing more ([`LeakVerdict::AlreadyDead`]).
    ///
    /// ```
    /// use feedkey::{AccountId, Expiry, Feedkey, LeakVerdict, MemoryStore, NewToken, Scope, TokenKey};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let keys = Feedkey::builder(MemoryStore::new(), TokenKey::generate(1)?).build()?;
    /// let alice = AccountId::new("alice")?;
    /// keys.create_account(&alice, Expiry::Never).await?;
    /// let ci = keys.issue(&alice, NewToken::new("CI", Scope::read_only())).await?;
    ///
    /// let url = "https://github.com/alice/app/blob/main/.env";
    /// let verdicts = keys
    ///     .report_leaked([ci.token.expose_secret(), "fk_not-one-of-ours"], url)
    ///     .await?;
    /// assert_eq!(verdicts, [LeakVerdict::Revoked, LeakVerdict::FalsePositive]);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// A store failure (the strings before it were judged, and their revocations stand;
    /// send the report again).
    pub async fn report_leaked<I, T>(
        &self,
        candidates: I,
        source: &str,
    ) -> Result<Vec<LeakVerdict>, Error>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.keys_ready().await?;
        let source = bounded_source(source);
        let candidates = candidates.into_iter();
        let mut verdicts = Vec::with_capacity(candidates.size_hint().0.min(4096));
        for text in candidates {
            verdicts.push(self.judge_leak(text.as_ref(), source).await?);
        }
        Ok(verdicts)
    }

    /// One reported string.
    async fn judge_leak(&self, text: &str, source: &str) -> Result<LeakVerdict, Error> {
        let Ok(presented) = self.format.parse(text) else {
            return Ok(LeakVerdict::FalsePositive);
        };
        let Some(stored) = self.store.token(&presented.id()).await? else {
            return Ok(LeakVerdict::FalsePositive);
        };
        let record = &stored.record;
        let verified = self.hasher.verify(
            &presented,
            Some((&record.secret_hash, record.retired.as_slice())),
        );
        let retired = match verified.matched {
            Matched::Current => false,
            Matched::Retired(_) => true,
            Matched::Nothing => return Ok(LeakVerdict::FalsePositive),
        };
        let now = self.clock.now();
        if retired {
            self.emit(AuditEvent {
                kind: AuditKind::RetiredSecretReused,
                account: Some(record.account.clone()),
                token: Some(record.id),
                client_addr: None,
                at: now,
            });
        }
        let parent = match record.parent {
            Some(parent) => self.store.token(&parent).await?,
            None => None,
        };
        if liveness::check(&stored, parent.as_ref(), &self.policy, now).is_err() {
            return Ok(LeakVerdict::AlreadyDead);
        }
        let cause = RevokeCause::Leaked {
            source: source.to_owned(),
        };
        match self
            .revoke_as(&record.account, record.id, cause, None)
            .await
        {
            Ok(()) => Ok(LeakVerdict::Revoked),
            // Revoked meanwhile by someone else: dead all the same.
            Err(Error::TokenNotFound) => Ok(LeakVerdict::AlreadyDead),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_cut_to_its_bound_on_a_character_boundary() {
        assert_eq!(bounded_source("https://x"), "https://x");
        let long = "é".repeat(MAX_LEAK_SOURCE);
        let cut = bounded_source(&long);
        assert!(cut.len() <= MAX_LEAK_SOURCE && cut.len() >= MAX_LEAK_SOURCE - 1);
        assert!(long.starts_with(cut));
    }
}
