//! The one place the server's routes are assembled: the API (`crate::api`), the console
//! (`crate::web`), the OpenAPI document, and the operational endpoints `/healthz`, `/readyz`,
//! `/metrics`, with the layers every request passes through.

use crate::api::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

pub fn router(state: AppState) -> Router {
    let (api, doc) = crate::api::api();
    let doc_json = serde_json::to_string_pretty(&doc).expect("OpenAPI document serialises");
    api.merge(crate::web::router(state.clone()))
        .route(
            "/api/openapi.json",
            get(move || async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], doc_json.clone()) }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found("no such route; see /api/openapi.json") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::api::guard::guard))
        .layer(axum::middleware::from_fn(crate::api::extract::refuse_control_chars))
        .layer(axum::middleware::from_fn(crate::api::error::problems_everywhere))
        .layer(axum::extract::DefaultBodyLimit::max(crate::api::extract::MAX_JSON_BYTES))
        .layer(axum::middleware::from_fn(crate::state::track_requests))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Ready when the database answers and the dialer (when it runs) is healthy: a stalled or
/// stopped dialer answers 503 with the reason, so a load balancer or orchestrator sees it.
async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if let Err(e) = s.store.ping().await {
        return (StatusCode::SERVICE_UNAVAILABLE, format!("database not reachable: {e}"));
    }
    let health = s.dialer.health();
    match health.reason {
        Some(reason) if !health.is_ok() => (StatusCode::SERVICE_UNAVAILABLE, format!("dialer {}: {reason}", health.state)),
        _ => (StatusCode::OK, "ready".to_string()),
    }
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    // The dialer's health is computed at scrape time: a stuck loop cannot update its own gauge.
    if s.dialer.is_running() {
        let h = s.dialer.health();
        metrics::gauge!("campana_dialer_last_loop_age_seconds").set(h.last_loop_age_s.unwrap_or(0.0));
        metrics::gauge!("campana_dialer_healthy").set(if h.is_ok() { 1.0 } else { 0.0 });
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render())
}
