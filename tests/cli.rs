//! tessera-cli as an operator uses it: one-shot commands, redis-cli style output, JSON, exit codes.

mod support;

use std::process::{Command, Output};

use support::TestServer;

fn cli(server: &TestServer, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera-cli"))
        .args(["-p", &server.port.to_string()])
        .args(args)
        .output()
        .expect("tessera-cli runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_string()
}

#[test]
fn set_get_ttl_del_behave_like_redis_cli() {
    let server = TestServer::start(2);
    let set = cli(&server, &["set", "k", "v", "ex", "10"]);
    assert!(set.status.success());
    assert_eq!(stdout(&set), "OK");
    assert_eq!(stdout(&cli(&server, &["get", "k"])), "v");
    let ttl: i64 = stdout(&cli(&server, &["ttl", "k"])).parse().unwrap();
    assert!((9..=10).contains(&ttl));
    assert_eq!(stdout(&cli(&server, &["del", "k"])), "1");
    let missing = cli(&server, &["get", "k"]);
    assert!(missing.status.success());
    assert_eq!(stdout(&missing), "");
    assert_eq!(stdout(&cli(&server, &["ttl", "k"])), "-2");
}

#[test]
fn json_output_parses() {
    let server = TestServer::start(2);
    cli(&server, &["mset", "a", "1", "b", "2"]);
    let output = cli(&server, &["--json", "mget", "a", "b", "nope"]);
    let parsed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(parsed, serde_json::json!(["1", "2", null]));
    let info: serde_json::Value =
        serde_json::from_slice(&cli(&server, &["--json", "info"]).stdout).unwrap();
    assert_eq!(info["server"]["shards"], serde_json::json!(2));
    assert_eq!(info["totals"]["keys"], serde_json::json!(2));
    let error = cli(&server, &["--json", "incrby", "a", "x"]);
    assert!(!error.status.success());
    let parsed: serde_json::Value = serde_json::from_slice(&error.stdout).unwrap();
    assert_eq!(parsed["error"]["name"], serde_json::json!("NOT_INTEGER"));
}

#[test]
fn error_replies_exit_non_zero() {
    let server = TestServer::start(1);
    let unknown = cli(&server, &["nosuchcommand"]);
    assert!(!unknown.status.success());
    assert!(stdout(&unknown).starts_with("(error) UNKNOWN_COMMAND"));
    let arity = cli(&server, &["get"]);
    assert!(!arity.status.success());
    assert!(stdout(&arity).contains("wrong number of arguments"));
    cli(&server, &["set", "s", "text"]);
    assert!(!cli(&server, &["incrby", "s", "1"]).status.success());
}

#[test]
fn unreachable_server_is_reported() {
    let server = TestServer::start(1);
    let port = server.port.to_string();
    drop(server);
    let output = Command::new(env!("CARGO_BIN_EXE_tessera-cli"))
        .args(["-p", &port, "ping"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("Could not connect"));
}

#[test]
fn interactive_prompt_runs_commands_from_stdin() {
    use std::io::Write;
    let server = TestServer::start(2);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera-cli"))
        .args(["-p", &server.port.to_string()])
        .env("HOME", std::env::temp_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"set \"spaced key\" hello\nget \"spaced key\"\nquit\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("OK") && text.contains("hello"), "{text}");
}

#[test]
fn presence_watch_prints_the_baseline_then_each_push() {
    let server = TestServer::start(2);
    let mut watcher = Command::new(env!("CARGO_BIN_EXE_tessera-cli"))
        .args(["-p", &server.port.to_string()])
        .args(["--json", "--pushes", "2", "presence.watch", "rider:7"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("tessera-cli runs");
    let watched = || {
        let info: serde_json::Value =
            serde_json::from_slice(&cli(&server, &["--json", "info"]).stdout).unwrap();
        info["totals"]["watched_users"] == serde_json::json!(1)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !watched() {
        assert!(
            std::time::Instant::now() < deadline,
            "the watch never registered"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(cli(&server, &["presence.beat", "rider:7", "meta", "eu"])
        .status
        .success());
    assert!(cli(&server, &["presence.leave", "rider:7"])
        .status
        .success());
    while watcher.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = watcher.kill();
            panic!("tessera-cli did not stop after two pushes");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = watcher.wait_with_output().unwrap();
    assert!(output.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines,
        vec![
            serde_json::json!([[false, null, null, 0]]),
            serde_json::json!(["presence", "rider:7", true, "eu", 1]),
            serde_json::json!(["presence", "rider:7", false, null, 2]),
        ]
    );
}

#[test]
fn geo_commands_work_from_the_cli() {
    let server = TestServer::start(2);
    assert_eq!(
        stdout(&cli(
            &server,
            &[
                "geo.upsert",
                "drivers",
                "d:1",
                "52.52",
                "13.405",
                "status",
                "available"
            ]
        )),
        "1"
    );
    cli(
        &server,
        &["geo.upsert", "drivers", "d:2", "52.53", "13.405"],
    );
    assert_eq!(
        stdout(&cli(
            &server,
            &["geo.near", "drivers", "52.52", "13.405", "5", "radius", "5000"]
        )),
        "d:1\nd:2"
    );
    assert_eq!(
        stdout(&cli(&server, &["geo.claim", "drivers", "d:1", "ttl", "30"])),
        "OK"
    );
    let again = cli(&server, &["geo.claim", "drivers", "d:1"]);
    assert!(!again.status.success(), "a second claim is refused");
    let near = cli(
        &server,
        &[
            "--json", "geo.near", "drivers", "52.52", "13.405", "1", "claim",
        ],
    );
    let parsed: serde_json::Value = serde_json::from_slice(&near.stdout).unwrap();
    assert_eq!(
        parsed,
        serde_json::json!(["d:2"]),
        "NEAR ... CLAIM skips the offered driver"
    );
    let get: serde_json::Value =
        serde_json::from_slice(&cli(&server, &["--json", "geo.get", "drivers", "d:1"]).stdout)
            .unwrap();
    assert_eq!(get["status"], serde_json::json!("offered"));
    assert_eq!(get["lat"], serde_json::json!(52.52));
    assert_eq!(
        stdout(&cli(
            &server,
            &["geo.count", "drivers", "status", "offered"]
        )),
        "2"
    );
    let bad = cli(&server, &["geo.upsert", "drivers", "d:3", "95", "0"]);
    assert!(!bad.status.success(), "latitude out of range is refused");
}

#[test]
fn cli_prints_a_rate_limit_decision() {
    let server = TestServer::start(1);
    let output = Command::new(env!("CARGO_BIN_EXE_tessera-cli"))
        .args([
            "-p",
            &server.port.to_string(),
            "--json",
            "rl.check",
            "k",
            "limit",
            "2",
            "window",
            "1000",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let decision: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(decision["allowed"], serde_json::json!(true));
    assert_eq!(decision["remaining"], serde_json::json!(1));
}

#[test]
fn hashes_work_from_the_prompt_words() {
    let server = TestServer::start(2);
    assert_eq!(
        stdout(&cli(&server, &["hset", "h", "a", "1", "b", "2"])),
        "2"
    );
    assert_eq!(stdout(&cli(&server, &["hincrby", "h", "a", "5"])), "6");
    assert_eq!(stdout(&cli(&server, &["hget", "h", "a"])), "6");
    let codes = stdout(&cli(
        &server,
        &["hexpire", "h", "60", "FIELDS", "2", "b", "zz"],
    ));
    assert_eq!(codes.lines().collect::<Vec<_>>(), vec!["1", "-2"]);
    let all: serde_json::Value =
        serde_json::from_slice(&cli(&server, &["--json", "hgetall", "h"]).stdout).unwrap();
    assert_eq!(all["a"], serde_json::json!("6"));
    assert_eq!(all["b"], serde_json::json!("2"));
    let refused = cli(&server, &["hexpire", "h", "60", "FIELDS", "3", "b"]);
    assert!(!refused.status.success());
}

#[test]
fn sorted_sets_work_from_the_prompt_words() {
    let server = TestServer::start(2);
    assert_eq!(
        stdout(&cli(&server, &["zadd", "lb", "10", "ann", "20", "bob"])),
        "2"
    );
    assert_eq!(stdout(&cli(&server, &["zincrby", "lb", "15", "ann"])), "25");
    assert_eq!(stdout(&cli(&server, &["zrevrank", "lb", "ann"])), "0");
    let top: serde_json::Value = serde_json::from_slice(
        &cli(
            &server,
            &["--json", "zrange", "lb", "0", "0", "REV", "WITHSCORES"],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(top, serde_json::json!([["ann", 25.0]]));
    let refused = cli(&server, &["zadd", "lb", "NX", "XX", "1", "x"]);
    assert!(!refused.status.success());
}

#[test]
fn pass_authenticates_and_its_absence_is_refused() {
    let server = TestServer::start_with(&["--shards", "2", "--requirepass", "pw"]);
    let refused = cli(&server, &["ping"]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr).to_string() + &stdout(&refused);
    assert!(said.contains("NOAUTH"), "{said}");
    let ok = cli(&server, &["-a", "pw", "set", "k", "v"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(stdout(&cli(&server, &["--pass", "pw", "get", "k"])), "v");
    let as_user = cli(&server, &["--user", "default", "-a", "pw", "acl.whoami"]);
    assert_eq!(stdout(&as_user), "default");
}

#[tokio::test]
async fn cluster_create_forms_a_cluster_and_nodes_lists_it() {
    let cluster = support::cluster::TestCluster::start(3, 1);
    let node = cluster.nodes[0].as_ref().unwrap();
    let addresses: Vec<String> = (0..3).map(|at| cluster.address(at)).collect();
    let mut create = vec!["cluster", "create", "--replicas", "0"];
    create.extend(addresses.iter().map(String::as_str));
    let formed = cli(node, &create);
    assert!(formed.status.success(), "{formed:?}");
    assert_eq!(stdout(&formed), "epoch: 1");
    cluster.wait_serving().await;

    let nodes = cli(node, &["--json", "cluster", "nodes"]);
    let listed: serde_json::Value = serde_json::from_slice(&nodes.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 3);
    let slots: i64 = listed.iter().map(|n| n["slots"].as_i64().unwrap()).sum();
    assert_eq!(slots, 16_384);
    assert!(
        listed.iter().all(|n| n["state"] == "ok" && n["epoch"] == 1),
        "{listed:?}"
    );
    assert_eq!(
        listed.iter().filter(|n| n["role"] == "leader").count(),
        1,
        "{listed:?}"
    );
    let table = stdout(&cli(node, &["cluster", "slots"]));
    assert!(table.starts_with("epoch 1\n    0-"), "{table}");
    let refused = cli(node, &["cluster", "create", &addresses[0]]);
    assert!(!refused.status.success());
    // Keys sent through the CLI land wherever their slot lives.
    for key in ["a", "b", "c", "d"] {
        assert_eq!(stdout(&cli(node, &["set", key, "1"])), "OK");
    }
    assert_eq!(stdout(&cli(node, &["exists", "a", "b", "c", "d"])), "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_create_gives_each_primary_a_replica_by_default() {
    let cluster = support::cluster::TestCluster::start(5, 1);
    let node = cluster.nodes[0].as_ref().unwrap();
    let mut create = vec!["--json".to_string(), "cluster".into(), "create".into()];
    create.extend((0..5).map(|at| cluster.address(at)));
    let create: Vec<&str> = create.iter().map(String::as_str).collect();
    let formed = cli(node, &create);
    assert!(formed.status.success(), "{formed:?}");
    let layout: serde_json::Value = serde_json::from_slice(&formed.stdout).unwrap();
    assert_eq!(layout["primaries"], serde_json::json!([1, 2]), "{layout}");
    assert_eq!(
        layout["replicas"],
        serde_json::json!([
            {"replica": 3, "primary": 1},
            {"replica": 4, "primary": 2},
            {"replica": 5, "primary": 1},
        ])
    );
    cluster.wait_serving().await;

    let nodes = cli(node, &["--json", "cluster", "nodes"]);
    let listed: serde_json::Value = serde_json::from_slice(&nodes.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    let follows: Vec<(i64, serde_json::Value)> = listed
        .iter()
        .map(|n| (n["id"].as_i64().unwrap(), n["replica_of"].clone()))
        .collect();
    let null = serde_json::Value::Null;
    let of = |p: i64| serde_json::json!(p);
    assert_eq!(
        follows,
        vec![
            (1, null.clone()),
            (2, null),
            (3, of(1)),
            (4, of(2)),
            (5, of(1))
        ]
    );
    let slots: Vec<i64> = listed
        .iter()
        .map(|n| n["slots"].as_i64().unwrap())
        .collect();
    assert_eq!(slots[0] + slots[1], 16_384, "{slots:?}");
    assert!(
        slots[0] > 0 && slots[1] > 0 && slots[2..] == [0, 0, 0],
        "{slots:?}"
    );
    // Each write reaches every copy of its slot: both of node 1's replicas catch up.
    for key in ["a", "b", "c", "d", "e", "f"] {
        assert_eq!(stdout(&cli(node, &["set", key, "1"])), "OK");
    }
    let on_primaries =
        support::replicas::dbsize(&cluster, 0).await + support::replicas::dbsize(&cluster, 1).await;
    assert_eq!(on_primaries, 6);
    for (replica, primary) in [(2, 0), (3, 1), (4, 0)] {
        support::replicas::wait_caught_up(&cluster, replica, primary).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_add_node_move_slot_and_remove_node_keep_every_key() {
    let mut cluster = support::cluster::TestCluster::formed(2, 1).await;
    let third = cluster.add_node(2);
    let node = cluster.nodes[0].as_ref().unwrap();
    let keys: Vec<String> = (0..300).map(|i| format!("key:{i}")).collect();
    for chunk in keys.chunks(100) {
        let mut mset = vec!["mset"];
        for key in chunk {
            mset.extend([key.as_str(), key.as_str()]);
        }
        assert_eq!(stdout(&cli(node, &mset)), "OK");
    }
    let count = |node: &TestServer| stdout(&cli(node, &["dbsize"])).parse::<usize>().unwrap();

    let joined = cli(
        node,
        &["--json", "cluster", "add-node", &cluster.address(third)],
    );
    assert!(joined.status.success(), "{joined:?}");
    let report: serde_json::Value = serde_json::from_slice(&joined.stdout).unwrap();
    let moves = report["moves"].as_array().unwrap();
    assert!(moves.iter().all(|m| m["to"] == 3), "{report}");
    let slots: i64 = moves
        .iter()
        .map(|m| m["report"]["slots"].as_i64().unwrap())
        .sum();
    assert!(
        (slots - 16_384 / 3).abs() < 16_384 / 30,
        "{slots} slots moved to the third node"
    );
    let held = count(cluster.nodes[third].as_ref().unwrap());
    let sent: usize = moves
        .iter()
        .map(|m| m["report"]["keys"].as_u64().unwrap() as usize)
        .sum();
    assert_eq!(held, sent, "the third node holds what was sent to it");
    assert!((60..=140).contains(&held), "{held} of 300 keys moved");

    // One slot, by hand, back to node 1.
    let slot = stdout(&cli(node, &["cluster.keyslot", "key:7"]));
    let moved = cli(node, &["cluster", "move-slot", &slot, "1"]);
    assert!(moved.status.success(), "{moved:?}");
    let slots_now = stdout(&cli(node, &["cluster", "slots"]));
    let mine = slots_now.lines().skip(1).any(|line| {
        let (range, rest) = line.trim().split_once(' ').unwrap();
        let (first, last) = range.split_once('-').unwrap();
        let slot: u16 = slot.parse().unwrap();
        (first.trim().parse::<u16>().unwrap()..=last.trim().parse::<u16>().unwrap()).contains(&slot)
            && rest.trim_start().starts_with("node 1 ")
    });
    assert!(mine, "slot {slot} is node 1's now:\n{slots_now}");

    let removed = cli(node, &["cluster", "remove-node", "2"]);
    assert!(removed.status.success(), "{removed:?}");
    assert!(
        stdout(&removed).starts_with("node 2 removed"),
        "{}",
        stdout(&removed)
    );
    let listed = cli(node, &["--json", "cluster", "nodes"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let ids: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 3]);
    assert_eq!(
        count(cluster.nodes[1].as_ref().unwrap()),
        0,
        "the leaver holds nothing"
    );
    let third_node = cluster.nodes[third].as_ref().unwrap();
    assert_eq!(
        count(node) + count(third_node),
        300,
        "every key on exactly one node"
    );
    let mut exists = vec!["exists"];
    exists.extend(keys.iter().map(String::as_str));
    assert_eq!(stdout(&cli(node, &exists)), "300");
    assert_eq!(stdout(&cli(third_node, &["get", "key:7"])), "key:7");
}

#[test]
fn stat_prints_a_line_per_interval_with_the_requests_between() {
    let server = TestServer::start(2);
    let writer = {
        let port = server.port;
        std::thread::spawn(move || {
            for n in 0..200 {
                let out = Command::new(env!("CARGO_BIN_EXE_tessera-cli"))
                    .args(["-p", &port.to_string(), "set", &format!("s{n}"), "v"])
                    .output()
                    .expect("tessera-cli runs");
                if !out.status.success() {
                    return false;
                }
            }
            true
        })
    };
    let stat = cli(&server, &["--stat", "-i", "0.5", "--lines", "3"]);
    assert!(stat.status.success());
    let text = stdout(&stat);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "a header and three lines: {text}");
    assert!(lines[0].starts_with("keys"), "{text}");
    for line in &lines[1..] {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 6, "keys mem clients ops/s hops/s p99: {line}");
        fields[0].parse::<u64>().expect("keys is a count");
        fields[3].parse::<u64>().expect("ops/s is a count");
    }
    assert!(writer.join().unwrap());
    let after = stdout(&cli(&server, &["--stat", "-i", "0.2", "--lines", "1"]));
    let last: Vec<&str> = after
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(last[0], "200", "every key the writer set: {last:?}");
}

#[test]
fn latency_samples_pings_and_slowlog_reads_as_two_words() {
    let server = TestServer::start_with(&["--shards", "2", "--slowlog-log-slower-than", "0"]);
    let latency = cli(&server, &["--latency", "-i", "0.2", "--lines", "2"]);
    assert!(latency.status.success());
    let text = stdout(&latency);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[1].starts_with("min: "), "{text}");
    assert!(lines[1].ends_with(" samples)"), "{text}");
    assert!(stdout(&cli(&server, &["set", "slow", "v"])) == "OK");
    let logged = stdout(&cli(&server, &["slowlog", "get", "-1"]));
    assert!(logged.lines().any(|l| l == "SET"), "{logged}");
    assert!(
        logged.lines().any(|l| l == "slow"),
        "the key is logged: {logged}"
    );
    assert_eq!(stdout(&cli(&server, &["slowlog", "reset"])), "OK");
}
