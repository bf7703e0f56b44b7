//! The HTTP API driven over the network, on SQLite and PostgreSQL.

use crate::common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

async fn post(c: &reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    let r = c.post(url).json(&body).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn put(c: &reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    let r = c.put(url).json(&body).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn get(c: &reqwest::Client, url: String) -> (StatusCode, Value) {
    let r = c.get(url).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn health_metrics_and_openapi_sqlite() {
    health_metrics_and_openapi("sqlite").await;
}

#[tokio::test]
async fn health_metrics_and_openapi_postgres() {
    health_metrics_and_openapi("postgres").await;
}

async fn health_metrics_and_openapi(backend: &str) {
    let srv = Server::start(backend).await;
    let c = srv.client();
    assert_eq!(c.get(srv.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(srv.url("/readyz")).send().await.unwrap().status(), 200);
    let (s, doc) = get(&c, srv.url("/api/openapi.json")).await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/campaigns",
        "/api/v1/campaigns/{id}",
        "/api/v1/campaigns/{id}/{action}",
        "/api/v1/campaigns/{id}/settings",
        "/api/v1/campaigns/by-group",
        "/api/v1/campaign-groups",
        "/api/v1/settings-profiles/{id}",
        "/api/v1/contact-lists/{id}/records/by-external-id/{external_id}",
        "/api/v1/contact-lists/{id}/records/bulk-upsert",
        "/api/v1/contact-lists/{id}/imports",
        "/api/v1/imports/{id}/errors.csv",
        "/api/v1/dnc-lists/{id}/entries",
        "/api/v1/dispositions",
        "/api/v1/manager-tags",
        "/api/v1/roles",
        "/api/v1/users",
        "/api/v1/agent-groups",
        "/api/v1/scripts",
        "/api/v1/call-results",
    ] {
        assert!(paths.contains_key(p), "OpenAPI lacks {p}");
    }
    let (_, results) = get(&c, srv.url("/api/v1/call-results")).await;
    let busy = results.as_array().unwrap().iter().find(|r| r["result"] == "busy").unwrap();
    assert_eq!(busy["default_treatment"]["retry_after_s"], 300, "CX Contact's default: busy retries in 5 minutes");
    assert_eq!(busy["default_treatment"]["max_retries"], 3);
    assert_eq!(busy["default_treatment"]["then"], "next_in_chain");
    // The document is self-consistent (checked with openapi-spec-validator too; see docs):
    // every $ref resolves, operation ids are unique, path parameters match the templates.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in &all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(doc["components"]["schemas"].get(name).is_some(), "$ref {r} does not resolve");
    }
    let mut ids = std::collections::HashSet::new();
    for (path, item) in paths {
        let templated: Vec<&str> = path.split('/').filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
            let declared: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| ps.iter().filter(|p| p["in"] == "path").map(|p| p["name"].as_str().unwrap()).collect())
                .unwrap_or_default();
            for t in &templated {
                assert!(declared.contains(t), "{method} {path} does not declare path parameter {t}");
            }
            assert_eq!(declared.len(), templated.len(), "{method} {path}: path parameters {declared:?} vs template {templated:?}");
        }
    }
    let r = c.get(srv.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("campana_http_requests_total"));
    let r = c.get(srv.url("/api/v1/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn campaigns_profiles_and_problems() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let c = srv.client();
        let (s, team) = post(&c, srv.url("/api/v1/agent-groups"), json!({"name": "Team A"})).await;
        assert_eq!(s, 201, "{backend}: {team}");
        let (s, profile) = post(
            &c,
            srv.url("/api/v1/settings-profiles"),
            json!({"name": "Predictive", "settings": {"dialing_mode": "predictive", "agent_group_id": team["id"], "abandon_rate_max": 0.03}}),
        )
        .await;
        assert_eq!(s, 201, "{backend}: {profile}");
        let (s, p) =
            post(&c, srv.url("/api/v1/settings-profiles"), json!({"name": "Bad", "settings": {"abandon_rate_max": 3, "bogus": 1}})).await;
        assert_eq!(s, 422);
        assert_eq!(p["errors"][0]["field"], "settings.bogus", "{p}");
        let (s, p) = post(&c, srv.url("/api/v1/settings-profiles"), json!({"name": "Bad", "settings": {"abandon_rate_max": 3}})).await;
        assert_eq!(s, 422);
        assert_eq!(p["errors"][0]["field"], "settings.abandon_rate_max", "{p}");
        let (_, list) = post(&c, srv.url("/api/v1/contact-lists"), json!({"name": "Leads", "default_country": "US"})).await;
        let campaign = json!({
            "name": "Spring", "daily_hours": {"start": "09:00", "end": "20:00"}, "weekdays": ["mon", "tue"],
            "time_zone": "America/Chicago", "profile_id": profile["id"], "contact_list_ids": [list["id"]],
            "overrides": {"abandon_rate_max": 0.02}
        });
        let (s, camp) = post(&c, srv.url("/api/v1/campaigns"), campaign.clone()).await;
        assert_eq!(s, 201, "{backend}: {camp}");
        assert_eq!(camp["state"], "draft");
        let (s, dup) = post(&c, srv.url("/api/v1/campaigns"), campaign.clone()).await;
        assert_eq!(s, 409, "{dup}");
        assert_eq!(dup["detail"], "a campaign named 'Spring' already exists");
        let id = camp["id"].as_i64().unwrap();
        let (_, eff) = get(&c, srv.url(&format!("/api/v1/campaigns/{id}/settings"))).await;
        assert_eq!(eff["settings"]["dialing_mode"], "predictive");
        assert_eq!(eff["sources"]["dialing_mode"], "profile");
        assert_eq!(eff["sources"]["abandon_rate_max"], "campaign");
        assert_eq!(eff["settings"]["abandon_rate_max"], 0.02);
        let (s, _) = post(&c, srv.url(&format!("/api/v1/campaigns/{id}/start")), json!({})).await;
        assert_eq!(s, 200, "{backend}");
        let (s, p) = post(&c, srv.url(&format!("/api/v1/campaigns/{id}/resume")), json!({})).await;
        assert_eq!(s, 409);
        assert_eq!(p["detail"], "cannot resume a campaign that is running; allowed from running: pause, stop, complete");
        let (s, p) = post(&c, srv.url(&format!("/api/v1/campaigns/{id}/explode")), json!({})).await;
        assert_eq!(s, 422, "{p}");
        let (s, _) = get(&c, srv.url("/api/v1/campaigns/999")).await;
        assert_eq!(s, 404);
        let (s, p) = get(&c, srv.url("/api/v1/campaigns?state=flying")).await;
        assert_eq!(s, 422, "{p}");
        let (s, page) = get(&c, srv.url("/api/v1/campaigns?state=running&limit=10")).await;
        assert_eq!(s, 200);
        assert_eq!(page["items"].as_array().unwrap().len(), 1, "{backend}");
        let (_, groups) = get(&c, srv.url("/api/v1/campaigns/by-group")).await;
        assert_eq!(groups[0]["name"], "Campaigns without a group");
        let mut edit = campaign.clone();
        edit["weekdays"] = json!(["someday"]);
        let (s, p) = put(&c, srv.url(&format!("/api/v1/campaigns/{id}")), edit).await;
        assert_eq!(s, 422);
        assert_eq!(p["errors"][0]["field"], "weekdays", "{p}");
        for (path, body) in [
            ("/api/v1/dispositions", json!({"name": "Sale", "colour": "#00ff00", "is_success": true, "is_final": true})),
            ("/api/v1/manager-tags", json!({"name": "VIP", "colour": "#123456", "campaign_id": id})),
            ("/api/v1/scripts", json!({"name": "Hello", "body": "Hi {{name}}"})),
            ("/api/v1/campaign-groups", json!({"name": "Brand A"})),
            ("/api/v1/dnc-lists", json!({"name": "Federal"})),
            ("/api/v1/roles", json!({"name": "auditor", "privileges": ["reports", "campaigns_view"]})),
        ] {
            let (s, v) = post(&c, srv.url(path), body).await;
            assert_eq!(s, 201, "{backend} {path}: {v}");
        }
        let (s, p) = post(&c, srv.url("/api/v1/dispositions"), json!({"name": "X", "colour": "green"})).await;
        assert_eq!(s, 422);
        assert_eq!(p["errors"][0]["field"], "colour", "{p}");
        let (s, u) = post(&c, srv.url("/api/v1/users"), json!({"username": "ana", "role_id": 3, "campaigns_profile": {"scope": "only", "campaign_ids": [id]}, "password": "long enough pw"})).await;
        assert_eq!(s, 201, "{u}");
        assert!(u.get("password").is_none() && !u.to_string().contains("argon2"), "{u}");
        let (s, p) = post(
            &c,
            srv.url("/api/v1/users"),
            json!({"username": "Bad Name", "role_id": 99, "campaigns_profile": {"scope": "all"}, "password": "short"}),
        )
        .await;
        assert_eq!(s, 422, "{p}");
    }
}

#[tokio::test]
async fn crm_upserts_are_idempotent_and_atomic() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let c = srv.client();
        let (_, list) = post(
            &c,
            srv.url("/api/v1/contact-lists"),
            json!({"name": "CRM", "default_country": "US", "columns": [{"name": "balance", "kind": "number"}]}),
        )
        .await;
        let lid = list["id"].as_i64().unwrap();
        let member = json!({"name": "Ana", "phones": [{"number": "(212) 555-0143", "type": "home"}, {"number": "+1 312 555 0100", "type": "mobile"}], "custom": {"balance": 12.5}});
        let url = srv.url(&format!("/api/v1/contact-lists/{lid}/records/by-external-id/00Q123"));
        let (s, r) = put(&c, url.clone(), member.clone()).await;
        assert_eq!(s, 200, "{backend}: {r}");
        assert_eq!(r["outcome"]["customers_created"], 1);
        assert_eq!(r["records"].as_array().unwrap().len(), 2);
        assert_eq!(r["records"][0]["phone"], "+12125550143");
        let (s, r) = put(&c, url.clone(), member.clone()).await;
        assert_eq!(s, 200);
        assert_eq!(r["outcome"]["customers_created"], 0, "{backend}: second push creates nothing");
        assert_eq!(r["outcome"]["records_created"], 0);
        let (_, page) = get(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records"))).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        let (s, p) = put(&c, url.clone(), json!({"phones": [{"number": "12"}], "custom": {"balance": "lots"}})).await;
        assert_eq!(s, 422);
        let fields: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
        assert_eq!(fields, ["phones[0].number", "custom.balance"], "{p}");
        let bulk = json!({"members": [
            {"external_id": "A1", "contact": {"phones": [{"number": "+12125550101"}]}},
            {"external_id": "A2", "contact": {"phones": [{"number": "nonsense"}]}},
        ]});
        let (s, p) = post(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records/bulk-upsert")), bulk).await;
        assert_eq!(s, 422);
        assert_eq!(p["errors"][0]["field"], "members[1].contact.phones[0].number", "{p}");
        let (s, _) = get(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records/by-external-id/A1"))).await;
        assert_eq!(s, 404, "{backend}: nothing of a refused bulk request is written");
        let bulk = json!({"members": (0..50).map(|i| json!({"external_id": format!("B{i}"), "contact": {"phones": [{"number": format!("+1212555{:04}", 2000 + i)}]}})).collect::<Vec<_>>()});
        let (s, o) = post(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records/bulk-upsert")), bulk.clone()).await;
        assert_eq!(s, 200, "{o}");
        assert_eq!(o["customers_created"], 50);
        let (_, o) = post(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records/bulk-upsert")), bulk).await;
        assert_eq!((o["customers_created"].as_i64(), o["customers_updated"].as_i64()), (Some(0), Some(50)), "{backend}");
        let (_, dnc) =
            post(&c, srv.url("/api/v1/dnc-lists/1/entries"), json!({"phone": "+12125550143", "reason": "asked", "source": "agent"})).await;
        assert_eq!(dnc["phone"], "+12125550143");
        let r = c.delete(srv.url("/api/v1/dnc-lists/1/entries/+12125550143")).send().await.unwrap();
        assert_eq!(r.status(), 204);
    }
}

#[tokio::test]
async fn the_dialer_explains_itself_before_launch() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let c = srv.client();
        let (_, list) = post(&c, srv.url("/api/v1/contact-lists"), json!({"name": "Leads"})).await;
        let lid = list["id"].as_i64().unwrap();
        let bulk = json!({"members": [
            {"external_id": "chicago", "contact": {"phones": [{"number": "+13125550143"}]}},
            {"external_id": "madrid", "contact": {"phones": [{"number": "+34612345678"}]}},
            {"external_id": "blocked", "contact": {"phones": [{"number": "+13125550144"}]}},
        ]});
        let (s, _) = post(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records/bulk-upsert")), bulk).await;
        assert_eq!(s, 200);
        let (_, dnc) = post(&c, srv.url("/api/v1/dnc-lists"), json!({"name": "Registry"})).await;
        let dnc_id = dnc["id"].as_i64().unwrap();
        post(&c, srv.url(&format!("/api/v1/dnc-lists/{dnc_id}/entries")), json!({"phone": "+13125550144"})).await;
        let (s, camp) = post(
            &c,
            srv.url("/api/v1/campaigns"),
            json!({"name": "Explained", "daily_hours": {"start": "00:00", "end": "23:59"}, "weekdays": ["mon","tue","wed","thu","fri","sat","sun"],
                   "time_zone": "UTC", "contact_list_ids": [lid], "overrides": {"dnc_list_ids": [dnc_id]}}),
        )
        .await;
        assert_eq!(s, 201, "{camp}");
        let id = camp["id"].as_i64().unwrap();
        // 15:00 UTC on a Wednesday: 09:00 in Chicago (allowed), 16:00 in Madrid (allowed).
        let (s, p) = get(&c, srv.url(&format!("/api/v1/campaigns/{id}/compliance-preview?at=2026-11-25T15:00:00Z"))).await;
        assert_eq!(s, 200, "{backend}: {p}");
        assert_eq!((p["total"].as_u64(), p["dialable_now"].as_u64(), p["skipped"].as_u64()), (Some(3), Some(2), Some(1)), "{backend}: {p}");
        assert_eq!(p["by_reason"]["dnc"], 1, "{p}");
        // 12:00 UTC: 06:00 in Chicago, so the Chicago record waits for 08:00 local (14:00 UTC).
        let (_, recs) = get(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records?external_id=chicago"))).await;
        let rid = recs["items"][0]["id"].as_i64().unwrap();
        let (s, e) = get(&c, srv.url(&format!("/api/v1/campaigns/{id}/records/{rid}/eligibility?at=2026-11-25T12:00:00Z"))).await;
        assert_eq!(s, 200, "{e}");
        assert_eq!(e["dialable"], false);
        assert_eq!(e["reason"], "contact_outside_hours", "{backend}: {e}");
        assert_eq!(e["next_dialable_at"], "2026-11-25T14:00:00Z");
        assert!(e["message"].as_str().unwrap().contains("America/Chicago"), "{e}");
        let (_, e) = get(&c, srv.url(&format!("/api/v1/campaigns/{id}/records/{rid}/eligibility?at=2026-11-25T15:00:00Z"))).await;
        assert_eq!(e["dialable"], true, "{e}");
        let (s, _) = get(&c, srv.url(&format!("/api/v1/campaigns/{id}/records/999999/eligibility"))).await;
        assert_eq!(s, 404);
        let (s, f) = post(&c, srv.url(&format!("/api/v1/campaigns/{id}/forecast")), json!({"agents": 2, "answer_rate": 0.3})).await;
        assert_eq!(s, 200, "{backend}: {f}");
        assert!(f["message"].as_str().is_some_and(|m| !m.is_empty()), "{f}");
        assert!(f["expected_abandon_rate"].as_f64().is_some(), "{f}");
        let (s, p) = post(&c, srv.url(&format!("/api/v1/campaigns/{id}/forecast")), json!({"agents": 0, "answer_rate": 3})).await;
        assert_eq!(s, 422);
        assert_eq!(p["errors"].as_array().unwrap().len(), 2, "{p}");
    }
}
