//! A statistical timing test in the dudect style: Welch's t-test over many interleaved
//! measurements of two classes of input. |t| above 4.5 means a timing difference was found.
//!
//! Pairs:
//! - an unknown token id against a known id with a wrong secret;
//! - a secret wrong in its first byte against one wrong in its last byte.
//!
//! `cargo bench --bench constant_time` (add `-- 4000000` for more samples per pair).
//! Not part of the test run: it takes a while and wants a quiet machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use feedkey::{
    AccountId, Action, Expiry, Feedkey, Feeds, MemoryStore, NewToken, Packages, Permissions,
    Request, Scope, Target, TokenKey,
};

fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a MemoryStore future was not ready"),
    }
}

/// The token with byte `at` of its decoded body flipped and the checksum fixed.
fn flip(token: &str, at: usize) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let (prefix, body) = token.split_once('_').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(body).unwrap();
    raw[at] ^= 0x5a;
    let crc = crc32fast::hash(&raw[..48]).to_be_bytes();
    raw[48..].copy_from_slice(&crc);
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(raw))
}

/// A token's text at the start of a cache line. Two classes must differ in their bytes
/// only, not in where their text lies: a 32-byte load that splits a cache line costs a
/// cycle more, which this test would report as a difference between the classes.
struct Aligned {
    buf: Vec<u8>,
    at: usize,
    len: usize,
}

impl Aligned {
    fn new(text: &str) -> Self {
        let mut buf = vec![0u8; text.len() + 64];
        let at = (64 - buf.as_ptr() as usize % 64) % 64;
        buf[at..at + text.len()].copy_from_slice(text.as_bytes());
        Self {
            buf,
            at,
            len: text.len(),
        }
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.buf[self.at..self.at + self.len]).unwrap()
    }
}

/// What a pair's test found: |t| over all samples and the largest over the crops, the
/// two classes' means, and each crop's quantile, |t| and difference of means.
struct Outcome {
    overall: f64,
    worst: f64,
    mean_a: f64,
    mean_b: f64,
    crops: Vec<(f64, f64, f64)>,
}

/// Running mean and variance (Welford).
#[derive(Default, Clone, Copy)]
struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn push(&mut self, x: f64) {
        self.n += 1.0;
        let d = x - self.mean;
        self.mean += d / self.n;
        self.m2 += d * (x - self.mean);
    }
    fn var(&self) -> f64 {
        if self.n < 2.0 {
            0.0
        } else {
            self.m2 / (self.n - 1.0)
        }
    }
}

fn welch(a: &Moments, b: &Moments) -> f64 {
    let se = (a.var() / a.n + b.var() / b.n).sqrt();
    if se == 0.0 {
        0.0
    } else {
        (a.mean - b.mean) / se
    }
}

/// A small xorshift generator for the class sequence (seeded from the OS).
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Measures `samples` authorizes, each of a randomly chosen class, and returns |t| over all
/// samples and the largest |t| over the samples below each of a few percentiles (dudect's
/// cropping, which removes the long tail of interruptions).
fn measure(keys: &Feedkey<MemoryStore>, a: &str, b: &str, samples: usize) -> Outcome {
    let target = Target::package("ci", "Contoso.Service.Core");
    let mut rng = Xorshift(getrandom::u64().unwrap() | 1);
    let mut times = Vec::with_capacity(samples);
    let mut classes = Vec::with_capacity(samples);
    // Warm up.
    for token in [a, b].iter().cycle().take(20_000) {
        let r = Request::from_headers(Some(token.as_bytes()), None);
        black_box(ready(keys.authorize(&r, Action::Push, &target)).is_ok());
    }
    for _ in 0..samples {
        let class = (rng.next() & 1) as usize;
        let token = if class == 0 { a } else { b };
        let start = Instant::now();
        let r = Request::from_headers(Some(black_box(token.as_bytes())), None);
        black_box(ready(keys.authorize(&r, Action::Push, &target)).is_ok());
        let elapsed = start.elapsed().as_nanos() as f64;
        times.push(elapsed);
        classes.push(class);
    }
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let mut worst = 0.0f64;
    let mut overall = 0.0;
    let (mut mean_a, mut mean_b) = (0.0, 0.0);
    let mut crops = Vec::new();
    for pct in [1.0, 0.99, 0.9, 0.75, 0.5] {
        let cut = sorted[((sorted.len() as f64 * pct) as usize).min(sorted.len() - 1)];
        let mut m = [Moments::default(); 2];
        for (t, c) in times.iter().zip(&classes) {
            if *t <= cut {
                m[*c].push(*t);
            }
        }
        let t = welch(&m[0], &m[1]).abs();
        if pct == 1.0 {
            overall = t;
            mean_a = m[0].mean;
            mean_b = m[1].mean;
        }
        worst = worst.max(t);
        crops.push((pct, t, m[0].mean - m[1].mean));
    }
    Outcome {
        overall,
        worst,
        mean_a,
        mean_b,
        crops,
    }
}

fn main() {
    let samples: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let keys = Feedkey::builder(MemoryStore::new(), TokenKey::new(1, &[7; 32]))
        .build()
        .unwrap();
    let alice = AccountId::new("alice").unwrap();
    ready(keys.create_account(&alice, Expiry::Never)).unwrap();
    for _ in 0..1000 {
        ready(keys.issue(&alice, NewToken::new("filler", Scope::read_only()))).unwrap();
    }
    let scope = Scope::new(
        Permissions::WRITE_ONLY,
        Feeds::only(["ci"]).unwrap(),
        Packages::only(["Contoso.Service.*"]).unwrap(),
    )
    .unwrap();
    let good = ready(keys.issue(&alice, NewToken::new("CI", scope)))
        .unwrap()
        .token
        .expose_secret()
        .to_owned();
    // Flipping an id byte gives a well-formed token whose id is (almost surely) unknown.
    let unknown = Aligned::new(&flip(&good, 3));
    let wrong_first = Aligned::new(&flip(&good, 16));
    let wrong_last = Aligned::new(&flip(&good, 47));

    println!("dudect-style Welch t-test, {samples} samples per pair (|t| > 4.5: leak found)");
    for (name, a, b) in [
        ("unknown id vs wrong secret", &unknown, &wrong_first),
        (
            "secret wrong in first byte vs last byte",
            &wrong_first,
            &wrong_last,
        ),
    ] {
        let Outcome {
            overall,
            worst,
            mean_a: ma,
            mean_b: mb,
            crops,
        } = measure(&keys, a.text(), b.text(), samples);
        println!(
            "{name:<42} |t| = {overall:>5.2} (max over crops {worst:>5.2}); means {ma:.1} ns vs {mb:.1} ns"
        );
        // Each crop: the samples below that quantile of all, |t| and the difference of
        // the two classes' means there.
        let crops: Vec<String> = crops
            .iter()
            .map(|(pct, t, diff)| format!("{pct:.2}: |t| {t:.1}, {diff:+.2} ns"))
            .collect();
        println!("    crops {}", crops.join("; "));
    }
}
