//! The driver index's own tests.

#[test]
fn radius_limits_are_the_ones_protocol_md_states() {
    let stated = [
        (7, 100_000),
        (8, 88_361),
        (9, 33_386),
        (10, 12_614),
        (11, 4_766),
        (12, 1_800),
    ];
    for (resolution, metres) in stated {
        let resolution = Resolution::try_from(resolution).unwrap();
        assert_eq!(max_radius_m(resolution) as u64, metres, "{resolution:?}");
    }
}

use super::*;
use proptest::prelude::*;

fn index() -> GeoIndex {
    GeoIndex::new(Resolution::Nine)
}

fn place(index: &mut GeoIndex, name: &str, lat: f64, lng: f64, status: Option<&str>) {
    index
        .place(
            Placement {
                status: status.map(|s| Bytes::copy_from_slice(s.as_bytes())),
                ..Placement::at(
                    Bytes::copy_from_slice(name.as_bytes()),
                    GeoPoint::new(lat, lng).unwrap(),
                )
            },
            0,
        )
        .unwrap();
}

/// Textbook haversine on degrees, written independently of `Spot`.
fn haversine_m(a: GeoPoint, b: GeoPoint) -> f64 {
    let (la1, la2) = (a.lat().to_radians(), b.lat().to_radians());
    let dla = la2 - la1;
    let dlo = (b.lng() - a.lng()).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().asin()
}

/// What a random member is doing when the query runs at `NOW`.
const NOW: u64 = 100;
const KINDS: u8 = 7;

/// The status word a member of `kind` has at `NOW`, or `None` if it has lapsed.
fn status_at_now(kind: u8) -> Option<&'static [u8]> {
    match kind {
        0 | 3 | 4 => Some(AVAILABLE), // 3: its offer lapsed; 4: its TTL is ahead
        1 => Some(BUSY),
        2 => Some(OFFERED),
        5 => None, // its TTL passed
        _ => Some(b"on-break"),
    }
}

fn placement_of(i: usize, at: GeoPoint, kind: u8) -> Placement {
    Placement {
        member: Bytes::from(format!("m{i}")),
        at,
        cell: None,
        status: match kind {
            1 => Some(Bytes::from_static(BUSY)),
            6 => Some(Bytes::from_static(b"on-break")),
            _ => None,
        },
        offered_until: match kind {
            2 => Some(NOW + 100),
            3 => Some(NOW - 50),
            _ => None,
        },
        expires_at: match kind {
            4 => Some(NOW + 400),
            5 => Some(NOW - 50),
            _ => None,
        },
        meta: None,
    }
}

/// Distances of the brute-force answer: every live member within the radius whose
/// status at `NOW` is `filter`.
fn brute_force(
    members: &[(GeoPoint, u8)],
    center: GeoPoint,
    radius: f64,
    k: usize,
    filter: Option<&[u8]>,
) -> Vec<f64> {
    let mut distances: Vec<f64> = members
        .iter()
        .filter(|(_, kind)| {
            status_at_now(*kind).is_some_and(|status| filter.is_none_or(|f| f == status))
        })
        .map(|(at, _)| haversine_m(center, *at))
        .filter(|d| *d <= radius)
        .collect();
    distances.sort_by(f64::total_cmp);
    distances.truncate(k);
    distances
}

/// Where the random cases are placed: a city, the antimeridian, a pole, a pentagon.
fn region() -> impl Strategy<Value = (f64, f64, f64)> {
    prop_oneof![
        Just((52.52, 13.40, 0.2)),
        Just((0.0, 179.95, 0.2)),
        Just((-16.5, -179.99, 0.1)),
        Just((89.9, 0.0, 0.15)),
        Just((-89.95, 45.0, 0.1)),
        // Near an icosahedron vertex, where H3 has a pentagon.
        Just((64.7, 10.54, 0.3)),
    ]
}

fn around((lat, lng, span): (f64, f64, f64)) -> impl Strategy<Value = GeoPoint> {
    (-span..span, -span..span).prop_map(move |(dlat, dlng)| {
        let lat = (lat + dlat).clamp(-90.0, 90.0);
        let mut lng = lng + dlng;
        if lng > 180.0 {
            lng -= 360.0;
        }
        if lng < -180.0 {
            lng += 360.0;
        }
        GeoPoint::new(lat, lng).unwrap()
    })
}

