//! The live dialer in the real server on simulated telephony: an agent takes a call through the
//! agent API, and `kill -9` at random moments during a campaign loses nothing.

use crate::common;

use common::*;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn an_agent_takes_a_call_and_schedules_a_callback() {
    for backend in BACKENDS {
        let srv = Server::start_args(backend, &["serve", "--telephony", "sim", "--sim-agents", "0"]).await;
        let c = srv.client();
        let team = agent_group(&srv, "Team").await;
        user(&srv, "ana", 3, json!({"scope": "all"}), &[team]).await;
        let (_, script) =
            post_json(&c, srv.url("/api/v1/scripts"), json!({"name": "Hello", "body": "Hello {{name}}, this is {{agent}}."})).await;
        let (s, cb) =
            post_json(&c, srv.url("/api/v1/dispositions"), json!({"name": "Call back", "colour": "#f9a825", "is_callback": true})).await;
        assert_eq!(s, 201, "{cb}");
        let (id, lid) = campaign(
            &srv,
            "Renewals",
            30,
            json!({"dialing_mode": "progressive", "agent_group_id": team, "script_id": script["id"], "ring_timeout_s": 8}),
        )
        .await;

        let agent = client_with(&srv.token_for("ana", "long enough pw").await);
        // Not logged in to the dialer yet: a clear refusal.
        let (s, e) = post_json(&agent, srv.url("/api/v1/agent/ready"), json!({})).await;
        assert_eq!(s, StatusCode::CONFLICT, "{backend}: {e}");
        assert!(e["detail"].as_str().unwrap().contains("not logged in"), "{e}");
        assert_eq!(post_json(&agent, srv.url("/api/v1/agent/login"), json!({})).await.0, 200);
        let (s, e) = post_json(&agent, srv.url("/api/v1/agent/not-ready"), json!({"pause_code": " "})).await;
        assert_eq!(s, 422, "{e}");
        assert_eq!(e["errors"][0]["field"], "pause_code");
        assert_eq!(post_json(&agent, srv.url("/api/v1/agent/ready"), json!({})).await.0, 200);

        // The simulated customer answers one of the calls; the agent sees record, notes, script.
        let screen = wait_for(&agent, srv.url("/api/v1/agent/state"), "a connected call", |v| v["agent"]["state"] == "on_call").await;
        assert_eq!(screen["campaign"]["id"], id, "{screen}");
        let name = screen["record"]["name"].as_str().unwrap();
        assert_eq!(screen["script"], format!("Hello {name}, this is ana."), "{screen}");
        assert!(screen["dispositions"].as_array().unwrap().iter().any(|d| d["name"] == "Call back"));
        let call_id = screen["agent"]["call_id"].as_u64().unwrap();
        let rid = screen["record"]["id"].as_i64().unwrap();

        // Bad dispositions are refused with the field named; nothing changes.
        let (s, e) = post_json(&agent, srv.url("/api/v1/agent/disposition"), json!({"call_id": call_id, "disposition_id": 999_999})).await;
        assert_eq!((s, e["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("disposition_id")), "{e}");
        let (s, e) = post_json(&agent, srv.url("/api/v1/agent/disposition"), json!({"call_id": call_id, "disposition_id": cb["id"]})).await;
        assert_eq!((s, e["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("callback")), "{e}");
        // Another campaign's disposition is refused exactly as one that does not exist (the
        // answer does not tell which ids exist), and nothing changes.
        let body = json!({"name": "Other", "daily_hours": {"start": "00:00", "end": "23:59"}, "weekdays": ["mon"], "time_zone": "UTC"});
        let (s, other) = post_json(&c, srv.url("/api/v1/campaigns"), body).await;
        assert_eq!(s, 201, "{other}");
        let (s, theirs) = post_json(
            &c,
            srv.url("/api/v1/dispositions"),
            json!({"name": "Sold elsewhere", "colour": "#43a047", "is_final": true, "campaign_id": other["id"]}),
        )
        .await;
        assert_eq!(s, 201, "{theirs}");
        let (s, refused) =
            post_json(&agent, srv.url("/api/v1/agent/disposition"), json!({"call_id": call_id, "disposition_id": theirs["id"]})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{backend}: another campaign's disposition: {refused}");
        let (_, missing) =
            post_json(&agent, srv.url("/api/v1/agent/disposition"), json!({"call_id": call_id, "disposition_id": 999_999})).await;
        assert_eq!(
            refused["detail"].as_str().unwrap().replace(&theirs["id"].to_string(), "N"),
            missing["detail"].as_str().unwrap().replace("999999", "N"),
            "the same answer for another campaign's disposition and a missing one"
        );

        let at = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
        let (s, e) = post_json(
            &agent,
            srv.url("/api/v1/agent/disposition"),
            json!({"call_id": call_id, "disposition_id": cb["id"], "notes": "wants the family plan", "callback": {"at": at, "personal": true}}),
        )
        .await;
        assert_eq!(s, 200, "{backend}: {e}");
        let rec = wait_for(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records/{rid}")), "the record's callback", |r| {
            r["record_type"] == "personal_callback"
        })
        .await;
        assert!(rec["callback_at"].is_string(), "{rec}");
        assert_eq!(rec["attempts_total"], 1);
        let (_, attempts) = get_json(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records/{rid}/attempts"))).await;
        let a = &attempts[0];
        assert_eq!(a["result"], "agent_callback", "{attempts}");
        assert_eq!(a["disposition_id"], cb["id"]);
        assert_eq!(a["notes"], "wants the family plan");
        assert!(a["connected_at"].is_string(), "{a}");

        // Progress counts the call; a supervisor without the agent privilege cannot act as one.
        let (s, p) = get_json(&c, srv.url(&format!("/api/v1/campaigns/{id}/progress"))).await;
        assert_eq!(s, 200, "{p}");
        assert!(p["today"]["dials"].as_i64().unwrap() >= 1, "{p}");
        assert!(p["today"]["connects"].as_i64().unwrap() >= 1, "{p}");
        assert_eq!(p["records"]["total"], 30);
        let (_, sup) = post_json(
            &c,
            srv.url("/api/v1/users"),
            json!({"username": "sue", "role_id": 2, "campaigns_profile": {"scope": "all"}, "password": "long enough pw"}),
        )
        .await;
        assert!(sup["id"].is_i64());
        let sup = client_with(&srv.token_for("sue", "long enough pw").await);
        assert_eq!(post_json(&sup, srv.url("/api/v1/agent/login"), json!({})).await.0, StatusCode::FORBIDDEN);
        assert_eq!(get_json(&sup, srv.url(&format!("/api/v1/campaigns/{id}/progress"))).await.0, 200);
        assert_eq!(post_json(&agent, srv.url("/api/v1/agent/logout"), json!({})).await.0, 200);

        // The agent's state changes are in the audit log, oldest last; the refused one is not.
        let (s, log) = get_json(&c, srv.url("/api/v1/audit?entity_type=agent_state")).await;
        assert_eq!(s, 200, "{log}");
        let actions: Vec<&str> = log["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(actions, ["logout", "ready", "login"], "{backend}: {log}");
        assert_eq!(log["items"][2]["actor_name"], "ana");
        assert_eq!(log["items"][2]["after"]["agent_group_ids"], json!([team]));
    }
}

#[tokio::test]
async fn without_telephony_the_agent_api_says_the_dialer_is_off_sqlite() {
    without_telephony_the_agent_api_says_the_dialer_is_off("sqlite").await;
}

#[tokio::test]
async fn without_telephony_the_agent_api_says_the_dialer_is_off_postgres() {
    without_telephony_the_agent_api_says_the_dialer_is_off("postgres").await;
}

async fn without_telephony_the_agent_api_says_the_dialer_is_off(backend: &str) {
    let srv = Server::start(backend).await;
    let (s, e) = post_json(&srv.client(), srv.url("/api/v1/agent/login"), json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(e["detail"].as_str().unwrap().contains("telephony is off"), "{e}");
}

/// Kills the server with SIGKILL `kills` times at random moments of a running predictive and
/// agentless campaign, restarting it each time on the same database, then checks that nothing
/// was lost.
async fn kill_9_loses_nothing(backend: &str, kills: usize) {
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        "sqlite" => format!("sqlite://{}/campana.db", dir.path().display()),
        _ => campana_store::testing::postgres_store().await.unwrap().1,
    };
    let args = ["serve", "--telephony", "sim", "--sim-agents", "6"];
    let mut srv = Server::start_with(dir, url.clone(), &args).ready().await;
    let token = srv.token.clone();
    // The simulated agents work in the first agent group.
    let (_, team) = post_json(&srv.client(), srv.url("/api/v1/agent-groups"), json!({"name": "Team"})).await;
    let (predictive, _) = campaign(&srv, "Predictive", 3000, json!({"dialing_mode": "predictive", "agent_group_id": team["id"]})).await;
    campaign(&srv, "Agentless", 3000, json!({"dialing_mode": "agentless"})).await;
    let store = campana_store::Store::connect(&url).await.unwrap();
    let count = |sql: &'static str| {
        let store = store.clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(store.pool()).await.unwrap() }
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261125);
    let mut system_errors = 0;
    for round in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..3500))).await;
        let (dir, url) = srv.kill9();
        let abandons = count("SELECT COUNT(*) FROM call_attempts WHERE abandoned = 1").await;
        let answers = count("SELECT COUNT(*) FROM call_attempts WHERE live_answer = 1").await;
        let before_ms = chrono::Utc::now().timestamp_millis();
        srv = Server::start_with(dir, url, &args);
        srv.token = token.clone();
        // Recovery ran before the server answered: every call of the killed run is closed.
        let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM call_attempts WHERE ended_at IS NULL AND started_at < $1")
            .bind(before_ms)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(open, 0, "{backend} round {round}: calls of the killed run still open");
        // Abandon accounting is replayed from the attempts.
        let c = srv.client();
        let st =
            wait_for(&c, srv.url("/api/v1/dialer/status"), "the dialer's status", |v| v["campaigns"].get(predictive.to_string()).is_some())
                .await;
        let live = &st["campaigns"][predictive.to_string()];
        let (ab, an) = (live["abandons_24h"].as_f64().unwrap(), live["live_answers_24h"].as_f64().unwrap());
        assert!(ab >= abandons as f64 && an >= answers as f64, "{backend} round {round}: ledger {ab}/{an} < stored {abandons}/{answers}");
        system_errors = count("SELECT COUNT(*) FROM call_attempts WHERE result = 'system_error'").await;
    }
    let (dir, url) = srv.kill9();
    // A last start without telephony closes what the last kill left open and dials nothing.
    let srv = Server::start_with(dir, url, &["serve"]);
    assert_eq!(count("SELECT COUNT(*) FROM call_attempts WHERE ended_at IS NULL").await, 0, "{backend}");
    let dials = count("SELECT COUNT(*) FROM call_attempts").await;
    assert!(dials > 100, "{backend}: only {dials} dials over {kills} runs");
    let system_errors = system_errors.max(count("SELECT COUNT(*) FROM call_attempts WHERE result = 'system_error'").await);
    assert!(system_errors > 0, "{backend}: no call was ever cut off by a kill");
    // No call result is lost: every record's counters match its attempts.
    let mismatched =
        count("SELECT COUNT(*) FROM records r WHERE r.attempts_total <> (SELECT COUNT(*) FROM call_attempts a WHERE a.record_id = r.id)")
            .await;
    assert_eq!(mismatched, 0, "{backend}: records whose attempt counters disagree with their attempts");
    // No record dialed again before its recall delay (600 s by default, longer than this test).
    let twice = count("SELECT COUNT(*) FROM (SELECT record_id FROM call_attempts GROUP BY record_id HAVING COUNT(*) > 1) t").await;
    assert_eq!(twice, 0, "{backend}: records dialed twice within the recall delay");
    // Calls cut off follow the system-error treatment: retry in 5 minutes.
    let untreated = count(
        "SELECT COUNT(*) FROM call_attempts a JOIN records r ON r.id = a.record_id WHERE a.result = 'system_error' \
         AND (r.last_result <> 'system_error' OR r.retry_at IS NULL OR r.retry_at < a.ended_at + 299000)",
    )
    .await;
    assert_eq!(untreated, 0, "{backend}: calls cut off by a kill without their treatment");
    drop(srv);
}

#[tokio::test]
async fn kill_9_during_a_campaign_loses_nothing_sqlite() {
    kill_9_loses_nothing("sqlite", 20).await;
}

#[tokio::test]
async fn kill_9_during_a_campaign_loses_nothing_postgres() {
    kill_9_loses_nothing("postgres", 20).await;
}

/// Wrap-up ends by itself after the profile's `wrap_up_s` (no disposition: the call is closed as
/// answered), and a not-ready asked during the call applies then, with its pause code.
#[tokio::test]
async fn wrap_up_ends_after_wrap_up_s_and_a_pause_asked_during_the_call_applies_sqlite() {
    wrap_up_ends_after_wrap_up_s_and_a_pause_asked_during_the_call_applies("sqlite").await;
}

#[tokio::test]
async fn wrap_up_ends_after_wrap_up_s_and_a_pause_asked_during_the_call_applies_postgres() {
    wrap_up_ends_after_wrap_up_s_and_a_pause_asked_during_the_call_applies("postgres").await;
}

async fn wrap_up_ends_after_wrap_up_s_and_a_pause_asked_during_the_call_applies(backend: &str) {
    let srv = Server::start_args(backend, &["serve", "--telephony", "sim", "--sim-agents", "0"]).await;
    let c = srv.client();
    let team = agent_group(&srv, "Team").await;
    user(&srv, "ana", 3, json!({"scope": "all"}), &[team]).await;
    let (_, lid) = campaign(
        &srv,
        "Short wrap",
        30,
        json!({"dialing_mode": "progressive", "agent_group_id": team, "wrap_up_s": 2, "ring_timeout_s": 8}),
    )
    .await;
    let agent = client_with(&srv.token_for("ana", "long enough pw").await);
    assert_eq!(post_json(&agent, srv.url("/api/v1/agent/login"), json!({})).await.0, 200);
    assert_eq!(post_json(&agent, srv.url("/api/v1/agent/ready"), json!({})).await.0, 200);
    let screen = wait_for(&agent, srv.url("/api/v1/agent/state"), "a connected call", |v| v["agent"]["state"] == "on_call").await;
    assert_eq!(screen["wrap_up_s"], 2, "{screen}");
    let call_id = screen["agent"]["call_id"].as_u64().unwrap();
    let rid = screen["record"]["id"].as_i64().unwrap();
    // Not ready during the call: pending until the wrap-up ends.
    assert_eq!(post_json(&agent, srv.url("/api/v1/agent/not-ready"), json!({"pause_code": "lunch"})).await.0, 200);
    let (_, st) = get_json(&agent, srv.url("/api/v1/agent/state")).await;
    assert_eq!((st["agent"]["state"].as_str(), st["agent"]["pause_code"].as_str()), (Some("on_call"), Some("lunch")), "{st}");
    let (s, e) = post_json(&agent, srv.url("/api/v1/agent/hang-up"), json!({"call_id": call_id})).await;
    assert_eq!(s, 200, "{e}");
    let st = wait_for(&agent, srv.url("/api/v1/agent/state"), "wrap-up", |v| v["agent"]["state"] != "on_call").await;
    // The simulated customer may have hung up a moment before; either way wrap-up ran or ran out.
    if st["agent"]["state"] == "wrap_up" {
        let until = chrono::DateTime::parse_from_rfc3339(st["agent"]["until"].as_str().unwrap()).unwrap();
        let left_s = (until.to_utc() - chrono::Utc::now()).num_milliseconds() as f64 / 1000.0;
        assert!(left_s <= 2.0, "wrap-up until {until}: {left_s} s left");
    }
    let st = wait_for(&agent, srv.url("/api/v1/agent/state"), "not ready after wrap-up", |v| v["agent"]["state"] == "not_ready").await;
    assert_eq!(st["agent"]["pause_code"], "lunch", "{st}");
    assert!(st["record"].is_null(), "{st}");
    let (_, attempts) = get_json(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records/{rid}/attempts"))).await;
    assert_eq!(attempts[0]["call_id"], call_id, "{attempts}");
    assert_eq!(attempts[0]["result"], "answered", "{attempts}");
    assert!(attempts[0]["disposition_id"].is_null(), "{attempts}");
    // Ready again; the tag route refuses a call that is not the agent's, naming the field.
    assert_eq!(post_json(&agent, srv.url("/api/v1/agent/ready"), json!({})).await.0, 200);
    let (s, e) = post_json(&agent, srv.url("/api/v1/agent/tags"), json!({"call_id": 999_999, "tag_id": 1})).await;
    assert_eq!((s, e["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("call_id")), "{e}");
}
