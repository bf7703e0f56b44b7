//! Console forms without a browser (the browser tests drive the pages; these check what each form
//! stores, refuses and audits): a record's edit form and the DNC file upload, on both backends.

mod common;

use common::*;
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

async fn console(srv: &Server) -> (reqwest::Client, String) {
    let web = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let (s, me) = post_json(&web, srv.url("/api/v1/auth/login"), json!({"username": "admin", "password": ADMIN_PASSWORD})).await;
    assert_eq!(s, 200, "{me}");
    let csrf = me["csrf_token"].as_str().unwrap().to_string();
    (web, csrf)
}

#[tokio::test]
async fn a_record_is_changed_from_its_page_and_bad_values_are_named() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let c = srv.client();
        let (s, list) = post_json(&c, srv.url("/api/v1/contact-lists"), json!({"name": "Renewals"})).await;
        assert_eq!(s, 201, "{list}");
        let lid = list["id"].as_i64().unwrap();
        let member =
            json!({"members": [{"external_id": "m1", "contact": {"name": "Ana", "phones": [{"number": "+13125550100", "type": "home"}]}}]});
        let (s, o) = post_json(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records/bulk-upsert")), member).await;
        assert_eq!(s, 200, "{o}");
        let (_, records) = get_json(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records"))).await;
        let rid = records["items"][0]["id"].as_i64().unwrap();
        let page = format!("/contact-lists/{lid}/records/{rid}");
        let (web, csrf) = console(&srv).await;
        let html = web.get(srv.url(&page)).send().await.unwrap().text().await.unwrap();
        assert!(html.contains("id=\"record-edit\""), "{backend}: the form is shown to an administrator");

        // Bad values: 422, each field named, the typed values kept, nothing changed.
        let bad = [
            ("csrf_token", csrf.as_str()),
            ("record_type", "general"),
            ("record_status", "ready"),
            ("dial_from", "tomorrow"),
            ("dial_until", ""),
            ("callback_at", ""),
            ("time_zone", "Mars/Olympus"),
        ];
        let r = web.post(srv.url(&page)).form(&bad).send().await.unwrap();
        assert_eq!(r.status(), 422, "{backend}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("dial_from: &#39;tomorrow&#39; is not a date") || html.contains("dial_from: 'tomorrow' is not a date"),
            "{html}"
        );
        assert!(html.contains("time_zone:") && html.contains("Mars/Olympus"), "{backend}");
        let (_, rec) = get_json(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records/{rid}"))).await;
        assert_eq!(rec["time_zone"], Value::Null, "{rec}");

        // Good values: saved, audited as a console change, shown on the page.
        let good = [
            ("csrf_token", csrf.as_str()),
            ("record_type", "no_call"),
            ("record_status", "cancelled"),
            ("dial_from", "2031-01-02T09:30"),
            ("dial_until", ""),
            ("callback_at", ""),
            ("time_zone", "America/Chicago"),
        ];
        let r = web.post(srv.url(&page)).form(&good).send().await.unwrap();
        assert_eq!(r.status(), 303, "{backend}: {}", r.text().await.unwrap());
        let (_, rec) = get_json(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records/{rid}"))).await;
        assert_eq!((rec["record_type"].as_str(), rec["record_status"].as_str()), (Some("no_call"), Some("cancelled")), "{rec}");
        assert_eq!(rec["time_zone"], "America/Chicago");
        assert!(rec["dial_from"].as_str().unwrap().starts_with("2031-01-02T09:30:00"), "{rec}");
        let (_, log) = get_json(&c, srv.url(&format!("/api/v1/audit?entity_type=record&entity_id={rid}"))).await;
        assert_eq!((log["items"][0]["via"].as_str(), log["items"][0]["action"].as_str()), (Some("console"), Some("update")), "{log}");
        // Without the CSRF token the change is refused.
        let r = web.post(srv.url(&page)).form(&good[1..]).send().await.unwrap();
        assert_eq!(r.status(), 403, "{backend}");
    }
}

#[tokio::test]
async fn a_dnc_file_is_uploaded_from_the_dnc_page() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let c = srv.client();
        let (_, dnc) = post_json(&c, srv.url("/api/v1/dnc-lists"), json!({"name": "Registry"})).await;
        let id = dnc["id"].as_i64().unwrap();
        let (web, csrf) = console(&srv).await;
        let form = |country: &str| {
            Form::new()
                .text("csrf_token", csrf.clone())
                .part("file", Part::bytes(b"phone,reason\n(212) 555-0143,asked\nnonsense,x\n".to_vec()).file_name("optouts.csv"))
                .text("default_country", country.to_string())
                .text("reason", "")
        };
        let r = web.post(srv.url(&format!("/dnc-lists/{id}/entries/upload"))).multipart(form("US")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{backend}");
        let html = r.text().await.unwrap();
        assert!(html.contains("id=\"dnc-imported\""), "{backend}: the outcome is shown");
        assert!(html.contains("optouts.csv") && html.contains("row 3, phone"), "{backend}: the bad row is named");
        let (_, entries) = get_json(&c, srv.url(&format!("/api/v1/dnc-lists/{id}/entries"))).await;
        assert_eq!(entries["items"][0]["phone"], "+12125550143", "{entries}");
        assert_eq!(entries["items"][0]["reason"], "asked");
        // A country code that is none: 422 naming it, nothing imported.
        let r = web.post(srv.url(&format!("/dnc-lists/{id}/entries/upload"))).multipart(form("Narnia")).send().await.unwrap();
        assert_eq!(r.status(), 422, "{backend}");
        assert!(r.text().await.unwrap().contains("default_country:"), "{backend}");
        let (_, log) = get_json(&c, srv.url("/api/v1/audit?entity_type=dnc_list&action=import")).await;
        assert_eq!(log["items"].as_array().unwrap().len(), 1, "{log}");
        assert_eq!(log["items"][0]["via"], "console");
    }
}
