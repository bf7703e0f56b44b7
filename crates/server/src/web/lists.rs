//! Contact lists: browse and filter records, a record's page (attempts, why it is not dialable
//! now), and the import wizard (upload, column mapping, progress, error file). Lists outside
//! the user's campaigns do not exist here (`Principal::check_list`, as in the API).

use super::*;
use crate::import_job::{self, ImportError};
use axum::extract::Multipart;
use campana_core::import::{ColumnMapping, DedupePolicy, ImportOptions, PhoneColumn};
use campana_core::record::{PhoneType, RecordStatus, RecordType};
use campana_core::stored::ContactList;
use campana_core::{ImportId, PhoneNumber, RecordId};
use campana_store::{ImportState, ImportStatus, PageParams, RecordFilterParams};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

/// Records shown per page when browsing.
pub const RECORDS_PER_PAGE: u32 = 50;
/// Attempts shown on a record's page.
pub const RECORD_ATTEMPTS_SHOWN: i64 = 100;
/// Uploads waiting for their column mapping, at most; older ones are deleted first.
pub const MAX_PENDING_UPLOADS: usize = 16;
/// A pending upload not started within this is deleted.
pub const PENDING_UPLOAD_TTL_S: u64 = 3600;
/// Seconds between two progress polls of the import page.
pub const PROGRESS_POLL_S: u32 = 1;

async fn visible_list(s: &AppState, ctx: &Ctx, id: i64) -> WebResult<ContactList> {
    ctx.p.check_list(&s.store, id).await?;
    Ok(s.store.get::<ContactList>(id).await?)
}

#[derive(Debug, Default, serde::Deserialize)]
struct RecordQuery {
    status: Option<String>,
    record_type: Option<String>,
    phone: Option<String>,
    external_id: Option<String>,
    cursor: Option<String>,
}

fn some(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn enum_label<'a>(ctx: &Ctx, v: &'a str) -> &'a str {
    ctx.lang.try_t(&format!("enum.{v}")).unwrap_or(v)
}

fn select_of(ctx: &Ctx, name: &str, values: &[&str], current: Option<&str>) -> Markup {
    html! {
        select name=(name) id=(format!("filter-{name}")) {
            option value="" { (ctx.t("records.any")) }
            @for v in values { option value=(v) selected[current == Some(*v)] { (enum_label(ctx, v)) } }
        }
    }
}

