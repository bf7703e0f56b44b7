//! The API contract, on SQLite and PostgreSQL: every error is an RFC 9457 problem document
//! (`application/problem+json`), including the answers written before a handler runs.

use crate::common;

use common::*;
use serde_json::Value;

/// Sends the request and checks the answer is a problem document with this status.
async fn problem(what: &str, req: reqwest::RequestBuilder, status: u16) -> (reqwest::header::HeaderMap, Value) {
    let r = req.send().await.unwrap();
    assert_eq!(r.status().as_u16(), status, "{what}");
    let headers = r.headers().clone();
    let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let text = r.text().await.unwrap();
    assert_eq!(ct, "application/problem+json", "{what}: content type of {text}");
    let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
    assert_eq!(v["status"], status, "{what}: {v}");
    for k in ["type", "title", "detail"] {
        assert!(v[k].as_str().is_some_and(|s| !s.is_empty()), "{what}: no {k} in {v}");
    }
    (headers, v)
}

#[tokio::test]
async fn every_error_is_a_problem_document() {
    for backend in BACKENDS {
        let srv = Server::start(backend).await;
        let c = srv.client();
        let (_, v) = problem("a path id that is not a number", c.get(srv.url("/api/v1/campaigns/abc")), 400).await;
        assert!(v["detail"].as_str().unwrap().contains("abc"), "{v}");
        problem("a path id beyond i64", c.get(srv.url("/api/v1/contact-lists/99999999999999999999999/records/1")), 400).await;
        problem("an unknown route under /api/v1", c.get(srv.url("/api/v1/no-such-thing")), 404).await;
        problem("an unknown route under /api", reqwest::Client::new().get(srv.url("/api/nothing-here")), 404).await;
        let (h, _) = problem("a method the route does not answer", c.delete(srv.url("/api/v1/campaigns")), 405).await;
        let allow = h.get("allow").and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(allow.contains("GET") && allow.contains("POST"), "{backend}: Allow: {allow}");
        let (h, _) = problem("PATCH on a campaign", c.patch(srv.url("/api/v1/campaigns/1")), 405).await;
        assert!(h.get("allow").is_some(), "{backend}: 405 without Allow");
        let (s, list) = post_json(&c, srv.url("/api/v1/contact-lists"), serde_json::json!({"name": "contract"})).await;
        assert_eq!(s, 201, "{list}");
        let lid = list["id"].as_i64().unwrap();
        let (_, v) = problem(
            "a JSON body sent to the upload",
            c.post(srv.url(&format!("/api/v1/contact-lists/{lid}/imports"))).json(&serde_json::json!({})),
            415,
        )
        .await;
        assert!(v["detail"].as_str().unwrap().contains("multipart/form-data"), "{v}");
        problem(
            "a DNC file sent as text",
            c.post(srv.url("/api/v1/dnc-lists/1/entries/import")).header("content-type", "text/csv").body("phone\n+12125550100\n"),
            415,
        )
        .await;
        problem(
            "a multipart upload without a boundary",
            c.post(srv.url(&format!("/api/v1/contact-lists/{lid}/imports"))).header("content-type", "multipart/form-data").body("x"),
            400,
        )
        .await;
        problem(
            "JSON that does not parse",
            c.post(srv.url("/api/v1/campaign-groups")).header("content-type", "application/json").body("{"),
            400,
        )
        .await;
        problem("a body that is not JSON", c.post(srv.url("/api/v1/campaign-groups")).header("content-type", "text/plain").body("x"), 415)
            .await;
        problem("no credentials", reqwest::Client::new().get(srv.url("/api/v1/campaigns")), 401).await;
    }
}

/// The schemathesis release the run is written for (scripts/test installs it when missing).
const SCHEMATHESIS_VERSION: &str = "4.32.5";
/// A failing response is a server error, or a status, content type, header or body the document
/// does not describe; `unsupported_method` sends each path a method it lacks (405 with `Allow`).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method";
/// Generated requests per operation and phase: bounds the run (about 2 minutes for both backends, run together).
const EXAMPLES_PER_OPERATION: &str = "5";

