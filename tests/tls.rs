//! TLS against a real server with certificates made in the test: routed clients across
//! shards, client certificates required or optional, and every wrong party refused.

#[path = "support/tls.rs"]
mod certs;
mod support;

use std::path::Path;

use certs::Certs;
use support::TestServer;
use tessera_client::{Client, ClientConfig, ErrorCode, Reply, TlsConfig};

fn start(certs: &Certs, extra: &[&str]) -> TestServer {
    let mut flags = certs.server_flags();
    flags.extend(extra.iter().map(|f| f.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    TestServer::start_with(&flags)
}

fn over_tls(ca: &Path, identity: Option<(&Path, &Path)>) -> ClientConfig {
    ClientConfig {
        tls: Some(TlsConfig::from_pem_files(ca, identity).expect("certificates load")),
        ..ClientConfig::default()
    }
}

async fn info_total(client: &Client, field: &str) -> i64 {
    let info = client.call(support::command("INFO")).await.unwrap();
    info.get("totals")
        .and_then(|t| t.get(field))
        .and_then(Reply::as_int)
        .unwrap()
}

#[tokio::test]
async fn routed_clients_work_over_tls_and_plain_or_untrusting_ones_are_refused() {
    let certs = Certs::generate();
    let server = start(&certs, &["--shards", "3"]);
    // The client opens one connection per shard: each is handed to its shard mid-TLS.
    let client = Client::connect_with(&server.address, over_tls(&certs.ca, None))
        .await
        .unwrap();
    for i in 0..60 {
        client
            .set(format!("key:{i}"), format!("v{i}"))
            .await
            .unwrap();
    }
    for i in 0..60 {
        let value = client.get(format!("key:{i}")).await.unwrap();
        assert_eq!(value.as_deref(), Some(format!("v{i}").as_bytes()));
    }
    let values = client
        .call(support::command("MGET key:1 key:2 key:3 nope"))
        .await
        .unwrap();
    assert_eq!(
        values,
        Reply::Array(vec![
            Reply::Bytes("v1".into()),
            Reply::Bytes("v2".into()),
            Reply::Bytes("v3".into()),
            Reply::Nil
        ])
    );
    assert!(
        Client::connect(&server.address).await.is_err(),
        "plain TCP is refused"
    );
    let untrusting = Client::connect_with(&server.address, over_tls(&certs.rogue_ca, None)).await;
    assert!(
        untrusting.is_err(),
        "a client that does not trust the CA refuses the server"
    );
    let misnamed = ClientConfig {
        tls: Some(
            TlsConfig::from_pem_files(&certs.ca, None)
                .unwrap()
                .with_server_name("db.elsewhere.example"),
        ),
        ..ClientConfig::default()
    };
    assert!(Client::connect_with(&server.address, misnamed)
        .await
        .is_err());
    assert!(info_total(&client, "tls_handshake_failures").await >= 2);
}

#[tokio::test]
async fn a_required_client_certificate_must_come_from_the_ca() {
    let certs = Certs::generate();
    let ca = certs.ca.to_str().unwrap();
    let server = start(&certs, &["--shards", "2", "--tls-ca-cert-file", ca]);
    let good = over_tls(&certs.ca, Some((&certs.client_cert, &certs.client_key)));
    let client = Client::connect_with(&server.address, good).await.unwrap();
    client.set("k", "v").await.unwrap();
    let without = Client::connect_with(&server.address, over_tls(&certs.ca, None)).await;
    assert!(without.is_err(), "no certificate is refused");
    let rogue = over_tls(&certs.ca, Some((&certs.rogue_cert, &certs.rogue_key)));
    assert!(Client::connect_with(&server.address, rogue).await.is_err());
    assert_eq!(client.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

#[tokio::test]
async fn an_optional_client_certificate_may_be_left_out_but_not_forged() {
    let certs = Certs::generate();
    let ca = certs.ca.to_str().unwrap();
    let server = start(
        &certs,
        &[
            "--shards",
            "1",
            "--tls-ca-cert-file",
            ca,
            "--tls-auth-clients",
            "optional",
        ],
    );
    let anonymous = Client::connect_with(&server.address, over_tls(&certs.ca, None))
        .await
        .unwrap();
    anonymous.set("k", "v").await.unwrap();
    let rogue = over_tls(&certs.ca, Some((&certs.rogue_cert, &certs.rogue_key)));
    assert!(Client::connect_with(&server.address, rogue).await.is_err());
}

#[tokio::test]
async fn tls_and_a_password_together() {
    let certs = Certs::generate();
    let server = start(&certs, &["--shards", "2", "--requirepass", "pw"]);
    let without_password = Client::connect_with(&server.address, over_tls(&certs.ca, None)).await;
    assert_eq!(
        without_password.err().and_then(|e| e.server_code()),
        Some(ErrorCode::NoAuth)
    );
    let config = ClientConfig {
        password: Some("pw".into()),
        ..over_tls(&certs.ca, None)
    };
    let client = Client::connect_with(&server.address, config).await.unwrap();
    client.set("k", "v").await.unwrap();
    // The CLI speaks TLS too.
    let cli = std::process::Command::new(support::binary("tessera-cli"))
        .args(["-p", &server.port.to_string(), "--tls", "--cacert"])
        .arg(&certs.ca)
        .args(["-a", "pw", "get", "k"])
        .output()
        .unwrap();
    assert!(
        cli.status.success(),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&cli.stdout).trim(), "v");
}

#[test]
fn a_server_with_a_bad_certificate_refuses_to_start() {
    let certs = Certs::generate();
    let status = std::process::Command::new(support::binary("tessera-server"))
        .args(["--port", "0", "--appendonly", "no", "--tls-cert-file"])
        .arg(&certs.server_cert)
        .arg("--tls-key-file")
        .arg(&certs.client_key)
        .output()
        .unwrap();
    assert!(!status.status.success());
    let said = String::from_utf8_lossy(&status.stderr);
    assert!(said.contains("tls"), "{said}");
}
