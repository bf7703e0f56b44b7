//! The engine's and simulator's command-line entry points.

use crate::common;

use serde_json::Value;

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(common::bin()).args(args).env("RUST_BACKTRACE", "0").output().expect("run campana")
}

#[test]
fn check_number_explains_and_names_the_next_moment() {
    let out = run(&["check-number", "+13125550143", "--at", "2026-11-25T12:00:00Z"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["allowed"], false);
    assert_eq!(r["reason"], "contact_outside_hours");
    assert_eq!(r["zones"][0]["zone"], "America/Chicago");
    assert_eq!(r["next_allowed_at"], "2026-11-25T14:00:00Z", "08:00 in Chicago");
    let out = run(&["check-number", "+13125550143", "--at", "2026-11-25T15:00:00Z"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["allowed"], true, "{r}");
    let out = run(&["check-number", "555"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no country code"));
}

#[test]
fn simulate_is_deterministic() {
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/../sim/scenarios/small-predictive.toml");
    let a = run(&["simulate", "--scenario", scenario, "--seed", "3"]);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let b = run(&["simulate", "--scenario", scenario, "--seed", "3"]);
    assert_eq!(a.stdout, b.stdout, "same seed, same summary");
    let s: Value = serde_json::from_slice(&a.stdout).unwrap();
    assert!(s["dials"].as_u64().unwrap() > 0);
    assert_eq!(s["violations"].as_array().unwrap().len(), 0, "{s}");
}
