//! The driver index end to end: exact nearest-K across partitions and shards, moves,
//! atomic claims under many concurrent clients, offer and member TTLs.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use support::{haversine_m, TestServer, SHARD_COUNTS};
use tessera_client::{Bytes, Client, Command, Error, ErrorCode};
use tessera_protocol::geo::{GeoCommand, GeoPoint};

/// Rounds to the 1e-7 degree the server stores.
fn stored(lat: f64, lng: f64) -> (f64, f64) {
    let p = GeoPoint::new(lat, lng).unwrap();
    (p.lat(), p.lng())
}

/// A driver somewhere in a 60 km box around Berlin: wide enough to span many partitions.
fn somewhere(rng: &mut SmallRng) -> (f64, f64) {
    stored(
        52.52 + rng.random_range(-0.27..0.27),
        13.40 + rng.random_range(-0.45..0.45),
    )
}

struct Fleet {
    positions: Vec<(f64, f64)>,
    available: Vec<bool>,
}

impl Fleet {
    fn brute_force(
        &self,
        from: (f64, f64),
        radius: f64,
        k: usize,
        only_available: bool,
    ) -> Vec<(f64, String)> {
        let mut hits: Vec<(f64, String)> = self
            .positions
            .iter()
            .enumerate()
            .filter(|(i, _)| !only_available || self.available[*i])
            .map(|(i, at)| (haversine_m(from, *at), format!("d:{i}")))
            .filter(|(d, _)| *d <= radius)
            .collect();
        hits.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        hits.truncate(k);
        hits
    }
}

/// A point a few metres from a corner of the partition (resolution-5 cell) holding a
/// random point: where a search must gather from the partitions around it.
fn near_a_partition_border(rng: &mut SmallRng) -> (f64, f64) {
    let (lat, lng) = somewhere(rng);
    let partition = h3o::LatLng::new(lat, lng)
        .unwrap()
        .to_cell(tessera_cluster::geo::PARTITION_RESOLUTION);
    let boundary = partition.boundary();
    let corner = boundary[rng.random_range(0..boundary.len())];
    stored(
        corner.lat() + rng.random_range(-0.0002..0.0002),
        corner.lng() + rng.random_range(-0.0002..0.0002),
    )
}

async fn check_queries(client: &Client, fleet: &Fleet, rng: &mut SmallRng, queries: usize) {
    let drivers = client.geo("drivers");
    for query in 0..queries {
        // Half the queries start where three partitions meet.
        let from = if query % 2 == 0 {
            somewhere(rng)
        } else {
            near_a_partition_border(rng)
        };
        let k = rng.random_range(1..12);
        let radius = [500, 2_000, 8_000][rng.random_range(0..3)];
        let only_available = rng.random_bool(0.5);
        let mut near = drivers.near(from.0, from.1).k(k).radius(radius);
        if only_available {
            near = near.status("available");
        }
        let found = near.await.unwrap();
        let expected = fleet.brute_force(from, f64::from(radius), k as usize, only_available);
        assert_eq!(
            found.len(),
            expected.len(),
            "query at {from:?} k {k} r {radius}"
        );
        for (hit, (distance, _)) in found.iter().zip(&expected) {
            assert!(
                (hit.distance_m - distance).abs() < 1e-3,
                "{} vs {distance}",
                hit.distance_m
            );
        }
        let unique: HashSet<&Bytes> = found.iter().map(|h| &h.member).collect();
        assert_eq!(unique.len(), found.len(), "a member appears once");
    }
}

#[tokio::test]
async fn near_equals_brute_force_across_partitions_and_after_moves() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        let drivers = client.geo("drivers");
        let mut rng = SmallRng::seed_from_u64(7 + shards as u64);
        let mut fleet = Fleet {
            positions: Vec::new(),
            available: Vec::new(),
        };
        for i in 0..1_500 {
            let at = somewhere(&mut rng);
            let available = rng.random_bool(0.7);
            let status = if available { "available" } else { "busy" };
            assert!(drivers
                .upsert(format!("d:{i}"), at.0, at.1)
                .status(status)
                .await
                .unwrap());
            fleet.positions.push(at);
            fleet.available.push(available);
        }
        check_queries(&client, &fleet, &mut rng, 150).await;
        // Move a third of the fleet, most of them to another partition: once an update
        // returns, no query may see the old position.
        for i in (0..1_500).step_by(3) {
            let at = somewhere(&mut rng);
            assert!(!drivers.upsert(format!("d:{i}"), at.0, at.1).await.unwrap());
            fleet.positions[i] = at;
        }
        check_queries(&client, &fleet, &mut rng, 150).await;
        assert_eq!(drivers.count(None).await.unwrap(), 1_500);
        let busy = fleet.available.iter().filter(|a| !**a).count() as u64;
        assert_eq!(
            drivers.count(Some("busy")).await.unwrap(),
            busy,
            "status moves with the member"
        );
        let within = fleet
            .positions
            .iter()
            .filter(|p| haversine_m((52.52, 13.40), **p) <= 5_000.0)
            .count();
        assert_eq!(
            drivers
                .count_within(52.52, 13.40, 5_000, None)
                .await
                .unwrap(),
            within as u64
        );
        let cells = drivers.cells(52.52, 13.40, 5_000, 7, None).await.unwrap();
        assert_eq!(cells.iter().map(|c| c.1).sum::<u64>(), within as u64);
        assert!(cells.windows(2).all(|w| w[0].1 >= w[1].1), "most first");
    }
}