async fn records(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<i64>,
    Query(q): Query<RecordQuery>,
) -> WebResult<Response> {
    let list = visible_list(&s, &ctx, id).await?;
    let mut errors = Vec::new();
    let status = some(&q.status).and_then(|v| v.parse::<RecordStatus>().map_err(|e| errors.push(e.renamed("status"))).ok());
    let record_type = some(&q.record_type).and_then(|v| v.parse::<RecordType>().map_err(|e| errors.push(e.renamed("record_type"))).ok());
    let phone =
        some(&q.phone).and_then(|v| PhoneNumber::parse(v, list.input.default_country).map_err(|e| errors.push(e.renamed("phone"))).ok());
    let cursor = some(&q.cursor).and_then(|c| PageParams::parse_cursor(c).ok());
    let filter = RecordFilterParams { status, record_type, phone, external_id: some(&q.external_id).map(str::to_string), chain_id: None };
    let got = s.store.list_records(list.id, &filter, PageParams { limit: Some(RECORDS_PER_PAGE), cursor }).await?;
    let rows = got
        .items
        .iter()
        .map(|r| {
            vec![
                html! { a href=(format!("/contact-lists/{id}/records/{}", r.id)) { (r.id) } },
                html! { (r.name) },
                html! { (r.phone.to_string()) " " small { (enum_label(&ctx, r.phone_type.as_str())) } },
                html! { (r.external_id.clone().unwrap_or_default()) },
                html! { span class=(format!("chip st-{}", r.record_status)) { (enum_label(&ctx, r.record_status.as_str())) } },
                html! { (enum_label(&ctx, r.record_type.as_str())) },
                html! { (r.attempts_total) },
                html! { @if let Some(res) = r.last_result { (enum_label(&ctx, res.as_str())) } },
            ]
        })
        .collect();
    let statuses: Vec<&str> = RecordStatus::ALL.iter().map(|s| s.as_str()).collect();
    let types: Vec<&str> = RecordType::ALL.iter().map(|s| s.as_str()).collect();
    let imports = s.store.list_imports(list.id).await?;
    let next = got.next_cursor.map(|c| {
        let mut q2 = vec![("cursor", c)];
        for (k, v) in [("status", &q.status), ("record_type", &q.record_type), ("phone", &q.phone), ("external_id", &q.external_id)] {
            if let Some(v) = some(v) {
                q2.push((k, v.to_string()));
            }
        }
        format!("?{}", serde_urlencoded::to_string(q2).unwrap_or_default())
    });
    let body = html! {
        div.toolbar {
            @if ctx.may(Method::POST, &format!("/contact-lists/{id}/imports")) {
                a.button.primary href=(format!("/contact-lists/{id}/import")) id="import" { (ctx.t("import.start")) } " "
                a.button href=(format!("/contact-lists/{id}")) { (ctx.t("common.edit")) }
            }
            span.count { (ctx.tf("lists.record_count", &[("n", &list.record_count.to_string())])) }
        }
        @if !errors.is_empty() {
            div.errors role="alert" { ul { @for e in &errors { li { strong { (e.field) } ": " (e.reason) } } } }
        }
        form.filters method="get" {
            label { (ctx.t("field.record_status")) (select_of(&ctx, "status", &statuses, some(&q.status))) }
            label { (ctx.t("field.record_type")) (select_of(&ctx, "record_type", &types, some(&q.record_type))) }
            label { (ctx.t("field.phone")) input type="text" name="phone" value=(q.phone.clone().unwrap_or_default()); }
            label { (ctx.t("field.external_id")) input type="text" name="external_id" value=(q.external_id.clone().unwrap_or_default()); }
            button type="submit" { (ctx.t("records.filter")) }
        }
        (table(&ctx, "records", &["common.id", "common.name", "field.phone", "field.external_id", "field.record_status", "field.record_type", "records.attempts", "records.last_result"], rows))
        @if let Some(n) = next { p { a href=(n) id="next-page" { (ctx.t("records.next_page")) } } }
        h2 { (ctx.t("import.history")) }
        (imports_table(&ctx, &imports))
    };
    Ok(page(&ctx, &format!("{} · {}", list.input.name, ctx.t("lists.records")), body).into_response())
}

fn imports_table(ctx: &Ctx, imports: &[ImportStatus]) -> Markup {
    let rows = imports
        .iter()
        .map(|i| {
            vec![
                html! { a href=(format!("/imports/{}", i.id)) { (i.id) } },
                html! { (i.file_name) },
                html! { span class=(format!("badge imp-{}", i.state)) { (enum_label(ctx, i.state.as_str())) } },
                html! { (i.counts.rows_read) },
                html! { (i.counts.rows_rejected) },
                html! { (fmt_time(&i.started_at)) },
            ]
        })
        .collect();
    table(ctx, "imports", &["common.id", "import.file", "import.state", "import.rows_read", "import.rows_rejected", "import.started"], rows)
}

/// The record page's edit form, as typed (kept when a change is refused).
#[derive(Debug, Default, Clone, serde::Deserialize)]
struct RecordForm {
    #[serde(default)]
    record_type: String,
    #[serde(default)]
    record_status: String,
    #[serde(default)]
    dial_from: String,
    #[serde(default)]
    dial_until: String,
    #[serde(default)]
    callback_at: String,
    #[serde(default)]
    time_zone: String,
}

/// A `datetime-local` value read as UTC; empty clears the time.
fn utc_input(v: &str, field: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, campana_core::FieldError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S"))
        .map(|t| Some(t.and_utc()))
        .map_err(|_| campana_core::FieldError::new(field, format!("'{v}' is not a date and time (YYYY-MM-DDTHH:MM, UTC)")))
}

fn utc_value(t: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.format("%Y-%m-%dT%H:%M").to_string()).unwrap_or_default()
}

