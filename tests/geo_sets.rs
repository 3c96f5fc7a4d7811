//! Redis's geo commands against real server processes: GEOADD's options, positions and
//! distances as Redis answers them, GEOSEARCH exact against a brute-force scan of the
//! stored positions at every shard count, GEOSEARCHSTORE into sorted sets ZRANGE reads,
//! and every point back after `kill -9`.

mod support;

use bytes::Bytes;
use rand::{rngs::SmallRng, Rng, SeedableRng};
use support::persist::{call, kill_9, start};
use support::{command, TestServer, SHARD_COUNTS};
use tessera_protocol::commands::geo_sets::{GeoSetCommand, Unit};
use tessera_protocol::{ErrorCode, Value};

/// Redis's sphere, which GEO distances are measured on.
const REDIS_EARTH_RADIUS_M: f64 = 6_372_797.560_856;

fn distance_m((lon1, lat1): (f64, f64), (lon2, lat2): (f64, f64)) -> f64 {
    let (la1, la2) = (lat1.to_radians(), lat2.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lon2 - lon1).to_radians() / 2.0).sin().powi(2);
    2.0 * REDIS_EARTH_RADIUS_M * h.sqrt().asin()
}

fn text(value: &Value) -> String {
    match value {
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("not bytes: {other:?}"),
    }
}

fn members(value: Value) -> Vec<String> {
    match value {
        Value::Array(items) => items.iter().map(text).collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[tokio::test]
async fn geo_commands_answer_as_redis_does() {
    let server = TestServer::start(2);
    let client = server.client().await;
    let run = |line: &'static str| {
        let client = &client;
        async move { client.call(command(line)).await }
    };
    let sicily = "GEOADD Sicily 13.361389 38.115556 Palermo 15.087269 37.502669 Catania";
    assert_eq!(run(sicily).await.unwrap(), Value::Int(2));
    assert_eq!(run(sicily).await.unwrap(), Value::Int(0));
    // NX leaves a member where it is; XX CH moves it and counts it.
    assert_eq!(
        run("GEOADD Sicily NX 0 0 Palermo").await.unwrap(),
        Value::Int(0)
    );
    assert_eq!(
        run("GEOADD Sicily XX CH 13.361389 38.115556 Catania 1 1 Agrigento")
            .await
            .unwrap(),
        Value::Int(1)
    );
    assert_eq!(run("ZCARD Sicily").await.unwrap(), Value::Int(2));
    run("GEOADD Sicily 15.087269 37.502669 Catania")
        .await
        .unwrap();
    // The key is a sorted set scored by the 52-bit geohash Redis gives the same place.
    assert_eq!(
        run("ZSCORE Sicily Palermo").await.unwrap(),
        Value::Float(3479099956230698.0)
    );
    assert_eq!(
        text(&run("GEODIST Sicily Palermo Catania km").await.unwrap()),
        "166.2742"
    );
    assert_eq!(
        run("GEODIST Sicily Palermo Nowhere").await.unwrap(),
        Value::Nil
    );
    let hashes = run("GEOHASH Sicily Palermo Nowhere").await.unwrap();
    assert_eq!(
        hashes,
        Value::Array(vec![
            Value::Bytes(Bytes::from_static(b"sqc8b49rny0")),
            Value::Nil
        ])
    );
    assert_eq!(
        members(
            run("GEOSEARCH Sicily FROMLONLAT 15 37 BYRADIUS 200 km ASC")
                .await
                .unwrap()
        ),
        ["Catania", "Palermo"]
    );
    let detailed = run("GEOSEARCH Sicily FROMMEMBER Palermo BYBOX 400 400 km DESC COUNT 1 WITHDIST WITHHASH WITHCOORD")
        .await
        .unwrap();
    let Value::Array(rows) = detailed else {
        panic!("{detailed:?}")
    };
    let Value::Array(row) = &rows[0] else {
        panic!("{rows:?}")
    };
    assert_eq!(text(&row[0]), "Catania");
    assert_eq!(text(&row[1]), "166.2742");
    assert_eq!(row[2], Value::Int(3479447370796909));
    let Value::Array(position) = &row[3] else {
        panic!("{row:?}")
    };
    let (Value::Float(lon), Value::Float(lat)) = (&position[0], &position[1]) else {
        panic!("{position:?}")
    };
    assert!((lon - 15.087269).abs() < 1e-5 && (lat - 37.502669).abs() < 1e-5);

    assert_eq!(
        run("GEOSEARCHSTORE {s}near Sicily FROMLONLAT 15 37 BYRADIUS 200 km")
            .await
            .unwrap_err()
            .server_code(),
        Some(ErrorCode::CrossShard)
    );
    run("GEOADD {s}all 13.361389 38.115556 Palermo 15.087269 37.502669 Catania")
        .await
        .unwrap();
    assert_eq!(
        run("GEOSEARCHSTORE {s}near {s}all FROMLONLAT 15 37 BYRADIUS 100 km STOREDIST")
            .await
            .unwrap(),
        Value::Int(1)
    );
    let stored = run("ZRANGE {s}near 0 -1 WITHSCORES").await.unwrap();
    let Value::Array(stored) = stored else {
        panic!("{stored:?}")
    };
    let Value::Array(pair) = &stored[0] else {
        panic!("{stored:?}")
    };
    assert_eq!(text(&pair[0]), "Catania");
    assert!(matches!(pair[1], Value::Float(km) if (56.0..57.0).contains(&km)));

    run("SET plain x").await.unwrap();
    for line in [
        "GEOPOS plain a",
        "GEOSEARCH plain FROMLONLAT 0 0 BYRADIUS 1 km",
    ] {
        let refused = run(line).await.unwrap_err();
        assert_eq!(refused.server_code(), Some(ErrorCode::WrongType), "{line}");
    }
    let refused = run("GEOSEARCH Sicily FROMMEMBER Nowhere BYRADIUS 1 km")
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("could not decode requested zset member"),
        "{refused}"
    );
    let words: Vec<Bytes> = "GEOADD Sicily 200 100 far"
        .split(' ')
        .map(|w| Bytes::copy_from_slice(w.as_bytes()))
        .collect();
    let refused = tessera_protocol::Command::parse_words(&words).unwrap_err();
    assert_eq!(
        refused.message,
        "invalid longitude,latitude pair 200.000000,100.000000"
    );
    let typed = client
        .run(GeoSetCommand::geoadd("Sicily", [(200.0, 100.0, "far")]))
        .await;
    assert!(
        typed.is_err(),
        "a position out of range is refused before it is sent"
    );
}