#[tokio::test]
async fn a_hundred_clients_claiming_one_driver_get_one_offer() {
    for shards in SHARD_COUNTS {
        let server = TestServer::start(shards);
        let client = server.client().await;
        client
            .geo("drivers")
            .upsert("d:1", 52.5, 13.4)
            .await
            .unwrap();
        let mut clients = Vec::new();
        for _ in 0..100 {
            clients.push(server.client().await);
        }
        let claims = clients.iter().map(|c| {
            let drivers = c.geo("drivers");
            async move { drivers.claim("d:1", Duration::from_secs(30)).await.unwrap() }
        });
        let won = futures_util::future::join_all(claims).await;
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{shards} shards");
        let drivers = client.geo("drivers");
        assert_eq!(
            &drivers.get("d:1").await.unwrap().unwrap().status[..],
            b"offered"
        );
        assert!(drivers.confirm("d:1").await.unwrap());
        assert!(
            !drivers.claim("d:1", Duration::from_secs(1)).await.unwrap(),
            "busy"
        );
        drivers.release("d:1").await.unwrap();
        assert!(drivers.claim("d:1", Duration::from_secs(1)).await.unwrap());
        let unknown = drivers.claim("nobody", Duration::from_secs(1)).await;
        assert!(
            matches!(unknown, Err(Error::Server(e)) if e.known_code() == Some(ErrorCode::NotFound))
        );
    }
}

