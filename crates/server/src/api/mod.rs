//! The JSON REST API under `/api/v1` and its OpenAPI 3.1 document (generated from these handlers
//! by utoipa): thin adapters over [`crate::service`] (extract, call, answer JSON or problem+json).

pub mod agent;
pub mod audit;
pub mod auth;
pub mod campaigns;
pub mod catalog;
pub mod contract;
pub mod dnc_registry;
pub mod error;
pub mod extract;
pub mod guard;
pub mod imports;
pub mod records;
pub mod users;
pub mod webhooks;

use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
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
        Ok(crate::service::page_params(self.limit, self.cursor.as_deref())?)
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

/// `201 Created` with the object.
pub fn created<T: serde::Serialize>(v: T) -> (StatusCode, Json<T>) {
    (StatusCode::CREATED, Json(v))
}
