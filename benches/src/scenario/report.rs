//! Prints a scenario's run: per-operation percentiles, its counts and checks, as a table
//! or as one JSON line, and the two servers side by side.

use super::load::OpStats;
use super::Report;
use crate::Args;

fn total_ops(report: &Report) -> u64 {
    report
        .ops
        .iter()
        .filter(|op| !op.flow)
        .map(|op| op.total.len())
        .sum()
}

fn cpu_per_million(report: &Report) -> Option<f64> {
    let ops = total_ops(report);
    report
        .server_cpu_seconds
        .filter(|_| ops > 0)
        .map(|cpu| cpu / ops as f64 * 1e6)
}

fn millis(op: &OpStats, quantile: f64) -> f64 {
    op.total.value_at_quantile(quantile) as f64 / 1000.0
}

/// Prints one run.
pub fn print(args: &Args, report: &Report) {
    if args.json {
        println!("{}", json(report));
        return;
    }
    println!(
        "\n{} on {}: {:.0} s at scale {}",
        report.scenario.name(),
        report.side.name(),
        report.seconds,
        args.scale
    );
    println!(
        "  {:<22} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "operation", "calls", "errors", "per s", "p50 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for op in &report.ops {
        let name = if op.flow {
            format!("{} (flow)", op.name)
        } else {
            op.name.to_string()
        };
        println!(
            "  {:<22} {:>9} {:>7} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            name,
            op.total.len(),
            op.errors,
            op.total.len() as f64 / report.seconds,
            millis(op, 0.5),
            millis(op, 0.99),
            millis(op, 0.999),
            op.total.max() as f64 / 1000.0,
        );
    }
    for (name, value) in &report.outcome.figures {
        println!("  {name}: {value}");
    }
    if let Some(cpu) = report.server_cpu_seconds {
        print!("  server CPU: {cpu:.2} s");
        if let Some(per_million) = cpu_per_million(report) {
            print!(" ({per_million:.2} s per million operations)");
        }
        println!();
    }
    for check in &report.outcome.checks {
        let verdict = if check.passed { "held" } else { "FAILED" };
        println!("  check: {} ... {verdict}: {}", check.name, check.detail);
    }
}

/// Prints Redis's figures beside Tessera's: p99 per operation both ran, and server CPU.
pub fn compare(tessera: &Report, redis: &Report) {
    println!(
        "\n{}: Tessera beside Redis (same offered load)",
        tessera.scenario.name()
    );
    println!(
        "  {:<22} {:>12} {:>12} {:>14}",
        "operation", "p99 tessera", "p99 redis", "redis/tessera"
    );
    for op in &tessera.ops {
        let Some(theirs) = redis.ops.iter().find(|other| other.name == op.name) else {
            continue;
        };
        let (ours, theirs) = (millis(op, 0.99), millis(theirs, 0.99));
        println!(
            "  {:<22} {:>10.2}ms {:>10.2}ms {:>13.2}x",
            op.name,
            ours,
            theirs,
            theirs / ours.max(0.001)
        );
    }
    if let (Some(ours), Some(theirs)) = (tessera.server_cpu_seconds, redis.server_cpu_seconds) {
        println!(
            "  server CPU seconds: tessera {ours:.2}, redis {theirs:.2}: redis/tessera {:.2}x",
            theirs / ours.max(1e-9)
        );
    }
}

fn json(report: &Report) -> serde_json::Value {
    let ops: Vec<_> = report
        .ops
        .iter()
        .map(|op| {
            let series: Vec<_> = op
                .intervals
                .iter()
                .enumerate()
                .map(|(slot, histogram)| {
                    serde_json::json!({
                        "t": slot as f64 * super::load::INTERVAL.as_secs_f64(),
                        "per_second": histogram.len() as f64 / super::load::INTERVAL.as_secs_f64(),
                        "p99_ms": histogram.value_at_quantile(0.99) as f64 / 1000.0,
                    })
                })
                .collect();
            serde_json::json!({
                "operation": op.name,
                "flow": op.flow,
                "calls": op.total.len(),
                "errors": op.errors,
                "per_second": op.total.len() as f64 / report.seconds,
                "p50_ms": millis(op, 0.5),
                "p99_ms": millis(op, 0.99),
                "p999_ms": millis(op, 0.999),
                "max_ms": op.total.max() as f64 / 1000.0,
                "series": series,
            })
        })
        .collect();
    let figures: serde_json::Map<_, _> = report
        .outcome
        .figures
        .iter()
        .map(|(name, value)| (name.to_string(), serde_json::json!(value)))
        .collect();
    let checks: Vec<_> = report
        .outcome
        .checks
        .iter()
        .map(|check| {
            serde_json::json!({"check": check.name, "passed": check.passed, "detail": check.detail})
        })
        .collect();
    serde_json::json!({
        "scenario": report.scenario.name(),
        "target": report.side.name(),
        "seconds": report.seconds,
        "operations": ops,
        "figures": figures,
        "checks": checks,
        "server_cpu_seconds": report.server_cpu_seconds,
        "server_cpu_s_per_million_ops": cpu_per_million(report),
    })
}
