//! Failed password checks, counted so that the password cannot be guessed at speed: the
//! account password is what `npm login` (unauthenticated) and `npm token create` send.
//!
//! A check is counted as a failure when it starts and given back when it succeeds, so
//! that parallel guesses cannot all pass before the first failure is counted, and a
//! user creating ten tokens in a minute is never held up. After
//! [`MAX_PER_CLIENT`] failures from one address, or [`MAX_PER_USER`] for one user name,
//! within [`WINDOW`], further attempts are answered `429` without checking the password
//! until the window ends. The user limit is higher, so that a stranger's failures slow
//! the owner down less than they slow the stranger.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed from one client address in a window.
pub const MAX_PER_CLIENT: u32 = 10;
/// Failures allowed for one user name in a window.
pub const MAX_PER_USER: u32 = 30;
/// How long failures are remembered.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);

/// The counts, by `ip:` or `user:` key: (when the window started, failures in it).
#[derive(Default)]
pub struct Attempts(Mutex<HashMap<String, (Instant, u32)>>);

/// The most keys remembered: past it, the oldest windows are forgotten first.
const MAX_KEYS: usize = 100_000;
/// The longest user name kept as a key.
const MAX_NAME: usize = 256;

impl Attempts {
    fn keys(client: IpAddr, user: &str) -> [(String, u32); 2] {
        let cut = (0..=user.len().min(MAX_NAME))
            .rev()
            .find(|i| user.is_char_boundary(*i))
            .unwrap_or(0);
        [
            (format!("ip:{client}"), MAX_PER_CLIENT),
            (
                format!("user:{}", user.get(..cut).unwrap_or("")),
                MAX_PER_USER,
            ),
        ]
    }

    /// Whether a password check from `client` for `user` may go ahead; if so, it is
    /// counted as a failure now, under the same lock (give it back with
    /// [`Attempts::succeeded`]).
    pub fn allowed(&self, client: IpAddr, user: &str) -> bool {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let keys = Self::keys(client, user);
        let open = keys.iter().all(|(key, max)| {
            map.get(key)
                .is_none_or(|(start, n)| start.elapsed() >= WINDOW || n < max)
        });
        if !open {
            return false;
        }
        // Forget ended windows, so the map holds only recent failures; and never more
        // than its bound.
        map.retain(|_, (start, _)| start.elapsed() < WINDOW);
        if map.len() >= MAX_KEYS {
            map.clear();
        }
        for (key, _) in keys {
            let entry = map.entry(key).or_insert((Instant::now(), 0));
            if entry.0.elapsed() >= WINDOW {
                *entry = (Instant::now(), 0);
            }
            entry.1 = entry.1.saturating_add(1);
        }
        true
    }

    /// Gives back the count a successful check took.
    pub fn succeeded(&self, client: IpAddr, user: &str) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (key, _) in Self::keys(client, user) {
            if let Some(entry) = map.get_mut(&key) {
                entry.1 = entry.1.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_from_one_address_are_held_up_and_successes_never_count() {
        let attempts = Attempts::default();
        let (here, there) = ("127.0.0.1".parse().unwrap(), "10.0.0.1".parse().unwrap());
        // Successes give their count back: any number of them.
        for _ in 0..3 * MAX_PER_CLIENT {
            assert!(attempts.allowed(here, "admin"));
            attempts.succeeded(here, "admin");
        }
        // Checks that have not finished count, so parallel guesses are held up too.
        for _ in 0..MAX_PER_CLIENT {
            assert!(attempts.allowed(here, "admin"));
        }
        assert!(!attempts.allowed(here, "admin"));
        assert!(!attempts.allowed(here, "someone"), "the address is held up");
        assert!(attempts.allowed(there, "admin"), "the user is not, yet");
    }
}
