//! Records of contact lists, CRM upserts by external id, and do-not-call entries.

use super::*;
use crate::service::audit::{self, Actor, Via};
use crate::service::dnc_import::{DncImportOptions, DncImportResult, MAX_DNC_FILE_BYTES};
use crate::service::Principal;
use axum::extract::Path;
use axum::Extension;
use campana_core::record::{ContactUpsert, DncEntry, DncEntryInput, Record, RecordStatus, RecordType};
use campana_core::stored::{ContactList, Page};
use campana_core::user::Privilege;
use campana_core::{ContactListId, DncListId, FieldError, PhoneNumber, RecordId};
use campana_store::{RecordFilterParams, UpsertOutcome};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecordQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub status: Option<RecordStatus>,
    pub record_type: Option<RecordType>,
    /// E.164 number.
    pub phone: Option<String>,
    pub external_id: Option<String>,
    pub chain_id: Option<i64>,
}

#[utoipa::path(get, operation_id = "records_list", path = "/api/v1/contact-lists/{id}/records", tag = "lists", params(("id" = i64, Path), RecordQuery),
    responses((status = 200, body = Page<Record>), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    ApiQuery(q): ApiQuery<RecordQuery>,
) -> ApiResult<Json<Page<Record>>> {
    p.check_list(&s.store, id).await?;
    let page = PageQuery { limit: q.limit, cursor: q.cursor }.params()?;
    let phone = q.phone.as_deref().map(|p| PhoneNumber::parse(p, None).map_err(|e| ApiError::field("phone", e.reason))).transpose()?;
    let f = RecordFilterParams { status: q.status, record_type: q.record_type, phone, external_id: q.external_id, chain_id: q.chain_id };
    Ok(Json(s.store.list_records(ContactListId(id), &f, page).await?))
}

#[utoipa::path(get, operation_id = "records_get_one", path = "/api/v1/contact-lists/{id}/records/{record_id}", tag = "lists", params(("id" = i64, Path), ("record_id" = i64, Path)),
    responses((status = 200, body = Record), (status = 404, body = Problem)))]
pub async fn get_one(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, rid)): Path<(i64, i64)>,
) -> ApiResult<Json<Record>> {
    p.check_list(&s.store, id).await?;
    Ok(Json(s.store.get_record(ContactListId(id), RecordId(rid)).await?))
}

/// The record's call attempts, newest first (at most 200): when, result, agent, disposition, and
/// `recording` (the download URL) when the call was recorded. Attempts of campaigns outside the
/// caller's campaigns profile are left out.
#[utoipa::path(get, operation_id = "records_attempts", path = "/api/v1/contact-lists/{id}/records/{record_id}/attempts", tag = "lists", params(("id" = i64, Path), ("record_id" = i64, Path)),
    responses((status = 200, body = Vec<Object>), (status = 404, body = Problem)))]
pub async fn attempts(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, rid)): Path<(i64, i64)>,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    p.check_list(&s.store, id).await?;
    let r = s.store.get_record(ContactListId(id), RecordId(rid)).await?;
    let mut out = Vec::new();
    for attempt in p.visible_items(s.store.record_attempts(r.id, 200).await?, |a| a.campaign_id) {
        let call = attempt.call_id;
        let mut a = serde_json::to_value(&attempt).unwrap_or_default();
        let recorded = match s.dialer.recording_path(call) {
            Some(f) => tokio::fs::metadata(f).await.is_ok_and(|m| m.is_file()),
            None => false,
        };
        a["recording"] = match recorded && p.has(Privilege::CampaignsView) {
            true => serde_json::Value::String(format!("/api/v1/contact-lists/{id}/records/{rid}/attempts/{call}/recording")),
            false => serde_json::Value::Null,
        };
        out.push(a);
    }
    Ok(Json(out))
}

