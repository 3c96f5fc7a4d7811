//! maxmemory against a real server: the allocator's count matches the resident set, and
//! each eviction policy evicts what it should while writes go on.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use support::TestServer;
use tessera_client::{Client, ErrorCode, Reply};

const VALUE: usize = 64 << 10;

/// The process's anonymous resident memory (heap, stacks): what data costs. The mapped
/// binary's pages (RssFile) are left out: they grow with the code, not with the data.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon");
    kib * 1024
}

async fn info(client: &Client, section: &str, field: &str) -> i64 {
    let info = client.info().await.unwrap();
    info.get(section)
        .and_then(|s| s.get(field))
        .and_then(Reply::as_int)
        .unwrap_or_else(|| panic!("INFO {section}.{field}"))
}

async fn existing(client: &Client, keys: &[String]) -> HashSet<String> {
    let mut present = HashSet::new();
    for key in keys {
        if client.get(key.clone()).await.unwrap().is_some() {
            present.insert(key.clone());
        }
    }
    present
}

fn named(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}:{i}")).collect()
}

/// The heap the eviction tests' servers may hold.
const MAXMEMORY: i64 = 32 << 20;

/// A server at `MAXMEMORY` with `policy`, one shard so the sample is the whole node.
fn start(policy: &str) -> TestServer {
    TestServer::start_with(&[
        "--shards",
        "1",
        "--maxmemory",
        &MAXMEMORY.to_string(),
        "--maxmemory-policy",
        policy,
    ])
}

async fn fill(client: &Client, keys: &[String], ttl: Option<u64>) {
    let value = vec![b'x'; VALUE];
    for key in keys {
        let set = client.set(key.clone(), value.clone());
        match ttl {
            Some(seconds) => set.ex(seconds).await.unwrap(),
            None => set.await.unwrap(),
        };
    }
}

/// Asserts `kept` lost at most a tenth of its keys while at least four evictions in five
/// took a key of `spent`, and that the node stayed near its maxmemory throughout.
async fn evicted_the_right_ones(client: &Client, kept: &[String], spent: &[String]) {
    let kept_left = existing(client, kept).await.len();
    let spent_lost = spent.len() - existing(client, spent).await.len();
    let evicted = info(client, "totals", "evicted_keys").await as usize;
    assert!(evicted > 0, "nothing was evicted");
    assert!(
        kept_left * 10 >= kept.len() * 9,
        "{kept_left} of {} kept keys left",
        kept.len()
    );
    assert!(
        spent_lost * 5 >= evicted * 4,
        "{spent_lost} of {evicted} evictions took a key that should go"
    );
    assert_near_maxmemory(client).await;
}

/// The heap stays within maxmemory and a write's worth of buffers.
async fn assert_near_maxmemory(client: &Client) {
    let used = info(client, "server", "used_memory").await;
    assert!(used < MAXMEMORY + (1 << 20), "used_memory {used}");
}

#[tokio::test]
async fn allkeys_lru_evicts_the_keys_not_used_lately() {
    let server = start("allkeys-lru");
    let client = server.client().await;
    let (old, hot) = (named("old", 300), named("hot", 100));
    fill(&client, &old, None).await;
    fill(&client, &hot, None).await;
    // The LRU clock counts seconds: let the old keys age, keep the hot ones in use.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    existing(&client, &hot).await;
    let new = named("new", 250);
    fill(&client, &new, None).await;
    evicted_the_right_ones(&client, &[hot, new].concat(), &old).await;
}

#[tokio::test]
async fn allkeys_lfu_evicts_the_keys_used_least() {
    let server = start("allkeys-lfu");
    let client = server.client().await;
    let (cold, hot, new) = (named("cold", 300), named("hot", 100), named("new", 250));
    fill(&client, &hot, None).await;
    for _ in 0..30 {
        existing(&client, &hot).await;
    }
    fill(&client, &cold, None).await;
    fill(&client, &new, None).await;
    evicted_the_right_ones(&client, &hot, &[cold, new].concat()).await;
}

#[tokio::test]
async fn volatile_ttl_evicts_the_nearest_deadlines_and_never_persistent_keys() {
    let server = start("volatile-ttl");
    let client = server.client().await;
    let (persistent, soon, later) = (named("keep", 150), named("soon", 150), named("later", 150));
    fill(&client, &persistent, None).await;
    fill(&client, &later, Some(100_000)).await;
    fill(&client, &soon, Some(1_000)).await;
    fill(&client, &named("more", 100), Some(50_000)).await;
    let persistent_left = existing(&client, &persistent).await.len();
    assert_eq!(
        persistent_left,
        persistent.len(),
        "volatile-ttl evicted a key without a TTL"
    );
    evicted_the_right_ones(&client, &later, &soon).await;
}

