//! The dialer keeps dialing while running campaigns are edited in every way the console form
//! allows, and reports its own health (`/readyz`, `/api/v1/dialer/status`, `/metrics`, the
//! console's header) when its loop stalls. Both backends.

use crate::common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A console session (cookie) and its CSRF token.
async fn console(srv: &Server) -> (reqwest::Client, String) {
    let web = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let (s, me) = post_json(&web, srv.url("/api/v1/auth/login"), json!({"username": "admin", "password": ADMIN_PASSWORD})).await;
    assert_eq!(s, 200, "{me}");
    (web, me["csrf_token"].as_str().unwrap().to_string())
}

/// The dials of a campaign today, and the status's `updated_at`: both must move while the dialer runs.
async fn pulse(c: &reqwest::Client, srv: &Server, canary: i64) -> (i64, String) {
    let (s, p) = get_json(c, srv.url(&format!("/api/v1/campaigns/{canary}/progress"))).await;
    assert_eq!(s, 200, "{p}");
    let (s, st) = get_json(c, srv.url("/api/v1/dialer/status")).await;
    assert_eq!(s, 200, "{st}");
    (p["today"]["dials"].as_i64().unwrap(), st["updated_at"].as_str().unwrap_or("").to_string())
}

/// Checks that the dialer's loop turns now: its status is refreshed, it answers an agent's
/// command, and it still places calls.
async fn assert_dialer_alive(srv: &Server, agent: &reqwest::Client, canary: i64, what: &str) {
    let c = srv.client();
    let (dials0, updated0) = pulse(&c, srv, canary).await;
    let t0 = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), post_json(agent, srv.url("/api/v1/agent/not-ready"), json!({"pause_code": "x"})))
        .await
        .unwrap_or_else(|_| panic!("after {what}: the dialer did not answer an agent's command within 5 s"));
    assert_eq!(r.0, 200, "after {what}: {}", r.1);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (dials, updated) = pulse(&c, srv, canary).await;
        if dials > dials0 && updated != updated0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(12),
            "after {what}: the dialer stopped (dials {dials0} -> {dials}, status updated at {updated0} -> {updated})"
        );
    }
    let (s, health) = get_json(&c, srv.url("/api/v1/dialer/status")).await;
    assert_eq!((s, &health["health"]["state"]), (reqwest::StatusCode::OK, &json!("ok")), "after {what}: {health}");
}

