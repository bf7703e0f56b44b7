//! National DNC registries through the real server on both backends: a US full list, a change
//! list, a full list that removes what it no longer holds, progress of each run, and the
//! staleness rule (a registry never imported, or older than its limit, stops the numbers it
//! covers, with a warning in the dialer's status).

use crate::common;

use common::*;
use serde_json::json;

async fn upload(srv: &Server, c: &reqwest::Client, list: i64, query: &str, body: &str) -> serde_json::Value {
    let form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(body.as_bytes().to_vec()).file_name("dnc.txt"));
    let r = c.post(srv.url(&format!("/api/v1/dnc-lists/{list}/registry/imports?{query}"))).multipart(form).send().await.unwrap();
    let status = r.status();
    let run: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_i64().unwrap();
    wait_for(c, srv.url(&format!("/api/v1/dnc-lists/{list}/registry/imports/{id}")), "the import to end", |r| r["state"] != "running").await
}

async fn numbers(srv: &Server, c: &reqwest::Client, list: i64) -> Vec<String> {
    let (_, page) = get_json(c, srv.url(&format!("/api/v1/dnc-lists/{list}/entries"))).await;
    page["items"].as_array().unwrap().iter().map(|e| e["phone"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn us_registry_full_and_change_lists_with_progress_and_staleness() {
    for backend in BACKENDS {
        let srv = Server::start_args(backend, &["serve", "--telephony", "sim", "--sim-agents", "0"]).await;
        let c = srv.client();
        let (s, list) = post_json(&c, srv.url("/api/v1/dnc-lists"), json!({"name": "US National"})).await;
        assert_eq!(s, 201, "{list}");
        let list = list["id"].as_i64().unwrap();
        let reg = format!("/api/v1/dnc-lists/{list}/registry");

        // Bad settings are refused with the field named.
        let r = c.put(srv.url(&reg)).json(&json!({"kind": "us_national", "covers": ["0212"]})).send().await.unwrap();
        assert_eq!(r.status(), 422);
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["errors"][0]["field"], "covers", "{e}");
        let r = c.put(srv.url(&reg)).json(&json!({"kind": "us_national", "covers": ["1212", "1646"]})).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["stale"], true, "never imported: {v}");
        assert_eq!(v["registry"]["max_age_days"], 31);

        // The dialer says why it stops the registry's numbers.
        let needle = format!("DNC registry list {list}");
        let st = wait_for(&c, srv.url("/api/v1/dialer/status"), "the stale-registry warning", |s| {
            s["warnings"].as_array().is_some_and(|w| w.iter().any(|w| w.as_str().unwrap().contains(&needle)))
        })
        .await;
        let w = st["warnings"].as_array().unwrap().iter().find(|w| w.as_str().unwrap().contains(&needle)).unwrap().clone();
        assert!(w.as_str().unwrap().contains("never been imported") && w.as_str().unwrap().contains("+1212, +1646"), "{w}");
        assert_eq!(st["dnc"]["stale_registries"], json!([list]), "{st}");

        // A full list: both line forms, a bad line named, progress counted.
        let run = upload(&srv, &c, list, "format=us_full", "2125550100\n212,5550101\n212,555\n6465550199\n").await;
        assert_eq!(run["state"], "done", "{backend}: {run}");
        assert_eq!((run["added"].as_i64(), run["rejected"].as_i64(), run["rows_read"].as_i64()), (Some(3), Some(1), Some(4)), "{run}");
        assert_eq!(run["bytes_read"], run["bytes_total"]);
        assert!(run["error"].as_str().unwrap().contains("line 3"), "{run}");
        assert_eq!(numbers(&srv, &c, list).await, ["+12125550100", "+12125550101", "+16465550199"]);
        wait_for(&c, srv.url("/api/v1/dialer/status"), "the warning to go", |s| {
            !s["warnings"].as_array().unwrap().iter().any(|w| w.as_str().unwrap().contains(&needle))
        })
        .await;

        // A daily change list: one deletion, one addition.
        let run = upload(&srv, &c, list, "format=us_changes", "212,5550101,2026-12-01,D\nA,2125550102,2026-12-01\n").await;
        assert_eq!((run["added"].as_i64(), run["removed"].as_i64()), (Some(1), Some(1)), "{run}");
        assert_eq!(numbers(&srv, &c, list).await, ["+12125550100", "+12125550102", "+16465550199"]);

        // A later full list holds only two numbers: the others under its coverage go.
        let run = upload(&srv, &c, list, "format=us_full", "2125550103\n6465550199\n").await;
        assert_eq!(run["removed"], 2, "{run}");
        assert_eq!(numbers(&srv, &c, list).await, ["+12125550103", "+16465550199"]);

        // A file whose data is 40 days old makes the registry stale again.
        let old = (chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339().replace('+', "%2B");
        let run = upload(&srv, &c, list, &format!("format=us_changes&as_of={old}"), "2125550104,A\n").await;
        assert_eq!(run["state"], "done", "{run}");
        let (_, v) = get_json(&c, srv.url(&reg)).await;
        assert_eq!(v["stale"], true, "{v}");
        assert!(v["warning"].as_str().unwrap().contains("40 days ago; the limit is 31 days"), "{v}");
        assert_eq!(v["imports"].as_array().unwrap().len(), 4);
    }
}
