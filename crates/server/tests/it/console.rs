//! Console forms without a browser (the browser tests drive the pages; these check what each form
//! stores, refuses and audits): a record's edit form and the DNC file upload, on both backends.

use crate::common;

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

/// What a browser submits for the first `<form method="post">` of `html` left as it is shown: text
/// inputs and textareas with their value, ticked checkboxes, each select's selected (else first)
/// option. Written from the HTML forms rules, not from the form engine.
fn untouched_submission(html: &str) -> (String, Vec<(String, String)>) {
    fn unescape(s: &str) -> String {
        s.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    }
    fn attr(tag: &str, name: &str) -> Option<String> {
        let needle = format!(" {name}=\"");
        let i = tag.find(&needle)? + needle.len();
        let j = tag[i..].find('"')? + i;
        Some(unescape(&tag[i..j]))
    }
    fn flag(tag: &str, name: &str) -> bool {
        tag.split(|c: char| c.is_whitespace() || c == '>' || c == '/').any(|w| w == name)
    }
    let start = html.find("<form class=\"edit\" method=\"post\"").or_else(|| html.find("<form method=\"post\"")).expect("a post form");
    let end = html[start..].find("</form>").expect("form end") + start;
    let form = &html[start..end];
    let action = attr(&form[..form.find('>').unwrap()], "action").expect("form action");
    let mut out = Vec::new();
    let mut rest = form;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        let close = rest.find('>').expect("tag end");
        let tag = &rest[..=close];
        if tag.starts_with("<input") {
            let (name, ty) = (attr(tag, "name"), attr(tag, "type").unwrap_or_else(|| "text".into()));
            if let Some(name) = name {
                match ty.as_str() {
                    "checkbox" | "radio" => {
                        if flag(tag, "checked") {
                            out.push((name, attr(tag, "value").unwrap_or_else(|| "on".into())));
                        }
                    }
                    "submit" | "button" => {}
                    _ => out.push((name, attr(tag, "value").unwrap_or_default())),
                }
            }
        } else if tag.starts_with("<textarea") {
            let body_end = rest.find("</textarea>").expect("textarea end");
            if let Some(name) = attr(tag, "name") {
                out.push((name, unescape(&rest[close + 1..body_end])));
            }
        } else if tag.starts_with("<select") {
            let body_end = rest.find("</select>").expect("select end");
            let body = &rest[close + 1..body_end];
            let options: Vec<&str> = body.split("<option").skip(1).map(|o| &o[..o.find('>').unwrap()]).collect();
            let chosen = options.iter().find(|o| flag(o, "selected")).or(options.first());
            if let (Some(name), Some(o)) = (attr(tag, "name"), chosen) {
                out.push((name, attr(&format!(" {o}"), "value").unwrap_or_default()));
            }
        }
        rest = &rest[1..];
    }
    (action, out)
}

