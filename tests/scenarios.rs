//! The scenario load tests against a real server: each runs briefly at a small scale and
//! its invariants hold, its JSON report is complete, and its plots are written.

mod support;

use std::process::Command;

use support::TestServer;

/// Runs one scenario for two seconds against a fresh two-shard server and returns its
/// JSON report.
fn run(scenario: &str, scale: &str) -> (serde_json::Value, tempfile::TempDir) {
    let server = TestServer::start(2);
    let plots = tempfile::tempdir().expect("a temporary folder");
    let output = Command::new(env!("CARGO_BIN_EXE_tessera-bench"))
        .args(["--port", &server.port.to_string(), "--scenario", scenario])
        .args(["--duration", "2", "--scale", scale, "--clients", "4"])
        .args([
            "--check",
            "--json",
            "--server-pid",
            &server.pid().to_string(),
        ])
        .arg("--plot")
        .arg(plots.path())
        .output()
        .expect("tessera-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{scenario} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().next().expect("a report line")).expect("JSON");
    (report, plots)
}

/// Every check held, every operation completed without errors, and the figures named are
/// there.
fn assert_sound(report: &serde_json::Value, checks: usize, figures: &[&str]) {
    let held: Vec<_> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .collect();
    assert_eq!(held.len(), checks, "{report}");
    for check in held {
        assert_eq!(check["passed"], true, "{check}");
    }
    for op in report["operations"].as_array().expect("operations") {
        assert_eq!(op["errors"], 0, "{op}");
        assert!(op["calls"].as_u64().unwrap() > 0, "{op}");
        assert!(!op["series"].as_array().unwrap().is_empty(), "{op}");
    }
    for figure in figures {
        assert!(
            report["figures"][figure].as_f64().unwrap() > 0.0,
            "{figure}: {report}"
        );
    }
    assert!(report["server_cpu_seconds"].as_f64().unwrap() > 0.0);
}

fn assert_plotted(plots: &tempfile::TempDir, scenario: &str) {
    let png = std::fs::read(plots.path().join(format!("{scenario}.png"))).expect("a PNG");
    assert_eq!(&png[..4], b"\x89PNG");
    let svg =
        std::fs::read_to_string(plots.path().join(format!("{scenario}.svg"))).expect("an SVG");
    assert!(
        svg.contains("<svg") && svg.contains("p99"),
        "{}",
        &svg[..200.min(svg.len())]
    );
}

#[test]
fn flash_sale_never_oversells_and_abandoned_carts_give_units_back() {
    let (report, plots) = run("flash-sale", "0.2");
    assert_sound(&report, 3, &["carts", "units sold", "carts abandoned"]);
    assert_plotted(&plots, "flash-sale");
}

#[test]
fn ad_exchange_bills_each_impression_once_within_budgets_and_caps() {
    let (report, plots) = run("ad-exchange", "0.1");
    assert_sound(&report, 4, &["impressions billed", "impression retries"]);
    assert_plotted(&plots, "ad-exchange");
}

#[test]
fn dinner_rush_assigns_one_driver_per_order_and_charges_once() {
    let (report, plots) = run("dinner-rush", "0.1");
    assert_sound(&report, 4, &["orders", "units sold"]);
    assert_plotted(&plots, "dinner-rush");
}

#[test]
fn ride_hailing_trips_keep_their_acknowledged_states() {
    let (report, plots) = run("ride-hailing", "0.1");
    assert_sound(&report, 4, &["ride requests", "surge cells read"]);
    assert_plotted(&plots, "ride-hailing");
}

#[test]
fn chat_pages_by_cursor_without_repeats_and_routes_every_message() {
    let (report, plots) = run("chat", "0.1");
    assert_sound(
        &report,
        5,
        &["messages sent", "history reads", "watched users gone away"],
    );
    assert_plotted(&plots, "chat");
}
