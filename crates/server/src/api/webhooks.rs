//! Webhook subscriptions, their secrets and delivery log (`/api/v1/webhooks`).
//!
//! Webhooks announce events of every campaign to another system, so they are managed by
//! administrators (`users_roles`) whose campaigns profile is every campaign.

use super::*;
use crate::service::audit::{self, Actor, Via};
use crate::service::Principal;
use axum::extract::Path;
use axum::Extension;
use campana_core::webhook::WebhookEndpointInput;
use campana_core::{Validated, WebhookDeliveryId, WebhookEndpointId};
use campana_store::webhooks::{WebhookDelivery, WebhookEndpoint, MAX_DELIVERY_PAGE};
use campana_store::Concerns;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A subscription with its signing secret, shown only in this answer (create and rotate).
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    pub endpoint: WebhookEndpoint,
    /// `whsec_...`: verify `webhook-signature` with it (Standard Webhooks). Not shown again.
    pub secret: String,
}

fn check_scope(p: &Principal) -> ApiResult<()> {
    if p.campaign_scope().is_some() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "webhooks announce events of every campaign: only a user whose campaigns profile is every campaign manages them",
        ));
    }
    Ok(())
}

fn checked(s: &AppState, body: &WebhookEndpointInput) -> ApiResult<()> {
    body.validate()?;
    crate::webhooks::check_destination(&body.url, s.webhooks.allow_private).map_err(|e| ApiError::field("url", e))
}

async fn log(
    s: &AppState,
    p: &Principal,
    action: &str,
    id: WebhookEndpointId,
    summary: String,
    before: Option<&WebhookEndpoint>,
    after: Option<&WebhookEndpoint>,
) -> ApiResult<()> {
    let change = audit::Change {
        action: action.into(),
        entity_type: "webhook",
        entity_id: Some(id.to_string()),
        summary,
        concerns: Concerns::Global,
        before: before.map(|b| serde_json::to_value(b).unwrap_or_default()),
        after: after.map(|a| serde_json::to_value(a).unwrap_or_default()),
    };
    Ok(audit::log(s, &Actor::of(p, Via::Api), change).await?)
}

/// Every webhook subscription.
#[utoipa::path(get, operation_id = "webhooks_list", path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = Vec<WebhookEndpoint>), (status = 403, body = Problem)))]
pub async fn list(State(s): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult<Json<Vec<WebhookEndpoint>>> {
    check_scope(&p)?;
    Ok(Json(s.store.webhooks().await?))
}

/// Subscribes an address to events. The answer holds the signing secret, once.
#[utoipa::path(post, operation_id = "webhooks_create", path = "/api/v1/webhooks", tag = "webhooks", request_body = WebhookEndpointInput,
    responses((status = 201, body = WebhookWithSecret), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(body): ApiJson<WebhookEndpointInput>,
) -> ApiResult<(StatusCode, Json<WebhookWithSecret>)> {
    check_scope(&p)?;
    checked(&s, &body)?;
    let secret = crate::webhooks::new_secret();
    let w = s.store.create_webhook(&body, &secret).await?;
    log(&s, &p, "create", w.id, format!("webhook '{}' to {}", w.name, w.url), None, Some(&w)).await?;
    Ok(created(WebhookWithSecret { endpoint: w, secret }))
}

#[utoipa::path(get, operation_id = "webhooks_get", path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 200, body = WebhookEndpoint), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<Json<WebhookEndpoint>> {
    let w = s.store.webhook(WebhookEndpointId(id)).await?;
    check_scope(&p)?;
    Ok(Json(w))
}

/// Replaces a subscription (its secret stays). Enabling a subscription Campana disabled (410)
/// sends what waited meanwhile.
#[utoipa::path(put, operation_id = "webhooks_update", path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path)),
    request_body = WebhookEndpointInput,
    responses((status = 200, body = WebhookEndpoint), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<WebhookEndpointInput>,
) -> ApiResult<Json<WebhookEndpoint>> {
    let id = WebhookEndpointId(id);
    let before = s.store.webhook(id).await?;
    check_scope(&p)?;
    checked(&s, &body)?;
    let w = s.store.update_webhook(id, &body).await?;
    log(&s, &p, "update", id, format!("webhook '{}' to {}", w.name, w.url), Some(&before), Some(&w)).await?;
    Ok(Json(w))
}

