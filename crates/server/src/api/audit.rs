//! The audit log: listing with filters and cursor pagination, and the same as CSV.
//!
//! Readable with `reports` (entries about campaigns, lists, records, catalogue objects, DNC)
//! or `users_roles` (entries about users, roles, sign-ins and API tokens); a reader with both
//! sees both. A reader limited to some campaigns sees only entries about no campaign or about
//! campaigns of theirs alone.

use super::*;
use crate::service::audit_log::{self, AuditQuery};
use crate::service::Principal;
use axum::response::Response;
use axum::Extension;
use campana_core::stored::Page;
use campana_store::AuditEntry;

/// Who changed what and when, newest first, with the object before and after.
#[utoipa::path(get, operation_id = "audit_list", path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 422, body = Problem)))]
pub async fn list(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    Ok(Json(audit_log::list(&s, &p, &q).await?))
}

/// The entries the filters select (all pages, newest first) as CSV; `before` and `after` are
/// JSON text.
#[utoipa::path(get, operation_id = "audit_export_csv", path = "/api/v1/audit/export.csv", tag = "audit", params(AuditQuery),
    responses((status = 200, content_type = "text/csv", description = "id,at,actor_id,actor_name,via,action,entity_type,entity_id,summary,campaign_ids,before,after"),
        (status = 422, body = Problem)))]
pub async fn export_csv(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Response> {
    let stream = audit_log::export_csv(&s, &p, &q)?;
    Ok(Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(axum::http::header::CONTENT_DISPOSITION, "attachment; filename=\"campana-audit.csv\"")
        .body(axum::body::Body::from_stream(stream))
        .expect("valid response"))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(utoipa_axum::routes!(list)).routes(utoipa_axum::routes!(export_csv))
}
