//! `TokenFormat::find_in` over 10 MiB of source text seeded with many near-miss `fk_`
//! runs (short, long, touching other characters, a wrong checksum) and a few real
//! tokens: the cost of scanning an upload before it is published.
//!
//! `cargo bench --bench scan`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::hint::black_box;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use feedkey::TokenFormat;

const SIZE: usize = 10 * 1024 * 1024;
const REAL_TOKENS: usize = 16;

/// A token with a right checksum from `seed`.
fn token(seed: u8) -> String {
    let payload = [seed; 48];
    let mut raw = payload.to_vec();
    raw.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
    format!("fk_{}", URL_SAFE_NO_PAD.encode(raw))
}

/// Source text: code lines, one near-miss `fk_` run every few lines, and
/// [`REAL_TOKENS`] real tokens spread through it.
fn corpus() -> Vec<u8> {
    let lines = [
        "    let client = HttpClient::new(options.timeout, options.retries);\n",
        "    // Push the package to the feed named in the configuration file.\n",
        "    if (!string.IsNullOrEmpty(apiKey)) { request.Headers.Add(\"X-NuGet-ApiKey\", apiKey); }\n",
        "<package><metadata><id>Contoso.Service.Core</id><version>1.2.3</version></metadata></package>\n",
    ];
    let near_misses = [
        "fk_".to_owned(),
        format!("x=fk_{} ", "A".repeat(40)),
        format!("fk_{}\n", "B".repeat(69)),
        format!("fk_{}\n", "C".repeat(71)),
        format!("afk_{}\n", "D".repeat(70)),
        format!("fk_{}\n", "E".repeat(70)), // right shape, wrong checksum
        "fk_fk_fk_fk_fk_".to_owned(),
    ];
    let mut out = Vec::with_capacity(SIZE + 4096);
    let mut i = 0usize;
    let mut real = 0usize;
    while out.len() < SIZE {
        out.extend_from_slice(lines[i % lines.len()].as_bytes());
        if i.is_multiple_of(3) {
            out.extend_from_slice(near_misses[i % near_misses.len()].as_bytes());
        }
        if real < REAL_TOKENS && out.len() >= real * (SIZE / REAL_TOKENS) {
            out.extend_from_slice(format!("KEY=\"{}\"\n", token(real as u8)).as_bytes());
            real += 1;
        }
        i += 1;
    }
    out.truncate(SIZE);
    out
}

fn scan(c: &mut Criterion) {
    let data = corpus();
    let format = TokenFormat::default();
    assert_eq!(format.find_in(&data).count(), REAL_TOKENS);
    let mut group = c.benchmark_group("find_in");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(20);
    group.bench_function("10 MiB source with near misses", |b| {
        b.iter(|| format.find_in(black_box(&data)).count());
    });
    group.finish();
}

criterion_group!(benches, scan);
criterion_main!(benches);