/// A few objects for the fuzzer's ids to find (a list with a record, a campaign over it, a DNC
/// entry), besides the built-in roles and the internal DNC list.
async fn seed(srv: &Server) {
    let c = srv.client();
    let (s, list) = post_json(&c, srv.url("/api/v1/contact-lists"), serde_json::json!({"name": "fuzz list"})).await;
    assert_eq!(s, 201, "{list}");
    let lid = list["id"].as_i64().unwrap();
    let members = serde_json::json!({"members": [{"external_id": "fuzz-1", "contact": {"name": "Customer",
        "phones": [{"number": "+12125550142", "type": "home"}]}}]});
    let (s, v) = post_json(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records/bulk-upsert")), members).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post_json(
        &c,
        srv.url("/api/v1/campaigns"),
        serde_json::json!({"name": "fuzz", "daily_hours": {"start": "09:00", "end": "17:00"}, "weekdays": ["mon"],
            "time_zone": "UTC", "contact_list_ids": [lid]}),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let (s, v) =
        post_json(&c, srv.url("/api/v1/dnc-lists/1/entries"), serde_json::json!({"phone": "+12125550199", "reason": "seed"})).await;
    assert!(s.is_success(), "{v}");
}

/// Schemathesis over every operation of `/api/openapi.json`, signed in as the administrator,
/// on SQLite and PostgreSQL: no 5xx, and every answer as the document describes it.
#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let version = std::process::Command::new("st").arg("--version").output();
    let version = version.map(|o| String::from_utf8_lossy(&o.stdout).to_string()).unwrap_or_default();
    assert!(
        version.contains(SCHEMATHESIS_VERSION),
        "schemathesis {SCHEMATHESIS_VERSION} is needed (found: {version:?}): run scripts/test, which installs it, or `pip install schemathesis=={SCHEMATHESIS_VERSION}`"
    );
    // Both backends at once: the run takes the time of one.
    let (a, b) = tokio::join!(fuzz("sqlite"), fuzz("postgres"));
    let failures: Vec<String> = [a, b].into_iter().flatten().collect();
    assert!(failures.is_empty(), "schemathesis found server errors or answers the document does not describe:\n{}", failures.join("\n"));
}

/// One schemathesis run against a fresh server; the failures, if any.
async fn fuzz(backend: &str) -> Option<String> {
    let hooks = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/schemathesis_hooks.py");
    let srv = Server::start(backend).await;
    seed(&srv).await;
    let started = std::time::Instant::now();
    let out = tokio::process::Command::new("st")
        .args(["run", &srv.url("/api/openapi.json"), "--checks", CHECKS, "--max-examples", EXAMPLES_PER_OPERATION])
        .args(["--seed", "1", "--phases", "examples,coverage,fuzzing", "--workers", "2", "--no-color"])
        .args(["--generation-with-security-parameters", "false", "--generation-database", "none"])
        .env("SCHEMATHESIS_HOOKS", hooks)
        .env("CAMPANA_FUZZ_BASE", &srv.base)
        .env("CAMPANA_FUZZ_TOKEN", &srv.token)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let section = |title: &str, end: &str| -> String {
        let Some(i) = text.find(&format!(" {title} =")) else { return String::new() };
        let start = text[..i].rfind('\n').map_or(0, |j| j + 1);
        let stop = text[i..].find(&format!(" {end} =")).and_then(|j| text[..i + j].rfind('\n')).unwrap_or(text.len());
        text[start..stop].to_string()
    };
    eprintln!("schemathesis on {backend}, {:.0} s:\n{}", started.elapsed().as_secs_f64(), section("SUMMARY", "END"));
    if out.status.success() {
        None
    } else {
        let failures = section("FAILURES", "WARNINGS");
        Some(format!("---- {backend} ----\n{}\n{}", if failures.is_empty() { &text } else { &failures }, section("SUMMARY", "END")))
    }
}
