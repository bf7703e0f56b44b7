//! Webhooks end to end: a receiver on 127.0.0.1 that verifies every signature with the Standard
//! Webhooks reference library (Python `standardwebhooks`, scripts/webhook-receiver.py) and fails
//! deliveries on purpose, Campana killed with SIGKILL mid-delivery, the receiver down for a while.

use crate::common;

use common::*;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The receiver process (scripts/webhook-receiver.py).
struct Receiver {
    child: Child,
    port: u16,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    fn start(port: u16, log: &Path, secrets: &[&str], extra: &[&str]) -> Receiver {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/webhook-receiver.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).args(["--port", &port.to_string(), "--log"]).arg(log);
        for s in secrets {
            cmd.args(["--secret", s]);
        }
        let mut child = cmd.args(extra).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("python3 runs the receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("the receiver's first line");
        let port = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("receiver said {line:?}")).parse().unwrap();
        Receiver { child, port }
    }
}

fn entries(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Every delivery of a subscription (all pages).
async fn deliveries(srv: &Server, hook: i64) -> Vec<Value> {
    let c = srv.client();
    let mut all = Vec::new();
    let mut before = String::new();
    loop {
        let (s, page) = get_json(&c, srv.url(&format!("/api/v1/webhooks/{hook}/deliveries?limit=200{before}"))).await;
        assert_eq!(s, 200, "{page}");
        let page = page.as_array().unwrap().clone();
        let Some(last) = page.last() else { break };
        before = format!("&before={}", last["id"]);
        all.extend(page);
    }
    all
}

/// The chaos run: 30% of deliveries fail with 5xx, the receiver is down for a while, Campana is
/// killed twice mid-delivery. Every event arrives at least once, none with a changed id, every
/// signature verifies with the reference library.
async fn chaos(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        "sqlite" => format!("sqlite://{}/campana.db", dir.path().display()),
        _ => campana_store::testing::postgres_store().await.unwrap().1,
    };
    let env = [("CAMPANA_WEBHOOKS_ALLOW_PRIVATE", "true"), ("CAMPANA_WEBHOOK_RETRY_S", "1,1,2")];
    let args = ["serve", "--telephony", "sim", "--sim-agents", "0"];
    let mut srv = Server::start_with_env(dir, url.clone(), &args, &env).ready().await;
    let token = srv.token.clone();
    // A port for the receiver, kept across its restarts.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (s, hook) =
        post_json(&srv.client(), srv.url("/api/v1/webhooks"), json!({"name": "CRM", "url": format!("http://127.0.0.1:{port}/campana")}))
            .await;
    assert_eq!(s, 201, "{hook}");
    let (id, secret) = (hook["endpoint"]["id"].as_i64().unwrap(), hook["secret"].as_str().unwrap().to_string());
    assert!(secret.starts_with("whsec_"), "{secret}");
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("received.jsonl");
    let receiver_args = ["--fail-rate", "0.3", "--delay-ms", "30", "--seed", "7"];
    let mut receiver = Receiver::start(port, &log, &[&secret], &receiver_args);
    assert_eq!(receiver.port, port);
    let (camp, _) = campaign(&srv, "Hooks", 400, json!({"dialing_mode": "agentless"})).await;
    let restart = |srv: Server| {
        let (dir, url) = srv.kill9();
        let mut s = Server::start_with_env(dir, url, &args, &env);
        s.token = token.clone();
        s
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    srv = restart(srv);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The receiver goes down; events wait in the outbox.
    drop(receiver);
    tokio::time::sleep(Duration::from_secs(3)).await;
    srv = restart(srv);
    tokio::time::sleep(Duration::from_secs(2)).await;
    receiver = Receiver::start(port, &log, &[&secret], &receiver_args);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (s, b) = post_json(&srv.client(), srv.url(&format!("/api/v1/campaigns/{camp}/stop")), json!({})).await;
    assert_eq!(s, 200, "{b}");
    // Wait until everything is delivered (the claims of the killed runs expire after their lease).
    let mut stable = 0;
    let mut last_len = 0;
    let mut ds = Vec::new();
    for _ in 0..240 {
        ds = deliveries(&srv, id).await;
        let pending = ds.iter().filter(|d| d["state"] != "delivered").count();
        stable = if pending == 0 && ds.len() == last_len { stable + 1 } else { 0 };
        last_len = ds.len();
        if stable >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let states: HashMap<String, usize> = ds.iter().fold(HashMap::new(), |mut m, d| {
        *m.entry(d["state"].as_str().unwrap().to_string()).or_default() += 1;
        m
    });
    assert!(stable >= 3, "{backend}: deliveries not all delivered: {states:?}");
    drop(receiver);
    let got = entries(&log);
    let sent: BTreeSet<String> = ds.iter().map(|d| d["msg_id"].as_str().unwrap().to_string()).collect();
    let ok: BTreeSet<String> = got.iter().filter(|e| e["outcome"] == "ok").map(|e| e["msg_id"].as_str().unwrap().to_string()).collect();
    let seen: BTreeSet<String> = got.iter().map(|e| e["msg_id"].as_str().unwrap().to_string()).collect();
    assert_eq!(got.iter().filter(|e| e["outcome"] == "bad_signature").count(), 0, "{backend}: signatures the reference library refused");
    assert!(sent.len() >= 30, "{backend}: only {} events", sent.len());
    assert_eq!(ok, sent, "{backend}: events never received (left) or ids Campana never stored (right)");
    assert!(seen.is_subset(&sent), "{backend}: a delivery came with an id that changed");
    let failed = got.iter().filter(|e| e["outcome"].as_str().unwrap().starts_with("failed_")).count();
    assert!(failed >= 5, "{backend}: only {failed} deliveries failed on purpose: the run did not test retries");
    let types: BTreeSet<&str> = got.iter().filter_map(|e| e["type"].as_str()).collect();
    for t in ["call.ended", "record.completed", "campaign.state_changed"] {
        assert!(types.contains(t), "{backend}: no {t} event among {types:?}");
    }
    // The store holds exactly one event per id (no event was written twice or lost at a kill):
    // every call attempt that ended has its call.ended event.
    let store = campana_store::Store::connect(&url).await.unwrap();
    let ended: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM call_attempts WHERE ended_at IS NOT NULL").fetch_one(store.pool()).await.unwrap();
    let call_events: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_events WHERE event_type = 'call.ended'").fetch_one(store.pool()).await.unwrap();
    assert_eq!(call_events, ended, "{backend}: call.ended events vs calls that ended");
}

#[tokio::test]
async fn chaos_every_event_arrives_at_least_once_with_its_id_sqlite() {
    chaos("sqlite").await;
}

#[tokio::test]
async fn chaos_every_event_arrives_at_least_once_with_its_id_postgres() {
    chaos("postgres").await;
}

/// Destinations, validation, 410 Gone, secret rotation (two signatures, both verified by the
/// reference library), redelivery with the same id.
#[tokio::test]
async fn subscriptions_are_checked_rotated_and_disabled_by_gone() {
    for backend in BACKENDS {
        // Without the operator's permission, private destinations are refused.
        let srv = Server::start(backend).await;
        let c = srv.client();
        for (url, why) in [
            ("http://127.0.0.1:9/h", "private"),
            ("http://[::1]:9/h", "private"),
            ("http://localhost:9/h", "localhost"),
            ("http://169.254.169.254/latest/meta-data", "private"),
            ("ftp://crm.example.com/h", "https://"),
        ] {
            let (s, e) = post_json(&c, srv.url("/api/v1/webhooks"), json!({"name": "X", "url": url})).await;
            assert_eq!(s, 422, "{backend} {url}: {e}");
            assert_eq!(e["errors"][0]["field"], "url", "{e}");
            assert!(e["detail"].as_str().unwrap().contains(why), "{backend} {url}: {e}");
        }
        let (s, e) = post_json(
            &c,
            srv.url("/api/v1/webhooks"),
            json!({"name": "X", "url": "https://crm.example.com/h", "event_types": ["call.nope"]}),
        )
        .await;
        assert_eq!(s, 422, "{e}");
        drop(srv);

        let env = [("CAMPANA_WEBHOOKS_ALLOW_PRIVATE", "true"), ("CAMPANA_WEBHOOK_RETRY_S", "1")];
        let srv = Server::start_args_env(backend, &["serve"], &env).await;
        let c = srv.client();
        let logs = tempfile::tempdir().unwrap();
        // A subscription to campaign changes only; a receiver that knows both secrets after a rotation.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let (s, hook) = post_json(
            &c,
            srv.url("/api/v1/webhooks"),
            json!({"name": "CRM", "url": format!("http://127.0.0.1:{port}/h"), "event_types": ["campaign.state_changed"]}),
        )
        .await;
        assert_eq!(s, 201, "{hook}");
        let id = hook["endpoint"]["id"].as_i64().unwrap();
        let old = hook["secret"].as_str().unwrap().to_string();
        let (s, rotated) = post_json(&c, srv.url(&format!("/api/v1/webhooks/{id}/rotate-secret")), json!({"previous_valid_h": 1})).await;
        assert_eq!(s, 200, "{rotated}");
        let new = rotated["secret"].as_str().unwrap().to_string();
        assert_ne!(old, new);
        let log_new = logs.path().join("new.jsonl");
        let log_old = logs.path().join("old.jsonl");
        let r_new = Receiver::start(port, &log_new, &[&new], &[]);
        let (camp, _) = campaign(&srv, "Rotate", 1, json!({"dialing_mode": "agentless"})).await;
        let d = loop {
            let ds = deliveries(&srv, id).await;
            if let Some(d) = ds.iter().find(|d| d["state"] == "delivered") {
                break d.clone();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        drop(r_new);
        let e = &entries(&log_new)[0];
        assert_eq!(
            (e["outcome"].as_str(), e["signatures"].as_i64(), e["type"].as_str()),
            (Some("ok"), Some(2), Some("campaign.state_changed")),
            "{e}"
        );
        // The old secret alone verifies it too (the receiver that was not yet switched).
        let r_old = Receiver::start(port, &log_old, &[&old], &[]);
        let (s, _) = post_json(&c, srv.url(&format!("/api/v1/webhooks/{id}/deliveries/{}/redeliver", d["id"])), json!({})).await;
        assert_eq!(s, 202);
        for _ in 0..100 {
            if !entries(&log_old).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(r_old);
        let e = &entries(&log_old)[0];
        assert_eq!((e["outcome"].as_str(), e["msg_id"].as_str()), (Some("ok"), d["msg_id"].as_str()), "redelivered with the same id: {e}");
        // 410 Gone: the delivery fails and the subscription is disabled, with the reason.
        let log_gone = logs.path().join("gone.jsonl");
        let _gone = Receiver::start(port, &log_gone, &[&new], &["--gone"]);
        let (s, _) = post_json(&c, srv.url(&format!("/api/v1/campaigns/{camp}/pause")), json!({})).await;
        assert_eq!(s, 200);
        let w =
            wait_for(&c, srv.url(&format!("/api/v1/webhooks/{id}")), "the subscription disabled by 410", |w| w["enabled"] == false).await;
        assert!(w["disabled_reason"].as_str().unwrap().contains("410"), "{w}");
        let ds = deliveries(&srv, id).await;
        assert!(ds.iter().any(|d| d["state"] == "failed" && d["last_status"] == 410), "{ds:?}");
        // Secrets are never shown again.
        let (_, list) = get_json(&c, srv.url("/api/v1/webhooks")).await;
        assert!(!list.to_string().contains(&new) && !list.to_string().contains(&old), "{list}");
    }
}
