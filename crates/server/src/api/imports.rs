//! CSV imports over HTTP: upload (multipart), progress, cancel, error file.

use super::*;
use crate::auth::Principal;
use crate::import_job::{self, ImportError};
use axum::extract::Path;
use axum::response::Response;
use axum::Extension;
use campana_core::import::ImportOptions;
use campana_core::{ContactListId, ImportId};
use campana_store::ImportStatus;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Largest upload accepted.
pub const MAX_UPLOAD_BYTES: usize = 4 << 30;

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
            "options" => {
                let text = field.bytes().await.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
                options = extract::parse_json(&text).map_err(|mut e| {
                    for fe in &mut e.errors {
                        fe.field = format!("options.{}", fe.field);
                    }
                    e
                })?;
            }
            "file" => {
                let name = field.file_name().unwrap_or("upload.csv").to_string();
                let tmp = tempfile::NamedTempFile::new_in(s.upload_dir())
                    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                let (std_file, path) = tmp.into_parts();
                let mut f = tokio::fs::File::from_std(std_file);
                let mut total = 0usize;
                while let Some(chunk) =
                    field.chunk().await.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("upload interrupted: {e}")))?
                {
                    total += chunk.len();
                    if total > MAX_UPLOAD_BYTES {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!("the file is larger than {MAX_UPLOAD_BYTES} bytes"),
                        ));
                    }
                    f.write_all(&chunk).await.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                }
                f.flush().await.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
                spooled = Some((path, name));
            }
            other => return Err(ApiError::field(other, "is not a part of an import upload (expected: file, options)")),
        }
    }
    let (path, name) = spooled.ok_or_else(|| ApiError::field("file", "no file part in the upload"))?;
    let cancel = Arc::new(AtomicBool::new(false));
    let started = import_job::start(s.store.clone(), ContactListId(id), path.to_path_buf(), name, options, cancel.clone(), None).await;
    let started = match started {
        Ok(st) => st,
        Err(ImportError::File(e)) => return Err(ApiError::field("file", e.to_string())),
        Err(ImportError::Store(e)) => return Err(e.into()),
    };
    let import_id = started.id;
    import_job::finish_in_background(s.clone(), started, cancel, path);
    let st = s.store.import_status(import_id).await?;
    crate::audit::import(&s, &crate::audit::Actor::of(&p, crate::audit::Via::Api), "start", &st).await?;
    Ok((StatusCode::ACCEPTED, Json(st)))
}

#[utoipa::path(get, operation_id = "imports_history", path = "/api/v1/contact-lists/{id}/imports", tag = "lists", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<ImportStatus>), (status = 404, body = Problem)))]
pub async fn history(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<ImportStatus>>> {
    p.check_list(&s.store, id).await?;
    s.store.get::<campana_core::stored::ContactList>(id).await?;
    Ok(Json(s.store.list_imports(ContactListId(id)).await?))
}

/// Progress and outcome of an import: rows read, staged, rejected, duplicates, and after it
/// completes the customers created and updated.
#[utoipa::path(get, operation_id = "imports_status", path = "/api/v1/imports/{id}", tag = "lists", params(("id" = i64, Path)),
    responses((status = 200, body = ImportStatus), (status = 404, body = Problem)))]
pub async fn status(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<Json<ImportStatus>> {
    Ok(Json(visible_import(&s, &p, id).await?))
}

/// Cancels a running import; the list stays as it was before it.
#[utoipa::path(post, operation_id = "imports_cancel", path = "/api/v1/imports/{id}/cancel", tag = "lists", params(("id" = i64, Path)),
    responses((status = 202, body = ImportStatus), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, Json<ImportStatus>)> {
    let st = visible_import(&s, &p, id).await?;
    if !s.imports.cancel(st.id) {
        return Err(ApiError::new(StatusCode::CONFLICT, format!("import {id} is {}, not running", st.state)));
    }
    crate::audit::import(&s, &crate::audit::Actor::of(&p, crate::audit::Via::Api), "cancel", &st).await?;
    Ok((StatusCode::ACCEPTED, Json(st)))
}

/// The rejected rows as CSV: row, column, value, reason.
#[utoipa::path(get, operation_id = "imports_errors_csv", path = "/api/v1/imports/{id}/errors.csv", tag = "lists", params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/csv", description = "row,column,value,reason"), (status = 404, body = Problem)))]
pub async fn errors_csv(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<Response> {
    let st = visible_import(&s, &p, id).await?;
    let store = s.store.clone();
    // Streams page by page: memory stays bounded whatever the number of errors.
    let stream = futures::stream::unfold((Some(0i64), true), move |(after, first)| {
        let store = store.clone();
        async move {
            let after = after?;
            let page = match store.import_errors(st.id, after, 5000).await {
                Ok(p) => p,
                Err(e) => return Some((Err(std::io::Error::other(e.to_string())), (None, false))),
            };
            let next = if page.len() < 5000 { None } else { page.last().map(|e| e.row as i64) };
            let mut buf = Vec::new();
            {
                let mut w = campana_core::csv_out::CsvOut::new(&mut buf);
                if first {
                    let _ = w.row(["row", "column", "value", "reason"]);
                }
                for e in &page {
                    let _ = w.row([e.row.to_string().as_str(), &e.column, &e.value, &e.reason]);
                }
                let _ = w.flush();
            }
            Some((Ok(bytes::Bytes::from(buf)), (next, false)))
        }
    });
    Ok(Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"import-{id}-errors.csv\""))
        .body(axum::body::Body::from_stream(stream))
        .expect("valid response"))
}

/// An import, if its list is visible to the user (404 otherwise).
async fn visible_import(s: &AppState, p: &Principal, id: i64) -> ApiResult<ImportStatus> {
    let st = s.store.import_status(ImportId(id)).await?;
    p.check_list(&s.store, st.list_id.0).await.map_err(|_| ApiError::not_found(format!("import {id} does not exist")))?;
    Ok(st)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(utoipa_axum::routes!(upload, history))
        .routes(utoipa_axum::routes!(status))
        .routes(utoipa_axum::routes!(cancel))
        .routes(utoipa_axum::routes!(errors_csv))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD_BYTES))
}
