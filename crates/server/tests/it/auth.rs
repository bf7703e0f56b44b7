//! Sign-in, sessions with CSRF, API tokens, lockout, privileges and the campaigns profile.

use crate::common;

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
    for backend in BACKENDS {
        anonymous_callers_on(backend).await;
    }
}

async fn anonymous_callers_on(backend: &str) {
    let srv = Server::start(backend).await;
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
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["detail"], "invalid username or password", "{backend}: a locked account is refused like any other");
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
    for backend in BACKENDS {
        roles_and_profiles_on(backend).await;
    }
}

async fn roles_and_profiles_on(backend: &str) {
    let srv = Server::start(backend).await;
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

async fn role_id(c: &reqwest::Client, srv: &Server, name: &str) -> i64 {
    let roles: Value = c.get(srv.url("/api/v1/roles")).send().await.unwrap().json().await.unwrap();
    roles["items"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("role {name}"))["id"].as_i64().unwrap()
}

async fn send(c: &reqwest::Client, method: &str, url: String, body: Option<Value>) -> (u16, Value) {
    let mut r = c.request(method.parse().unwrap(), url);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// A user whose campaigns profile is limited but whose role has `users_roles` grants nothing it
/// does not hold, changes no built-in role and no role held outside its campaigns, and does not
/// manage users with an empty campaign list; built-in roles keep their names; the last active
/// holder of `users_roles` cannot be deleted, deactivated or stripped.
#[tokio::test]
async fn nobody_grants_what_they_do_not_hold() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let admin = srv.client();
        let mine = make_campaign(&admin, &srv, "Mine").await;
        let other = make_campaign(&admin, &srv, "Other").await;
        let (s, r) = send(
            &admin,
            "POST",
            srv.url("/api/v1/roles"),
            Some(json!({"name": "scoped admin", "privileges": ["users_roles", "campaigns_view"]})),
        )
        .await;
        assert_eq!(s, 201, "{r}");
        let (s, r) =
            send(&admin, "POST", srv.url("/api/v1/roles"), Some(json!({"name": "team lead", "privileges": ["campaigns_view"]}))).await;
        assert_eq!(s, 201, "{r}");
        let team_lead = r["id"].as_i64().unwrap();
        let (s, r) =
            send(&admin, "POST", srv.url("/api/v1/roles"), Some(json!({"name": "floor wide", "privileges": ["campaigns_view"]}))).await;
        assert_eq!(s, 201, "{r}");
        let floor_wide = r["id"].as_i64().unwrap();
        make_user(&admin, &srv, "lim", "scoped admin", json!({"scope": "only", "campaign_ids": [mine]})).await;
        let inside = make_user(&admin, &srv, "inside", "team lead", json!({"scope": "only", "campaign_ids": [mine]})).await;
        make_user(&admin, &srv, "outside", "floor wide", json!({"scope": "only", "campaign_ids": [other]})).await;
        let empty = make_user(&admin, &srv, "empty", "agent", json!({"scope": "only", "campaign_ids": []})).await;
        let administrator = role_id(&admin, &srv, "administrator").await;
        let lim = client_with(&srv.token_for("lim", "a long password").await);
        let (_, me) = send(&lim, "GET", srv.url("/api/v1/auth/me"), None).await;
        let lim_id = me["user"]["id"].as_i64().unwrap();

        // Built-in roles are shared by every campaign: not changed by a limited user.
        let (s, e) =
            send(&lim, "PUT", srv.url(&format!("/api/v1/roles/{administrator}")), Some(json!({"name": "administrator", "privileges": []})))
                .await;
        assert_eq!(s, 403, "{backend}: a limited user empties the administrator role: {e}");
        // A role held by a user outside the profile: not changed, not deleted.
        let (s, e) =
            send(&lim, "PUT", srv.url(&format!("/api/v1/roles/{floor_wide}")), Some(json!({"name": "floor wide", "privileges": []}))).await;
        assert_eq!(s, 403, "{backend}: {e}");
        assert_eq!(send(&lim, "DELETE", srv.url(&format!("/api/v1/roles/{floor_wide}")), None).await.0, 403);
        // A role held only inside the profile may change, but gains nothing its editor lacks.
        let (s, e) = send(
            &lim,
            "PUT",
            srv.url(&format!("/api/v1/roles/{team_lead}")),
            Some(json!({"name": "team lead", "privileges": ["campaigns_view", "reports"]})),
        )
        .await;
        assert_eq!((s, e["errors"][0]["field"].as_str()), (422, Some("privileges")), "{backend}: {e}");
        let (s, e) = send(
            &lim,
            "PUT",
            srv.url(&format!("/api/v1/roles/{team_lead}")),
            Some(json!({"name": "lead", "privileges": ["campaigns_view"]})),
        )
        .await;
        assert_eq!(s, 200, "{backend}: {e}");
        let (s, e) = send(&lim, "POST", srv.url("/api/v1/roles"), Some(json!({"name": "dialers", "privileges": ["agent"]}))).await;
        assert_eq!((s, e["errors"][0]["field"].as_str()), (422, Some("privileges")), "{backend}: {e}");
        // No administrator role for itself or for a user it sees, none for a new user.
        let grant = |name: &str, role: i64| json!({"username": name, "role_id": role, "campaigns_profile": {"scope": "only", "campaign_ids": [mine]}});
        let (s, e) = send(&lim, "PUT", srv.url(&format!("/api/v1/users/{lim_id}")), Some(grant("lim", administrator))).await;
        assert_eq!((s, e["errors"][0]["field"].as_str()), (422, Some("role_id")), "{backend}: {e}");
        let (s, e) = send(&lim, "PUT", srv.url(&format!("/api/v1/users/{inside}")), Some(grant("inside", administrator))).await;
        assert_eq!((s, e["errors"][0]["field"].as_str()), (422, Some("role_id")), "{backend}: {e}");
        let (s, e) = send(&lim, "POST", srv.url("/api/v1/users"), Some(grant("newbie", administrator))).await;
        assert_eq!((s, e["errors"][0]["field"].as_str()), (422, Some("role_id")), "{backend}: {e}");
        // ... but a role within its own privileges, yes; and editing a user keeping their role.
        let (s, e) = send(&lim, "POST", srv.url("/api/v1/users"), Some(grant("newbie", team_lead))).await;
        assert_eq!(s, 201, "{backend}: {e}");
        // An empty campaign list is nobody's scope: that user does not exist for a limited user.
        for (m, body) in [("GET", None), ("PUT", Some(grant("empty", team_lead))), ("DELETE", None)] {
            let (s, e) = send(&lim, m, srv.url(&format!("/api/v1/users/{empty}")), body).await;
            assert_eq!(s, 404, "{backend}: {m} a user with no campaigns: {e}");
        }
        let (_, list) = send(&lim, "GET", srv.url("/api/v1/users"), None).await;
        assert!(!list.to_string().contains("\"empty\""), "{list}");

        // Built-in roles keep their names, even for an administrator.
        let (s, e) = send(
            &admin,
            "PUT",
            srv.url(&format!("/api/v1/roles/{administrator}")),
            Some(json!({"name": "root", "privileges": ["users_roles"]})),
        )
        .await;
        assert_eq!((s, e["errors"][0]["field"].as_str()), (422, Some("name")), "{backend}: {e}");

        // The last active holder of users_roles stays.
        assert_eq!(send(&admin, "DELETE", srv.url(&format!("/api/v1/users/{lim_id}")), None).await.0, 204);
        let (_, me) = send(&admin, "GET", srv.url("/api/v1/auth/me"), None).await;
        let admin_id = me["user"]["id"].as_i64().unwrap();
        let supervisor = role_id(&admin, &srv, "supervisor").await;
        let me_as = |role: i64, active: bool| json!({"username": "admin", "role_id": role, "campaigns_profile": {"scope": "all"}, "active": active});
        for (what, m, path, body) in [
            ("deleted", "DELETE", format!("/api/v1/users/{admin_id}"), None),
            ("deactivated", "PUT", format!("/api/v1/users/{admin_id}"), Some(me_as(administrator, false))),
            ("given another role", "PUT", format!("/api/v1/users/{admin_id}"), Some(me_as(supervisor, true))),
            (
                "stripped",
                "PUT",
                format!("/api/v1/roles/{administrator}"),
                Some(json!({"name": "administrator", "privileges": ["campaigns_view"]})),
            ),
        ] {
            let (s, e) = send(&admin, m, srv.url(&path), body).await;
            assert_eq!(s, 409, "{backend}: the last account manager {what}: {e}");
            assert!(e["detail"].as_str().unwrap().contains("users_roles"), "{e}");
        }
        assert_eq!(send(&admin, "GET", srv.url("/api/v1/users"), None).await.0, 200, "{backend}: still an administrator");
        // With a second one, the first may go.
        make_user(&admin, &srv, "second", "administrator", json!({"scope": "all"})).await;
        let (s, e) = send(&admin, "PUT", srv.url(&format!("/api/v1/users/{admin_id}")), Some(me_as(supervisor, true))).await;
        assert_eq!(s, 200, "{backend}: {e}");
    }
}

