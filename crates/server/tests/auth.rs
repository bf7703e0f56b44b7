//! Sign-in, sessions with CSRF, API tokens, lockout, privileges and the campaigns profile.

mod common;

use common::*;
use serde_json::{json, Value};

async fn make_user(c: &reqwest::Client, srv: &Server, name: &str, role: &str, profile: Value) -> i64 {
    let roles: Value = c.get(srv.url("/api/v1/roles")).send().await.unwrap().json().await.unwrap();
    let role_id = roles["items"].as_array().unwrap().iter().find(|r| r["name"] == role).unwrap()["id"].clone();
    let r = c
        .post(srv.url("/api/v1/users"))
        .json(&json!({"username": name, "role_id": role_id, "campaigns_profile": profile, "password": "a long password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn make_campaign(c: &reqwest::Client, srv: &Server, name: &str) -> i64 {
    let body = json!({"name": name, "daily_hours": {"start": "09:00", "end": "20:00"}, "weekdays": ["mon"], "time_zone": "Europe/Madrid"});
    let r = c.post(srv.url("/api/v1/campaigns")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

#[tokio::test]
async fn anonymous_callers_get_401_public_endpoints_stay_open() {
    let srv = Server::start("sqlite").await;
    let anon = reqwest::Client::new();
    let r = anon.get(srv.url("/api/v1/campaigns")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["title"], "Sign-in required", "{p}");
    for path in ["/healthz", "/readyz", "/api/openapi.json"] {
        assert_eq!(anon.get(srv.url(path)).send().await.unwrap().status(), 200, "{path}");
    }
    let bogus = client_with("not-a-token");
    assert_eq!(bogus.get(srv.url("/api/v1/campaigns")).send().await.unwrap().status(), 401);
    let doc: Value = anon.get(srv.url("/api/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["components"]["securitySchemes"]["token"].is_object(), "the document declares how to authenticate");
}

#[tokio::test]
async fn sessions_need_csrf_lockout_and_tokens() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let admin = srv.client();
        make_user(&admin, &srv, "sam", "supervisor", json!({"scope": "all"})).await;
        // Session: reads work with the cookie; writes need the CSRF token.
        let c = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let me: Value = c
            .post(srv.url("/api/v1/auth/login"))
            .json(&json!({"username": "sam", "password": "a long password"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["role"], "supervisor", "{backend}: {me}");
        assert_eq!(c.get(srv.url("/api/v1/campaigns")).send().await.unwrap().status(), 200);
        let body = json!({"name": "G"});
        assert_eq!(c.post(srv.url("/api/v1/campaign-groups")).json(&body).send().await.unwrap().status(), 403, "no CSRF header");
        let csrf = me["csrf_token"].as_str().unwrap();
        assert_eq!(
            c.post(srv.url("/api/v1/campaign-groups")).header("x-csrf-token", "wrong").json(&body).send().await.unwrap().status(),
            403
        );
        assert_eq!(c.post(srv.url("/api/v1/campaign-groups")).header("x-csrf-token", csrf).json(&body).send().await.unwrap().status(), 201);
        assert_eq!(c.post(srv.url("/api/v1/auth/logout")).header("x-csrf-token", csrf).send().await.unwrap().status(), 204);
        assert_eq!(c.get(srv.url("/api/v1/campaigns")).send().await.unwrap().status(), 401, "{backend}: signed out");
        // Five wrong passwords lock the account, even for the right password afterwards.
        for _ in 0..5 {
            let r = reqwest::Client::new()
                .post(srv.url("/api/v1/auth/login"))
                .json(&json!({"username": "sam", "password": "wrong password"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
        }
        let r = reqwest::Client::new()
            .post(srv.url("/api/v1/auth/login"))
            .json(&json!({"username": "sam", "password": "a long password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.text().await.unwrap().contains("locked until"), "{backend}");
        let r = reqwest::Client::new()
            .post(srv.url("/api/v1/auth/login"))
            .json(&json!({"username": "nobody", "password": "whatever you like"}))
            .send()
            .await
            .unwrap();
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["detail"], "invalid username or password");
        // API tokens are listed without secrets and can be revoked.
        let list: Value = admin.get(srv.url("/api/v1/auth/tokens")).send().await.unwrap().json().await.unwrap();
        let id = list[0]["id"].as_i64().unwrap();
        assert!(list[0].get("token").is_none());
        assert_eq!(admin.delete(srv.url(&format!("/api/v1/auth/tokens/{id}"))).send().await.unwrap().status(), 204);
        assert_eq!(admin.get(srv.url("/api/v1/campaigns")).send().await.unwrap().status(), 401, "{backend}: revoked");
    }
}

#[tokio::test]
async fn roles_and_campaigns_profiles_are_enforced() {
    let srv = Server::start("sqlite").await;
    let admin = srv.client();
    let mine = make_campaign(&admin, &srv, "Mine").await;
    let other = make_campaign(&admin, &srv, "Other").await;
    let mut lists = Vec::new();
    for (name, campaign) in [("Mine list", mine), ("Other list", other)] {
        let l: Value =
            admin.post(srv.url("/api/v1/contact-lists")).json(&json!({"name": name})).send().await.unwrap().json().await.unwrap();
        let lid = l["id"].as_i64().unwrap();
        let mut c: Value = admin.get(srv.url(&format!("/api/v1/campaigns/{campaign}"))).send().await.unwrap().json().await.unwrap();
        for k in ["id", "state", "created_at", "updated_at"] {
            c.as_object_mut().unwrap().remove(k);
        }
        c["contact_list_ids"] = json!([lid]);
        let r = admin.put(srv.url(&format!("/api/v1/campaigns/{campaign}"))).json(&c).send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        lists.push(lid);
    }
    make_user(&admin, &srv, "ana", "agent", json!({"scope": "all"})).await;
    make_user(&admin, &srv, "sue", "supervisor", json!({"scope": "only", "campaign_ids": [mine]})).await;
    let agent = client_with(&srv.token_for("ana", "a long password").await);
    assert_eq!(agent.get(srv.url("/api/v1/dispositions")).send().await.unwrap().status(), 200, "agents read dispositions");
    assert_eq!(agent.get(srv.url("/api/v1/campaigns")).send().await.unwrap().status(), 403);
    assert_eq!(agent.get(srv.url("/api/v1/users")).send().await.unwrap().status(), 403);
    let r = agent.post(srv.url("/api/v1/campaign-groups")).json(&json!({"name": "X"})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("campaigns_edit"));
    let sup = client_with(&srv.token_for("sue", "a long password").await);
    let list: Value = sup.get(srv.url("/api/v1/campaigns")).send().await.unwrap().json().await.unwrap();
    let ids: Vec<i64> = list["items"].as_array().unwrap().iter().map(|c| c["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![mine], "a supervisor sees only the campaigns of their profile");
    let grouped: Value = sup.get(srv.url("/api/v1/campaigns/by-group")).send().await.unwrap().json().await.unwrap();
    assert!(!grouped.to_string().contains("\"Other\""), "{grouped}");
    for (method, path) in [
        ("GET", format!("/api/v1/campaigns/{other}")),
        ("GET", format!("/api/v1/campaigns/{other}/settings")),
        ("POST", format!("/api/v1/campaigns/{other}/archive")),
        ("DELETE", format!("/api/v1/campaigns/{other}")),
    ] {
        let r = sup.request(method.parse().unwrap(), srv.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{method} {path}");
    }
    assert_eq!(sup.get(srv.url(&format!("/api/v1/campaigns/{mine}"))).send().await.unwrap().status(), 200);
    let body = json!({"name": "New", "daily_hours": {"start": "09:00", "end": "20:00"}, "weekdays": ["mon"], "time_zone": "Europe/Madrid"});
    assert_eq!(sup.post(srv.url("/api/v1/campaigns")).json(&body).send().await.unwrap().status(), 403);
    assert_eq!(sup.get(srv.url("/api/v1/users")).send().await.unwrap().status(), 403);
    // Lists, records and imports outside the profile's campaigns do not exist for her either.
    let seen: Value = sup.get(srv.url("/api/v1/contact-lists")).send().await.unwrap().json().await.unwrap();
    let seen: Vec<i64> = seen["items"].as_array().unwrap().iter().map(|l| l["id"].as_i64().unwrap()).collect();
    assert_eq!(seen, vec![lists[0]]);
    let hidden = lists[1];
    for path in [
        format!("/api/v1/contact-lists/{hidden}"),
        format!("/api/v1/contact-lists/{hidden}/records"),
        format!("/api/v1/contact-lists/{hidden}/imports"),
    ] {
        assert_eq!(sup.get(srv.url(&path)).send().await.unwrap().status(), 404, "{path}");
    }
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(b"phone\n+12125550143\n".to_vec()).file_name("a.csv"));
    let r = sup.post(srv.url(&format!("/api/v1/contact-lists/{hidden}/imports"))).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = sup
        .put(srv.url(&format!("/api/v1/contact-lists/{hidden}/records/by-external-id/x")))
        .json(&json!({"phones": [{"number": "+12125550143"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(sup.get(srv.url(&format!("/api/v1/contact-lists/{}/records", lists[0]))).send().await.unwrap().status(), 200);
}