async fn edits_keep_the_dialer_running(backend: &'static str) {
    let srv = Server::start_args(backend, &["serve", "--telephony", "sim", "--sim-agents", "0"]).await;
    let c = srv.client();
    let team = agent_group(&srv, "Team").await;
    user(&srv, "ana", 3, json!({"scope": "all"}), &[team]).await;
    let agent = client_with(&srv.token_for("ana", "long enough pw").await);
    assert_eq!(post_json(&agent, srv.url("/api/v1/agent/login"), json!({})).await.0, 200);
    // The canary dials all the time (agentless); the edited campaign's engine holds all of its
    // small list undialed (progressive, its agent not ready), which is what made a refill after
    // an edit return the held records again and the dialer spin.
    let (canary, _) = campaign(&srv, "Canary", 2000, json!({"dialing_mode": "agentless", "ring_timeout_s": 5})).await;
    let (id, lid) = campaign(&srv, "Edited", 40, json!({"dialing_mode": "progressive", "agent_group_id": team})).await;
    let (_, other_list) = post_json(&c, srv.url("/api/v1/contact-lists"), json!({"name": "Second list"})).await;
    let (_, profile) =
        post_json(&c, srv.url("/api/v1/settings-profiles"), json!({"name": "Slow", "settings": {"ring_timeout_s": 20}})).await;
    let (_, group) = post_json(&c, srv.url("/api/v1/campaign-groups"), json!({"name": "Renewals"})).await;
    let (_, dnc) = post_json(&c, srv.url("/api/v1/dnc-lists"), json!({"name": "Internal extra"})).await;
    let (web, csrf) = console(&srv).await;
    let zone = open_zone();
    let base: Vec<(&str, String)> = vec![
        ("csrf_token", csrf.clone()),
        ("name", "Edited".into()),
        ("contact_list_ids", lid.to_string()),
        ("daily_hours.start", "00:00".into()),
        ("daily_hours.end", "23:59".into()),
        ("time_zone", "UTC".into()),
        ("overrides.dialing_mode", "progressive".into()),
        ("overrides.agent_group_id", team.to_string()),
    ]
    .into_iter()
    .chain(["mon", "tue", "wed", "thu", "fri", "sat", "sun"].map(|d| ("weekdays", d.to_string())))
    .collect();
    let id_of = |v: &Value| v["id"].as_i64().unwrap().to_string();
    // One change at a time, each as the console form posts it (the whole form, one field changed).
    let edits: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("daily end 23:58", vec![("daily_hours.end", "23:58".into())]),
        ("priority", vec![("priority", "5".into())]),
        ("description", vec![("description", "renewals, second wave".into())]),
        ("agent notes", vec![("agent_notes", "be brief".into())]),
        ("name", vec![("name", "Edited again".into())]),
        ("daily start", vec![("daily_hours.start", "00:01".into())]),
        ("time zone", vec![("time_zone", zone.into())]),
        ("start and end dates", vec![("start_date", "2020-01-01".into()), ("end_date", "2099-12-31".into())]),
        ("campaign group", vec![("group_id", id_of(&group))]),
        ("settings profile", vec![("profile_id", id_of(&profile))]),
        ("a second list", vec![("contact_list_ids", id_of(&other_list))]),
        ("ring timeout override", vec![("overrides.ring_timeout_s", "15".into())]),
        ("wrap-up override", vec![("overrides.wrap_up_s", "5".into())]),
        ("max attempts", vec![("overrides.max_attempts_per_number", "3".into()), ("overrides.max_attempts_per_day", "2".into())]),
        ("recall delays", vec![("overrides.min_recall_delay_s", "900".into()), ("overrides.abandon_recall_block_s", "3600".into())]),
        ("sort order", vec![("overrides.sort_order", r#"[{"field": "name", "kind": "alphabetic", "direction": "desc"}]"#.into())]),
        ("record filters", vec![("overrides.record_filters", r#"[{"field": "name", "op": "not_empty"}]"#.into())]),
        ("DNC lists", vec![("overrides.dnc_list_ids", id_of(&dnc))]),
        ("abandon settings", vec![("overrides.abandon_rate_target", "0.02".into()), ("overrides.abandon_policy", "uk_ofcom_24h".into())]),
        ("caller id and recording", vec![("overrides.caller_id", "+12125550000".into()), ("overrides.recording", "true".into())]),
        ("mode: preview", vec![("overrides.dialing_mode", "preview".into()), ("overrides.preview_timeout_s", "30".into())]),
        ("mode: predictive", vec![("overrides.dialing_mode", "predictive".into())]),
        ("mode: power", vec![("overrides.dialing_mode", "power".into()), ("overrides.lines_per_agent", "2".into())]),
        ("weekdays", vec![]),
        ("back to the start", vec![]),
    ];
    let started = Instant::now();
    assert_dialer_alive(&srv, &agent, canary, "the start").await;
    for (what, changes) in &edits {
        let mut form: Vec<(&str, String)> =
            base.iter().filter(|(k, _)| !changes.iter().any(|(c, _)| c == k) || *k == "contact_list_ids").cloned().collect();
        if *what == "weekdays" {
            form.retain(|(k, v)| *k != "weekdays" || v != "sun");
        }
        form.extend(changes.iter().cloned());
        let r = web.post(srv.url(&format!("/campaigns/{id}"))).form(&form).send().await.unwrap();
        let status = r.status();
        assert!(status.is_redirection() || status.is_success(), "{backend}: edit {what}: {status} {}", r.text().await.unwrap());
        let (_, camp) = get_json(&c, srv.url(&format!("/api/v1/campaigns/{id}"))).await;
        assert_eq!(camp["state"], "running", "{backend}: edit {what}: {camp}");
        assert_dialer_alive(&srv, &agent, canary, &format!("{backend}: edit {what}")).await;
    }
    // The engine asks for more records 30 s (its refill back-off) after a refill found none:
    // that refill came after the edits, and the dialer still runs.
    let refill_s = 32;
    if let Some(wait) = Duration::from_secs(refill_s).checked_sub(started.elapsed()) {
        tokio::time::sleep(wait).await;
    }
    assert_dialer_alive(&srv, &agent, canary, &format!("{backend}: {refill_s} s after the first edit")).await;
    // Every edit is in the audit log as a console change.
    let (_, log) = get_json(&c, srv.url(&format!("/api/v1/audit?entity_type=campaign&entity_id={id}"))).await;
    let updates = log["items"].as_array().unwrap().iter().filter(|e| e["action"] == "update" && e["via"] == "console").count();
    assert_eq!(updates, edits.len(), "{backend}: {log}");
}

#[tokio::test]
async fn editing_running_campaigns_in_every_way_the_form_allows_never_stops_the_dialer() {
    tokio::join!(edits_keep_the_dialer_running("sqlite"), edits_keep_the_dialer_running("postgres"));
}

async fn a_stalled_loop_is_reported(backend: &'static str) {
    // The test hook stops the dialer's loop for 16 s after its first turn (the limit is 10 s).
    let srv = Server::start_args_env(
        backend,
        &["serve", "--telephony", "sim", "--sim-agents", "0"],
        &[("CAMPANA_TEST_DIALER_STALL_S", "16"), ("CAMPANA_LOG", "error")],
    )
    .await;
    let c = srv.client();
    let started = Instant::now();
    let team = agent_group(&srv, "Team").await;
    user(&srv, "ana", 3, json!({"scope": "all"}), &[team]).await;
    let agent = client_with(&srv.token_for("ana", "long enough pw").await);
    let (s, st) = get_json(&c, srv.url("/api/v1/dialer/status")).await;
    assert_eq!((s.as_u16(), &st["health"]["state"]), (200, &json!("ok")), "{backend}: {st}");
    assert_eq!(reqwest::get(srv.url("/readyz")).await.unwrap().status(), 200);
    // Stalled: /readyz says so with the reason, and so do the status, the metrics and the console.
    let ready = loop {
        let r = reqwest::get(srv.url("/readyz")).await.unwrap();
        if r.status() == 503 {
            break r.text().await.unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(14), "{backend}: /readyz never reported the stalled dialer");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(ready.contains("dialer stalled") && ready.contains("has not turned"), "{backend}: {ready}");
    let (_, st) = get_json(&c, srv.url("/api/v1/dialer/status")).await;
    let h = &st["health"];
    assert_eq!(h["state"], "stalled", "{backend}: {st}");
    assert!(h["last_loop_age_s"].as_f64().unwrap() >= 10.0 && h["reason"].is_string(), "{backend}: {h}");
    let iterations = h["loop_iterations"].as_u64().unwrap();
    assert!(iterations >= 1, "{h}");
    let metrics = reqwest::get(srv.url("/metrics")).await.unwrap().text().await.unwrap();
    let age: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("campana_dialer_last_loop_age_seconds "))
        .unwrap_or_else(|| panic!("no last-loop age in {metrics}"))
        .parse()
        .unwrap();
    assert!(age >= 10.0, "{backend}: {age}");
    assert!(metrics.lines().any(|l| l == "campana_dialer_healthy 0"), "{backend}: {metrics}");
    assert!(metrics.contains("campana_dialer_loop_iterations_total"), "{metrics}");
    // An agent's command is refused at once with the reason, not left hanging.
    let t = Instant::now();
    let (s, e) = post_json(&agent, srv.url("/api/v1/agent/login"), json!({})).await;
    assert_eq!(s, 503, "{backend}: {e}");
    assert!(e["detail"].as_str().unwrap().contains("has not turned") && t.elapsed() < Duration::from_secs(2), "{backend}: {e}");
    let (web, _) = console(&srv).await;
    let html = web.get(srv.url("/campaigns")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"dialer-alert\"") && html.contains("The dialer is not working"), "{backend}: {html}");
    // The loop turns again: healthy everywhere, the iterations move on.
    let st = wait_for(&c, srv.url("/api/v1/dialer/status"), "a healthy dialer again", |v| v["health"]["state"] == "ok").await;
    assert!(st["health"]["loop_iterations"].as_u64().unwrap() > iterations, "{st}");
    assert_eq!(reqwest::get(srv.url("/readyz")).await.unwrap().status(), 200, "{backend}");
    assert_eq!(post_json(&agent, srv.url("/api/v1/agent/login"), json!({})).await.0, 200, "{backend}");
    let html = web.get(srv.url("/campaigns")).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("dialer-alert"), "{backend}");
    let metrics = reqwest::get(srv.url("/metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == "campana_dialer_healthy 1"), "{backend}: {metrics}");
}

#[tokio::test]
async fn a_stalled_dialer_loop_is_reported_on_readyz_status_metrics_and_console() {
    tokio::join!(a_stalled_loop_is_reported("sqlite"), a_stalled_loop_is_reported("postgres"));
}

async fn forecasts_are_bounded(backend: &'static str) {
    let srv =
        Server::start_args_env(backend, &["serve", "--telephony", "sim", "--sim-agents", "0"], &[("CAMPANA_FORECAST_BUDGET_S", "5")]).await;
    let c = srv.client();
    let (canary, _) = campaign(&srv, "Canary", 2000, json!({"dialing_mode": "agentless", "ring_timeout_s": 5})).await;
    let url = srv.url(&format!("/api/v1/campaigns/{canary}/forecast"));
    // Every value outside its limits is a 422 naming the field (1e308 s of talk panicked).
    for (body, field) in [
        (json!({"agents": 2, "talk_mean_s": 1e308}), "talk_mean_s"),
        (json!({"agents": 2, "talk_mean_s": -1}), "talk_mean_s"),
        (json!({"agents": 2, "talk_mean_s": 0}), "talk_mean_s"),
        (json!({"agents": 2, "wrap_mean_s": -3}), "wrap_mean_s"),
        (json!({"agents": 2, "wrap_mean_s": 1e9}), "wrap_mean_s"),
        (json!({"agents": 5000}), "agents"),
        (json!({"agents": 0}), "agents"),
        (json!({"agents": 2, "answer_rate": -0.1}), "answer_rate"),
        (json!({"agents": 2, "busy_rate": 2}), "busy_rate"),
        (json!({"agents": 2, "answer_rate": 0.7, "machine_rate": 0.5}), "answer_rate"),
        (json!({"agents": 2, "finish_by": "2999-01-01T00:00:00Z"}), "finish_by"),
    ] {
        let (s, e) = post_json(&c, url.clone(), body.clone()).await;
        assert_eq!(s, 422, "{backend}: {body}: {e}");
        assert_eq!(e["errors"][0]["field"], field, "{backend}: {body}: {e}");
    }
    // The OpenAPI document states the limits.
    let (_, doc) = get_json(&c, srv.url("/api/openapi.json")).await;
    let props = &doc["components"]["schemas"]["ForecastRequest"]["properties"];
    assert_eq!((props["agents"]["minimum"].as_f64(), props["agents"]["maximum"].as_f64()), (Some(1.0), Some(1000.0)), "{props}");
    assert_eq!(props["talk_mean_s"]["maximum"].as_f64(), Some(86400.0), "{props}");
    assert_eq!(props["answer_rate"]["maximum"].as_f64(), Some(1.0), "{props}");
    // A small forecast answers.
    let (s, f) = post_json(&c, url.clone(), json!({"agents": 2, "answer_rate": 0.3})).await;
    assert_eq!(s, 200, "{backend}: {f}");
    // Heavy forecasts, more than the pool takes: some are refused at once (busy), the others
    // run off the async threads and are stopped at their budget; meanwhile /healthz answers
    // within a second and the dialer keeps its loop turning and dialing.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let heavy = json!({"agents": 1000, "talk_mean_s": 30, "wrap_mean_s": 1, "answer_rate": 0.5,
        "finish_by": (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339()});
    // Waves of them for at least 8 s, so the dialer has time to place calls meanwhile (one wave
    // may end in under a second on a fast machine).
    let (dials0, _) = pulse(&c, &srv, canary).await;
    let t0 = Instant::now();
    let plain = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut worst = Duration::ZERO;
    let mut statuses = Vec::new();
    while t0.elapsed() < Duration::from_secs(8) {
        let jobs: Vec<_> = (0..3 * cores + 2)
            .map(|_| {
                let (c, url, body) = (c.clone(), url.clone(), heavy.clone());
                tokio::spawn(async move { post_json(&c, url, body).await })
            })
            .collect();
        while !jobs.iter().all(|j| j.is_finished()) {
            let t = Instant::now();
            let r = plain.get(srv.url("/healthz")).send().await.expect("/healthz answers");
            assert_eq!(r.status(), 200);
            worst = worst.max(t.elapsed());
            let (s, st) = get_json(&c, srv.url("/api/v1/dialer/status")).await;
            assert_eq!((s.as_u16(), &st["health"]["state"]), (200, &json!("ok")), "{backend}: {st}");
            assert!(t0.elapsed() < Duration::from_secs(60), "{backend}: forecasts still running after 60 s");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for j in jobs {
            let (s, e) = j.await.unwrap();
            assert!(s == 200 || s == 503, "{backend}: {s} {e}");
            if s == 503 {
                let d = e["detail"].as_str().unwrap_or_default();
                assert!(d.contains("busy") || d.contains("time budget of 5 s"), "{backend}: {e}");
            }
            statuses.push((s.as_u16(), e["detail"].as_str().unwrap_or_default().contains("busy")));
        }
    }
    assert!(worst < Duration::from_secs(1), "{backend}: /healthz took {worst:?} while forecasts ran");
    assert!(statuses.iter().any(|(_, busy)| *busy), "{backend}: no forecast was refused as busy: {statuses:?}");
    let (dials, _) = pulse(&c, &srv, canary).await;
    assert!(dials > dials0, "{backend}: the dialer placed no call while forecasts ran ({dials0} -> {dials})");
    // After the storm: a small forecast answers again.
    let (s, f) = post_json(&c, url, json!({"agents": 2, "answer_rate": 0.3})).await;
    assert_eq!(s, 200, "{backend}: {f}");
}

#[tokio::test]
async fn forecasts_are_validated_bounded_and_leave_the_server_responsive() {
    // One backend after the other: each server's pool takes every core.
    for backend in BACKENDS {
        forecasts_are_bounded(backend).await;
    }
}