/// The issue: a campaign created in the console saved an empty DNC selection as its own override,
/// so the profile's DNC lists never applied. Every override field left untouched, on create and on
/// edit, stays unset (source "profile" or "default"); each one touched becomes the campaign's.
#[tokio::test]
async fn untouched_override_fields_stay_inherited_and_touched_ones_are_the_campaigns() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let c = srv.client();
        let (_, dnc) = post_json(&c, srv.url("/api/v1/dnc-lists"), json!({"name": "Opt-outs"})).await;
        let dnc_id = dnc["id"].as_i64().unwrap();
        let group = agent_group(&srv, "Sales").await;
        let (_, script) = post_json(&c, srv.url("/api/v1/scripts"), json!({"name": "Hello", "body": "Hi"})).await;
        let script_id = script["id"].as_i64().unwrap();
        let (s, prof) = post_json(
            &c,
            srv.url("/api/v1/settings-profiles"),
            json!({"name": "House", "is_default": true, "settings": {"dnc_list_ids": [dnc_id], "ring_timeout_s": 30}}),
        )
        .await;
        assert_eq!(s, 201, "{prof}");
        let (web, _) = console(&srv).await;
        let sources = |id: i64| {
            let (c, url) = (c.clone(), srv.url(&format!("/api/v1/campaigns/{id}/settings")));
            async move {
                let (s, eff) = get_json(&c, url).await;
                assert_eq!(s, 200, "{eff}");
                eff
            }
        };
        let submit = |path: String, set: Vec<(String, Vec<String>)>| {
            let (web, base) = (web.clone(), srv.base.clone());
            async move {
                let html = web.get(format!("{base}{path}")).send().await.unwrap().text().await.unwrap();
                let (action, mut form) = untouched_submission(&html);
                for (name, values) in set {
                    form.retain(|(k, _)| *k != name);
                    form.extend(values.into_iter().map(|v| (name.clone(), v)));
                }
                let r = web.post(format!("{base}{action}")).form(&form).send().await.unwrap();
                let status = r.status();
                let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_string());
                assert_eq!(status, 303, "{backend}: {path}: {}", r.text().await.unwrap());
                location.unwrap()
            }
        };
        let id_of = |campaign: String| {
            let (c, url) = (c.clone(), srv.url("/api/v1/campaigns?limit=1000"));
            async move {
                let (_, all) = get_json(&c, url).await;
                all["items"].as_array().unwrap().iter().find(|x| x["name"] == campaign.as_str()).expect("created")["id"].as_i64().unwrap()
            }
        };
        let name = |n: &str| vec![("name".to_string(), vec![n.to_string()])];

        // Created without touching an override: every source is the profile or the default.
        submit("/campaigns/new".into(), name("Untouched")).await;
        let id = id_of("Untouched".into()).await;
        let eff = sources(id).await;
        let campaign_sourced = |eff: &Value| -> Vec<String> {
            eff["sources"].as_object().unwrap().iter().filter(|(_, v)| *v == "campaign").map(|(k, _)| k.clone()).collect()
        };
        assert_eq!(campaign_sourced(&eff), Vec::<String>::new(), "{backend}: created untouched: {eff}");
        assert_eq!(eff["sources"]["dnc_list_ids"], "profile", "{eff}");
        assert_eq!(eff["settings"]["dnc_list_ids"], json!([dnc_id]), "{eff}");
        assert_eq!(eff["sources"]["ring_timeout_s"], "profile");
        // Edited (saved as shown): still nothing of the campaign's own.
        submit(format!("/campaigns/{id}/edit"), vec![]).await;
        let eff = sources(id).await;
        assert_eq!(campaign_sourced(&eff), Vec::<String>::new(), "{backend}: edited untouched: {eff}");

        // Each override touched alone becomes the campaign's, and survives an untouched edit.
        let touched: Vec<(&str, Vec<String>)> = vec![
            ("dialing_mode", vec!["power".into()]),
            ("preview_timeout_s", vec!["60".into()]),
            ("preview_timeout_action", vec!["dial".into()]),
            ("agent_first", vec!["true".into()]),
            ("lines_per_agent", vec!["2.5".into()]),
            ("abandon_rate_target", vec!["0.01".into()]),
            ("abandon_rate_max", vec!["0.02".into()]),
            ("abandon_policy", vec!["uk_ofcom_24h".into()]),
            ("connect_deadline_ms", vec!["1500".into()]),
            ("agent_group_id", vec![group.to_string()]),
            ("script_id", vec![script_id.to_string()]),
            ("dnc_list_ids", vec![dnc_id.to_string()]),
            ("call_analysis", vec!["{\"amd_enabled\": true}".into()]),
            ("retry_treatments", vec!["[]".into()]),
            ("sort_order", vec!["[{\"field\": \"name\", \"kind\": \"alphabetic\", \"direction\": \"asc\"}]".into()]),
            ("record_filters", vec!["[]".into()]),
            ("calling_hours_rules", vec!["default".into()]),
            ("explicit_zone_wins", vec!["true".into()]),
            ("max_attempts_per_number", vec!["4".into()]),
            ("max_attempts_per_chain", vec!["9".into()]),
            ("max_attempts_per_day", vec!["2".into()]),
            ("min_recall_delay_s", vec!["900".into()]),
            ("abandon_recall_block_s", vec!["3600".into()]),
            ("ring_timeout_s", vec!["40".into()]),
            ("caller_id", vec!["+13125550100".into()]),
            ("sip_trunk", vec!["main".into()]),
            ("recording", vec!["true".into()]),
            ("wrap_up_s", vec!["20".into()]),
        ];
        let all: Vec<String> = eff["sources"].as_object().unwrap().keys().cloned().collect();
        let mut listed: Vec<String> = touched.iter().map(|(k, _)| k.to_string()).collect();
        listed.sort();
        assert_eq!(listed, all, "the test touches every override field");
        for (field, values) in touched {
            let mut set = name(&format!("Touched {field}"));
            set.push((format!("overrides.{field}"), values));
            submit("/campaigns/new".into(), set).await;
            let id = id_of(format!("Touched {field}")).await;
            let eff = sources(id).await;
            assert_eq!(campaign_sourced(&eff), vec![field.to_string()], "{backend}: {field} touched on create: {eff}");
            submit(format!("/campaigns/{id}/edit"), vec![]).await;
            let eff = sources(id).await;
            assert_eq!(campaign_sourced(&eff), vec![field.to_string()], "{backend}: {field} kept by an untouched edit: {eff}");
        }
        // "None" is said with the list's own checkbox: an empty override, kept by an untouched edit.
        let mut set = name("No DNC lists");
        set.push(("overrides.dnc_list_ids!none".to_string(), vec!["true".to_string()]));
        submit("/campaigns/new".into(), set).await;
        let id = id_of("No DNC lists".into()).await;
        let eff = sources(id).await;
        assert_eq!((eff["sources"]["dnc_list_ids"].as_str(), &eff["settings"]["dnc_list_ids"]), (Some("campaign"), &json!([])), "{eff}");
        submit(format!("/campaigns/{id}/edit"), vec![]).await;
        let eff = sources(id).await;
        assert_eq!((eff["sources"]["dnc_list_ids"].as_str(), &eff["settings"]["dnc_list_ids"]), (Some("campaign"), &json!([])), "{eff}");
    }
}

