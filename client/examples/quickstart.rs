//! Quickstart: connect, SET/GET with a TTL, and a pipelined batch.
//!
//! Start a server (`cargo run --release -p tessera-server --bin tessera-server`), then:
//! `cargo run -p tessera-client --example quickstart [HOST:PORT]`.

use std::time::Duration;
use tessera_protocol::KeyCommand;

use tessera_client::{Client, Command, SetArgs, SetCondition, SetExpiry, Ttl};

#[tokio::main(flavor = "current_thread")]
async fn main() -> tessera_client::Result<()> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7379".into());
    let client = Client::connect(&address).await?;
    println!(
        "connected to {} ({} shards)",
        client.hello().node_id,
        client.hello().shards
    );

    // A session token that lives for 30 seconds, written only if absent.
    let written = client.set("session:42", "token-abc").ex(30).nx().await?;
    println!("SET NX EX 30 -> {written}");
    let value = client.get("session:42").await?;
    println!("GET -> {:?}", value.as_deref().map(String::from_utf8_lossy));
    if let Ttl::Expires(left) = client.ttl("session:42").await? {
        println!("TTL -> {:.1}s left", left.as_secs_f64());
    }

    // A pipelined batch: 100 writes in flight at once, each sent straight to its shard.
    let mut pipeline = client.pipeline();
    for i in 0..100 {
        pipeline.add(Command::Keys(KeyCommand::Set(SetArgs {
            key: format!("item:{i}").into(),
            value: format!("{i}").into(),
            condition: SetCondition::Always,
            expiry: SetExpiry::In(Duration::from_secs(60).as_millis() as u64),
            get: false,
        })));
    }
    let replies = pipeline.execute().await?;
    println!(
        "pipelined {} SETs, {} ok",
        replies.len(),
        replies.iter().filter(|r| r.is_ok()).count()
    );

    let values = client
        .mget(["item:0", "item:50", "item:99", "missing"])
        .await?;
    println!("MGET -> {values:?}");
    println!("DBSIZE -> {}", client.dbsize().await?);
    Ok(())
}