/// A new password ends the user's other sessions (whoever changes it); API tokens stay, listed.
#[tokio::test]
async fn a_password_change_ends_other_sessions() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let admin = srv.client();
        let pat = make_user(&admin, &srv, "pat", "supervisor", json!({"scope": "all"})).await;
        let session = || async {
            let c = reqwest::Client::builder().cookie_store(true).build().unwrap();
            let (s, me) = post_json(&c, srv.url("/api/v1/auth/login"), json!({"username": "pat", "password": "a long password"})).await;
            assert_eq!(s, 200, "{me}");
            (c, me["csrf_token"].as_str().unwrap().to_string())
        };
        let (one, csrf) = session().await;
        let (two, _) = session().await;
        let token = client_with(&srv.token_for("pat", "a long password").await);
        let r = one
            .post(srv.url("/api/v1/auth/password"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"current_password": "wrong one", "new_password": "another long one"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{backend}: the current password is checked");
        let r = one
            .post(srv.url("/api/v1/auth/password"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"current_password": "a long password", "new_password": "another long one"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{backend}: {}", r.text().await.unwrap());
        assert_eq!(two.get(srv.url("/api/v1/campaigns")).send().await.unwrap().status(), 401, "{backend}: the other session ended");
        assert_eq!(one.get(srv.url("/api/v1/campaigns")).send().await.unwrap().status(), 200, "this session stays");
        assert_eq!(token.get(srv.url("/api/v1/campaigns")).send().await.unwrap().status(), 200, "API tokens stay");
        let (_, tokens) = get_json(&token, srv.url("/api/v1/auth/tokens")).await;
        assert_eq!(tokens.as_array().unwrap().len(), 1, "{tokens}");
        // An administrator sets a new password: every session of that user ends.
        let supervisor = role_id(&admin, &srv, "supervisor").await;
        let body = json!({"username": "pat", "role_id": supervisor, "campaigns_profile": {"scope": "all"}, "password": "a third long one"});
        assert_eq!(send(&admin, "PUT", srv.url(&format!("/api/v1/users/{pat}")), Some(body)).await.0, 200);
        assert_eq!(one.get(srv.url("/api/v1/campaigns")).send().await.unwrap().status(), 401, "{backend}: ended by the administrator");
    }
}

/// Reads a server-sent event stream until it ends; false if it is still open after `limit_s`.
async fn ends_within(r: reqwest::Response, limit_s: u64) -> bool {
    let mut r = r;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(limit_s);
    loop {
        match tokio::time::timeout_at(deadline, r.chunk()).await {
            Err(_) => return false,
            Ok(Ok(Some(_))) => continue,
            Ok(_) => return true,
        }
    }
}

/// Long-lived streams follow the caller's rights: a revoked token, a deactivated user or a
/// narrowed campaigns profile ends them within seconds.
#[tokio::test]
async fn streams_end_when_rights_end() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let admin = srv.client();
        let mine = make_campaign(&admin, &srv, "Mine").await;
        let other = make_campaign(&admin, &srv, "Other").await;
        let sue = make_user(&admin, &srv, "sue", "supervisor", json!({"scope": "only", "campaign_ids": [mine]})).await;
        let ana = make_user(&admin, &srv, "ana", "agent", json!({"scope": "all"})).await;
        let progress = format!("/api/v1/campaigns/{mine}/progress/events");
        let open = |c: reqwest::Client, path: String| {
            let url = srv.url(&path);
            async move {
                let r = c.get(url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r
            }
        };
        // Narrowed profile.
        let sue_c = client_with(&srv.token_for("sue", "a long password").await);
        let stream = open(sue_c.clone(), progress.clone()).await;
        let supervisor = role_id(&admin, &srv, "supervisor").await;
        let narrowed = json!({"username": "sue", "role_id": supervisor, "campaigns_profile": {"scope": "only", "campaign_ids": [other]}});
        assert_eq!(send(&admin, "PUT", srv.url(&format!("/api/v1/users/{sue}")), Some(narrowed)).await.0, 200);
        assert!(ends_within(stream, 8).await, "{backend}: the progress stream outlived the profile");
        // Revoked token.
        let token = srv.token_for("sue", "a long password").await;
        let sue_c = client_with(&token);
        let stream = open(sue_c.clone(), format!("/api/v1/campaigns/{other}/progress/events")).await;
        let (_, tokens) = get_json(&sue_c, srv.url("/api/v1/auth/tokens")).await;
        let id = tokens.as_array().unwrap().last().unwrap()["id"].as_i64().unwrap();
        assert_eq!(sue_c.delete(srv.url(&format!("/api/v1/auth/tokens/{id}"))).send().await.unwrap().status(), 204);
        assert!(ends_within(stream, 8).await, "{backend}: the progress stream outlived its token");
        // Deactivated user: the agent's notices stop.
        let ana_c = client_with(&srv.token_for("ana", "a long password").await);
        let stream = open(ana_c, "/api/v1/agent/events".into()).await;
        let agent = role_id(&admin, &srv, "agent").await;
        let off = json!({"username": "ana", "role_id": agent, "campaigns_profile": {"scope": "all"}, "active": false});
        assert_eq!(send(&admin, "PUT", srv.url(&format!("/api/v1/users/{ana}")), Some(off)).await.0, 200);
        assert!(ends_within(stream, 8).await, "{backend}: the agent's stream outlived the account");
    }
}

/// Refusals of a sign-in look alike: same status, same words, and about the same time, whether
/// the user is unknown, the password wrong or the account locked.
#[tokio::test]
async fn sign_in_refusals_are_uniform() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let admin = srv.client();
        make_user(&admin, &srv, "kim", "agent", json!({"scope": "all"})).await;
        make_user(&admin, &srv, "lou", "agent", json!({"scope": "all"})).await;
        let anon = reqwest::Client::new();
        let attempt = |user: &'static str, pw: &'static str| {
            let (anon, url) = (anon.clone(), srv.url("/api/v1/auth/login"));
            async move {
                let t = std::time::Instant::now();
                let r = anon.post(url).json(&json!({"username": user, "password": pw})).send().await.unwrap();
                let s = r.status().as_u16();
                let body: Value = r.json().await.unwrap();
                (s, body["detail"].as_str().unwrap_or_default().to_string(), t.elapsed().as_secs_f64())
            }
        };
        // Lock lou.
        for _ in 0..5 {
            attempt("lou", "wrong password").await;
        }
        let (mut wrong, mut unknown, mut locked) = (vec![], vec![], vec![]);
        // Each refusal does the same work: one argon2 verification, no hashing.
        let argon2 = || {
            let (anon, url) = (anon.clone(), srv.url("/metrics"));
            async move {
                let text = anon.get(url).send().await.unwrap().text().await.unwrap();
                let count = |op: &str| {
                    text.lines()
                        .find(|l| l.starts_with("campana_password_hashes_total") && l.contains(&format!("op=\"{op}\"")))
                        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                        .unwrap_or(0.0)
                };
                (count("verify"), count("hash"))
            }
        };
        for (user, pw) in [("kim", "wrong password"), ("nobody", "wrong password"), ("lou", "a long password")] {
            let before = argon2().await;
            assert_eq!(attempt(user, pw).await.0, 401);
            let after = argon2().await;
            assert_eq!((after.0 - before.0, after.1 - before.1), (1.0, 0.0), "{backend}: {user}: argon2 verifications and hashes");
        }
        let cases = [("kim", "wrong password"), ("nobody", "wrong password"), ("lou", "a long password")];
        for i in 0..12 {
            // kim never reaches the lockout: a good sign-in between wrong ones resets the count.
            if i % 3 == 2 {
                assert_eq!(attempt("kim", "a long password").await.0, 200);
            }
            for k in 0..3 {
                let (user, pw) = cases[(i + k) % 3];
                let (s, detail, t) = attempt(user, pw).await;
                assert_eq!((s, detail.as_str()), (401, "invalid username or password"), "{backend}: {user}");
                [&mut wrong, &mut unknown, &mut locked][(i + k) % 3].push(t);
            }
        }
        // And the time agrees, within what a loaded machine allows (the fastest of each: load
        // only ever adds time).
        let fastest = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let (w, u, l) = (fastest(&wrong), fastest(&unknown), fastest(&locked));
        for (what, t) in [("unknown user", u), ("locked account", l)] {
            let ratio = t / w;
            assert!((0.33..3.0).contains(&ratio), "{backend}: {what} refused in {t:.4}s, a wrong password in {w:.4}s (ratio {ratio:.2})");
        }
    }
}

