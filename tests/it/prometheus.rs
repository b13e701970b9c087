//! The Prometheus files of `deploy/prometheus/`, checked by promtool: the
//! configuration (and the rule file it names) is valid, and every alert
//! passes its unit tests in `alerts_test.yml`.

use std::path::PathBuf;
use std::process::Output;

use bigbrotr_test_support::{promtool, workspace_root};

fn deploy() -> PathBuf {
    workspace_root().join("deploy/prometheus")
}

/// What promtool printed, both streams.
fn said(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_shipped_configurations_and_their_rules_are_valid() {
    // For a process on this machine, and for the Compose services profile.
    for file in ["prometheus.yml", "compose.yml"] {
        let output = promtool()
            .args(["check", "config", file])
            .current_dir(deploy())
            .output()
            .expect("promtool runs");
        let said = said(&output);
        assert!(output.status.success(), "{file}: {said}");
        assert!(
            said.contains("SUCCESS: 1 rule files found"),
            "{file}: {said}"
        );
        assert!(said.contains("SUCCESS: 7 rules found"), "{file}: {said}");
    }
}

#[test]
fn every_alert_passes_its_unit_tests() {
    let output = promtool()
        .args(["test", "rules", "alerts_test.yml"])
        .current_dir(deploy())
        .output()
        .expect("promtool runs");
    let said = said(&output);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("SUCCESS"), "{said}");
}

#[test]
fn every_alert_has_a_unit_test() {
    let rules = std::fs::read_to_string(deploy().join("alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(deploy().join("alerts_test.yml")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 7, "{alerts:?}");
    for alert in alerts {
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "no test of {alert}"
        );
    }
}