/// Every state-changing console request needs the session's CSRF token, multipart forms
/// included (the token is their first part); a multipart body without it changes nothing.
#[tokio::test]
async fn multipart_posts_without_the_csrf_token_are_refused() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let c = srv.client();
        let body = json!({"name": "C", "daily_hours": {"start": "00:00", "end": "23:59"}, "weekdays": ["mon"], "time_zone": "UTC"});
        let (_, camp) = post_json(&c, srv.url("/api/v1/campaigns"), body).await;
        let id = camp["id"].as_i64().unwrap();
        let (_, group) = post_json(&c, srv.url("/api/v1/campaign-groups"), json!({"name": "G"})).await;
        let gid = group["id"].as_i64().unwrap();
        let (web, csrf) = console(&srv).await;
        for path in [format!("/campaigns/{id}/start"), format!("/campaign-groups/{gid}/delete"), "/logout".to_string()] {
            let r = web.post(srv.url(&path)).multipart(Form::new().text("x", "y")).send().await.unwrap();
            assert_eq!(r.status(), 403, "{backend}: multipart POST {path} without a token");
            let r = web.post(srv.url(&path)).multipart(Form::new().text("csrf_token", "wrong".to_string())).send().await.unwrap();
            assert_eq!(r.status(), 403, "{backend}: multipart POST {path} with a wrong token");
        }
        let (_, camp) = get_json(&c, srv.url(&format!("/api/v1/campaigns/{id}"))).await;
        assert_eq!(camp["state"], "draft", "{backend}: nothing changed");
        assert_eq!(get_json(&c, srv.url(&format!("/api/v1/campaign-groups/{gid}"))).await.0, 200);
        assert_eq!(web.get(srv.url("/campaigns")).send().await.unwrap().status(), 200, "{backend}: still signed in");
        // With the token first, the same form works.
        let r = web
            .post(srv.url(&format!("/campaign-groups/{gid}/delete")))
            .multipart(Form::new().text("csrf_token", csrf))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{backend}");
        assert_eq!(get_json(&c, srv.url(&format!("/api/v1/campaign-groups/{gid}"))).await.0, 404);
    }
}

