//! A deployment's own calling-hours file (`--calling-hours`): the API, the console page, the
//! compliance preview and `campana check-number` all use it; a bad file stops Campana at start
//! with the set and the fault named.

use crate::common;

use common::*;
use serde_json::{json, Value};

const RULES: &str = r#"
[sets.default]
description = "Ours: 10:00 to 18:00, no calls on Sundays."
hours = [["10:00", "18:00"]]
closed_weekdays = ["sun"]

[sets.default.regions.US-FL]
hours = [["11:00", "17:00"]]
holidays = ["12-24"]
"#;

fn run(args: &[&str]) -> std::process::Output {
    std::process::Command::new(bin()).args(args).env("RUST_BACKTRACE", "0").output().expect("run campana")
}

#[test]
fn check_number_uses_the_deployment_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hours.toml");
    std::fs::write(&file, RULES).unwrap();
    // 09:00 in Chicago on a Wednesday: open under the shipped rules, closed under ours.
    let at = "2026-11-25T15:00:00Z";
    let out = run(&["check-number", "+13125550143", "--at", at]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["allowed"], true, "{r}");
    let out = run(&["--calling-hours", file.to_str().unwrap(), "check-number", "+13125550143", "--at", at]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((r["allowed"].as_bool(), r["reason"].as_str()), (Some(false), Some("contact_outside_hours")), "{r}");
    assert_eq!(r["next_allowed_at"], "2026-11-25T16:00:00Z", "10:00 in Chicago: {r}");

    // A mistake in the file: Campana refuses to start and says where.
    std::fs::write(&file, "[sets.default]\nhours = [[\"18:00\", \"10:00\"]]\n").unwrap();
    let out = run(&["--calling-hours", file.to_str().unwrap(), "check-number", "+13125550143"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hours.toml") && err.contains("'default'") && err.contains("does not end after it starts"), "{err}");
}

#[tokio::test]
async fn the_rules_in_force_are_shown_and_applied() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hours.toml");
        std::fs::write(&file, RULES).unwrap();
        let srv = Server::start_args(backend, &["serve", "--calling-hours", file.to_str().unwrap()]).await;
        let c = srv.client();
        let (s, h) = get_json(&c, srv.url("/api/v1/calling-hours")).await;
        assert_eq!(s, 200, "{h}");
        assert!(h["source"].as_str().unwrap().ends_with("hours.toml"), "{h}");
        assert_eq!(h["sets"].as_array().unwrap().len(), 1, "{h}");
        let set = &h["sets"][0];
        assert_eq!((set["name"].as_str(), set["base"]["hours"][0].as_str()), (Some("default"), Some("10:00-18:00")), "{h}");
        assert_eq!(set["base"]["closed_weekdays"], json!(["sun"]));
        assert_eq!(set["regions"]["US-FL"]["holidays"], json!(["12-24"]));

        // The compliance preview of a campaign applies them: 09:00 in Chicago is closed.
        let (s, list) = post_json(&c, srv.url("/api/v1/contact-lists"), json!({"name": "Chicago"})).await;
        assert_eq!(s, 201, "{list}");
        let lid = list["id"].as_i64().unwrap();
        let member =
            json!({"members": [{"external_id": "c1", "contact": {"name": "Ana", "phones": [{"number": "+13125550100", "type": "home"}]}}]});
        assert_eq!(post_json(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records/bulk-upsert")), member).await.0, 200);
        let (s, camp) = post_json(
            &c,
            srv.url("/api/v1/campaigns"),
            json!({"name": "Chicago calls", "daily_hours": {"start": "00:00", "end": "23:59"},
                   "weekdays": ["mon","tue","wed","thu","fri","sat","sun"], "time_zone": "UTC", "contact_list_ids": [lid]}),
        )
        .await;
        assert_eq!(s, 201, "{camp}");
        let id = camp["id"].as_i64().unwrap();
        let (_, p) = get_json(&c, srv.url(&format!("/api/v1/campaigns/{id}/compliance-preview?at=2026-11-25T15:00:00Z"))).await;
        assert_eq!(p["by_reason"]["contact_outside_hours"], 1, "{backend}: {p}");
        let (_, p) = get_json(&c, srv.url(&format!("/api/v1/campaigns/{id}/compliance-preview?at=2026-11-25T17:00:00Z"))).await;
        assert_eq!(p["dialable_now"], 1, "{backend}: 11:00 in Chicago: {p}");

        // The console's page lists the set, its region and the file.
        let web = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let (s, _) = post_json(&web, srv.url("/api/v1/auth/login"), json!({"username": "admin", "password": ADMIN_PASSWORD})).await;
        assert_eq!(s, 200);
        let html = web.get(srv.url("/calling-hours")).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("id=\"set-default\"") && html.contains("US-FL") && html.contains("10:00-18:00"), "{html}");
        assert!(html.contains("hours.toml"), "{backend}");
    }
}