/// The recording of one call (WAV, stereo: customer left, agent right), for users who may view
/// the call's campaign.
#[utoipa::path(get, operation_id = "records_attempt_recording", path = "/api/v1/contact-lists/{id}/records/{record_id}/attempts/{call_id}/recording", tag = "lists",
    params(("id" = i64, Path), ("record_id" = i64, Path), ("call_id" = i64, Path)),
    responses((status = 200, content_type = "audio/wav", body = Vec<u8>), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn recording(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, rid, call)): Path<(i64, i64, i64)>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    p.check_list(&s.store, id).await?;
    let r = s.store.get_record(ContactListId(id), RecordId(rid)).await?;
    let missing = || ApiError::not_found(format!("call {call} of record {rid} has no recording"));
    match s.store.call_attempt_owner(call).await? {
        Some((rec, camp)) if rec == r.id && p.sees_campaign(camp) => {}
        _ => return Err(missing()),
    }
    if !p.has(Privilege::CampaignsView) {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "listening to recordings needs the campaigns-view privilege"));
    }
    let path = s.dialer.recording_path(call).ok_or_else(missing)?;
    let bytes = match tokio::fs::read(&path).await {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
        Err(e) => {
            tracing::error!(error = %e, path = %path.display(), "reading a recording failed");
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the recording of call {call} cannot be read; see the server log"),
            ));
        }
    };
    let name = format!("attachment; filename=\"call-{call}.wav\"");
    Ok(([(axum::http::header::CONTENT_TYPE, "audio/wav".to_string()), (axum::http::header::CONTENT_DISPOSITION, name)], bytes)
        .into_response())
}

/// Changes a record's type, status, time boundaries, callback time or zone (e.g. cancel it).
#[utoipa::path(patch, operation_id = "records_patch_one", path = "/api/v1/contact-lists/{id}/records/{record_id}", tag = "lists", params(("id" = i64, Path), ("record_id" = i64, Path)),
    request_body = campana_core::record::RecordPatch,
    responses((status = 200, body = Record), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_one(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, rid)): Path<(i64, i64)>,
    ApiJson(patch): ApiJson<campana_core::record::RecordPatch>,
) -> ApiResult<Json<Record>> {
    p.check_list(&s.store, id).await?;
    Ok(Json(audit::patch_record(&s, &Actor::of(&p, Via::Api), ContactListId(id), RecordId(rid), &patch).await?))
}

/// What an upsert did, and the customer's records afterwards.
#[derive(Debug, Serialize, ToSchema)]
pub struct UpsertResult {
    pub outcome: UpsertOutcome,
    pub records: Vec<Record>,
}

/// Creates or updates one customer (a CRM campaign member) by its external id. Idempotent:
/// pushing the same member again creates nothing.
#[utoipa::path(put, operation_id = "records_upsert_one", path = "/api/v1/contact-lists/{id}/records/by-external-id/{external_id}", tag = "lists",
    params(("id" = i64, Path), ("external_id" = String, Path)), request_body = ContactUpsert,
    responses((status = 200, body = UpsertResult), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn upsert_one(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, ext)): Path<(i64, String)>,
    ApiJson(body): ApiJson<ContactUpsert>,
) -> ApiResult<Json<UpsertResult>> {
    p.check_list(&s.store, id).await?;
    let list = s.store.get::<ContactList>(id).await?;
    let ext = campana_core::record::parse_external_id(&ext).map_err(|e| ApiError::invalid(vec![e]))?;
    let contact = body.into_contact(Some(ext.clone()), &list.input.columns, list.input.default_country)?;
    let (outcome, records) = audit::upsert_one(&s, &Actor::of(&p, Via::Api), list.id, &ext, contact).await?;
    metrics::counter!("campana_upserted_customers_total").increment(1);
    Ok(Json(UpsertResult { outcome, records }))
}

#[utoipa::path(get, operation_id = "records_get_by_external_id", path = "/api/v1/contact-lists/{id}/records/by-external-id/{external_id}", tag = "lists",
    params(("id" = i64, Path), ("external_id" = String, Path)),
    responses((status = 200, body = Vec<Record>), (status = 404, body = Problem)))]
