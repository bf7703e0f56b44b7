//! The import wizard of a contact list: upload (spooled to disk), column mapping, progress and
//! the error file. The import itself is the service's ([`crate::service::imports`]), as the
//! API's; lists outside the user's campaigns do not exist here.

use super::lists::{enum_label, visible_list};
use super::*;
use crate::service::{imports, Actor, Via};
use crate::upload::MAX_UPLOAD_BYTES;
use axum::extract::Multipart;
use campana_core::import::{ColumnMapping, DedupePolicy, ImportOptions, PhoneColumn};
use campana_core::record::PhoneType;
use campana_core::stored::ContactList;
use campana_store::{ImportState, ImportStatus};

/// Uploads waiting for their column mapping, at most; older ones are deleted first.
pub const MAX_PENDING_UPLOADS: usize = 16;
/// A pending upload not started within this is deleted.
pub const PENDING_UPLOAD_TTL_S: u64 = 3600;
/// Seconds between two progress polls of the import page.
pub const PROGRESS_POLL_S: u32 = 1;

/// The options of the upload step, carried through the mapping step.
#[derive(Debug, Default, Clone)]
struct UploadOptions {
    dedupe: String,
    delimiter: String,
    default_country: String,
}

impl UploadOptions {
    fn set(&mut self, name: &str, v: String) -> bool {
        match name {
            "dedupe" => self.dedupe = v,
            "delimiter" => self.delimiter = v,
            "default_country" => self.default_country = v,
            _ => return false,
        }
        true
    }
    fn delimiter(&self) -> Option<char> {
        match self.delimiter.as_str() {
            "tab" => Some('\t'),
            d => d.chars().next(),
        }
    }
    fn to_options(&self, mapping: Option<ColumnMapping>) -> Result<ImportOptions, campana_core::FieldError> {
        let dedupe = if self.dedupe.is_empty() {
            DedupePolicy::Skip
        } else {
            self.dedupe.parse().map_err(|e: campana_core::FieldError| e.renamed("dedupe"))?
        };
        let default_country = if self.default_country.trim().is_empty() {
            None
        } else {
            Some(campana_core::phone::CountryCode::parse(&self.default_country)?)
        };
        Ok(ImportOptions { mapping, delimiter: self.delimiter(), default_country, dedupe })
    }
    fn fields(&self, ctx: &Ctx, hidden: bool) -> Markup {
        let dedupes: Vec<&str> = DedupePolicy::ALL.iter().map(|d| d.as_str()).collect();
        html! {
            @if hidden {
                input type="hidden" name="dedupe" value=(self.dedupe);
                input type="hidden" name="delimiter" value=(self.delimiter);
                input type="hidden" name="default_country" value=(self.default_country);
            } @else {
                label { (ctx.t("import.dedupe"))
                    select name="dedupe" id="dedupe" { @for d in &dedupes { option value=(d) selected[self.dedupe == *d] { (enum_label(ctx, d)) } } }
                }
                label { (ctx.t("import.delimiter"))
                    select name="delimiter" id="delimiter" {
                        option value="" { (ctx.t("import.detect")) }
                        @for (v, l) in [(",", ","), (";", ";"), ("tab", "tab")] { option value=(v) selected[self.delimiter == v] { (l) } }
                    }
                }
                label { (ctx.t("field.default_country")) input type="text" name="default_country" id="default_country" value=(self.default_country) placeholder="US"; }
            }
        }
    }
}

fn upload_page(ctx: &Ctx, list: &ContactList, opts: &UploadOptions, error: Option<&str>) -> Markup {
    page(
        ctx,
        &format!("{} · {}", list.input.name, ctx.t("import.title")),
        html! {
            ol.steps { li.current { (ctx.t("import.step_upload")) } li { (ctx.t("import.step_mapping")) } li { (ctx.t("import.step_progress")) } }
            @if let Some(e) = error { div.errors role="alert" id="form-errors" { p { strong { "file" } ": " (e) } } }
            form.edit method="post" action=(format!("/contact-lists/{}/imports", list.id)) enctype="multipart/form-data" {
                (ctx.csrf_field())
                (opts.fields(ctx, false))
                label { (ctx.t("import.file")) input type="file" name="file" id="file" accept=".csv,.txt,text/csv" required; }
                div.actions { button type="submit" id="upload" { (ctx.t("import.upload")) } }
            }
        },
    )
}

