//! CONFIG GET/SET and FUNCTION FLUSH over RESP: the settings a Redis client or Redis's
//! own test harness reads and sets, answered from the node's settings.

use std::collections::BTreeMap;

use bytes::Bytes;
use tessera_protocol::{ErrorCode, Value};

use std::sync::atomic::Ordering;

use crate::data::{glob, notices};
use crate::shard::NodeInfo;

/// Redis's encoding settings, and its RDB schedule (`save`): accepted and read back, with
/// no effect (small hashes and sorted sets use packed forms at Redis's default limits;
/// snapshots follow `--snapshot-after-bytes`).
const ENCODING_PREFIXES: &[&str] = &["list-", "hash-", "set-", "zset-", "stream-", "save"];

/// The settings CONFIG GET reports, by Redis's names.
fn settings(node: &NodeInfo) -> BTreeMap<String, String> {
    let mut all: BTreeMap<String, String> = [
        ("maxmemory", node.maxmemory.to_string()),
        ("maxmemory-policy", node.eviction.name().to_string()),
        ("maxclients", node.maxclients.to_string()),
        (
            "timeout",
            node.idle_timeout.map_or(0, |t| t.as_secs()).to_string(),
        ),
        ("port", node.resp_port.to_string()),
        ("databases", "1".to_string()),
        (
            "cluster-enabled",
            if node.cluster.is_some() { "yes" } else { "no" }.to_string(),
        ),
        ("proto-max-bulk-len", node.max_frame_bytes.to_string()),
        (
            "notify-keyspace-events",
            notices::render(node.notify_flags.load(Ordering::Relaxed)),
        ),
        (
            "slowlog-log-slower-than",
            node.thresholds.slowlog_slower_than_us().to_string(),
        ),
        (
            "slowlog-max-len",
            node.thresholds.slowlog_max_len().to_string(),
        ),
        (
            "latency-monitor-threshold",
            node.thresholds.latency_monitor_ms().to_string(),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    if let Ok(encodings) = node.encoding_settings.lock() {
        all.extend(encodings.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    all
}

/// CONFIG GET pattern... / CONFIG SET name value... / CONFIG RESETSTAT.
pub fn config(node: &NodeInfo, args: &[&[u8]]) -> Value {
    let sub = args[1].to_ascii_uppercase();
    let text = |t: &str| Value::Bytes(Bytes::copy_from_slice(t.as_bytes()));
    match &sub[..] {
        b"GET" if args.len() > 2 => {
            let all = settings(node);
            let pairs = all
                .iter()
                .filter(|(name, _)| {
                    args[2..]
                        .iter()
                        .any(|p| glob::matches(&p.to_ascii_lowercase(), name.as_bytes()))
                })
                .map(|(name, value)| (text(name), text(value)))
                .collect();
            Value::Map(pairs)
        }
        b"SET" if args.len() > 3 && args.len().is_multiple_of(2) => set(node, &args[2..]),
        b"RESETSTAT" if args.len() == 2 => Value::Ok,
        _ => Value::error(
            ErrorCode::Syntax,
            format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try CONFIG HELP.",
                String::from_utf8_lossy(args[1])
            ),
        ),
    }
}

/// The settings CONFIG SET changes while the node runs, each checked before any is set.
#[derive(Clone, Copy)]
enum Live {
    SlowlogSlowerThan(i64),
    SlowlogMaxLen(usize),
    LatencyThreshold(u64),
}

impl Live {
    /// The setting `name` with `value`, or the refusal Redis words for a bad value;
    /// `None` for a name that is not one of these.
    fn parse(name: &str, value: &str) -> Option<Result<Live, Value>> {
        let number = || {
            value.parse::<i64>().map_err(|_| {
                Value::error(
                    ErrorCode::Syntax,
                    format!("CONFIG SET failed (possibly related to argument '{name}') - argument couldn't be parsed into an integer"),
                )
            })
        };
        let at_least_zero = |n: i64| {
            if n < 0 {
                Err(Value::error(
                    ErrorCode::Syntax,
                    format!("CONFIG SET failed (possibly related to argument '{name}') - argument must be between 0 and 9223372036854775807 inclusive"),
                ))
            } else {
                Ok(n)
            }
        };
        Some(match name {
            "slowlog-log-slower-than" => number().map(Live::SlowlogSlowerThan),
            "slowlog-max-len" => number()
                .and_then(at_least_zero)
                .map(|n| Live::SlowlogMaxLen(n as usize)),
            "latency-monitor-threshold" => number()
                .and_then(at_least_zero)
                .map(|n| Live::LatencyThreshold(n as u64)),
            _ => return None,
        })
    }

    fn apply(self, node: &NodeInfo) {
        match self {
            Live::SlowlogSlowerThan(micros) => node.thresholds.set_slowlog_slower_than_us(micros),
            Live::SlowlogMaxLen(len) => node.thresholds.set_slowlog_max_len(len),
            Live::LatencyThreshold(ms) => node.thresholds.set_latency_monitor_ms(ms),
        }
    }
}

/// CONFIG SET: all of the pairs, or none of them.
fn set(node: &NodeInfo, pairs: &[&[u8]]) -> Value {
    let mut accepted = Vec::new();
    let mut live = Vec::new();
    let mut notify = None;
    for pair in pairs.chunks(2) {
        let name = String::from_utf8_lossy(pair[0]).to_ascii_lowercase();
        let value = String::from_utf8_lossy(pair[1]).into_owned();
        if let Some(setting) = Live::parse(&name, &value) {
            match setting {
                Ok(setting) => live.push(setting),
                Err(refusal) => return refusal,
            }
        } else if name == "notify-keyspace-events" {
            match notices::parse(&value) {
                Some(flags) => notify = Some(flags),
                None => {
                    return Value::error(
                        ErrorCode::Syntax,
                        "CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
                    )
                }
            }
        } else if ENCODING_PREFIXES.iter().any(|p| name.starts_with(p)) {
            accepted.push((name, value));
        } else if settings(node).contains_key(&name) {
            return Value::error(
                ErrorCode::Syntax,
                format!(
                    "CONFIG SET failed (possibly related to argument '{name}') - it is set at start: restart with --{name}"
                ),
            );
        } else {
            return Value::error(
                ErrorCode::Syntax,
                format!("Unknown option or number of arguments for CONFIG SET - '{name}'"),
            );
        }
    }
    if let Ok(mut encodings) = node.encoding_settings.lock() {
        encodings.extend(accepted);
    }
    if let Some(flags) = notify {
        node.notify_flags.store(flags, Ordering::Relaxed);
    }
    for setting in live {
        setting.apply(node);
    }
    Value::Ok
}

/// FUNCTION FLUSH: there are no functions here, so there is nothing to flush.
pub fn function(args: &[&[u8]]) -> Value {
    let sub = args[1].to_ascii_uppercase();
    match (&sub[..], args.len()) {
        (b"FLUSH", 2 | 3) => Value::Ok,
        (b"LIST", _) => Value::Array(Vec::new()),
        _ => Value::error(
            ErrorCode::Syntax,
            format!(
                "unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
                String::from_utf8_lossy(args[1])
            ),
        ),
    }
}