/// After sign-in the console follows only same-origin relative paths.
#[tokio::test]
async fn sign_in_follows_only_same_origin_paths() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        for (next, to) in [
            ("/contact-lists?x=1", "/contact-lists?x=1"),
            ("/\t/evil.example", "/"),
            ("//evil.example", "/"),
            ("/\\evil.example", "/"),
            ("\\\\evil.example", "/"),
            ("https://evil.example", "/"),
            ("/\n", "/"),
            ("/a\r\nSet-Cookie: x=1", "/"),
        ] {
            let web = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
            let r = web
                .post(srv.url("/login"))
                .form(&[("username", "admin"), ("password", ADMIN_PASSWORD), ("next", next)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303, "{backend}: next={next:?}");
            assert_eq!(r.headers()["location"], to, "{backend}: next={next:?}");
            let r = web.get(srv.url(&format!("/login?next={}", urlencode(next)))).send().await.unwrap();
            // Shown with a safe next, or refused (control characters in a query string): never 5xx.
            let control = next.chars().any(char::is_control);
            assert_eq!(r.status().as_u16(), if control { 422 } else { 200 }, "{backend}: GET /login?next={next:?}");
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

/// Every CSV Campana writes neutralises spreadsheet formulas: the audit export and an import's
/// error file.
#[tokio::test]
async fn csv_files_neutralise_formulas() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let c = srv.client();
        let (s, g) = post_json(&c, srv.url("/api/v1/campaign-groups"), json!({"name": "=HYPERLINK(\"http://evil.example\",\"x\")"})).await;
        assert_eq!(s, 201, "{g}");
        let csv = c.get(srv.url("/api/v1/audit/export.csv")).send().await.unwrap().text().await.unwrap();
        let mut rows = csv::Reader::from_reader(csv.as_bytes());
        let summaries: Vec<String> = rows.records().map(|r| r.unwrap()[8].to_string()).collect();
        assert!(summaries.contains(&"'=HYPERLINK(\"http://evil.example\",\"x\")".to_string()), "{backend}: {summaries:?}");
        for cell in
            csv::Reader::from_reader(csv.as_bytes()).records().flat_map(|r| r.unwrap().iter().map(str::to_string).collect::<Vec<_>>())
        {
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "{backend}: audit cell {cell:?}");
        }
        let (_, list) = post_json(&c, srv.url("/api/v1/contact-lists"), json!({"name": "L"})).await;
        let lid = list["id"].as_i64().unwrap();
        let file = b"name,phone\n@SUM(A1),=1+2\n-3,+12125550143\n".to_vec();
        let form = Form::new().part("file", Part::bytes(file).file_name("x.csv"));
        let r = c.post(srv.url(&format!("/api/v1/contact-lists/{lid}/imports"))).multipart(form).send().await.unwrap();
        assert_eq!(r.status(), 202, "{backend}");
        let st: Value = r.json().await.unwrap();
        let import = st["id"].as_i64().unwrap();
        let mut done = Value::Null;
        for _ in 0..100 {
            done = get_json(&c, srv.url(&format!("/api/v1/imports/{import}"))).await.1;
            if done["state"] != "running" && done["state"] != "queued" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let errors = c.get(srv.url(&format!("/api/v1/imports/{import}/errors.csv"))).send().await.unwrap().text().await.unwrap();
        assert!(errors.contains("'=1+2"), "{backend}: {done} {errors}");
        for cell in
            csv::Reader::from_reader(errors.as_bytes()).records().flat_map(|r| r.unwrap().iter().map(str::to_string).collect::<Vec<_>>())
        {
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "{backend}: error file cell {cell:?}");
        }
    }
}