fn case() -> impl Strategy<Value = (Vec<(GeoPoint, u8)>, GeoPoint, f64, usize)> {
    region().prop_flat_map(|r| {
        (
            proptest::collection::vec((around(r), 0..KINDS), 0..300),
            around(r),
            100.0..6000.0f64,
            1..12usize,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn nearest_equals_brute_force((members, center, radius, k) in case(), res in 7u8..=10) {
        let mut index = GeoIndex::new(Resolution::try_from(res).unwrap());
        let mut shapes = Shapes::default();
        for (i, (at, kind)) in members.iter().enumerate() {
            // Placed at NOW, when the lapsed ones were still live.
            index.place(placement_of(i, *at, *kind), 0).unwrap();
        }
        let filters: [Option<&[u8]>; 5] =
            [None, Some(AVAILABLE), Some(BUSY), Some(OFFERED), Some(b"on-break")];
        for filter in filters {
            let query = Query { center, radius_m: radius, k, status: filter, with_meta: false };
            let found = index.nearest(&mut shapes, &query, NOW).unwrap();
            let expected = brute_force(&members, center, radius, k, filter);
            prop_assert_eq!(found.len(), expected.len());
            for (hit, want) in found.iter().zip(&expected) {
                prop_assert!((hit.distance_m - want).abs() < 1e-6, "{} vs {}", hit.distance_m, want);
            }
            let area = GeoArea { center, radius_m: radius as u32 };
            let counted: i64 = index.census(&mut shapes, Some(area), None, filter, NOW).unwrap().values().sum();
            let expected_count =
                brute_force(&members, center, f64::from(radius as u32), usize::MAX, filter).len();
            prop_assert_eq!(counted as usize, expected_count);
        }
    }
}

#[test]
fn claims_are_exclusive_and_offers_lapse() {
    let mut index = index();
    place(&mut index, "d1", 52.52, 13.40, None);
    assert_eq!(index.claim(b"d1", 1_000, 10), Ok(()));
    assert_eq!(index.claim(b"d1", 1_000, 20), Err(Refusal::Conflict));
    // The offer lapsed: available again, claimable again.
    assert_eq!(index.claim(b"d1", 5_000, 1_000), Ok(()));
    assert_eq!(index.confirm(b"d1", 1_001), Ok(()));
    assert_eq!(index.confirm(b"d1", 1_002), Err(Refusal::Conflict));
    assert_eq!(
        index.claim(b"d1", 9_000, 9_000),
        Err(Refusal::Conflict),
        "busy stays busy"
    );
    assert_eq!(index.release(b"d1", 9_001), Ok(()));
    assert_eq!(index.claim(b"nobody", 1, 1), Err(Refusal::NotFound));
}

#[test]
fn moving_within_the_shard_keeps_one_entry_and_take_carries_state() {
    let mut index = index();
    place(&mut index, "d1", 52.52, 13.40, Some("on-break"));
    place(&mut index, "d1", 52.60, 13.50, None);
    let mut shapes = Shapes::default();
    let found = index
        .nearest(
            &mut shapes,
            &Query {
                center: GeoPoint::new(52.52, 13.40).unwrap(),
                radius_m: 20_000.0,
                k: 10,
                status: None,
                with_meta: false,
            },
            0,
        )
        .unwrap();
    assert_eq!(found.len(), 1);
    assert!(found[0].distance_m > 5_000.0, "the old position is gone");
    let carried = index.take(b"d1", 0).unwrap();
    assert_eq!(&carried.status[..], b"on-break");
    assert_eq!(index.members.len(), 0);
}

#[test]
fn lapsed_members_vanish_from_queries_and_are_swept() {
    let mut index = index();
    index
        .place(
            Placement {
                member: Bytes::from_static(b"d1"),
                at: GeoPoint::new(1.0, 1.0).unwrap(),
                cell: None,
                status: None,
                offered_until: None,
                expires_at: Some(100),
                meta: None,
            },
            0,
        )
        .unwrap();
    let mut shapes = Shapes::default();
    let near = |index: &GeoIndex, shapes: &mut Shapes, now| {
        index
            .nearest(
                shapes,
                &Query {
                    center: GeoPoint::new(1.0, 1.0).unwrap(),
                    radius_m: 100.0,
                    k: 1,
                    status: None,
                    with_meta: false,
                },
                now,
            )
            .unwrap()
            .len()
    };
    assert_eq!(near(&index, &mut shapes, 99), 1);
    assert_eq!(near(&index, &mut shapes, 100), 0);
    assert_eq!(index.describe(b"d1", 100), Value::Nil);
    assert_eq!(index.sweep(10, 100), vec![Bytes::from_static(b"d1")]);
    assert_eq!(index.members.len(), 0);
}