impl RecordForm {
    fn of(r: &campana_core::record::Record) -> RecordForm {
        RecordForm {
            record_type: r.record_type.as_str().into(),
            record_status: r.record_status.as_str().into(),
            dial_from: utc_value(&r.dial_from),
            dial_until: utc_value(&r.dial_until),
            callback_at: utc_value(&r.callback_at),
            time_zone: r.time_zone.map(|z| z.name().to_string()).unwrap_or_default(),
        }
    }
    /// Every field is sent: the patch sets each one (empty times and zone clear them).
    fn patch(&self) -> Result<campana_core::record::RecordPatch, Vec<campana_core::FieldError>> {
        let mut errors = Vec::new();
        let mut ok = |r: Result<Option<chrono::DateTime<chrono::Utc>>, campana_core::FieldError>| r.map_err(|e| errors.push(e)).ok();
        let (dial_from, dial_until, callback_at) = (
            ok(utc_input(&self.dial_from, "dial_from")),
            ok(utc_input(&self.dial_until, "dial_until")),
            ok(utc_input(&self.callback_at, "callback_at")),
        );
        let record_type = self.record_type.parse::<RecordType>().map_err(|e| errors.push(e.renamed("record_type"))).ok();
        let record_status = self.record_status.parse::<RecordStatus>().map_err(|e| errors.push(e.renamed("record_status"))).ok();
        let time_zone = match self.time_zone.trim() {
            "" => Some(None),
            z => campana_core::TimeZone::parse(z).map(Some).map_err(|e| errors.push(e.renamed("time_zone"))).ok(),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(campana_core::record::RecordPatch { record_type, record_status, dial_from, dial_until, callback_at, time_zone })
    }
}

async fn record(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path((id, rid)): Path<(i64, i64)>) -> WebResult<Response> {
    record_page(&s, &ctx, id, rid, None, &[]).await
}

/// Saves the record page's form through the same audited change as the API's PATCH.
async fn record_update(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path((id, rid)): Path<(i64, i64)>,
    Form(f): Form<RecordForm>,
) -> WebResult<Response> {
    let list = visible_list(&s, &ctx, id).await?;
    let result = match f.patch() {
        Ok(patch) => {
            match crate::audit::patch_record(
                &s,
                &crate::audit::Actor::of(&ctx.p, crate::audit::Via::Console),
                list.id,
                RecordId(rid),
                &patch,
            )
            .await
            {
                Ok(_) => return Ok(see_other(&format!("/contact-lists/{id}/records/{rid}"))),
                Err(e) if !e.errors.is_empty() => e.errors,
                Err(e) => return Err(e.into()),
            }
        }
        Err(errors) => errors,
    };
    let errors: Vec<campana_core::FieldError> = result.into_iter().map(|e| campana_core::FieldError::new(e.field, e.reason)).collect();
    record_page(&s, &ctx, id, rid, Some(&f), &errors).await
}

async fn record_page(
    s: &AppState,
    ctx: &Ctx,
    id: i64,
    rid: i64,
    form: Option<&RecordForm>,
    errors: &[campana_core::FieldError],
) -> WebResult<Response> {
    let (s, ctx) = (s.clone(), ctx.clone());
    let list = visible_list(&s, &ctx, id).await?;
    let r = s.store.get_record(list.id, RecordId(rid)).await?;
    // Only attempts of campaigns the user sees: the others do not exist for them.
    let attempts: Vec<serde_json::Value> = s
        .store
        .record_attempts(r.id, RECORD_ATTEMPTS_SHOWN)
        .await?
        .into_iter()
        .filter(|a| a["campaign_id"].as_i64().is_some_and(|c| ctx.p.sees_campaign(campana_core::CampaignId(c))))
        .collect();
    let now = chrono::Utc::now();
    let mut why = Vec::new();
    for c in super::campaigns::visible_campaigns(&s, &ctx.p).await? {
        if c.input.contact_list_ids.contains(&list.id) {
            let answer = crate::explain::why(&s.store, &c, r.clone(), now).await?;
            why.push((c, answer));
        }
    }
    let fields: Vec<(&str, String)> = vec![
        ("common.name", r.name.clone()),
        ("field.phone", format!("{} ({})", r.phone, enum_label(&ctx, r.phone_type.as_str()))),
        ("field.external_id", r.external_id.clone().unwrap_or_default()),
        ("records.chain", format!("{} · {}", r.chain_id, r.chain_position)),
        ("field.record_type", enum_label(&ctx, r.record_type.as_str()).to_string()),
        ("field.record_status", enum_label(&ctx, r.record_status.as_str()).to_string()),
        ("records.attempts", format!("{} ({} {})", r.attempts_total, r.attempts_today, ctx.t("records.today"))),
        ("field.time_zone", r.time_zone.map(|z| z.name().to_string()).unwrap_or_default()),
        ("field.postal_code", r.postal_code.clone().unwrap_or_default()),
        (
            "records.zones",
            campana_engine::zones::resolve(&r.phone, r.time_zone.map(|z| z.0), r.postal_code.as_deref())
                .map(|z| z.describe())
                .unwrap_or_else(|| "-".to_string()),
        ),
        ("records.callback_at", r.callback_at.as_ref().map(fmt_time).unwrap_or_default()),
        ("records.custom", serde_json::to_string(&r.custom).unwrap_or_default()),
    ];
    let attempt_rows = attempts
        .iter()
        .map(|a| {
            let text = |k: &str| a[k].as_str().map(str::to_string).or_else(|| a[k].as_i64().map(|n| n.to_string())).unwrap_or_default();
            vec![
                html! { (text("started_at")) },
                html! { (text("campaign_id")) },
                html! { (text("phone")) },
                html! { (enum_label(&ctx, &text("result"))) },
                html! { (text("agent_id")) },
            ]
        })
        .collect();
    let why_rows = why
        .iter()
        .map(|(c, answer)| match answer {
            Ok(()) => vec![
                html! { a href=(format!("/campaigns/{}", c.id)) { (c.input.name) } },
                html! { strong.ok { (ctx.t("records.dialable_now")) } },
                html! {},
            ],
            Err(b) => {
                let code = serde_json::to_value(b.code).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                vec![
                    html! { a href=(format!("/campaigns/{}", c.id)) { (c.input.name) } },
                    html! { (ctx.lang.try_t(&format!("reason.{code}")).unwrap_or(&code)) br; small { (b.message) } },
                    html! { @if let Some(t) = &b.next_dialable_at { (fmt_time(t)) } @else { (ctx.t("records.never")) } },
                ]
            }
        })
        .collect();
    let form = form.cloned().unwrap_or_else(|| RecordForm::of(&r));
    let may_edit = ctx.may(axum::http::Method::POST, &format!("/contact-lists/{id}/records/{rid}"));
    let field_error = |f: &str| -> Markup {
        html! { @for e in errors.iter().filter(|e| e.field == f) { p.field-error { (e.field) ": " (e.reason) } } }
    };
    let statuses: Vec<&str> = RecordStatus::ALL.iter().map(|s| s.as_str()).collect();
    let types: Vec<&str> = RecordType::ALL.iter().map(|s| s.as_str()).collect();
    let choose = |name: &str, values: &[&str], current: &str| -> Markup {
        html! { select name=(name) id=(format!("record-{name}")) { @for v in values { option value=(v) selected[current == *v] { (enum_label(&ctx, v)) } } } }
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let markup = page(
        &ctx,
        &format!("{} #{}", ctx.t("records.one"), r.id),
        html! {
            p { a href=(format!("/contact-lists/{id}/records")) { "← " (list.input.name) } }
            @if !errors.is_empty() { div.errors role="alert" id="form-errors" { p { (ctx.t("form.fix_errors")) } } }
            dl.details { @for (k, v) in &fields { dt { (ctx.t(k)) } dd { (v) } } }
            @if may_edit {
                details open[!errors.is_empty()] {
                    summary { (ctx.t("records.edit")) }
                    form.edit method="post" action=(format!("/contact-lists/{id}/records/{rid}")) id="record-edit" {
                        (ctx.csrf_field())
                        label { (ctx.t("field.record_type")) (choose("record_type", &types, &form.record_type)) }
                        (field_error("record_type"))
                        label { (ctx.t("field.record_status")) (choose("record_status", &statuses, &form.record_status)) }
                        (field_error("record_status"))
                        label { (ctx.t("records.dial_from")) input type="datetime-local" name="dial_from" value=(form.dial_from); }
                        (field_error("dial_from"))
                        label { (ctx.t("records.dial_until")) input type="datetime-local" name="dial_until" value=(form.dial_until); }
                        (field_error("dial_until"))
                        label { (ctx.t("records.callback_at")) " (UTC)" input type="datetime-local" name="callback_at" value=(form.callback_at); }
                        (field_error("callback_at"))
                        label { (ctx.t("field.time_zone")) input type="text" name="time_zone" id="record-time_zone" value=(form.time_zone) placeholder="America/Chicago"; }
                        (field_error("time_zone"))
                        div.actions { button type="submit" id="record-save" { (ctx.t("common.save")) } }
                    }
                }
            }
            h2 { (ctx.t("records.why")) }
            (table(&ctx, "why", &["campaigns.one", "records.answer", "records.next_dialable"], why_rows))
            h2 { (ctx.t("records.history")) }
            (table(&ctx, "attempts", &["records.started", "campaigns.one", "field.phone", "records.result", "records.agent"], attempt_rows))
        },
    );
    Ok((status, markup).into_response())
}

// ---- the import wizard ----

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

fn pending_path(s: &AppState, ctx: &Ctx, list: i64, name: &str) -> WebResult<std::path::PathBuf> {
    let ok =
        name.starts_with(&format!("{list}-{}-", ctx.p.user.id)) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    let path = pending_dir(s).join(name);
    if !ok || !path.is_file() {
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
            std::fs::create_dir_all(&dir).map_err(|e| WebError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            prune_pending(&dir);
            let stored = pending_name(id, ctx.p.user.id.0);
            let mut f = tokio::fs::File::create(dir.join(&stored))
                .await
                .map_err(|e| WebError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            let mut total_bytes = 0usize;
            while let Some(chunk) = field.chunk().await.map_err(|e| bad(e.to_string()))? {
                total_bytes += chunk.len();
                if total_bytes > crate::api::imports::MAX_UPLOAD_BYTES {
                    let _ = tokio::fs::remove_file(dir.join(&stored)).await;
                    return Err(WebError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("the file is larger than {} bytes", crate::api::imports::MAX_UPLOAD_BYTES),
                    ));
                }
                f.write_all(&chunk).await.map_err(|e| WebError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            }
            f.flush().await.map_err(|e| WebError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
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
            let _ = std::fs::remove_file(pending_dir(&s).join(&stored));
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
    let path = pending_path(&s, &ctx, id, &stored)?;
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
    let cancel = Arc::new(AtomicBool::new(false));
    match import_job::start(s.store.clone(), list.id, path.clone(), file_name.clone(), options, cancel.clone(), None).await {
        Ok(started) => {
            let import_id = started.id;
            let upload =
                tempfile::TempPath::try_from_path(path).map_err(|e| WebError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            import_job::finish_in_background(s.clone(), started, cancel, upload);
            let st = s.store.import_status(import_id).await?;
            crate::audit::import(&s, &crate::audit::Actor::of(&ctx.p, crate::audit::Via::Console), "start", &st).await?;
            Ok(see_other(&format!("/imports/{import_id}")))
        }
        Err(ImportError::File(e)) => show_error(e.to_string()),
        Err(ImportError::Store(e)) => Err(e.into()),
    }
}

/// An import, if its list is visible to the user (404 otherwise, as in the API).
async fn visible_import(s: &AppState, ctx: &Ctx, id: i64) -> WebResult<ImportStatus> {
    let st = s.store.import_status(ImportId(id)).await?;
    ctx.p.check_list(&s.store, st.list_id.0).await.map_err(|_| WebError::not_found(format!("import {id} does not exist")))?;
    Ok(st)
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
        crate::audit::import(&s, &crate::audit::Actor::of(&ctx.p, crate::audit::Via::Console), "cancel", &st).await?;
    }
    Ok(see_other(&format!("/imports/{id}")))
}

/// The rejected rows as CSV: the API's own handler (same checks, same streaming).
async fn errors_csv(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> WebResult<Response> {
    Ok(crate::api::imports::errors_csv(State(s), Extension(ctx.p), Path(id)).await?)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contact-lists/{id}/records", get(records))
        .route("/contact-lists/{id}/records/{rid}", get(record).post(record_update))
        .route("/contact-lists/{id}/import", get(upload_form))
        .route(
            "/contact-lists/{id}/imports",
            post(upload).layer(axum::extract::DefaultBodyLimit::max(crate::api::imports::MAX_UPLOAD_BYTES)),
        )
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
