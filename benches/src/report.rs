//! Formats one workload's results as a table line or JSON.

use crate::driver::Run;
use crate::{Args, Workload};

/// Prints the results of one workload.
pub fn print(
    args: &Args,
    workload: Workload,
    run: &Run,
    server_cpu_seconds: Option<f64>,
    bytes_per_new_key: Option<f64>,
) {
    let seconds = run.elapsed.as_secs_f64();
    let ops_per_second = run.completed as f64 / seconds;
    let quantile_us = |q: f64| run.latency_us.value_at_quantile(q);
    let max_us = run.latency_us.max();
    let cpu_per_million = server_cpu_seconds.map(|cpu| cpu / run.completed as f64 * 1e6);
    if args.json {
        let line = serde_json::json!({
            "workload": workload.name(),
            "target": format!("{:?}", args.target).to_lowercase(),
            "bytes_per_new_key": bytes_per_new_key,
            "clients": args.clients,
            "pipeline": args.pipeline,
            "keyspace": args.keyspace,
            "value_size": args.value_size,
            "routed": !args.unrouted,
            "requests": run.completed,
            "errors": run.errors,
            "seconds": seconds,
            "ops_per_second": ops_per_second,
            "p50_us": quantile_us(0.5),
            "p99_us": quantile_us(0.99),
            "p999_us": quantile_us(0.999),
            "p9999_us": quantile_us(0.9999),
            "max_us": max_us,
            "server_cpu_seconds": server_cpu_seconds,
            "server_cpu_s_per_million_ops": cpu_per_million,
        });
        println!("{line}");
    } else {
        print!(
            "{:<4} clients={} pipeline={} requests={} errors={} {:>10.0} ops/s  p50={}us p99={}us p99.9={}us p99.99={}us max={}us",
            workload.name(),
            args.clients,
            args.pipeline,
            run.completed,
            run.errors,
            ops_per_second,
            quantile_us(0.5),
            quantile_us(0.99),
            quantile_us(0.999),
            quantile_us(0.9999),
            max_us,
        );
        if let Some(cpu) = cpu_per_million {
            print!("  server_cpu={cpu:.3}s/M ops");
        }
        if let Some(bytes) = bytes_per_new_key {
            print!("  {bytes:.0} bytes/new key");
        }
        println!();
    }
}