async fn upload_form(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> WebResult<Markup> {
    let list = visible_list(&s, &ctx, id).await?;
    Ok(upload_page(&ctx, &list, &UploadOptions::default(), None))
}

fn pending_dir(s: &AppState) -> std::path::PathBuf {
    s.upload_dir().join("web-pending")
}

/// Deletes pending uploads older than the TTL, and the oldest beyond the limit (leaving room for one).
fn prune_pending(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<(std::time::SystemTime, std::path::PathBuf)> =
        entries.flatten().filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path()))).collect();
    files.sort();
    let now = std::time::SystemTime::now();
    let excess = files.len().saturating_sub(MAX_PENDING_UPLOADS - 1);
    for (i, (t, p)) in files.iter().enumerate() {
        let old = now.duration_since(*t).map(|d| d.as_secs() > PENDING_UPLOAD_TTL_S).unwrap_or(false);
        if old || i < excess {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A pending upload's name binds it to the list and the user who sent it.
fn pending_name(list: i64, user: i64) -> String {
    use rand::Rng;
    let r: u128 = rand::thread_rng().gen();
    format!("{list}-{user}-{r:032x}.csv")
}

async fn pending_path(s: &AppState, ctx: &Ctx, list: i64, name: &str) -> WebResult<std::path::PathBuf> {
    let ok =
        name.starts_with(&format!("{list}-{}-", ctx.p.user.id)) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    let path = pending_dir(s).join(name);
    if !ok || !tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
        return Err(WebError::not_found(ctx.t("import.upload_gone")));
    }
    Ok(path)
}

/// Step 1: the file is spooled to disk (bounded size), its header read, and the mapping step shown.
async fn upload(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>, mut mp: Multipart) -> WebResult<Response> {
    let list = visible_list(&s, &ctx, id).await?;
    let mut opts = UploadOptions::default();
    let mut spooled: Option<(String, String)> = None;
    let bad = |m: String| WebError::new(StatusCode::BAD_REQUEST, m);
    while let Some(mut field) = mp.next_field().await.map_err(|e| bad(e.to_string()))? {
        let name = field.name().unwrap_or("").to_string();
        // The gate checked the CSRF token (the first part).
        if name == "csrf_token" {
            continue;
        }
        if name == "file" {
            let file_name = field.file_name().unwrap_or("upload.csv").to_string();
            let dir = pending_dir(&s);
            let stored = pending_name(id, ctx.p.user.id.0);
            let prune = dir.clone();
            tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&prune)?;
                prune_pending(&prune);
                Ok::<_, std::io::Error>(())
            })
            .await
            .map_err(|e| WebError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .map_err(|e| WebError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            crate::upload::spool(&mut field, &dir.join(&stored), MAX_UPLOAD_BYTES).await?;
            spooled = Some((stored, file_name));
        } else {
            let v = field.text().await.map_err(|e| bad(e.to_string()))?;
            opts.set(&name, v);
        }
    }
    let Some((stored, file_name)) = spooled else {
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, upload_page(&ctx, &list, &opts, Some(ctx.t("import.no_file")))).into_response());
    };
    let path = pending_dir(&s).join(&stored);
    let delimiter = opts.delimiter();
    let headers = tokio::task::spawn_blocking(move || read_header(&path, delimiter)).await.unwrap_or_else(|e| Err(e.to_string()));
    match headers {
        Ok(headers) => {
            let guess = list.mapping.clone().unwrap_or_else(|| ColumnMapping::guess(&headers, &list.input.columns));
            Ok(mapping_page(&ctx, &list, &opts, &stored, &file_name, &headers, &roles_from(&guess, &headers), None).into_response())
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(pending_dir(&s).join(&stored)).await;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, upload_page(&ctx, &list, &opts, Some(&e))).into_response())
        }
    }
}

