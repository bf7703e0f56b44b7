//! Contact lists' records: browse and filter records, a record's page (attempts, why it is not
//! dialable now) and its edit form. The import wizard is in [`super::imports`]. Lists outside
//! the user's campaigns do not exist here (`Principal::check_list`, as in the API).

use super::*;
use crate::service::{Actor, Via};
use campana_core::record::{RecordStatus, RecordType};
use campana_core::stored::ContactList;
use campana_core::{PhoneNumber, RecordId};
use campana_store::{ImportStatus, PageParams, RecordFilterParams};

/// Records shown per page when browsing.
pub const RECORDS_PER_PAGE: u32 = 50;
/// Attempts shown on a record's page.
pub const RECORD_ATTEMPTS_SHOWN: i64 = 100;

pub(super) async fn visible_list(s: &AppState, ctx: &Ctx, id: i64) -> WebResult<ContactList> {
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

pub(super) fn enum_label<'a>(ctx: &Ctx, v: &'a str) -> &'a str {
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
            match crate::service::audit::patch_record(&s, &Actor::of(&ctx.p, Via::Console), list.id, RecordId(rid), &patch).await {
                Ok(_) => return Ok(see_other(&format!("/contact-lists/{id}/records/{rid}"))),
                Err(crate::service::ServiceError::Invalid(errors)) => errors,
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
    let attempts = ctx.p.visible_items(s.store.record_attempts(r.id, RECORD_ATTEMPTS_SHOWN).await?, |a| a.campaign_id);
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
            vec![
                html! { (a.started_at.map(|t| t.to_rfc3339()).unwrap_or_default()) },
                html! { (a.campaign_id) },
                html! { (a.phone) },
                html! { (enum_label(&ctx, a.result.map(|r| r.as_str()).unwrap_or_default())) },
                html! { (a.agent_id.map(|u| u.to_string()).unwrap_or_default()) },
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

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/contact-lists/{id}/records", get(records))
        .route("/contact-lists/{id}/records/{rid}", get(record).post(record_update))
}
