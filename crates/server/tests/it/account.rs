//! The console's account page: a signed-in user's password, API tokens and browser sessions,
//! with CSRF on every form, in English and Spanish, on both backends.

use crate::common;

use common::*;
use serde_json::{json, Value};

const PASSWORD: &str = "a long password";

/// A browser for `user`: its session cookie, and the session's CSRF token.
async fn browser(srv: &Server, user: &str, password: &str) -> (reqwest::Client, String) {
    let web = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let (s, me) = post_json(&web, srv.url("/api/v1/auth/login"), json!({"username": user, "password": password})).await;
    assert_eq!(s, 200, "{me}");
    (web, me["csrf_token"].as_str().unwrap().to_string())
}

async fn page(web: &reqwest::Client, srv: &Server) -> (u16, String) {
    let r = web.get(srv.url("/account")).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn post(web: &reqwest::Client, srv: &Server, path: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    let r = web.post(srv.url(path)).form(form).send().await.unwrap();
    let to = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (r.status().as_u16(), to, r.text().await.unwrap())
}

/// The ids in `id="<prefix>-<n>"` attributes of a page.
fn ids(html: &str, prefix: &str) -> Vec<i64> {
    html.match_indices(&format!("id=\"{prefix}-")).filter_map(|(i, m)| html[i + m.len()..].split('"').next()?.parse().ok()).collect()
}

#[tokio::test]
async fn the_account_page_manages_password_tokens_and_sessions() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let admin = srv.client();
        let roles: Value = admin.get(srv.url("/api/v1/roles")).send().await.unwrap().json().await.unwrap();
        let agent_role = roles["items"].as_array().unwrap().iter().find(|r| r["name"] == "agent").unwrap()["id"].clone();
        let body = json!({"username": "pat", "role_id": agent_role, "campaigns_profile": {"scope": "all"}, "password": PASSWORD});
        let (s, _) = post_json(&admin, srv.url("/api/v1/users"), body).await;
        assert_eq!(s, 201, "{backend}");

        // Two browsers of the same user: each lists both sessions, its own marked.
        let (web, csrf) = browser(&srv, "pat", PASSWORD).await;
        let (other, _) = browser(&srv, "pat", PASSWORD).await;
        let (s, html) = page(&web, &srv).await;
        assert_eq!(s, 200, "{backend}: every signed-in user has an account page");
        assert!(html.contains("id=\"account-username\">pat<"), "{backend}");
        assert!(html.contains("id=\"account-link\""), "{backend}: the header links to it");
        let others = ids(&html, "end-session");
        assert_eq!(others.len(), 1, "{backend}: the other session may be ended, not this one: {others:?}");

        // Every form needs the CSRF token.
        for path in ["/account/tokens", "/account/password", &format!("/account/sessions/{}/end", others[0])] {
            let (s, _, _) = post(&web, &srv, path, &[("name", "x"), ("current_password", PASSWORD), ("new_password", "x")]).await;
            assert_eq!(s, 403, "{backend}: {path} without the CSRF token");
        }

        // A token: its secret shown once, working, listed, then revoked.
        let (s, _, _) = post(&web, &srv, "/account/tokens", &[("csrf_token", &csrf), ("name", "report script"), ("ttl_days", "0")]).await;
        assert_eq!(s, 422, "{backend}: ttl_days 0 is refused as in the API");
        let (s, _, html) =
            post(&web, &srv, "/account/tokens", &[("csrf_token", &csrf), ("name", "report script"), ("ttl_days", "30")]).await;
        assert_eq!(s, 200, "{backend}");
        let secret = html.split("id=\"new-token-secret\">").nth(1).and_then(|r| r.split('<').next()).unwrap().to_string();
        let by_token = client_with(&secret);
        let (s, me) = get_json(&by_token, srv.url("/api/v1/auth/me")).await;
        assert_eq!((s.as_u16(), me["user"]["username"].as_str()), (200, Some("pat")), "{backend}");
        let (_, html) = page(&web, &srv).await;
        assert!(html.contains("report script") && !html.contains(&secret), "{backend}: listed, the secret never shown again");
        let tokens = ids(&html, "revoke-token");
        assert_eq!(tokens.len(), 1, "{backend}");
        let (s, to, _) = post(&web, &srv, &format!("/account/tokens/{}/revoke", tokens[0]), &[("csrf_token", &csrf)]).await;
        assert_eq!((s, to.as_str()), (303, "/account?done=revoked"), "{backend}");
        assert_eq!(by_token.get(srv.url("/api/v1/auth/me")).send().await.unwrap().status(), 401, "{backend}: revoked");
        // Another user's token is not one of pat's.
        let admin_tokens: Value = admin.get(srv.url("/api/v1/auth/tokens")).send().await.unwrap().json().await.unwrap();
        let admins = admin_tokens[0]["id"].as_i64().unwrap();
        let (s, _, _) = post(&web, &srv, &format!("/account/tokens/{admins}/revoke"), &[("csrf_token", &csrf)]).await;
        assert_eq!(s, 404, "{backend}");
        assert_eq!(admin.get(srv.url("/api/v1/auth/me")).send().await.unwrap().status(), 200, "{backend}");

        // The session in use cannot be ended from the list (signing out does that).
        let (_, html) = page(&web, &srv).await;
        assert!(html.contains("class=\"current-session\""), "{backend}");
        let (s, to, _) = post(&web, &srv, &format!("/account/sessions/{}/end", others[0]), &[("csrf_token", &csrf)]).await;
        assert_eq!((s, to.as_str()), (303, "/account?done=ended"), "{backend}");
        let r = other.get(srv.url("/account")).send().await.unwrap();
        assert_eq!(r.status(), 303, "{backend}: the ended session is signed out");
        assert!(r.headers()["location"].to_str().unwrap().starts_with("/login"), "{backend}");

        // The password: the current one is checked, the new one must be long enough.
        let (s, _, html) = post(
            &web,
            &srv,
            "/account/password",
            &[("csrf_token", &csrf), ("current_password", "wrong"), ("new_password", "another long one")],
        )
        .await;
        assert_eq!(s, 422, "{backend}");
        assert!(html.contains("is not your current password"), "{backend}");
        let (s, _, _) =
            post(&web, &srv, "/account/password", &[("csrf_token", &csrf), ("current_password", PASSWORD), ("new_password", "short")])
                .await;
        assert_eq!(s, 422, "{backend}");
        let (third, _) = browser(&srv, "pat", PASSWORD).await;
        let (s, to, _) = post(
            &web,
            &srv,
            "/account/password",
            &[("csrf_token", &csrf), ("current_password", PASSWORD), ("new_password", "another long one")],
        )
        .await;
        assert_eq!((s, to.as_str()), (303, "/account?done=password"), "{backend}");
        let (s, _) = page(&web, &srv).await;
        assert_eq!(s, 200, "{backend}: the session that changed it stays");
        assert_eq!(third.get(srv.url("/account")).send().await.unwrap().status(), 303, "{backend}: the others end");
        let anon = reqwest::Client::new();
        let (s, _) = post_json(&anon, srv.url("/api/v1/auth/login"), json!({"username": "pat", "password": PASSWORD})).await;
        assert_eq!(s, 401, "{backend}: the old password no longer signs in");
        browser(&srv, "pat", "another long one").await;

        // Every change is audited as made in the console.
        let (_, log) = get_json(&admin, srv.url("/api/v1/audit?entity_type=api_token")).await;
        let actions: Vec<(&str, &str)> =
            log["items"].as_array().unwrap().iter().map(|e| (e["action"].as_str().unwrap(), e["via"].as_str().unwrap())).collect();
        assert!(actions.contains(&("create", "console")) && actions.contains(&("delete", "console")), "{backend}: {actions:?}");
        let (_, log) = get_json(&admin, srv.url("/api/v1/audit?entity_type=user&action=password")).await;
        assert_eq!(log["items"][0]["via"], "console", "{backend}: {log}");
    }
}

#[tokio::test]
async fn the_account_page_speaks_spanish() {
    let srv = Server::start("sqlite").await;
    let (web, _) = browser(&srv, "admin", ADMIN_PASSWORD).await;
    let r = web.get(srv.url("/lang/es?next=/account")).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/account");
    let r = web.get(srv.url("/account")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Mi cuenta") && html.contains("Tokens de API") && html.contains("esta sesión"), "{html}");
}
