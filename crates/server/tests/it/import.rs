//! CSV imports of the files lists really arrive as, over HTTP and through the CLI, on both backends.

use crate::common;

use common::*;
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use std::time::Duration;

async fn create_list(c: &reqwest::Client, srv: &Server, name: &str) -> i64 {
    let r: Value = c
        .post(srv.url("/api/v1/contact-lists"))
        .json(&json!({"name": name, "default_country": "US", "columns": [{"name": "balance", "kind": "number"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["id"].as_i64().unwrap()
}

async fn upload(c: &reqwest::Client, srv: &Server, list: i64, bytes: Vec<u8>, options: Option<Value>) -> (reqwest::StatusCode, Value) {
    let mut form = Form::new().part("file", Part::bytes(bytes).file_name("contacts.csv"));
    if let Some(o) = options {
        form = form.text("options", o.to_string());
    }
    let r = c.post(srv.url(&format!("/api/v1/contact-lists/{list}/imports"))).multipart(form).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap())
}

async fn wait_done(c: &reqwest::Client, srv: &Server, id: i64) -> Value {
    for _ in 0..600 {
        let st: Value = c.get(srv.url(&format!("/api/v1/imports/{id}"))).send().await.unwrap().json().await.unwrap();
        if st["state"] != "running" {
            return st;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("import {id} did not finish");
}

async fn record_count(c: &reqwest::Client, srv: &Server, list: i64) -> i64 {
    let l: Value = c.get(srv.url(&format!("/api/v1/contact-lists/{list}"))).send().await.unwrap().json().await.unwrap();
    l["record_count"].as_i64().unwrap()
}

#[tokio::test]
async fn nasty_files_get_clear_results_and_lose_nothing() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let c = srv.client();
        let list = create_list(&c, &srv, "Leads").await;
        // BOM, CRLF, semicolons, a quoted name with an embedded newline and quotes, an empty line,
        // national-format numbers, an invalid number, a duplicate row, a row with too many columns,
        // an invalid custom value.
        let file = "\u{feff}id;name;phone;mobile;balance\r\n\
                    1;\"Ana \"\"La\"\"\r\nGarcia\";(212) 555-0143;+1 312 555 0100;10.5\r\n\
                    \r\n\
                    2;Bo;646-555-0199;;0\r\n\
                    3;Cy;12;;1\r\n\
                    4;Di;646-555-0199;;2\r\n\
                    5;Ed;+12125550111;;3;extra\r\n\
                    6;Fa;+12125550112;;lots\r\n\
                    7;Gu;+34 612 345 678;;4\r\n";
        let (s, st) = upload(&c, &srv, list, file.as_bytes().to_vec(), None).await;
        assert_eq!(s, 202, "{backend}: {st}");
        let st = wait_done(&c, &srv, st["id"].as_i64().unwrap()).await;
        assert_eq!(st["state"], "completed", "{backend}: {st}");
        assert_eq!(st["rows_read"], 7, "{st}");
        assert_eq!(st["rows_rejected"], 3, "{st}");
        assert_eq!(st["rows_duplicate_in_file"], 1, "{st}");
        assert_eq!(st["customers_created"], 3, "{st}");
        assert_eq!(st["records_created"], 4, "{st}");
        assert_eq!(record_count(&c, &srv, list).await, 4);
        let errors = c.get(srv.url(&format!("/api/v1/imports/{}/errors.csv", st["id"]))).send().await.unwrap();
        assert_eq!(errors.headers()["content-type"], "text/csv; charset=utf-8");
        let text = errors.text().await.unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "row,column,value,reason");
        assert!(lines[1].starts_with("4,phone,12,"), "{text}");
        assert!(lines[2].starts_with("6,(row),extra,has 6 fields but the header has 5"), "{text}");
        assert!(lines[3].starts_with("7,balance,lots,"), "{text}");
        // The embedded newline and doubled quotes survive; national numbers became E.164.
        let recs: Value =
            c.get(srv.url(&format!("/api/v1/contact-lists/{list}/records?external_id=1"))).send().await.unwrap().json().await.unwrap();
        assert_eq!(recs["items"][0]["name"], "Ana \"La\"\r\nGarcia", "{recs}");
        assert_eq!(recs["items"][0]["phone"], "+12125550143");
        assert_eq!(recs["items"][0]["custom"]["balance"], 10.5);
        assert_eq!(recs["items"][1]["phone_type"], "mobile");
        // The mapping was saved: the next file, same columns, needs none; re-import skips duplicates.
        let (s, st) = upload(&c, &srv, list, file.as_bytes().to_vec(), Some(json!({"dedupe": "skip"}))).await;
        assert_eq!(s, 202);
        let st = wait_done(&c, &srv, st["id"].as_i64().unwrap()).await;
        assert_eq!((st["customers_created"].as_i64(), st["rows_duplicate_in_list"].as_i64()), (Some(0), Some(3)), "{backend}: {st}");
        assert_eq!(record_count(&c, &srv, list).await, 4);

        // Whole-file problems are refused at once with the reason, and the list is untouched.
        for (bytes, needle) in [
            (Vec::new(), "the file is empty"),
            (vec![0u8, 159, 146, 150, 0, 1, 2, 3], "looks binary"),
            (b"name,city\nA,B\n".to_vec(), "the mapping names column 'balance' but the file has none (columns: name, city)"),
        ] {
            let (s, p) = upload(&c, &srv, list, bytes, None).await;
            assert_eq!(s, 422, "{backend}: {p}");
            assert_eq!(p["errors"][0]["field"], "file");
            assert!(p["detail"].as_str().unwrap().contains(needle), "{p}");
        }
        let fresh = create_list(&c, &srv, "Fresh").await;
        let (s, p) = upload(&c, &srv, fresh, b"name,city\nA,B\n".to_vec(), None).await;
        assert_eq!(s, 422);
        assert!(p["detail"].as_str().unwrap().contains("names no phone column"), "{p}");
        let (s, p) = upload(
            &c,
            &srv,
            list,
            b"tel\n+12125550143\n".to_vec(),
            Some(json!({"mapping": {"phones": [{"column": "phone", "type": "home"}]}})),
        )
        .await;
        assert_eq!(s, 422);
        assert!(p["detail"].as_str().unwrap().contains("names column 'phone' but the file has none (columns: tel)"), "{p}");
        let (s, p) = upload(&c, &srv, list, b"phone\n".to_vec(), Some(json!({"dedupe": "sometimes"}))).await;
        assert_eq!(s, 422);
        assert_eq!(p["errors"][0]["field"], "options.dedupe", "{p}");
        assert_eq!(record_count(&c, &srv, list).await, 4, "{backend}");
        let hist: Value = c.get(srv.url(&format!("/api/v1/contact-lists/{list}/imports"))).send().await.unwrap().json().await.unwrap();
        assert!(hist.as_array().unwrap().iter().any(|i| i["state"] == "failed"), "refused files are in the history");
    }
}

fn big_file(rows: usize) -> Vec<u8> {
    let mut s = String::from("external_id,name,phone\n");
    for i in 0..rows {
        s.push_str(&format!("X{i},Name {i},+1212{:07}\n", 2_000_000 + i));
    }
    s.into_bytes()
}

#[tokio::test]
async fn cancelled_import_leaves_the_list_as_it_was() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let c = srv.client();
        let list = create_list(&c, &srv, "Big").await;
        let (s, st) = upload(&c, &srv, list, big_file(200_000), None).await;
        assert_eq!(s, 202);
        let id = st["id"].as_i64().unwrap();
        let r = c.post(srv.url(&format!("/api/v1/imports/{id}/cancel"))).send().await.unwrap();
        assert_eq!(r.status(), 202, "{backend}: cancel must reach a 200k-row import while it runs");
        let st = wait_done(&c, &srv, id).await;
        assert_eq!(st["state"], "cancelled", "{st}");
        assert_eq!(record_count(&c, &srv, list).await, 0, "{backend}: nothing of a cancelled import is in the list");
        let r = c.post(srv.url(&format!("/api/v1/imports/{id}/cancel"))).send().await.unwrap();
        assert_eq!(r.status(), 409);
    }
}

#[tokio::test]
async fn cli_import_reports_and_writes_the_error_file_sqlite() {
    cli_import_reports_and_writes_the_error_file("sqlite").await;
}

#[tokio::test]
async fn cli_import_reports_and_writes_the_error_file_postgres() {
    cli_import_reports_and_writes_the_error_file("postgres").await;
}

async fn cli_import_reports_and_writes_the_error_file(backend: &str) {
    let data = tempfile::tempdir().unwrap();
    let url = match backend {
        "sqlite" => format!("sqlite://{}/campana.db", data.path().display()),
        _ => campana_store::testing::postgres_store().await.expect("PostgreSQL for tests").1,
    };
    let srv = Server::start_with(tempfile::tempdir().unwrap(), url.clone(), &["serve"]).ready().await;
    let c = srv.client();
    let _list = create_list(&c, &srv, "CLI list").await;
    let file = data.path().join("in.csv");
    std::fs::write(&file, "phone\ttype\n+12125550143\tx\nbad\ty\n").unwrap();
    let errors = data.path().join("errors.csv");
    let out = std::process::Command::new(bin())
        .args(["--database-url", &url, "--data-dir"])
        .arg(data.path())
        .args(["import", "--list", "CLI list", "--quiet", "--errors-out"])
        .arg(&errors)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((status["records_created"].as_i64(), status["rows_rejected"].as_i64()), (Some(1), Some(1)), "{status}");
    let e = std::fs::read_to_string(&errors).unwrap();
    assert!(e.lines().nth(1).unwrap().starts_with("3,phone,bad,"), "{e}");
    let empty = data.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let out = std::process::Command::new(bin())
        .args(["--database-url", &url, "import", "--list", "CLI list", "--quiet"])
        .arg(&empty)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the file is empty"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = std::process::Command::new(bin())
        .args(["--database-url", &url, "import", "--list", "No such", "--quiet"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no contact list named 'No such'"));
}

async fn dnc_upload(c: &reqwest::Client, srv: &Server, list: i64, bytes: &str, options: Value) -> (reqwest::StatusCode, Value) {
    let form =
        Form::new().part("file", Part::bytes(bytes.as_bytes().to_vec()).file_name("registry.csv")).text("options", options.to_string());
    let r = c.post(srv.url(&format!("/api/v1/dnc-lists/{list}/entries/import"))).multipart(form).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap())
}

#[tokio::test]
async fn dnc_files_are_imported_row_by_row_with_every_bad_row_named() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let c = srv.client();
        let (_, dnc) = post_json(&c, srv.url("/api/v1/dnc-lists"), json!({"name": "Registry"})).await;
        let id = dnc["id"].as_i64().unwrap();
        // A BOM, a header in another order, a national number, an expiry, bad rows of each kind.
        let file = "\u{feff}Reason,PHONE,expires_on\r\n\
                    asked,+12125550143,\r\n\
                    ,(312) 555-0100,2031-01-31\r\n\
                    typo,not a number,\r\n\
                    late,+13125550101,31/01/2031\r\n\
                    \r\n\
                    long,+13125550102,2031-01-31T12:00:00Z\r\n";
        let (s, r) = dnc_upload(&c, &srv, id, file, json!({"default_country": "US", "reason": "registry 2026-11"})).await;
        assert_eq!(s, 200, "{backend}: {r}");
        assert_eq!((r["rows"].as_u64(), r["applied"].as_u64(), r["rejected"].as_u64()), (Some(5), Some(3), Some(2)), "{r}");
        assert_eq!((r["errors"][0]["row"].as_u64(), r["errors"][0]["field"].as_str()), (Some(4), Some("phone")), "{r}");
        assert_eq!((r["errors"][1]["row"].as_u64(), r["errors"][1]["field"].as_str()), (Some(5), Some("expires_on")), "{r}");
        assert!(r["errors"][1]["reason"].as_str().unwrap().contains("31/01/2031"), "{r}");
        let (_, entries) = get_json(&c, srv.url(&format!("/api/v1/dnc-lists/{id}/entries"))).await;
        let by_phone = |p: &str| entries["items"].as_array().unwrap().iter().find(|e| e["phone"] == p).cloned().unwrap_or_default();
        assert_eq!(by_phone("+12125550143")["reason"], "asked", "{entries}");
        assert_eq!(by_phone("+13125550100")["reason"], "registry 2026-11", "the default reason: {entries}");
        assert!(by_phone("+13125550100")["expires_at"].as_str().unwrap().starts_with("2031-01-31T23:59:59"), "{entries}");
        assert_eq!(by_phone("+13125550100")["source"], "file");

        // A plain list of numbers, no header: the first column; without a country, national
        // numbers are refused by name.
        let (s, r) = dnc_upload(&c, &srv, id, "+14155550100\n4155550101\n", json!({})).await;
        assert_eq!((s.as_u16(), r["applied"].as_u64(), r["errors"][0]["row"].as_u64()), (200, Some(1), Some(2)), "{r}");
        // No phone column: nothing applied, the file named.
        let (s, r) = dnc_upload(&c, &srv, id, "name,email\nAna,a@example.com\n", json!({})).await;
        assert_eq!((s.as_u16(), r["errors"][0]["field"].as_str()), (422, Some("file")), "{r}");
        assert!(r["errors"][0]["reason"].as_str().unwrap().contains("no phone column"), "{r}");
        let (s, r) = dnc_upload(&c, &srv, id, "+14155550100\n", json!({"default_country": "XX"})).await;
        assert_eq!((s.as_u16(), r["errors"][0]["field"].as_str()), (422, Some("options.default_country")), "{r}");
        let (s, _) = dnc_upload(&c, &srv, 999_999, "+14155550100\n", json!({})).await;
        assert_eq!(s, 404);
        // One audit entry per file, with its counts.
        let (_, log) = get_json(&c, srv.url("/api/v1/audit?entity_type=dnc_list&action=import")).await;
        assert_eq!(log["items"].as_array().unwrap().len(), 2, "{log}");
        assert_eq!(log["items"][1]["after"]["applied"], 3, "{log}");
    }
}
