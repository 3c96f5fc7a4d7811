//! The live views: `--stat`, a line per interval of what the node is doing (from INFO),
//! and `--latency`, PING round trips sampled as redis-cli's `--latency` does.

use std::time::{Duration, Instant};

use tessera_client::{Client, Error};
use tessera_protocol::{AdminCommand, Command, Value};

/// What `--stat` reads from one INFO.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Requests completed since start.
    pub ops: u64,
    /// Calls between shards since start.
    pub hops: u64,
    /// Connections open.
    pub clients: u64,
    /// Keys stored.
    pub keys: u64,
    /// Heap bytes the node holds.
    pub memory: u64,
    /// Requests per latency bucket, cumulative: `(bound in µs, count)`, the last bound -1.
    pub buckets: Vec<(i64, u64)>,
}

impl Reading {
    /// Reads the figures `--stat` shows out of an INFO reply.
    pub fn from_info(info: &Value) -> Option<Reading> {
        let totals = info.get("totals")?;
        let int = |map: &Value, key: &str| map.get(key).and_then(Value::as_int).unwrap_or(0) as u64;
        let buckets = match info.get("latency_buckets") {
            Some(Value::Array(rows)) => rows
                .iter()
                .filter_map(|row| match row {
                    Value::Array(pair) => match &pair[..] {
                        [Value::Int(bound), Value::Int(count)] => Some((*bound, *count as u64)),
                        _ => None,
                    },
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        Some(Reading {
            ops: int(totals, "ops"),
            hops: int(totals, "forwarded_out"),
            clients: int(totals, "connections"),
            keys: int(totals, "keys"),
            memory: info
                .get("server")
                .map_or(0, |server| int(server, "used_memory")),
            buckets,
        })
    }
}

/// The bucket bound (µs) under which 99% of the requests between two readings finished;
/// `None` when none finished, `Some(-1)` when the 1% tail is past the last bound.
pub fn p99_between(before: &Reading, after: &Reading) -> Option<i64> {
    let counts: Vec<(i64, u64)> = after
        .buckets
        .iter()
        .map(|&(bound, count)| {
            let earlier = before
                .buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0, |(_, c)| *c);
            (bound, count.saturating_sub(earlier))
        })
        .collect();
    let total = counts.last()?.1;
    if total == 0 {
        return None;
    }
    let wanted = total - total / 100;
    counts
        .iter()
        .find(|(_, count)| *count >= wanted)
        .map(|(bound, _)| *bound)
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.2}{}", UNITS[unit])
    }
}

fn p99_text(p99: Option<i64>) -> String {
    match p99 {
        None => "-".into(),
        Some(-1) => ">5s".into(),
        Some(us) if us >= 1000 => format!("<={}ms", us / 1000),
        Some(us) => format!("<={us}us"),
    }
}

/// The header `--stat` prints every 20 lines.
pub const STAT_HEADER: &str = "keys       mem        clients  ops/s      hops/s     p99";

/// One `--stat` line: the state at `after` and the rates since `before`.
pub fn stat_line(before: &Reading, after: &Reading, elapsed: Duration) -> String {
    let per_second = |then: u64, now: u64| {
        let seconds = elapsed.as_secs_f64().max(1e-3);
        (now.saturating_sub(then) as f64 / seconds).round() as u64
    };
    format!(
        "{:<10} {:<10} {:<8} {:<10} {:<10} {}",
        after.keys,
        human_bytes(after.memory),
        after.clients,
        per_second(before.ops, after.ops),
        per_second(before.hops, after.hops),
        p99_text(p99_between(before, after)),
    )
}

