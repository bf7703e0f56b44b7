//! The audit log, on SQLite and PostgreSQL: changes through the API and the console with who,
//! when, before and after; sign-ins; filters and cursor pages; the CSV export; who may read it
//! and the campaigns-profile rule.

use crate::common;

use common::*;
use serde_json::{json, Value};

async fn audit(c: &reqwest::Client, srv: &Server, query: &str) -> Vec<Value> {
    let (s, page) = get_json(c, srv.url(&format!("/api/v1/audit?limit=1000&{query}"))).await;
    assert_eq!(s, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

fn campaign(name: &str) -> Value {
    json!({"name": name, "daily_hours": {"start": "09:00", "end": "20:00"}, "weekdays": ["mon"], "time_zone": "Europe/Madrid"})
}

#[tokio::test]
async fn changes_are_audited_filtered_exported_and_scoped() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let admin = srv.client();
        let started = chrono::Utc::now() - chrono::Duration::seconds(1);
        let (_, a) = post_json(&admin, srv.url("/api/v1/campaigns"), campaign("Alpha")).await;
        let (_, b) = post_json(&admin, srv.url("/api/v1/campaigns"), campaign("Secret Beta")).await;
        let (a, b) = (a["id"].as_i64().unwrap(), b["id"].as_i64().unwrap());
        let mut edited = campaign("Alpha");
        edited["agent_notes"] = json!("Be kind");
        let r = admin.put(srv.url(&format!("/api/v1/campaigns/{a}"))).json(&edited).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let (s, _) = post_json(&admin, srv.url(&format!("/api/v1/campaigns/{b}/archive")), json!(null)).await;
        assert_eq!(s, 200);
        let (_, roles) = get_json(&admin, srv.url("/api/v1/roles")).await;
        let role = |n: &str| roles["items"].as_array().unwrap().iter().find(|r| r["name"] == n).unwrap()["id"].clone();
        let (s, sue) = post_json(
            &admin,
            srv.url("/api/v1/users"),
            json!({"username": "sue", "role_id": role("supervisor"), "campaigns_profile": {"scope": "only", "campaign_ids": [a]}, "password": "a long password"}),
        )
        .await;
        assert_eq!(s, 201, "{sue}");
        post_json(
            &admin,
            srv.url("/api/v1/users"),
            json!({"username": "ana", "role_id": role("agent"), "campaigns_profile": {"scope": "all"}, "password": "a long password"}),
        )
        .await;
        let (_, dnc) = post_json(&admin, srv.url("/api/v1/dnc-lists"), json!({"name": "Complaints"})).await;
        let (s, _) =
            post_json(&admin, srv.url(&format!("/api/v1/dnc-lists/{}/entries", dnc["id"])), json!({"phone": "+12125550143"})).await;
        assert_eq!(s, 200);
        // A wrong password and a sign-in, both logged.
        let r = reqwest::Client::new()
            .post(srv.url("/api/v1/auth/login"))
            .json(&json!({"username": "sue", "password": "not her password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let sup = client_with(&srv.token_for("sue", "a long password").await);

        // Who, what, before and after.
        let all = audit(&admin, &srv, "").await;
        let find = |action: &str, ty: &str, id: i64| {
            all.iter()
                .find(|e| e["action"] == action && e["entity_type"] == ty && e["entity_id"] == Value::String(id.to_string()))
                .unwrap_or_else(|| panic!("{backend}: no {action} {ty} {id} in {all:#?}"))
                .clone()
        };
        let created = find("create", "campaign", a);
        assert_eq!(created["actor_name"], "admin");
        assert_eq!(created["via"], "api");
        assert!(created["before"].is_null());
        assert_eq!(created["after"]["name"], "Alpha");
        assert_eq!(created["campaign_ids"], json!([a]));
        let updated = find("update", "campaign", a);
        assert_eq!(updated["before"]["agent_notes"], "", "{updated}");
        assert_eq!(updated["after"]["agent_notes"], "Be kind");
        let archived = find("archive", "campaign", b);
        assert_eq!(archived["before"]["state"], "draft");
        assert_eq!(archived["after"]["state"], "archived");
        let user = find("create", "user", sue["id"].as_i64().unwrap());
        assert_eq!(user["after"]["password_changed"], true);
        assert!(!user.to_string().contains("a long password"), "{backend}: no password in the log");
        let sue_id = sue["id"].as_i64().unwrap();
        assert_eq!(find("login_failed", "session", sue_id)["actor_name"], "sue");
        assert_eq!(find("login", "session", sue_id)["actor_id"], sue_id);
        assert_eq!(all.iter().filter(|e| e["entity_type"] == "dnc_entry").count(), 1);
        // Newest first, timestamps within the test.
        let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "{backend}: {ids:?}");

        // Filters.
        let only_a = audit(&admin, &srv, &format!("campaign_id={a}")).await;
        assert!(only_a.len() >= 3 && only_a.iter().all(|e| e["campaign_ids"].as_array().unwrap().contains(&json!(a))), "{backend}");
        let logins = audit(&admin, &srv, "action=login&entity_type=session").await;
        assert!(logins.iter().all(|e| e["action"] == "login") && logins.len() >= 2, "{backend}: {logins:?}");
        let since = started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        assert_eq!(audit(&admin, &srv, &format!("since={}", since.replace('+', "%2B"))).await.len(), all.len());
        assert!(audit(&admin, &srv, "until=2000-01-01T00:00:00Z").await.is_empty());
        let (s, p) = get_json(&admin, srv.url("/api/v1/audit?since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z")).await;
        assert_eq!(s, 422);
        assert_eq!(p["errors"][0]["field"], "until", "{p}");
        let (s, p) = get_json(&admin, srv.url("/api/v1/audit?actor_id=abc")).await;
        assert_eq!(s, 422);
        assert_eq!(p["errors"][0]["field"], "actor_id", "{p}");
        // Cursor pages of 3 cover everything once.
        let mut seen = Vec::new();
        let mut cursor = String::new();
        loop {
            let (_, page) = get_json(&admin, srv.url(&format!("/api/v1/audit?limit=3{cursor}"))).await;
            seen.extend(page["items"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        let now_all = audit(&admin, &srv, "").await;
        assert_eq!(seen, now_all.iter().map(|e| e["id"].as_i64().unwrap()).collect::<Vec<_>>(), "{backend}");

        // CSV export of the same selection.
        let r = admin.get(srv.url(&format!("/api/v1/audit/export.csv?campaign_id={a}"))).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let text = r.text().await.unwrap();
        let mut rows = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(rows.headers().unwrap().iter().collect::<Vec<_>>()[..4], ["id", "at", "actor_id", "actor_name"]);
        let rows: Vec<csv::StringRecord> = rows.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), audit(&admin, &srv, &format!("campaign_id={a}")).await.len(), "{backend}: {text}");
        let after: Value = serde_json::from_str(&rows.iter().find(|r| &r[5] == "update").unwrap()[11]).unwrap();
        assert_eq!(after["agent_notes"], "Be kind");

        // A supervisor limited to Alpha: Alpha's entries, nothing of Beta, no user or sign-in entries.
        let mine = audit(&sup, &srv, "").await;
        assert!(mine.iter().any(|e| e["entity_type"] == "campaign" && e["entity_id"] == Value::String(a.to_string())), "{backend}");
        let text = serde_json::to_string(&mine).unwrap();
        assert!(!text.contains("Secret Beta"), "{backend}: {text}");
        assert!(mine.iter().all(|e| !e["campaign_ids"].as_array().unwrap().contains(&json!(b))), "{backend}: {text}");
        assert!(mine.iter().all(|e| !["user", "session", "role", "api_token"].contains(&e["entity_type"].as_str().unwrap())));
        assert!(audit(&sup, &srv, &format!("campaign_id={b}")).await.is_empty());
        let csv_text = sup.get(srv.url("/api/v1/audit/export.csv")).send().await.unwrap().text().await.unwrap();
        assert!(!csv_text.contains("Secret Beta"), "{backend}");
        let agent = client_with(&srv.token_for("ana", "a long password").await);
        assert_eq!(agent.get(srv.url("/api/v1/audit")).send().await.unwrap().status(), 403);

        // The console: a change through a form is logged "via console"; the page lists it.
        let web = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let (_, me) = post_json(&web, srv.url("/api/v1/auth/login"), json!({"username": "admin", "password": ADMIN_PASSWORD})).await;
        let csrf = me["csrf_token"].as_str().unwrap();
        let r = web.post(srv.url("/campaign-groups")).form(&[("csrf_token", csrf), ("name", "Made in the console")]).send().await.unwrap();
        assert_eq!(r.status(), 303, "{backend}: {}", r.text().await.unwrap());
        let groups = audit(&admin, &srv, "entity_type=campaign_group").await;
        assert_eq!(groups[0]["via"], "console", "{backend}: {groups:?}");
        assert_eq!(groups[0]["after"]["name"], "Made in the console");
        let r = web.get(srv.url("/audit?entity_type=campaign_group")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let html = r.text().await.unwrap();
        assert!(html.contains("Made in the console") && html.contains("Audit log"), "{backend}");
        assert!(html.contains("/api/v1/audit/export.csv?entity_type=campaign_group"));
        let r = web.get(srv.url("/audit")).header("accept-language", "es").send().await.unwrap();
        assert!(r.text().await.unwrap().contains("Registro de auditoría"));
        let r = web.get(srv.url("/audit?since=yesterday")).send().await.unwrap();
        assert_eq!(r.status(), 422);
        // The supervisor's console page: nothing of Beta either.
        let web_sup = reqwest::Client::builder().cookie_store(true).build().unwrap();
        post_json(&web_sup, srv.url("/api/v1/auth/login"), json!({"username": "sue", "password": "a long password"})).await;
        let html = web_sup.get(srv.url("/audit")).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("Alpha") && !html.contains("Secret Beta"), "{backend}");
    }
}