/// The header row: BOM skipped, delimiter as given or the most frequent of `,` `;` tab.
fn read_header(path: &std::path::Path, delimiter: Option<char>) -> Result<Vec<String>, String> {
    use std::io::{BufRead, Read};
    let f = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut first = Vec::new();
    std::io::BufReader::new(f).take(1 << 20).read_until(b'\n', &mut first).map_err(|e| e.to_string())?;
    let line = String::from_utf8(first.strip_prefix(&[0xEF, 0xBB, 0xBF][..]).unwrap_or(&first).to_vec())
        .map_err(|_| campana_core::import::FileError::HeaderNotUtf8.to_string())?;
    if line.trim().is_empty() {
        return Err(campana_core::import::FileError::Empty.to_string());
    }
    let d = delimiter.unwrap_or_else(|| [',', ';', '\t'].into_iter().max_by_key(|c| line.matches(*c).count()).unwrap_or(','));
    let mut r = csv::ReaderBuilder::new().has_headers(false).delimiter(d as u8).from_reader(line.as_bytes());
    let rec = r.records().next().ok_or_else(|| campana_core::import::FileError::Empty.to_string())?.map_err(|e| e.to_string())?;
    Ok(rec.iter().map(|h| h.trim().to_string()).collect())
}

/// What each column of the file becomes: `""` (ignored), `phone:<type>`, `name`, `external_id`,
/// `time_zone`, `postal_code`, `sort_value` or `custom`.
fn roles_from(m: &ColumnMapping, headers: &[String]) -> Vec<String> {
    headers
        .iter()
        .map(|h| {
            if let Some(p) = m.phones.iter().find(|p| &p.column == h) {
                format!("phone:{}", p.phone_type)
            } else if m.name.contains(h) {
                "name".into()
            } else if m.external_id.as_ref() == Some(h) {
                "external_id".into()
            } else if m.time_zone.as_ref() == Some(h) {
                "time_zone".into()
            } else if m.postal_code.as_ref() == Some(h) {
                "postal_code".into()
            } else if m.sort_value.as_ref() == Some(h) {
                "sort_value".into()
            } else if m.custom.contains(h) {
                "custom".into()
            } else {
                String::new()
            }
        })
        .collect()
}

fn mapping_from(headers: &[&str], roles: &[&str]) -> Result<ColumnMapping, campana_core::FieldError> {
    let mut m = ColumnMapping::default();
    for (h, role) in headers.iter().zip(roles) {
        let h = h.to_string();
        match *role {
            "" => {}
            "name" => m.name.push(h),
            "external_id" => m.external_id = Some(h),
            "time_zone" => m.time_zone = Some(h),
            "postal_code" => m.postal_code = Some(h),
            "sort_value" => m.sort_value = Some(h),
            "custom" => m.custom.push(h),
            other => {
                let t = other.strip_prefix("phone:").unwrap_or(other);
                let phone_type: PhoneType = t.parse().map_err(|e: campana_core::FieldError| e.renamed(format!("mapping.{h}")))?;
                m.phones.push(PhoneColumn { column: h, phone_type });
            }
        }
    }
    Ok(m)
}

const ROLES: &[&str] = &[
    "",
    "phone:home",
    "phone:work",
    "phone:mobile",
    "phone:other",
    "name",
    "external_id",
    "time_zone",
    "postal_code",
    "sort_value",
    "custom",
];