/// Deletes a subscription and its delivery log; what it had not received is dropped.
#[utoipa::path(delete, operation_id = "webhooks_delete", path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    let id = WebhookEndpointId(id);
    let before = s.store.webhook(id).await?;
    check_scope(&p)?;
    s.store.delete_webhook(id).await?;
    log(&s, &p, "delete", id, format!("webhook '{}'", before.name), Some(&before), None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateInput {
    /// Hours the old secret keeps signing beside the new one (0-168, default 24).
    #[schema(minimum = 0, maximum = 168)]
    pub previous_valid_h: Option<i64>,
}

/// A new secret. Until `previous_valid_h` hours pass, deliveries carry two signatures (new
/// and old), so the receiver can switch without missing one.
#[utoipa::path(post, operation_id = "webhooks_rotate_secret", path = "/api/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = i64, Path)), request_body = RotateInput,
    responses((status = 200, body = WebhookWithSecret), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn rotate_secret(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<RotateInput>,
) -> ApiResult<Json<WebhookWithSecret>> {
    s.store.webhook(WebhookEndpointId(id)).await?;
    check_scope(&p)?;
    let hours = body.previous_valid_h.unwrap_or(24);
    if !(0..=168).contains(&hours) {
        return Err(ApiError::field("previous_valid_h", format!("{hours} is outside 0..=168")));
    }
    let id = WebhookEndpointId(id);
    let secret = crate::webhooks::new_secret();
    let w = s.store.rotate_webhook_secret(id, &secret, Utc::now() + Duration::hours(hours)).await?;
    log(&s, &p, "rotate_secret", id, format!("webhook '{}': new secret, the old one signs for {hours} h more", w.name), None, Some(&w))
        .await?;
    Ok(Json(WebhookWithSecret { endpoint: w, secret }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    /// Deliveries older than this delivery id (the last id of the previous page).
    pub before: Option<i64>,
    /// 1-200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// The delivery log of a subscription, newest first.
#[utoipa::path(get, operation_id = "webhooks_deliveries", path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path), DeliveriesQuery),
    responses((status = 200, body = Vec<WebhookDelivery>), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn deliveries(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Json<Vec<WebhookDelivery>>> {
    s.store.webhook(WebhookEndpointId(id)).await?;
    check_scope(&p)?;
    let limit = q.limit.unwrap_or(50) as usize;
    if !(1..=MAX_DELIVERY_PAGE).contains(&limit) {
        return Err(ApiError::field("limit", format!("{limit} is outside 1..={MAX_DELIVERY_PAGE}")));
    }
    Ok(Json(s.store.webhook_deliveries(WebhookEndpointId(id), q.before.map(WebhookDeliveryId), limit).await?))
}

/// Sends a delivery again now, with the same `webhook-id` (the receiver may have lost it).
#[utoipa::path(post, operation_id = "webhooks_redeliver", path = "/api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "webhooks",
    params(("id" = i64, Path), ("delivery_id" = i64, Path)),
    responses((status = 202), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn redeliver(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, delivery_id)): Path<(i64, i64)>,
) -> ApiResult<StatusCode> {
    let id = WebhookEndpointId(id);
    let w = s.store.webhook(id).await?;
    check_scope(&p)?;
    s.store.redeliver_webhook(id, WebhookDeliveryId(delivery_id)).await?;
    log(&s, &p, "redeliver", id, format!("webhook '{}': delivery {delivery_id} sent again", w.name), None, None).await?;
    Ok(StatusCode::ACCEPTED)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list, create))
        .routes(utoipa_axum::routes!(get, update, delete))
        .routes(utoipa_axum::routes!(rotate_secret))
        .routes(utoipa_axum::routes!(deliveries))
        .routes(utoipa_axum::routes!(redeliver))
}
