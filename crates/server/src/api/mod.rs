//! The JSON REST API under `/api/v1`, its OpenAPI 3.1 document (generated from these handlers
//! by utoipa), and the operational endpoints `/healthz`, `/readyz`, `/metrics`.

pub mod agent;
pub mod audit;
pub mod auth;
pub mod campaigns;
pub mod catalog;
pub mod contract;
pub mod dnc_registry;
pub mod error;
pub mod extract;
pub mod imports;
pub mod records;
pub mod users;
pub mod webhooks;

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
pub use error::{ApiError, ApiResult, Problem};
pub use extract::{ApiJson, ApiQuery};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(title = "Campana API", description = "Outbound contact-center campaigns, lists and dialing. Errors are RFC 9457 problem documents."),
    components(schemas(Problem, campana_core::FieldError, campana_core::campaign::CampaignAction)),
    modifiers(&Security),
    tags(
        (name = "campaigns", description = "Campaigns, their life cycle and effective settings"),
        (name = "catalogue", description = "Groups, settings profiles, scripts, dispositions, manager tags, DNC lists, roles"),
        (name = "lists", description = "Contact lists, records, CRM upserts and CSV imports"),
        (name = "users", description = "Users"),
        (name = "agent", description = "The agent desktop: dialer login, ready, preview, disposition, live notices"),
        (name = "audit", description = "Who changed what and when, before and after"),
        (name = "webhooks", description = "Subscriptions to events (Standard Webhooks), their secrets and delivery log"),
    )
)]
struct ApiDoc;

/// Declares the two ways to authenticate in the OpenAPI document.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme("token", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        c.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::auth::SESSION_COOKIE))));
        doc.security =
            Some(vec![SecurityRequirement::new("token", Vec::<String>::new()), SecurityRequirement::new("session", Vec::<String>::new())]);
    }
}

/// Cursor pagination: `limit` (1-1000, default 50) and the `cursor` returned as `next_cursor`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn params(&self) -> ApiResult<campana_store::PageParams> {
        let cursor = self.cursor.as_deref().map(campana_store::PageParams::parse_cursor).transpose()?;
        if let Some(l) = self.limit {
            if !(1..=campana_store::MAX_PAGE).contains(&l) {
                return Err(ApiError::field("limit", format!("{l} is outside 1..={}", campana_store::MAX_PAGE)));
            }
        }
        Ok(campana_store::PageParams { limit: self.limit, cursor })
    }
}

/// The API routes and the OpenAPI document describing exactly them.
pub fn api() -> (Router<AppState>, serde_json::Value) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(campaigns::router())
        .merge(catalog::router())
        .merge(records::router())
        .merge(records::dnc_import_router())
        .merge(dnc_registry::router())
        .merge(imports::router())
        .merge(users::router())
        .merge(auth::router())
        .merge(agent::router())
        .merge(audit::router())
        .merge(webhooks::router())
        .split_for_parts();
    (router, contract::finish(doc))
}

pub fn router(state: AppState) -> Router {
    let (api, doc) = api();
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
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::auth::guard))
        .layer(axum::middleware::from_fn(extract::refuse_control_chars))
        .layer(axum::middleware::from_fn(error::problems_everywhere))
        .layer(axum::extract::DefaultBodyLimit::max(extract::MAX_JSON_BYTES))
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

/// `201 Created` with the object.
pub fn created<T: serde::Serialize>(v: T) -> (StatusCode, Json<T>) {
    (StatusCode::CREATED, Json(v))
}