#[allow(clippy::too_many_arguments)]
fn mapping_page(
    ctx: &Ctx,
    list: &ContactList,
    opts: &UploadOptions,
    stored: &str,
    file_name: &str,
    headers: &[String],
    roles: &[String],
    error: Option<&str>,
) -> Markup {
    let rows = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let current = roles.get(i).map(String::as_str).unwrap_or("");
            vec![
                html! { code { (h) } input type="hidden" name="col" value=(h); },
                html! {
                    select name="role" id=(format!("role-{i}")) {
                        @for r in ROLES { option value=(r) selected[current == *r] { (ctx.t(&format!("import.role.{}", if r.is_empty() { "ignore" } else { r }))) } }
                    }
                },
            ]
        })
        .collect();
    page(
        ctx,
        &format!("{} · {}", list.input.name, ctx.t("import.title")),
        html! {
            ol.steps { li { (ctx.t("import.step_upload")) } li.current { (ctx.t("import.step_mapping")) } li { (ctx.t("import.step_progress")) } }
            p { (ctx.tf("import.mapping_help", &[("file", file_name)])) }
            @if let Some(e) = error { div.errors role="alert" id="form-errors" { p { (e) } } }
            form.edit method="post" action=(format!("/contact-lists/{}/imports/start", list.id)) {
                (ctx.csrf_field())
                input type="hidden" name="upload" value=(stored);
                input type="hidden" name="file_name" value=(file_name);
                (opts.fields(ctx, true))
                (table(ctx, "mapping", &["import.column", "import.becomes"], rows))
                div.actions { button type="submit" id="start-import" { (ctx.t("import.run")) } }
            }
        },
    )
}

/// Step 2: the mapping is submitted; the import starts exactly as the API starts one.
async fn start(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<i64>,
    Form(v): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let list = visible_list(&s, &ctx, id).await?;
    let v = super::form::Values(v);
    let mut opts = UploadOptions::default();
    for k in ["dedupe", "delimiter", "default_country"] {
        opts.set(k, v.get(k).to_string());
    }
    let stored = v.get("upload").to_string();
    let file_name = v.get("file_name").to_string();
    let path = pending_path(&s, &ctx, id, &stored).await?;
    let (cols, roles) = (v.all("col"), v.all("role"));
    let headers: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
    let show_error = |e: String| {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        Ok((StatusCode::UNPROCESSABLE_ENTITY, mapping_page(&ctx, &list, &opts, &stored, &file_name, &headers, &roles, Some(&e)))
            .into_response())
    };
    let options = match mapping_from(&cols, &roles).and_then(|m| opts.to_options(Some(m))) {
        Ok(o) => o,
        Err(e) => return show_error(e.to_string()),
    };
    match imports::start(&s, &Actor::of(&ctx.p, Via::Console), &ctx.p, list.id, &path, &file_name, options).await {
        Ok(st) => Ok(see_other(&format!("/imports/{}", st.id))),
        Err(e) if e.field_errors().iter().any(|f| f.field == "file") => show_error(e.field_errors()[0].reason.clone()),
        Err(e) => Err(e.into()),
    }
}

/// An import, if its list is visible to the user (404 otherwise, as in the API).
async fn visible_import(s: &AppState, ctx: &Ctx, id: i64) -> WebResult<ImportStatus> {
    Ok(imports::visible(s, &ctx.p, id).await?)
}

