//! Criterion benches that chose the sorted-set index: our chunked order-statistic index
//! against crossbeam-skiplist's `SkipMap` (plus a member table), at 100,000 members, for
//! the operations a leaderboard lives on: a score update, a rank, and the top 10.
#![allow(missing_docs)] // criterion_group! generates undocumented items.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use crossbeam_skiplist::SkipMap;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tessera_server::data::ordered::Ordered;

const MEMBERS: usize = 100_000;

/// A total order on scores for the skiplist's keys.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Score(f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The skiplist variant: ordered (score, member) keys, and a table for scores by member.
struct Skip {
    order: SkipMap<(Score, Bytes), ()>,
    scores: hashbrown::HashMap<Bytes, f64>,
}

impl Skip {
    fn set(&mut self, score: f64, member: &Bytes) {
        if let Some(old) = self.scores.insert(member.clone(), score) {
            self.order.remove(&(Score(old), member.clone()));
        }
        self.order.insert((Score(score), member.clone()), ());
    }

    /// The skiplist keeps no counts, so a rank walks everything below the member.
    fn rank(&self, member: &Bytes) -> Option<usize> {
        let score = *self.scores.get(member)?;
        Some(self.order.range(..(Score(score), member.clone())).count())
    }
}

fn members() -> Vec<(f64, Bytes)> {
    let mut rng = SmallRng::seed_from_u64(7);
    (0..MEMBERS)
        .map(|i| {
            (
                rng.random_range(0.0..1e6),
                Bytes::from(format!("player:{i}")),
            )
        })
        .collect()
}

fn index(c: &mut Criterion) {
    let members = members();
    let mut ours = Ordered::default();
    let mut skip = Skip {
        order: SkipMap::new(),
        scores: hashbrown::HashMap::new(),
    };
    for (score, member) in &members {
        ours.set(*score, member);
        skip.set(*score, member);
    }
    let mut rng = SmallRng::seed_from_u64(9);
    let mut group = c.benchmark_group("sorted set index, 100k members");
    group.bench_function("update score / chunked", |b| {
        b.iter(|| {
            let (_, member) = &members[rng.random_range(0..MEMBERS)];
            ours.set(rng.random_range(0.0..1e6), member);
        })
    });
    group.bench_function("update score / skiplist", |b| {
        b.iter(|| {
            let (_, member) = &members[rng.random_range(0..MEMBERS)];
            skip.set(rng.random_range(0.0..1e6), member);
        })
    });
    group.bench_function("rank / chunked", |b| {
        b.iter(|| black_box(ours.rank(&members[rng.random_range(0..MEMBERS)].1)))
    });
    group.bench_function("rank / skiplist", |b| {
        b.iter(|| black_box(skip.rank(&members[rng.random_range(0..MEMBERS)].1)))
    });
    group.bench_function("top 10 / chunked", |b| {
        b.iter(|| black_box(ours.members(ours.len() - 10, ours.len())))
    });
    group.bench_function("top 10 / skiplist", |b| {
        b.iter(|| black_box(skip.order.iter().rev().take(10).count()))
    });
    group.finish();
}

criterion_group!(benches, index);
criterion_main!(benches);