#[tokio::test]
async fn volatile_policies_leave_persistent_keys_and_refuse_once_none_can_go() {
    for policy in ["volatile-lru", "volatile-lfu", "volatile-random"] {
        let server = start(policy);
        let client = server.client().await;
        let (persistent, volatile) = (named("keep", 250), named("temp", 250));
        fill(&client, &persistent, None).await;
        fill(&client, &volatile, Some(3_600)).await;
        fill(&client, &named("more", 200), Some(3_600)).await;
        assert_eq!(
            existing(&client, &persistent).await.len(),
            persistent.len(),
            "{policy} evicted a key without a TTL"
        );
        assert!(
            info(&client, "totals", "evicted_keys").await > 0,
            "{policy}"
        );
        // With only persistent keys left to take, writes are refused as under noeviction.
        client.call(support::command("FLUSHALL")).await.unwrap();
        let value = vec![b'x'; VALUE];
        let mut refused = None;
        for i in 0..2_000 {
            if let Err(error) = client.set(format!("p:{i}"), value.clone()).await {
                refused = Some(error);
                break;
            }
        }
        assert_eq!(
            refused.and_then(|e| e.server_code()),
            Some(ErrorCode::Oom),
            "{policy}"
        );
    }
}

#[tokio::test]
async fn allkeys_random_keeps_writes_going_within_maxmemory() {
    let server = start("allkeys-random");
    let client = server.client().await;
    fill(&client, &named("k", 2_000), None).await;
    let left = existing(&client, &named("k", 2_000)).await.len();
    assert!((300..1_000).contains(&left), "{left} keys left");
    assert_near_maxmemory(&client).await;
    let rss = rss_bytes(server.pid()) as i64;
    assert!(
        rss < MAXMEMORY * 2,
        "the resident set ({rss}) stays near maxmemory"
    );
    // Many small writes in each millisecond, each of which must find room.
    for batch in 0..40 {
        let mut pipeline = client.pipeline();
        for i in 0..1_000 {
            pipeline.add(support::command(&format!("SET small:{batch}:{i} x")));
        }
        for (i, reply) in pipeline.execute().await.unwrap().into_iter().enumerate() {
            assert!(reply.is_ok(), "write {batch}:{i} at maxmemory: {reply:?}");
        }
    }
    assert_near_maxmemory(&client).await;
}

#[tokio::test]
async fn used_memory_matches_the_resident_set() {
    let server = TestServer::start_with(&["--shards", "2"]);
    let client = server.client().await;
    let rss_before = rss_bytes(server.pid()) as f64;
    let used_before = info(&client, "server", "used_memory").await as f64;
    // Small values, many keys: the table, the slots and each value's block all count.
    let value = vec![b'v'; 200];
    let mut pipeline = client.pipeline();
    for i in 0..300_000 {
        pipeline.add(tessera_client::Command::Keys(
            tessera_protocol::KeyCommand::Set(tessera_protocol::SetArgs {
                key: format!("key:{i}").into(),
                value: value.clone().into(),
                condition: tessera_protocol::SetCondition::Always,
                expiry: tessera_protocol::SetExpiry::Clear,
                get: false,
            }),
        ));
        if pipeline.len() == 1_000 {
            pipeline.execute().await.unwrap();
            pipeline = client.pipeline();
        }
    }
    // Geo members too: their index was the worst estimate before.
    client
        .call(support::command("GEO.CREATE fleet RES 9"))
        .await
        .unwrap();
    for i in 0..50_000 {
        let lat = 37.70 + (i % 200) as f64 * 0.001;
        let lng = -122.50 + (i / 200) as f64 * 0.001;
        client
            .geo("fleet")
            .upsert(format!("driver:{i}"), lat, lng)
            .await
            .unwrap();
    }
    let grown_rss = rss_bytes(server.pid()) as f64 - rss_before;
    let grown_used = info(&client, "server", "used_memory").await as f64 - used_before;
    let ratio = grown_used / grown_rss;
    assert!(
        (0.8..=1.2).contains(&ratio),
        "used_memory grew {grown_used} bytes where the resident set grew {grown_rss} ({ratio:.2})"
    );
}