/// `--stat`: a line every `interval`, `lines` of them (until Ctrl-C when `None`).
pub async fn stat(client: &Client, interval: Duration, lines: Option<u64>) -> Result<(), Error> {
    let info = || client.call(Command::Admin(AdminCommand::Info));
    let read = |value: Value| {
        Reading::from_info(&value).ok_or_else(|| Error::Protocol("INFO without totals".into()))
    };
    let mut before = read(info().await?)?;
    let mut taken = Instant::now();
    let mut printed = 0;
    while lines.is_none_or(|limit| printed < limit) {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
        let after = read(info().await?)?;
        let now = Instant::now();
        if printed % 20 == 0 {
            println!("{STAT_HEADER}");
        }
        println!("{}", stat_line(&before, &after, now - taken));
        (before, taken) = (after, now);
        printed += 1;
    }
    Ok(())
}

/// Round trips seen so far, in milliseconds.
#[derive(Debug, Default, Clone, Copy)]
struct Trips {
    samples: u64,
    total_ms: f64,
    min_ms: f64,
    max_ms: f64,
}

impl Trips {
    fn add(&mut self, ms: f64) {
        if self.samples == 0 || ms < self.min_ms {
            self.min_ms = ms;
        }
        self.max_ms = self.max_ms.max(ms);
        self.total_ms += ms;
        self.samples += 1;
    }

    fn line(&self) -> String {
        format!(
            "min: {:.3}, max: {:.3}, avg: {:.3} ({} samples)",
            self.min_ms,
            self.max_ms,
            self.total_ms / self.samples.max(1) as f64,
            self.samples
        )
    }
}

/// `--latency`: PINGs every 10 ms, a line of min/max/avg (ms) every `interval`, `lines`
/// of them (until Ctrl-C when `None`); each line covers every sample so far.
pub async fn latency(client: &Client, interval: Duration, lines: Option<u64>) -> Result<(), Error> {
    let mut trips = Trips::default();
    let mut printed = 0;
    let mut next_line = Instant::now() + interval;
    while lines.is_none_or(|limit| printed < limit) {
        let sent = Instant::now();
        client
            .call(Command::Admin(AdminCommand::Ping(None)))
            .await?;
        trips.add(sent.elapsed().as_secs_f64() * 1000.0);
        if Instant::now() >= next_line {
            println!("{}", trips.line());
            printed += 1;
            next_line += interval;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(ops: u64, buckets: &[(i64, u64)]) -> Reading {
        Reading {
            ops,
            buckets: buckets.to_vec(),
            ..Reading::default()
        }
    }

    #[test]
    fn p99_comes_from_the_requests_between_two_readings() {
        let before = reading(0, &[(10, 50), (100, 60), (1000, 60), (-1, 60)]);
        // 1,000 more requests: 985 under 10 µs, 10 under 100 µs, 5 under 1 ms.
        let after = reading(1000, &[(10, 1035), (100, 1055), (1000, 1060), (-1, 1060)]);
        assert_eq!(p99_between(&before, &after), Some(100));
        assert_eq!(p99_between(&after, &after), None);
        let line = stat_line(&before, &after, Duration::from_secs(2));
        assert!(line.contains(" 500 "), "{line}");
        assert!(line.ends_with("<=100us"), "{line}");
    }

    #[test]
    fn info_gives_the_figures() {
        let info = Value::Map(vec![
            (
                Value::text("server"),
                Value::Map(vec![(Value::text("used_memory"), Value::Int(2048))]),
            ),
            (
                Value::text("totals"),
                Value::Map(vec![
                    (Value::text("ops"), Value::Int(7)),
                    (Value::text("forwarded_out"), Value::Int(3)),
                    (Value::text("connections"), Value::Int(2)),
                    (Value::text("keys"), Value::Int(5)),
                ]),
            ),
            (
                Value::text("latency_buckets"),
                Value::Array(vec![Value::Array(vec![Value::Int(-1), Value::Int(7)])]),
            ),
        ]);
        let reading = Reading::from_info(&info).expect("totals are there");
        assert_eq!(
            reading,
            Reading {
                ops: 7,
                hops: 3,
                clients: 2,
                keys: 5,
                memory: 2048,
                buckets: vec![(-1, 7)],
            }
        );
        assert_eq!(human_bytes(2048), "2.00K");
    }
}