fn progress_fragment(ctx: &Ctx, st: &ImportStatus) -> Markup {
    let running = st.state == ImportState::Running;
    let c = &st.counts;
    let done = c.rows_staged + c.rows_rejected + c.rows_duplicate_in_file;
    html! {
        div #progress data-state=(st.state.as_str())
            hx-get=[running.then(|| format!("/imports/{}/progress", st.id))]
            hx-trigger=[running.then(|| format!("every {PROGRESS_POLL_S}s"))]
            hx-swap="outerHTML" {
            p { span class=(format!("badge imp-{}", st.state)) id="import-state" { (enum_label(ctx, st.state.as_str())) } }
            @if running { progress max="100" {} } @else { progress max="100" value="100" {} }
            dl.details {
                dt { (ctx.t("import.rows_read")) } dd #rows-read { (c.rows_read) }
                dt { (ctx.t("import.rows_staged")) } dd { (c.rows_staged) " / " (done) }
                dt { (ctx.t("import.rows_rejected")) } dd #rows-rejected { (c.rows_rejected) }
                dt { (ctx.t("import.duplicates")) } dd { (c.rows_duplicate_in_file + c.rows_duplicate_in_list) }
                dt { (ctx.t("import.created")) } dd #customers-created { (c.customers_created) " / " (c.records_created) }
                dt { (ctx.t("import.updated")) } dd { (c.customers_updated) }
            }
            @if let Some(e) = &st.error { p.error { (e) } }
            @if !running && c.rows_rejected > 0 {
                p { a.button href=(format!("/imports/{}/errors.csv", st.id)) id="errors-csv" download { (ctx.t("import.errors_csv")) } }
            }
            @if !running { p { a href=(format!("/contact-lists/{}/records", st.list_id)) id="to-records" { (ctx.t("import.to_records")) } } }
        }
    }
}

async fn progress_page(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> WebResult<Markup> {
    let st = visible_import(&s, &ctx, id).await?;
    Ok(page(
        &ctx,
        &format!("{} #{} · {}", ctx.t("import.title"), st.id, st.file_name),
        html! {
            ol.steps { li { (ctx.t("import.step_upload")) } li { (ctx.t("import.step_mapping")) } li.current { (ctx.t("import.step_progress")) } }
            (progress_fragment(&ctx, &st))
            @if st.state == ImportState::Running && ctx.may(Method::POST, &format!("/imports/{id}/cancel")) {
                (post_button(&ctx, &format!("/imports/{id}/cancel"), ctx.t("import.cancel"), Some(ctx.t("import.confirm_cancel")), "danger"))
            }
        },
    ))
}

async fn progress(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> WebResult<Markup> {
    Ok(progress_fragment(&ctx, &visible_import(&s, &ctx, id).await?))
}

async fn cancel(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> WebResult<Response> {
    let st = visible_import(&s, &ctx, id).await?;
    if s.imports.cancel(st.id) {
        crate::service::audit::import(&s, &Actor::of(&ctx.p, Via::Console), "cancel", &st).await?;
    }
    Ok(see_other(&format!("/imports/{id}")))
}

/// The rejected rows as CSV: the service's stream, as the API sends it.
async fn errors_csv(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> WebResult<Response> {
    let stream = imports::errors_csv(&s, &ctx.p, id).await?;
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "text/csv; charset=utf-8")
        .header(header::CONTENT_DISPOSITION, format!("attachment; filename=\"import-{id}-errors.csv\""))
        .body(axum::body::Body::from_stream(stream))
        .expect("valid response"))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contact-lists/{id}/import", get(upload_form))
        .route("/contact-lists/{id}/imports", post(upload).layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD_BYTES)))
        .route("/contact-lists/{id}/imports/start", post(start))
        .route("/imports/{id}", get(progress_page))
        .route("/imports/{id}/progress", get(progress))
        .route("/imports/{id}/cancel", post(cancel))
        .route("/imports/{id}/errors.csv", get(errors_csv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_round_trip() {
        let headers: Vec<String> = ["first_name", "phone", "mobile", "zip", "notes"].iter().map(|s| s.to_string()).collect();
        let guess = ColumnMapping::guess(&headers, &[]);
        let roles = roles_from(&guess, &headers);
        assert_eq!(roles, ["name", "phone:home", "phone:mobile", "postal_code", ""]);
        let h: Vec<&str> = headers.iter().map(String::as_str).collect();
        let r: Vec<&str> = roles.iter().map(String::as_str).collect();
        let m = mapping_from(&h, &r).unwrap();
        assert_eq!(m.phones.len(), 2);
        assert_eq!(m.postal_code.as_deref(), Some("zip"));
        assert!(mapping_from(&["x"], &["phone:fax"]).is_err());
    }
}
