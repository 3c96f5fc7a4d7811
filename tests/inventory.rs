//! Inventory under many concurrent clients on several shards: never oversold, every unit
//! accounted for, lapsed reservations given back by the server itself, carts all or none.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_protocol::InventoryCommand;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use support::TestServer;
use tessera_client::{Cart, Client, ErrorCode, Reservation};
use tessera_protocol::{Command, Value};

const SKUS: usize = 1000;
const STOCK: i64 = 3;

fn sku(i: usize) -> String {
    format!("sku:{i}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_clients_never_oversell() {
    let server = TestServer::start(3);
    let setup = server.client().await;
    for i in 0..SKUS {
        setup.inv_set(sku(i), STOCK, None).await.unwrap();
    }
    let sold: Arc<Mutex<HashMap<usize, i64>>> = Arc::default();
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(Client::connect(&server.address).await.unwrap());
    }
    let ttl = Duration::from_millis(400);
    let shoppers: Vec<_> = (0..200u64)
        .map(|shopper| {
            let client = clients[shopper as usize % clients.len()].clone();
            let sold = sold.clone();
            tokio::spawn(async move {
                let mut rng = SmallRng::seed_from_u64(shopper);
                for attempt in 0..40 {
                    let i = rng.random_range(0..SKUS);
                    let qty = rng.random_range(1..=2);
                    let id = (attempt % 3 == 0).then(|| format!("order-{shopper}-{attempt}"));
                    let reservation = client
                        .inv_reserve(sku(i), qty, ttl, id.as_deref())
                        .await
                        .unwrap();
                    let Reservation::Held { handle, .. } = reservation else {
                        continue;
                    };
                    if let Some(id) = &id {
                        // A retried reserve with the same id gets the same hold, not a second one.
                        let retry = client
                            .inv_reserve(sku(i), qty, ttl, Some(id))
                            .await
                            .unwrap();
                        assert_eq!(
                            retry,
                            Reservation::Held {
                                handle: handle.clone(),
                                confirmed: false
                            }
                        );
                    }
                    match rng.random_range(0..10) {
                        0..=3 => {
                            // It may lapse before we confirm; then confirming must say so.
                            match client.inv_confirm(&handle).await {
                                Ok(()) => *sold.lock().unwrap().entry(i).or_default() += qty as i64,
                                Err(e) => assert_eq!(e.server_code(), Some(ErrorCode::NotFound)),
                            }
                        }
                        4..=6 => {
                            let released = client.inv_release(&handle).await;
                            assert!(
                                released.is_ok()
                                    || released.unwrap_err().server_code()
                                        == Some(ErrorCode::NotFound)
                            );
                        }
                        _ => {} // abandoned: the server gives the units back at the TTL
                    }
                }
            })
        })
        .collect();
    let watcher = {
        let client = clients[0].clone();
        tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(99);
            for _ in 0..400 {
                let stock = client
                    .inv_get(sku(rng.random_range(0..SKUS)))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(
                    0 <= stock.reserved && stock.reserved <= stock.on_hand,
                    "{stock:?}"
                );
                assert_eq!(stock.available, stock.on_hand - stock.reserved);
            }
        })
    };
    for shopper in shoppers {
        shopper.await.unwrap();
    }
    watcher.await.unwrap();
    // Every abandoned reservation lapses; the server returns its units without being asked.
    tokio::time::sleep(ttl + Duration::from_millis(400)).await;
    let sold = sold.lock().unwrap().clone();
    let mut total_sold = 0;
    for i in 0..SKUS {
        let stock = setup.inv_get(sku(i)).await.unwrap().unwrap();
        let sold_here = sold.get(&i).copied().unwrap_or(0);
        assert_eq!(
            stock.reserved,
            0,
            "{}: lapsed reservations were given back",
            sku(i)
        );
        assert_eq!(
            sold_here + stock.available + stock.reserved,
            STOCK,
            "{}",
            sku(i)
        );
        total_sold += sold_here;
    }
    assert!(total_sold > 0, "some sales happened");
}

#[tokio::test]
async fn lapsed_reservations_return_by_themselves_and_cannot_be_confirmed() {
    let server = TestServer::start(2);
    let client = server.client().await;
    client.inv_set("milk", 5, None).await.unwrap();
    let Reservation::Held { handle, .. } = client
        .inv_reserve("milk", 4, Duration::from_secs(1), None)
        .await
        .unwrap()
    else {
        panic!("4 of 5 fit");
    };
    assert_eq!(
        client
            .inv_reserve("milk", 2, Duration::from_secs(10), None)
            .await
            .unwrap(),
        Reservation::Short { available: 1 }
    );
    tokio::time::sleep(Duration::from_millis(1400)).await;
    // INV.GET does not release anything itself: the server's timers already did.
    let stock = client.inv_get("milk").await.unwrap().unwrap();
    assert_eq!(
        (stock.on_hand, stock.reserved, stock.reservations),
        (5, 0, 0)
    );
    let err = client.inv_confirm(&handle).await.unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::NotFound));
    let err = client.inv_adjust("milk", -6).await.unwrap_err();
    assert_eq!(
        err.server_code(),
        Some(ErrorCode::Conflict),
        "on hand cannot go below zero"
    );
}