/// Text with NUL or other control characters is refused at the boundary with 422 on both
/// backends, signed in or not; a token's lifetime has stated limits.
#[tokio::test]
async fn control_characters_and_token_lifetimes_are_refused_at_the_boundary() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let admin = srv.client();
        let anon = reqwest::Client::new();
        let (s, e) = post_json(&anon, srv.url("/api/v1/auth/login"), json!({"username": "ad\u{0}min", "password": "x"})).await;
        assert_eq!((s.as_u16(), e["errors"][0]["field"].as_str()), (422, Some("username")), "{backend}: {e}");
        let (s, e) = post_json(&admin, srv.url("/api/v1/campaign-groups"), json!({"name": "a\u{1}b"})).await;
        assert_eq!(s, 422, "{backend}: {e}");
        let (s, e) =
            post_json(&admin, srv.url("/api/v1/campaign-groups"), json!({"name": "G", "description": "two\nlines\tand a tab"})).await;
        assert_eq!(s, 201, "{backend}: line breaks and tabs are text: {e}");
        let (s, e) = post_json(&admin, srv.url("/api/v1/contact-lists"), json!({"name": "L"})).await;
        assert_eq!(s, 201, "{e}");
        let list = e["id"].as_i64().unwrap();
        for path in [format!("/api/v1/contact-lists/{list}/records/by-external-id/a%00b"), "/api/v1/campaigns?cursor=%00".to_string()] {
            let r = admin.get(srv.url(&path)).send().await.unwrap();
            assert_eq!(r.status(), 422, "{backend}: {path}");
        }
        let r = admin
            .put(srv.url(&format!("/api/v1/contact-lists/{list}/records/by-external-id/x%00y")))
            .json(&json!({"phones": [{"number": "+12125550143"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{backend}");
        // The console's sign-in form too.
        let r = anon.post(srv.url("/login")).form(&[("username", "ad\u{0}min"), ("password", "x")]).send().await.unwrap();
        assert_eq!(r.status(), 422, "{backend}: console sign-in with NUL");
        // Token lifetimes: 1 to 3650 days, or none.
        for bad in [json!(0), json!(3651), json!(4_294_967_295u64)] {
            let (s, e) = post_json(&admin, srv.url("/api/v1/auth/tokens"), json!({"name": "t", "ttl_days": bad})).await;
            assert_eq!((s.as_u16(), e["errors"][0]["field"].as_str()), (422, Some("ttl_days")), "{backend}: ttl_days {bad}: {e}");
        }
        let (s, t) = post_json(&admin, srv.url("/api/v1/auth/tokens"), json!({"name": "t", "ttl_days": 3650})).await;
        assert_eq!(s, 201, "{t}");
        let exp = chrono::DateTime::parse_from_rfc3339(t["expires_at"].as_str().unwrap()).unwrap();
        assert!(exp > chrono::Utc::now() + chrono::Duration::days(3649), "{t}");
        assert_eq!(client_with(t["token"].as_str().unwrap()).get(srv.url("/api/v1/campaigns")).send().await.unwrap().status(), 200);
    }
}