/// Members of `points` whose stored positions lie inside `radius_m` of `center`, and those
/// too near the edge for two formulas to agree on.
fn brute_force(
    points: &[(String, (f64, f64))],
    center: (f64, f64),
    radius_m: f64,
) -> (Vec<String>, Vec<String>) {
    let (mut inside, mut edge) = (Vec::new(), Vec::new());
    for (member, position) in points {
        let d = distance_m(*position, center);
        if (d - radius_m).abs() < radius_m * 1e-9 + 0.01 {
            edge.push(member.clone());
        } else if d < radius_m {
            inside.push(member.clone());
        }
    }
    inside.sort();
    (inside, edge)
}

#[tokio::test]
async fn geosearch_finds_exactly_the_points_inside_at_every_shard_count() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let mut rng = SmallRng::seed_from_u64(shards as u64);
        for city in 0..6 {
            let key = format!("fleet:{city}");
            let center = (
                rng.random_range(-179.0..179.0),
                rng.random_range(-70.0..70.0),
            );
            let points: Vec<(f64, f64, String)> = (0..3000)
                .map(|i| {
                    let lon: f64 = center.0 + rng.random_range(-1.5..1.5);
                    let lon = (lon + 540.0) % 360.0 - 180.0;
                    let lat = center.1 + rng.random_range(-1.0..1.0);
                    (lon, lat, format!("driver:{i}"))
                })
                .collect();
            let added = client
                .run(GeoSetCommand::geoadd(key.clone(), points.clone()))
                .await
                .unwrap();
            assert_eq!(added, 3000);
            // The stored positions (cell centres), as a client reads them back.
            let names: Vec<String> = points.iter().map(|(_, _, m)| m.clone()).collect();
            let stored = client
                .run(GeoSetCommand::geopos(key.clone(), names.clone()))
                .await
                .unwrap();
            let stored: Vec<(String, (f64, f64))> = names
                .into_iter()
                .zip(stored)
                .map(|(name, at)| (name, at.expect("every member has a position")))
                .collect();
            for radius_km in [0.5, 5.0, 30.0, 90.0] {
                let mut found: Vec<String> = client
                    .run(GeoSetCommand::geosearch_radius(
                        key.clone(),
                        center,
                        radius_km,
                        Unit::Kilometers,
                        0,
                    ))
                    .await
                    .unwrap()
                    .iter()
                    .map(|m| String::from_utf8_lossy(m).into_owned())
                    .collect();
                found.sort();
                let (mut expected, edge) = brute_force(&stored, center, radius_km * 1000.0);
                found.retain(|m| !edge.contains(m));
                expected.retain(|m| !edge.contains(m));
                assert_eq!(found, expected, "{shards} shards, {key}, {radius_km} km");
            }
            // COUNT answers the nearest ones, nearest first.
            let nearest = client
                .run(GeoSetCommand::geosearch_radius(
                    key.clone(),
                    center,
                    90.0,
                    Unit::Kilometers,
                    10,
                ))
                .await
                .unwrap();
            let mut by_distance: Vec<(f64, String)> = stored
                .iter()
                .map(|(m, at)| (distance_m(*at, center), m.clone()))
                .filter(|(d, _)| *d < 90_000.0)
                .collect();
            by_distance.sort_by(|a, b| a.0.total_cmp(&b.0));
            let expected: Vec<&str> = by_distance[..10].iter().map(|(_, m)| m.as_str()).collect();
            let nearest: Vec<String> = nearest
                .iter()
                .map(|m| String::from_utf8_lossy(m).into_owned())
                .collect();
            assert_eq!(nearest, expected, "{shards} shards, {key}");
        }
    }
}

#[tokio::test]
async fn geo_sets_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 2, "always");
    let client = tessera_client::Client::connect(&server.address)
        .await
        .unwrap();
    call(
        &client,
        &[
            "GEOADD",
            "{g}src",
            "13.361389",
            "38.115556",
            "Palermo",
            "15.087269",
            "37.502669",
            "Catania",
        ],
    )
    .await;
    call(
        &client,
        &[
            "GEOSEARCHSTORE",
            "{g}dst",
            "{g}src",
            "FROMLONLAT",
            "15",
            "37",
            "BYRADIUS",
            "100",
            "km",
        ],
    )
    .await;
    let before = call(&client, &["GEOPOS", "{g}src", "Palermo", "Catania"]).await;
    drop(client);
    kill_9(server);

    let server = start(dir.path(), 3, "always");
    let client = tessera_client::Client::connect(&server.address)
        .await
        .unwrap();
    assert_eq!(
        call(&client, &["GEOPOS", "{g}src", "Palermo", "Catania"]).await,
        before
    );
    assert_eq!(
        members(call(&client, &["ZRANGE", "{g}dst", "0", "-1"]).await),
        ["Catania"]
    );
}