pub async fn get_by_external_id(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, ext)): Path<(i64, String)>,
) -> ApiResult<Json<Vec<Record>>> {
    p.check_list(&s.store, id).await?;
    let records = s.store.records_by_external_id(ContactListId(id), &ext).await?;
    if records.is_empty() {
        s.store.get::<ContactList>(id).await?;
        return Err(ApiError::not_found(format!("no customer with external id '{ext}' in list {id}")));
    }
    Ok(Json(records))
}

pub use crate::service::MAX_BULK_MEMBERS;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkMember {
    pub external_id: String,
    pub contact: ContactUpsert,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkUpsert {
    /// At most 10,000 members; all are applied or none (any invalid member refuses the request).
    pub members: Vec<BulkMember>,
}

#[utoipa::path(post, operation_id = "records_bulk_upsert", path = "/api/v1/contact-lists/{id}/records/bulk-upsert", tag = "lists", params(("id" = i64, Path)), request_body = BulkUpsert,
    responses((status = 200, body = UpsertOutcome), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn bulk_upsert(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<BulkUpsert>,
) -> ApiResult<Json<UpsertOutcome>> {
    p.check_list(&s.store, id).await?;
    let list = s.store.get::<ContactList>(id).await?;
    if body.members.len() > MAX_BULK_MEMBERS {
        return Err(ApiError::field("members", format!("{} members; at most {MAX_BULK_MEMBERS} per request", body.members.len())));
    }
    let mut contacts = Vec::with_capacity(body.members.len());
    let mut errors = Vec::new();
    for (i, m) in body.members.into_iter().enumerate() {
        let ext = match campana_core::record::parse_external_id(&m.external_id) {
            Ok(e) => e,
            Err(e) => {
                errors.push(e.within(&format!("members[{i}]")));
                continue;
            }
        };
        match m.contact.into_contact(Some(ext), &list.input.columns, list.input.default_country) {
            Ok(c) => contacts.push(c),
            Err(es) => errors.extend(es.into_iter().map(|e: FieldError| e.within(&format!("members[{i}].contact")))),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::invalid(errors));
    }
    let outcome = audit::bulk_upsert(&s, &Actor::of(&p, Via::Api), list.id, &contacts).await?;
    metrics::counter!("campana_upserted_customers_total").increment(contacts.len() as u64);
    Ok(Json(outcome))
}

// ---- DNC entries ----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DncQuery {
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[utoipa::path(get, operation_id = "records_dnc_list", path = "/api/v1/dnc-lists/{id}/entries", tag = "lists", params(("id" = i64, Path), DncQuery),
    responses((status = 200, body = Page<DncEntry>), (status = 404, body = Problem)))]
pub async fn dnc_list(State(s): State<AppState>, Path(id): Path<i64>, ApiQuery(q): ApiQuery<DncQuery>) -> ApiResult<Json<Page<DncEntry>>> {
    let page = PageQuery { limit: q.limit, cursor: None }.params()?;
    Ok(Json(s.store.list_dnc_entries(DncListId(id), page, q.cursor.as_deref()).await?))
}

/// Adds a number (or replaces its entry) on a DNC list.
#[utoipa::path(post, operation_id = "records_dnc_put", path = "/api/v1/dnc-lists/{id}/entries", tag = "lists", params(("id" = i64, Path)), request_body = DncEntryInput,
    responses((status = 200, body = DncEntry), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn dnc_put(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    ApiJson(e): ApiJson<DncEntryInput>,
) -> ApiResult<Json<DncEntry>> {
    Ok(Json(audit::put_dnc_entry(&s, &Actor::of(&p, Via::Api), DncListId(id), &e).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DncBulk {
    /// At most 10,000 entries; all are applied or none.
    pub entries: Vec<DncEntryInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DncBulkResult {
    pub applied: u64,
}

/// Adds or replaces up to 10,000 numbers on a DNC list at once.
#[utoipa::path(post, operation_id = "records_dnc_bulk", path = "/api/v1/dnc-lists/{id}/entries/bulk", tag = "lists", params(("id" = i64, Path)), request_body = DncBulk,
    responses((status = 200, body = DncBulkResult), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn dnc_bulk(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<DncBulk>,
) -> ApiResult<Json<DncBulkResult>> {
    if body.entries.len() > MAX_BULK_MEMBERS {
        return Err(ApiError::field("entries", format!("{} entries; at most {MAX_BULK_MEMBERS} per request", body.entries.len())));
    }
    let applied = audit::put_dnc_entries(&s, &Actor::of(&p, Via::Api), DncListId(id), &body.entries).await?;
    Ok(Json(DncBulkResult { applied }))
}

#[utoipa::path(delete, operation_id = "records_dnc_delete", path = "/api/v1/dnc-lists/{id}/entries/{phone}", tag = "lists", params(("id" = i64, Path), ("phone" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn dnc_delete(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, phone)): Path<(i64, String)>,
) -> ApiResult<StatusCode> {
    let phone = PhoneNumber::parse(&phone, None).map_err(|e| ApiError::field("phone", e.reason))?;
    audit::delete_dnc_entry(&s, &Actor::of(&p, Via::Api), DncListId(id), &phone).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds the numbers of a CSV file to a DNC list (multipart/form-data: a `file` part, and
/// optionally an `options` part with JSON `DncImportOptions`). Readable rows are applied, the
/// others listed with row, field and reason; a file without a phone column is refused with 422.
#[utoipa::path(post, operation_id = "records_dnc_import", path = "/api/v1/dnc-lists/{id}/entries/import", tag = "lists", params(("id" = i64, Path)),
    request_body(content_type = "multipart/form-data", description = "parts: file (CSV), options (JSON DncImportOptions, optional)"),
    responses((status = 200, body = DncImportResult), (status = 404, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
pub async fn dnc_import(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    extract::ApiMultipart(mut mp): extract::ApiMultipart,
) -> ApiResult<Json<DncImportResult>> {
    s.store.get::<campana_core::stored::DncList>(id).await?;
    let mut options = DncImportOptions::default();
    let mut spooled: Option<(tempfile::TempPath, String)> = None;
    while let Some(mut field) =
        mp.next_field().await.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("multipart body unreadable: {e}")))?
    {
        match field.name().unwrap_or("") {
            "options" => options = extract::multipart_json(field, "options").await?,
            "file" => {
                let name = field.file_name().unwrap_or("dnc.csv").to_string();
                spooled = Some((crate::upload::spool_temp(&mut field, &s.upload_dir(), MAX_DNC_FILE_BYTES).await?, name));
            }
            other => return Err(ApiError::field(other, "is not a part of a DNC upload (expected: file, options)")),
        }
    }
    let (path, name) = spooled.ok_or_else(|| ApiError::field("file", "no file part in the upload"))?;
    Ok(Json(crate::service::dnc_import::import(&s, &Actor::of(&p, Via::Api), DncListId(id), &path, &name, &options).await?))
}

/// The DNC file upload, with its own body limit.
pub fn dnc_import_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(utoipa_axum::routes!(dnc_import)).layer(axum::extract::DefaultBodyLimit::max(MAX_DNC_FILE_BYTES))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list))
        .routes(utoipa_axum::routes!(get_one, patch_one))
        .routes(utoipa_axum::routes!(attempts))
        .routes(utoipa_axum::routes!(recording))
        .routes(utoipa_axum::routes!(upsert_one, get_by_external_id))
        .routes(utoipa_axum::routes!(bulk_upsert))
        .routes(utoipa_axum::routes!(dnc_list, dnc_put))
        .routes(utoipa_axum::routes!(dnc_delete))
        .routes(utoipa_axum::routes!(dnc_bulk))
}