#[tokio::test]
async fn carts_reserve_every_line_or_none() {
    let server = TestServer::start(3);
    let client = server.client().await;
    // One store's SKUs share a hash tag, so its carts are atomic on one shard.
    for (sku, stock) in [
        ("{store1}:milk", 2),
        ("{store1}:eggs", 12),
        ("{store1}:bread", 1),
    ] {
        client.inv_set(sku, stock, None).await.unwrap();
    }
    let ttl = Duration::from_secs(60);
    let Cart::Held(handles) = client
        .inv_reserve_cart(ttl, [("{store1}:milk", 1), ("{store1}:eggs", 6)])
        .await
        .unwrap()
    else {
        panic!("the cart fits");
    };
    assert_eq!(handles.len(), 2);
    let short = client
        .inv_reserve_cart(ttl, [("{store1}:eggs", 6), ("{store1}:bread", 2)])
        .await
        .unwrap();
    assert_eq!(
        short,
        Cart::Short(vec![Bytes::from_static(b"{store1}:bread")])
    );
    assert_eq!(
        client
            .inv_get("{store1}:eggs")
            .await
            .unwrap()
            .unwrap()
            .reserved,
        6,
        "no partial hold"
    );

    // Across shards the client runs the saga: a short line releases the held ones.
    let skus: Vec<String> = (0..30).map(|i| format!("item:{i}")).collect();
    let shards: std::collections::BTreeSet<u16> =
        skus.iter().map(|s| client.shard_of(s.as_bytes())).collect();
    assert!(shards.len() > 1);
    for sku in &skus {
        client.inv_set(sku.clone(), 1, None).await.unwrap();
    }
    let mut lines: Vec<(String, u64)> = skus.iter().map(|s| (s.clone(), 1)).collect();
    lines[7].1 = 2;
    let cart = client.inv_reserve_cart(ttl, lines).await.unwrap();
    assert_eq!(cart, Cart::Short(vec![Bytes::from("item:7")]));
    for sku in &skus {
        assert_eq!(
            client.inv_get(sku.clone()).await.unwrap().unwrap().reserved,
            0,
            "{sku} was released"
        );
    }
    // Sent unsplit, a cart spanning shards is refused rather than half-done.
    let connection = client.connection(0).await.unwrap();
    let items = skus.iter().map(|s| (Bytes::from(s.clone()), 1)).collect();
    let refused = connection
        .request(Command::Inventory(InventoryCommand::ReserveMulti {
            ttl_ms: 1000,
            items,
        }))
        .await
        .unwrap_err();
    assert_eq!(refused.server_code(), Some(ErrorCode::CrossShard));
    assert!(matches!(
        client
            .call(Command::Inventory(InventoryCommand::Get(Bytes::from(
                "nothing"
            ))))
            .await
            .unwrap(),
        Value::Nil
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_figures_stay_consistent_with_the_skus() {
    let server = TestServer::start(3);
    let client = server.client().await;
    let skus: Vec<String> = (0..100).map(|i| format!("{{store7}}:sku:{i}")).collect();
    for sku in &skus {
        client.inv_set(sku.clone(), 2, Some(1)).await.unwrap();
    }
    let shoppers: Vec<_> = (0..50u64)
        .map(|shopper| {
            let (client, skus) = (client.clone(), skus.clone());
            tokio::spawn(async move {
                let mut rng = SmallRng::seed_from_u64(shopper);
                for _ in 0..20 {
                    let sku = skus[rng.random_range(0..skus.len())].clone();
                    let held = client
                        .inv_reserve(sku, 1, Duration::from_millis(300), None)
                        .await
                        .unwrap();
                    if let Reservation::Held { handle, .. } = held {
                        if rng.random_bool(0.5) {
                            let _ = client.inv_confirm(&handle).await;
                        }
                    }
                }
            })
        })
        .collect();
    for shopper in shoppers {
        shopper.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (mut sold_out, mut low) = (0, 0);
    for sku in &skus {
        let stock = client.inv_get(sku.clone()).await.unwrap().unwrap();
        match stock.available {
            a if a <= 0 => sold_out += 1,
            1 => low += 1,
            _ => {}
        }
    }
    let figures = client.inv_store("store7").await.unwrap();
    assert_eq!(
        (figures.skus, figures.sold_out, figures.low_stock),
        (100, sold_out, low)
    );
    assert!(sold_out > 0, "some SKUs sold out");
}
