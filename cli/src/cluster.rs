//! `tessera-cli cluster ...`: forming a cluster and looking at one, for operators.

use tessera_client::{ClientConfig, ClusterCommand, Connection, Error};
use tessera_protocol::{Command, Value};

use crate::render::{render_human, render_raw, to_json};
use crate::Style;

/// What `cluster` takes after it.
const USAGE: &str = "usage: tessera-cli cluster info | slots | nodes | create HOST:PORT...";

/// Runs `cluster WORDS...` against `address`; `Err` with what to print on failure.
pub async fn run(
    address: &str,
    config: &ClientConfig,
    words: &[String],
    style: Style,
) -> Result<String, String> {
    let json = matches!(style, Style::Json);
    let ask = |addr: String, command: ClusterCommand| async move {
        let connection = Connection::open(&addr, None, config)
            .await
            .map_err(|e| format!("{addr}: {e}"))?;
        connection
            .request(Command::Cluster(command))
            .await
            .map_err(|e: Error| format!("{addr}: {e}"))
    };
    match words.first().map(|w| w.to_ascii_lowercase()).as_deref() {
        Some("info") => {
            let info = ask(address.to_string(), ClusterCommand::Info).await?;
            Ok(render_map(&info, style))
        }
        Some("slots") => {
            let slots = ask(address.to_string(), ClusterCommand::Slots).await?;
            Ok(if json {
                to_json(&slots).to_string()
            } else {
                render_slots(&slots)
            })
        }
        Some("nodes") => {
            let slots = ask(address.to_string(), ClusterCommand::Slots).await?;
            let mut rows = Vec::new();
            for node in list(&slots, "nodes") {
                let addr = text(node.get("addr"));
                // A node that does not answer is shown as such, not skipped.
                let info = ask(addr.clone(), ClusterCommand::Info).await.ok();
                rows.push(NodeRow {
                    id: int(node.get("id")),
                    addr,
                    shards: int(node.get("shards")),
                    slots: owned_slots(&slots, int(node.get("id"))),
                    state: info
                        .as_ref()
                        .map_or("unreachable".into(), |i| text(i.get("state"))),
                    role: info.as_ref().map_or("-".into(), |i| text(i.get("role"))),
                    epoch: info.as_ref().map_or(-1, |i| int(i.get("epoch"))),
                });
            }
            Ok(render_nodes(&rows, json))
        }
        Some("create") if words.len() > 1 => {
            let mut line: Vec<String> = Vec::new();
            for addr in &words[1..] {
                let me = ask(addr.clone(), ClusterCommand::Myself).await?;
                line.extend([
                    int(me.get("id")).to_string(),
                    text(me.get("bus")),
                    text(me.get("addr")),
                    int(me.get("shards")).to_string(),
                ]);
            }
            let words: Vec<bytes::Bytes> = std::iter::once("CLUSTER.CREATE".to_string())
                .chain(line)
                .map(bytes::Bytes::from)
                .collect();
            let command = Command::parse_words(&words).map_err(|e| e.to_string())?;
            let Command::Cluster(create) = command else {
                return Err("CLUSTER.CREATE did not parse as itself".into());
            };
            let formed = ask(words_first(&words[..]), create).await?;
            Ok(render_map(&formed, style))
        }
        _ => Err(USAGE.into()),
    }
}

/// The first node named after CLUSTER.CREATE's id: its client address.
fn words_first(words: &[bytes::Bytes]) -> String {
    String::from_utf8_lossy(&words[3]).into_owned()
}

struct NodeRow {
    id: i64,
    addr: String,
    shards: i64,
    slots: i64,
    state: String,
    role: String,
    epoch: i64,
}

fn render_nodes(rows: &[NodeRow], json: bool) -> String {
    if json {
        let nodes: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.id, "addr": r.addr, "shards": r.shards, "slots": r.slots,
                    "state": r.state, "role": r.role, "epoch": r.epoch,
                })
            })
            .collect();
        return serde_json::Value::Array(nodes).to_string();
    }
    let mut out = format!(
        "{:<4} {:<22} {:>6} {:>6} {:<12} {:<10} {:>5}",
        "id", "addr", "shards", "slots", "state", "role", "epoch"
    );
    for r in rows {
        out.push_str(&format!(
            "\n{:<4} {:<22} {:>6} {:>6} {:<12} {:<10} {:>5}",
            r.id, r.addr, r.shards, r.slots, r.state, r.role, r.epoch
        ));
    }
    out
}

fn render_slots(slots: &Value) -> String {
    let mut out = format!("epoch {}", int(slots.get("epoch")));
    let addr_of = |id: i64| {
        list(slots, "nodes")
            .iter()
            .find(|n| int(n.get("id")) == id)
            .map_or("?".into(), |n| text(n.get("addr")))
    };
    for range in list(slots, "ranges") {
        if let Value::Array(three) = range {
            let n = |i: usize| three.get(i).and_then(Value::as_int).unwrap_or(-1);
            out.push_str(&format!(
                "\n{:>5}-{:<5} node {} {}",
                n(0),
                n(1),
                n(2),
                addr_of(n(2))
            ));
        }
    }
    out
}

fn render_map(value: &Value, style: Style) -> String {
    match style {
        Style::Json => to_json(value).to_string(),
        Style::Human => render_human(value),
        Style::Raw => render_raw(value),
    }
}

fn owned_slots(slots: &Value, id: i64) -> i64 {
    list(slots, "ranges")
        .iter()
        .filter_map(|range| match range {
            Value::Array(three) if three.get(2).and_then(Value::as_int) == Some(id) => {
                Some(three[1].as_int()? - three[0].as_int()? + 1)
            }
            _ => None,
        })
        .sum()
}

fn list<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    match value.get(key) {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

fn int(value: Option<&Value>) -> i64 {
    value.and_then(Value::as_int).unwrap_or(-1)
}

fn text(value: Option<&Value>) -> String {
    match value {
        Some(Value::Text(t)) => t.clone(),
        Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::Int(n)) => n.to_string(),
        _ => "-".into(),
    }
}
