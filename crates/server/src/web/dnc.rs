//! A DNC list's entries: add one number, add many at once (one per line, optional expiry date
//! and reason), import a CSV file (`crate::service::dnc_import`, as the API does), remove, with expiry
//! shown. The `dnc` privilege guards all of it.

use super::*;
use crate::service::audit::{Actor, Via};
use crate::service::dnc_import::{DncImportOptions, DncImportResult};
use axum::extract::Multipart;
use campana_core::record::DncEntryInput;
use campana_core::stored::DncList;
use campana_core::{CountryCode, DncListId, FieldError, PhoneNumber};
use campana_store::PageParams;

/// Entries shown per page.
pub const ENTRIES_PER_PAGE: u32 = 100;
/// Lines accepted by one bulk add (the API's bulk limit).
pub const MAX_BULK_LINES: usize = crate::service::MAX_BULK_MEMBERS;

#[derive(serde::Deserialize, Default)]
struct EntriesQuery {
    cursor: Option<String>,
}

/// The form values typed by the user, kept when a submission is refused.
#[derive(serde::Deserialize, Default, Clone)]
struct EntryForm {
    #[serde(default)]
    phone: String,
    #[serde(default)]
    expires_on: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    lines: String,
    #[serde(default)]
    default_country: String,
}

/// An expiry date (end of that day, UTC) or none.
fn expiry(s: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("'{s}' is not a date as YYYY-MM-DD"))?;
    Ok(Some(d.and_hms_opt(23, 59, 59).expect("valid time").and_utc()))
}

fn entry(phone: &str, expires_on: &str, reason: &str, field: &str) -> Result<DncEntryInput, FieldError> {
    let phone = PhoneNumber::parse(phone.trim(), None).map_err(|e| FieldError::new(field, e.reason))?;
    let expires_at = expiry(expires_on).map_err(|r| FieldError::new(field, r))?;
    Ok(DncEntryInput { phone, expires_at, reason: reason.trim().to_string(), source: "console".into() })
}

