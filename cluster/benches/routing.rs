//! What routing a key costs: Redis Cluster's CRC16 slot (what ships) against XXH64 (the
//! function it replaced), on short and long keys.
#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

fn routing(c: &mut Criterion) {
    let short = b"key:12345".to_vec();
    let long = b"tenant:acme:user:4815162342:session:ab12cd34".to_vec();
    for (name, key) in [("9-byte key", &short), ("44-byte key", &long)] {
        c.bench_function(&format!("crc16 slot, {name}"), |b| {
            b.iter(|| tessera_cluster::shard_for_key(black_box(key), 2))
        });
        c.bench_function(&format!("xxh64, {name}"), |b| {
            b.iter(|| {
                let hash = xxhash_rust::xxh64::xxh64(tessera_cluster::hash_tag(black_box(key)), 0);
                ((hash & 0xffff_ffff) * 2) >> 32
            })
        });
    }
}

criterion_group!(benches, routing);
criterion_main!(benches);
