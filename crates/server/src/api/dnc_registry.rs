//! DNC lists that copy a national registry: settings, imports with progress, staleness.

use super::*;
use crate::service::audit::{self, Actor, Via};
use crate::service::dnc_import::MAX_DNC_FILE_BYTES;
use crate::service::Principal;
use axum::extract::Path;
use axum::Extension;
use campana_core::DncListId;
use campana_store::dnc_registry::{ImportRun, Registry, RegistryFormat, RegistryInput};
use campana_store::Concerns;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A registry with what the dialer makes of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistryView {
    pub registry: Registry,
    /// The copy is older than `max_age_days` (or was never imported): campaigns using the list
    /// dial no number it covers.
    pub stale: bool,
    /// Why, when stale.
    pub warning: Option<String>,
    /// The last 10 imports, newest first.
    pub imports: Vec<ImportRun>,
}

async fn view(s: &AppState, list: DncListId) -> ApiResult<RegistryView> {
    let registry = s.store.get_dnc_registry(list).await?;
    let (stale, warnings) = crate::dnc_lists::stale_registries(std::slice::from_ref(&registry), Utc::now());
    let imports = s.store.dnc_import_runs(list, 10).await?;
    Ok(RegistryView { registry, stale: !stale.is_empty(), warning: warnings.into_iter().next(), imports })
}

/// The registry a DNC list copies, whether its copy is too old, and its last imports.
#[utoipa::path(get, operation_id = "dnc_registry_get", path = "/api/v1/dnc-lists/{id}/registry", tag = "lists", params(("id" = i64, Path)),
    responses((status = 200, body = RegistryView), (status = 404, body = Problem)))]
pub async fn get_registry(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<RegistryView>> {
    Ok(Json(view(&s, DncListId(id)).await?))
}

/// Makes a DNC list the copy of a national registry (or changes its settings): what it covers,
/// how old its copy may be (31 days unless given) and an optional import schedule.
#[utoipa::path(put, operation_id = "dnc_registry_put", path = "/api/v1/dnc-lists/{id}/registry", tag = "lists", params(("id" = i64, Path)),
    request_body = RegistryInput,
    responses((status = 200, body = RegistryView), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_registry(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    extract::ApiJson(body): extract::ApiJson<RegistryInput>,
) -> ApiResult<Json<RegistryView>> {
    let list = DncListId(id);
    let before = s.store.get_dnc_registry(list).await.ok();
    let r = s.store.put_dnc_registry(list, &body, Utc::now()).await?;
    let change = audit::Change {
        action: "update".into(),
        entity_type: "dnc_list",
        entity_id: Some(id.to_string()),
        summary: format!("registry {:?} covering {}", r.input.kind, r.input.covers.join(", ")),
        concerns: Concerns::Global,
        before: before.map(|b| serde_json::to_value(b).unwrap_or_default()),
        after: Some(serde_json::to_value(&r).unwrap_or_default()),
    };
    audit::log(&s, &Actor::of(&p, Via::Api), change).await?;
    s.dialer.campaigns_changed();
    Ok(Json(view(&s, list).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// How the file is written.
    pub format: RegistryFormat,
    /// When the file's data was current (RFC 3339; the upload's time unless given): recorded as
    /// the registry's refresh when the import succeeds.
    pub as_of: Option<DateTime<Utc>>,
}

/// Imports a registry file (multipart/form-data, one `file` part) in the background: answers
/// 202 with the run, whose progress `GET .../registry/imports/{run}` shows.
#[utoipa::path(post, operation_id = "dnc_registry_import", path = "/api/v1/dnc-lists/{id}/registry/imports", tag = "lists",
    params(("id" = i64, Path), ImportQuery),
    request_body(content_type = "multipart/form-data", description = "part: file"),
    responses((status = 202, body = ImportRun), (status = 404, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
pub async fn start_import(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    extract::ApiQuery(q): extract::ApiQuery<ImportQuery>,
    super::extract::ApiMultipart(mut mp): super::extract::ApiMultipart,
) -> ApiResult<(StatusCode, Json<ImportRun>)> {
    let list = DncListId(id);
    s.store.get::<campana_core::stored::DncList>(id).await?;
    if let Some(at) = q.as_of {
        if at > Utc::now() + chrono::Duration::minutes(5) {
            return Err(ApiError::field("as_of", "is in the future"));
        }
    }
    let mut spooled = None;
    while let Some(mut field) =
        mp.next_field().await.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("multipart body unreadable: {e}")))?
    {
        match field.name().unwrap_or("") {
            "file" => {
                let name = field.file_name().unwrap_or("registry.txt").to_string();
                spooled = Some((crate::upload::spool_temp(&mut field, &s.upload_dir(), MAX_DNC_FILE_BYTES).await?, name));
            }
            other => return Err(ApiError::field(other, "is not a part of a registry upload (expected: file)")),
        }
    }
    let (path, name) = spooled.ok_or_else(|| ApiError::field("file", "no file part in the upload"))?;
    let run = crate::dnc_registry::start(&s.store, &s.dialer, list, q.format, path, &name, q.as_of.unwrap_or_else(Utc::now)).await?;
    let change = audit::Change {
        action: "import".into(),
        entity_type: "dnc_list",
        entity_id: Some(id.to_string()),
        summary: format!("registry file {name} ({}), run {}", q.format.as_str(), run.id),
        concerns: Concerns::Global,
        before: None,
        after: Some(serde_json::to_value(&run).unwrap_or_default()),
    };
    audit::log(&s, &Actor::of(&p, Via::Api), change).await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

/// One registry import and its progress.
#[utoipa::path(get, operation_id = "dnc_registry_import_get", path = "/api/v1/dnc-lists/{id}/registry/imports/{run}", tag = "lists",
    params(("id" = i64, Path), ("run" = i64, Path)),
    responses((status = 200, body = ImportRun), (status = 404, body = Problem)))]
pub async fn get_import(State(s): State<AppState>, Path((id, run)): Path<(i64, i64)>) -> ApiResult<Json<ImportRun>> {
    let r = s.store.get_dnc_import_run(run).await?;
    if r.list_id.0 != id {
        return Err(ApiError::not_found(format!("DNC import {run} of list {id}")));
    }
    Ok(Json(r))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(utoipa_axum::routes!(get_registry, put_registry)).routes(utoipa_axum::routes!(get_import)).merge(
        OpenApiRouter::new().routes(utoipa_axum::routes!(start_import)).layer(axum::extract::DefaultBodyLimit::max(MAX_DNC_FILE_BYTES)),
    )
}