async fn entries_page(
    s: &AppState,
    ctx: &Ctx,
    id: i64,
    cursor: Option<&str>,
    form: &EntryForm,
    errors: &[FieldError],
    imported: Option<&DncImportResult>,
) -> WebResult<Response> {
    let list = s.store.get::<DncList>(id).await?;
    let got = s.store.list_dnc_entries(DncListId(id), PageParams { limit: Some(ENTRIES_PER_PAGE), cursor: None }, cursor).await?;
    let now = chrono::Utc::now();
    let rows = got
        .items
        .iter()
        .map(|e| {
            let expired = e.input.expires_at.is_some_and(|t| t <= now);
            vec![
                html! { (e.input.phone.to_string()) },
                html! {
                    @match &e.input.expires_at {
                        Some(t) => span class=[expired.then_some("expired")] { (fmt_time(t)) @if expired { " · " (ctx.t("dnc.expired")) } },
                        None => (ctx.t("dnc.permanent")),
                    }
                },
                html! { (e.input.reason) },
                html! { (e.input.source) },
                html! {
                    form.inline method="post" action=(format!("/dnc-lists/{id}/entries/delete")) data-confirm=(ctx.t("common.confirm_delete")) {
                        (ctx.csrf_field())
                        input type="hidden" name="phone" value=(e.input.phone.to_string());
                        button.danger type="submit" { (ctx.t("common.delete")) }
                    }
                },
            ]
        })
        .collect();
    let field_error = |f: &str| -> Markup {
        html! { @for e in errors.iter().filter(|e| e.field == f || e.field.starts_with(&format!("{f}["))) { p.field-error { (e.field) ": " (e.reason) } } }
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    // A registry copy: what it covers, how fresh it is and what staleness stops.
    let registry = match s.store.get_dnc_registry(DncListId(id)).await {
        Ok(r) => Some(r),
        Err(campana_store::StoreError::NotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let stale_warning =
        registry.as_ref().and_then(|r| crate::dnc_lists::stale_registries(std::slice::from_ref(r), now).1.into_iter().next());
    let last_run = match &registry {
        Some(_) => s.store.dnc_import_runs(DncListId(id), 1).await?.into_iter().next(),
        None => None,
    };
    let body = html! {
        @if let Some(w) = &stale_warning {
            div.errors role="alert" id="dnc-registry-stale" { p { (w) } }
        }
        @if let Some(r) = &registry {
            div.notice id="dnc-registry" {
                p { strong { (ctx.t("dnc.registry")) } ": " (format!("{:?}", r.input.kind)) " · " (ctx.t("dnc.registry_covers")) " "
                    (r.input.covers.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(", ")) " · " (ctx.t("dnc.registry_refreshed")) " "
                    @match &r.refreshed_at { Some(t) => (fmt_time(t)), None => (ctx.t("dnc.registry_never")) } }
                @if let Some(run) = &last_run {
                    p { (ctx.t("dnc.registry_last_import")) ": " (run.file_name) " (" (run.format.as_str()) ") " (run.state) " · "
                        (run.bytes_read) " / " (run.bytes_total) " bytes · +" (run.added) " −" (run.removed) " · " (run.rejected) " " (ctx.t("dnc.rows_rejected")) }
                }
            }
        }
        @if !errors.is_empty() {
            div.errors role="alert" id="form-errors" { p { (ctx.t("form.fix_errors")) } }
        }
        div.columns {
            form.edit method="post" action=(format!("/dnc-lists/{id}/entries")) {
                h2 { (ctx.t("dnc.add")) }
                (ctx.csrf_field())
                label { (ctx.t("field.phone")) input type="text" name="phone" id="dnc-phone" value=(form.phone) placeholder="+13125550143"; }
                (field_error("phone"))
                label { (ctx.t("dnc.expires_on")) input type="date" name="expires_on" value=(form.expires_on); }
                label { (ctx.t("dnc.reason")) input type="text" name="reason" value=(form.reason); }
                div.actions { button type="submit" id="dnc-add" { (ctx.t("dnc.add")) } }
            }
            form.edit method="post" action=(format!("/dnc-lists/{id}/entries/bulk")) {
                h2 { (ctx.t("dnc.bulk")) }
                (ctx.csrf_field())
                label { (ctx.t("dnc.bulk_help")) textarea name="lines" rows="8" id="dnc-lines" { (form.lines) } }
                (field_error("lines"))
                div.actions { button type="submit" id="dnc-bulk" { (ctx.t("dnc.bulk")) } }
            }
        }
        form.edit method="post" action=(format!("/dnc-lists/{id}/entries/upload")) enctype="multipart/form-data" {
            h2 { (ctx.t("dnc.upload")) }
            (ctx.csrf_field())
            label { (ctx.t("dnc.upload_help")) input type="file" name="file" id="dnc-file" accept=".csv,.txt,text/csv" required; }
            (field_error("file"))
            label { (ctx.t("dnc.default_country")) input type="text" name="default_country" maxlength="2" size="3" value=(form.default_country); }
            (field_error("default_country"))
            label { (ctx.t("dnc.reason")) input type="text" name="reason" value=(form.reason); }
            div.actions { button type="submit" id="dnc-upload" { (ctx.t("dnc.upload")) } }
        }
        @if let Some(r) = imported {
            div.notice id="dnc-imported" role="status" {
                p { (ctx.t("dnc.imported")) " " (r.file_name) ": " strong { (r.applied) } " " (ctx.t("dnc.rows_applied")) ", "
                    strong { (r.rejected) } " " (ctx.t("dnc.rows_rejected")) }
                @if !r.errors.is_empty() {
                    ul.row-errors {
                        @for e in r.errors.iter().take(50) { li { "row " (e.row) ", " (e.field) ": " (e.reason) } }
                        @if r.errors.len() > 50 || r.errors_truncated { li { "…" } }
                    }
                }
            }
        }
        h2 { (ctx.t("dnc.entries")) }
        (table(ctx, "dnc-entries", &["field.phone", "dnc.expires", "dnc.reason", "dnc.source", "common.actions"], rows))
        @if let Some(c) = got.next_cursor { p { a href=(format!("?cursor={}", urlencode(&c))) { (ctx.t("records.next_page")) } } }
    };
    Ok((status, page(ctx, &format!("{} · {}", list.input.name, ctx.t("dnc.entries")), body)).into_response())
}

async fn entries(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<i64>,
    Query(q): Query<EntriesQuery>,
) -> WebResult<Response> {
    entries_page(&s, &ctx, id, q.cursor.as_deref(), &EntryForm::default(), &[], None).await
}

async fn add(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<i64>,
    Form(f): Form<EntryForm>,
) -> WebResult<Response> {
    match entry(&f.phone, &f.expires_on, &f.reason, "phone") {
        Ok(e) => {
            crate::service::audit::put_dnc_entry(&s, &Actor::of(&ctx.p, Via::Console), DncListId(id), &e).await?;
            Ok(see_other(&format!("/dnc-lists/{id}/entries")))
        }
        Err(e) => entries_page(&s, &ctx, id, None, &f, &[e], None).await,
    }
}

/// One number per line: `number[,YYYY-MM-DD expiry][,reason]`. All lines apply, or none.
async fn bulk(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<i64>,
    Form(f): Form<EntryForm>,
) -> WebResult<Response> {
    let lines: Vec<&str> = f.lines.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut errors = Vec::new();
    if lines.len() > MAX_BULK_LINES {
        errors.push(FieldError::new("lines", format!("{} lines; at most {MAX_BULK_LINES} at once", lines.len())));
    }
    let mut parsed = Vec::with_capacity(lines.len().min(MAX_BULK_LINES));
    for (i, l) in lines.iter().enumerate().take(MAX_BULK_LINES) {
        let mut parts = l.splitn(3, ',');
        let (phone, exp, reason) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        match entry(phone, exp, reason, &format!("lines[{}]", i + 1)) {
            Ok(e) => parsed.push(e),
            Err(e) => errors.push(e),
        }
    }
    if lines.is_empty() {
        errors.push(FieldError::new("lines", "no numbers given"));
    }
    if !errors.is_empty() {
        return entries_page(&s, &ctx, id, None, &f, &errors, None).await;
    }
    crate::service::audit::put_dnc_entries(&s, &Actor::of(&ctx.p, Via::Console), DncListId(id), &parsed).await?;
    Ok(see_other(&format!("/dnc-lists/{id}/entries")))
}

/// A CSV file of numbers (multipart, the CSRF token first): applied through the same import
/// as the API's, the outcome shown above the entries.
async fn upload(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>, mut mp: Multipart) -> WebResult<Response> {
    s.store.get::<DncList>(id).await?;
    let bad = |m: String| WebError::new(StatusCode::BAD_REQUEST, m);
    let mut form = EntryForm::default();
    let mut spooled: Option<(tempfile::TempPath, String)> = None;
    while let Some(mut field) = mp.next_field().await.map_err(|e| bad(e.to_string()))? {
        let name = field.name().unwrap_or("").to_string();
        // The gate checked the CSRF token (the first part).
        if name == "csrf_token" {
            continue;
        }
        match name.as_str() {
            "file" => {
                let file_name = field.file_name().unwrap_or("dnc.csv").to_string();
                let tmp = crate::upload::spool_temp(&mut field, &s.upload_dir(), crate::service::dnc_import::MAX_DNC_FILE_BYTES).await?;
                spooled = Some((tmp, file_name));
            }
            "default_country" => form.default_country = field.text().await.map_err(|e| bad(e.to_string()))?,
            "reason" => {
                form.reason = field.text().await.map_err(|e| bad(e.to_string()))?;
                if let Some(why) = crate::service::bad_text(&form.reason) {
                    return Err(WebError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("reason: {why}")));
                }
            }
            _ => {}
        }
    }
    let mut opts = DncImportOptions::default();
    let mut errors = Vec::new();
    match form.default_country.trim() {
        "" => {}
        c => match CountryCode::parse(c) {
            Ok(c) => opts.default_country = Some(c),
            Err(e) => errors.push(FieldError::new("default_country", e.reason)),
        },
    }
    opts.reason = Some(form.reason.trim().to_string()).filter(|r| !r.is_empty());
    let Some((path, file_name)) = spooled.filter(|_| errors.is_empty()) else {
        if errors.is_empty() {
            errors.push(FieldError::new("file", "no file chosen"));
        }
        return entries_page(&s, &ctx, id, None, &form, &errors, None).await;
    };
    match crate::service::dnc_import::import(&s, &Actor::of(&ctx.p, Via::Console), DncListId(id), &path, &file_name, &opts).await {
        Ok(r) => entries_page(&s, &ctx, id, None, &EntryForm::default(), &[], Some(&r)).await,
        Err(e) if !e.field_errors().is_empty() => entries_page(&s, &ctx, id, None, &form, e.field_errors(), None).await,
        Err(e) => Err(e.into()),
    }
}

async fn remove(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<i64>,
    Form(f): Form<EntryForm>,
) -> WebResult<Response> {
    let phone = PhoneNumber::parse(f.phone.trim(), None).map_err(|e| WebError::new(StatusCode::UNPROCESSABLE_ENTITY, e.reason))?;
    crate::service::audit::delete_dnc_entry(&s, &Actor::of(&ctx.p, Via::Console), DncListId(id), &phone).await?;
    Ok(see_other(&format!("/dnc-lists/{id}/entries")))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dnc-lists/{id}/entries", get(entries).post(add))
        .route("/dnc-lists/{id}/entries/bulk", post(bulk))
        .route(
            "/dnc-lists/{id}/entries/upload",
            post(upload).layer(axum::extract::DefaultBodyLimit::max(crate::service::dnc_import::MAX_DNC_FILE_BYTES)),
        )
        .route("/dnc-lists/{id}/entries/delete", post(remove))
}
