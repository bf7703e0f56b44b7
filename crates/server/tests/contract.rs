//! The API contract, on SQLite and PostgreSQL: every error is an RFC 9457 problem document
//! (`application/problem+json`), including the answers written before a handler runs.

mod common;

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
