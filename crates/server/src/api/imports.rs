//! CSV imports over HTTP: upload (multipart), progress, cancel, error file.

use super::*;
use crate::service::{imports, Actor, Principal, Via};
use crate::upload::{self, MAX_UPLOAD_BYTES};
use axum::extract::Path;
use axum::response::Response;
use axum::Extension;
use campana_core::import::ImportOptions;
use campana_core::ContactListId;
use campana_store::ImportStatus;

/// Upload a contact file (multipart/form-data): a `file` part, and optionally an `options`
/// part with JSON `ImportOptions` (mapping, delimiter, default_country, dedupe). Answers 202
/// once the header and mapping are checked; poll the import for progress. A file that cannot
/// be imported at all is refused with 422 naming why.
#[utoipa::path(post, operation_id = "imports_upload", path = "/api/v1/contact-lists/{id}/imports", tag = "lists", params(("id" = i64, Path)),
    request_body(content_type = "multipart/form-data", description = "parts: file (CSV), options (JSON ImportOptions, optional)"),
    responses((status = 202, body = ImportStatus), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn upload(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    extract::ApiMultipart(mut mp): extract::ApiMultipart,
) -> ApiResult<(StatusCode, Json<ImportStatus>)> {
    p.check_list(&s.store, id).await?;
    let mut options = ImportOptions::default();
    let mut spooled: Option<(tempfile::TempPath, String)> = None;
    while let Some(mut field) =
        mp.next_field().await.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("multipart body unreadable: {e}")))?
    {
        match field.name().unwrap_or("") {
            "options" => options = extract::multipart_json(field, "options").await?,
            "file" => {
                let name = field.file_name().unwrap_or("upload.csv").to_string();
                spooled = Some((upload::spool_temp(&mut field, &s.upload_dir(), MAX_UPLOAD_BYTES).await?, name));
            }
            other => return Err(ApiError::field(other, "is not a part of an import upload (expected: file, options)")),
        }
    }
    let (path, name) = spooled.ok_or_else(|| ApiError::field("file", "no file part in the upload"))?;
    let st = imports::start(&s, &Actor::of(&p, Via::Api), &p, ContactListId(id), &path, &name, options).await?;
    // The import owns the file now.
    let _ = path.keep();
    Ok((StatusCode::ACCEPTED, Json(st)))
}

#[utoipa::path(get, operation_id = "imports_history", path = "/api/v1/contact-lists/{id}/imports", tag = "lists", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<ImportStatus>), (status = 404, body = Problem)))]
pub async fn history(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<ImportStatus>>> {
    Ok(Json(imports::history(&s, &p, id).await?))
}

/// Progress and outcome of an import: rows read, staged, rejected, duplicates, and after it
/// completes the customers created and updated.
#[utoipa::path(get, operation_id = "imports_status", path = "/api/v1/imports/{id}", tag = "lists", params(("id" = i64, Path)),
    responses((status = 200, body = ImportStatus), (status = 404, body = Problem)))]
pub async fn status(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<Json<ImportStatus>> {
    Ok(Json(imports::visible(&s, &p, id).await?))
}

/// Cancels a running import; the list stays as it was before it.
#[utoipa::path(post, operation_id = "imports_cancel", path = "/api/v1/imports/{id}/cancel", tag = "lists", params(("id" = i64, Path)),
    responses((status = 202, body = ImportStatus), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, Json<ImportStatus>)> {
    Ok((StatusCode::ACCEPTED, Json(imports::cancel(&s, &Actor::of(&p, Via::Api), &p, id).await?)))
}

/// The rejected rows as CSV: row, column, value, reason.
#[utoipa::path(get, operation_id = "imports_errors_csv", path = "/api/v1/imports/{id}/errors.csv", tag = "lists", params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/csv", description = "row,column,value,reason"), (status = 404, body = Problem)))]
pub async fn errors_csv(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<Response> {
    let stream = imports::errors_csv(&s, &p, id).await?;
    Ok(Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"import-{id}-errors.csv\""))
        .body(axum::body::Body::from_stream(stream))
        .expect("valid response"))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(utoipa_axum::routes!(upload, history))
        .routes(utoipa_axum::routes!(status))
        .routes(utoipa_axum::routes!(cancel))
        .routes(utoipa_axum::routes!(errors_csv))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
}
