//! Criterion benches of one shard's driver index: nearest-5 searches and GPS updates over
//! 100,000 drivers in a 30 km box, without the network.
#![allow(missing_docs)] // criterion_group! generates undocumented items.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use h3o::Resolution;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tessera_protocol::geo::GeoPoint;
use tessera_server::data::geo::{GeoShard, Placement, Query};

const DRIVERS: usize = 100_000;

fn somewhere(rng: &mut SmallRng) -> GeoPoint {
    GeoPoint::new(
        52.52 + rng.random_range(-0.1349..0.1349),
        13.405 + rng.random_range(-0.2215..0.2215),
    )
    .expect("inside the box")
}

fn fleet(resolution: u8) -> (GeoShard, Vec<GeoPoint>) {
    let mut rng = SmallRng::seed_from_u64(1);
    let mut geo = GeoShard::default();
    geo.create(
        b"drivers",
        Resolution::try_from(resolution).expect("a valid resolution"),
    );
    let mut positions = Vec::with_capacity(DRIVERS);
    for i in 0..DRIVERS {
        let at = somewhere(&mut rng);
        positions.push(at);
        let placement = Placement::at(Bytes::from(format!("key:{i}")), at);
        geo.index(b"drivers").place(placement, 0).expect("placed");
    }
    (geo, positions)
}

fn nearest(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(2);
    let mut group = c.benchmark_group("geo");
    for (resolution, radius) in [(8, 500.0), (8, 2_000.0), (9, 500.0), (9, 2_000.0)] {
        let (mut geo, _) = fleet(resolution);
        group.bench_function(format!("nearest5_res{resolution}_{radius}m"), |b| {
            b.iter(|| {
                let query = Query {
                    center: somewhere(&mut rng),
                    radius_m: radius,
                    k: 5,
                    status: None,
                    with_meta: false,
                };
                let (index, shapes) = geo.get_with_shapes(b"drivers");
                black_box(
                    index
                        .expect("loaded")
                        .nearest(shapes, &query, 0)
                        .expect("in range"),
                )
            })
        });
    }
    group.bench_function("update_within_100m", |b| {
        let (mut geo, positions) = fleet(9);
        let names: Vec<Bytes> = (0..DRIVERS)
            .map(|i| Bytes::from(format!("key:{i}")))
            .collect();
        b.iter(|| {
            let i = rng.random_range(0..DRIVERS);
            let at = GeoPoint::new(
                positions[i].lat() + rng.random_range(-0.0009..0.0009),
                positions[i].lng() + rng.random_range(-0.0015..0.0015),
            )
            .expect("inside the box");
            let placement = Placement::at(names[i].clone(), at);
            black_box(geo.index(b"drivers").place(placement, 0).expect("placed"))
        })
    });
    group.finish();
}

criterion_group!(benches, nearest);
criterion_main!(benches);