#[tokio::test]
async fn concurrent_orders_never_share_a_driver() {
    let server = TestServer::start(3);
    let client = server.client().await;
    let drivers = client.geo("drivers");
    for i in 0..20 {
        let lng = 13.40 + f64::from(i) * 0.001;
        drivers.upsert(format!("d:{i}"), 52.52, lng).await.unwrap();
    }
    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(server.client().await);
    }
    let orders = clients.iter().flat_map(|c| {
        (0..2).map(move |_| {
            let drivers = c.geo("drivers");
            async move {
                drivers
                    .near(52.52, 13.41)
                    .k(5)
                    .radius(5_000)
                    .claim(Duration::from_secs(60))
                    .await
                    .unwrap()
            }
        })
    });
    let offers = futures_util::future::join_all(orders).await;
    let claimed: Vec<Bytes> = offers.into_iter().flatten().map(|hit| hit.member).collect();
    let unique: HashSet<&Bytes> = claimed.iter().collect();
    assert_eq!(claimed.len(), 20, "every driver offered once");
    assert_eq!(unique.len(), 20, "no driver offered twice");
    assert!(drivers
        .near(52.52, 13.41)
        .k(5)
        .status("available")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn offers_and_members_lapse_on_their_own() {
    let server = TestServer::start(2);
    let client = server.client().await;
    let drivers = client.geo("drivers");
    drivers.upsert("d:offer", 1.0, 1.0).await.unwrap();
    drivers
        .upsert("d:ttl", 1.0, 1.001)
        .ttl(Duration::from_millis(500))
        .meta("suv")
        .await
        .unwrap();
    assert!(drivers
        .claim("d:offer", Duration::from_millis(400))
        .await
        .unwrap());
    let available = drivers
        .near(1.0, 1.0)
        .k(5)
        .status("available")
        .with_meta()
        .await
        .unwrap();
    assert_eq!(available.len(), 1);
    assert_eq!(available[0].meta.as_deref(), Some(&b"suv"[..]));
    tokio::time::sleep(Duration::from_millis(900)).await;
    let member = drivers.get("d:offer").await.unwrap().unwrap();
    assert_eq!(&member.status[..], b"available", "the offer lapsed");
    assert!(
        drivers.get("d:ttl").await.unwrap().is_none(),
        "the member lapsed"
    );
    // Far from where it lapsed, on whatever shard holds that partition: new again.
    assert!(drivers.upsert("d:ttl", -33.86, 151.2).await.unwrap());
    assert!(drivers.remove("d:ttl").await.unwrap());
    let all = drivers.near(1.0, 1.0).k(5).await.unwrap();
    assert_eq!(
        all.iter().map(|h| &h.member[..]).collect::<Vec<_>>(),
        vec![&b"d:offer"[..]]
    );
    assert_eq!(drivers.count(None).await.unwrap(), 1);
    assert!(drivers.remove("d:offer").await.unwrap());
    assert!(!drivers.remove("d:offer").await.unwrap());
    assert!(drivers.near(1.0, 1.0).k(5).await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_coordinates_and_arguments_get_typed_errors() {
    let server = TestServer::start(2);
    let client = server.client().await;
    let bad = |lat: f64, lng: f64| {
        Command::Geo(GeoCommand::Upsert {
            index: Bytes::from_static(b"drivers"),
            member: Bytes::from_static(b"d"),
            // Built by hand: the client's own constructor refuses these.
            at: GeoPoint {
                lat_e7: (lat * 1e7) as i32,
                lng_e7: (lng * 1e7) as i32,
            },
            status: None,
            ttl_ms: None,
            meta: None,
        })
    };
    for (lat, lng) in [(91.0, 0.0), (0.0, 181.0), (-90.5, 10.0)] {
        let reply = client.call(bad(lat, lng)).await;
        assert!(
            matches!(reply, Err(Error::Server(_))),
            "{lat},{lng}: {reply:?}"
        );
    }
    assert!(matches!(
        client.geo("drivers").upsert("d", f64::NAN, 0.0).await,
        Err(Error::InvalidArgument(_))
    ));
    let k0 = client.geo("drivers").near(0.0, 0.0).k(0).await;
    assert!(matches!(k0, Err(Error::Server(_))));
    let far = client.geo("drivers").near(0.0, 0.0).radius(1_000_000).await;
    assert!(matches!(far, Err(Error::Server(_))));
    // The connection is still good.
    assert!(client.geo("drivers").upsert("d", 10.0, 10.0).await.unwrap());
}

#[tokio::test]
async fn concurrent_moves_across_shards_keep_one_copy_and_its_status() {
    let server = TestServer::start(3);
    let client = server.client().await;
    let drivers = client.geo("drivers");
    // Cities far apart: every move between them changes partition, most change shard.
    let cities = [
        (52.52, 13.40),
        (48.85, 2.35),
        (40.42, -3.70),
        (59.33, 18.07),
        (41.90, 12.50),
    ];
    for i in 0..10 {
        let (lat, lng) = cities[i % cities.len()];
        drivers
            .upsert(format!("d:{i}"), lat, lng)
            .status("busy")
            .meta("van")
            .await
            .unwrap();
    }
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(server.client().await);
    }
    let movers = clients.iter().enumerate().map(|(c, client)| {
        let drivers = client.geo("drivers");
        async move {
            let mut rng = SmallRng::seed_from_u64(c as u64);
            for _ in 0..30 {
                let member = format!("d:{}", rng.random_range(0..10));
                let (lat, lng) = cities[rng.random_range(0..cities.len())];
                let jitter = rng.random_range(-0.01..0.01);
                drivers
                    .upsert(member, lat + jitter, lng + jitter)
                    .await
                    .unwrap();
            }
        }
    });
    let watcher = async {
        // While members move, no search ever shows one twice.
        for round in 0..60 {
            let (lat, lng) = cities[round % cities.len()];
            let found = drivers.near(lat, lng).k(20).radius(20_000).await.unwrap();
            let unique: HashSet<&Bytes> = found.iter().map(|h| &h.member).collect();
            assert_eq!(unique.len(), found.len(), "a member appeared twice");
            let moving = format!("d:{}", round % 10);
            assert!(
                drivers.get(moving).await.unwrap().is_some(),
                "a member changing shards is never reported missing"
            );
        }
    };
    futures_util::future::join(futures_util::future::join_all(movers), watcher).await;
    assert_eq!(drivers.count(None).await.unwrap(), 10);
    assert_eq!(
        drivers.count(Some("busy")).await.unwrap(),
        10,
        "status travels with moves"
    );
    for i in 0..10 {
        let member = drivers.get(format!("d:{i}")).await.unwrap().unwrap();
        assert_eq!(
            member.meta.as_deref(),
            Some(&b"van"[..]),
            "metadata travels with moves"
        );
        let found = drivers
            .near(member.lat, member.lng)
            .k(1)
            .radius(10)
            .await
            .unwrap();
        assert_eq!(
            found[0].member,
            format!("d:{i}").as_bytes(),
            "GET and NEAR agree"
        );
    }
}
