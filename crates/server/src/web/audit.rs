//! The audit log page: the service's filters and visibility rules ([`AuditQuery`]), as in the API,
//! newest first, a page at a time, with the CSV export of the same selection.

use super::*;
use crate::service::audit_log::{self, AuditQuery};
use campana_core::FieldError;

/// The filter form as typed (empty fields mean "any").
#[derive(Debug, Default, Clone, serde::Deserialize, serde::Serialize)]
#[serde(default)]
struct AuditForm {
    entity_type: String,
    entity_id: String,
    action: String,
    actor_id: String,
    campaign_id: String,
    /// YYYY-MM-DD (UTC), inclusive.
    since: String,
    /// YYYY-MM-DD (UTC), inclusive.
    until: String,
    cursor: String,
}

fn day(field: &str, v: &str, next: bool) -> Result<Option<chrono::DateTime<chrono::Utc>>, FieldError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let d = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| FieldError::new(field, format!("'{v}' is not a date (YYYY-MM-DD)")))?;
    let d = if next { d.succ_opt().unwrap_or(d) } else { d };
    Ok(Some(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()))
}

fn id(field: &str, v: &str) -> Result<Option<i64>, FieldError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse().map(Some).map_err(|_| FieldError::new(field, format!("'{v}' is not an id")))
}

impl AuditForm {
    fn query(&self) -> Result<AuditQuery, Vec<FieldError>> {
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let mut errors = Vec::new();
        fn keep<T>(errors: &mut Vec<FieldError>, r: Result<Option<T>, FieldError>) -> Option<T> {
            r.unwrap_or_else(|e| {
                errors.push(e);
                None
            })
        }
        let q = AuditQuery {
            limit: Some(50),
            cursor: text(&self.cursor),
            actor_id: keep(&mut errors, id("actor_id", &self.actor_id)),
            entity_type: text(&self.entity_type),
            entity_id: text(&self.entity_id),
            action: text(&self.action),
            campaign_id: keep(&mut errors, id("campaign_id", &self.campaign_id)),
            since: keep(&mut errors, day("since", &self.since, false)),
            until: keep(&mut errors, day("until", &self.until, true)),
        };
        if errors.is_empty() {
            Ok(q)
        } else {
            Err(errors)
        }
    }

    /// The API query string of the same selection (for the CSV export).
    fn api_query(&self, q: &AuditQuery) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        for (k, v) in [("entity_type", &q.entity_type), ("entity_id", &q.entity_id), ("action", &q.action)] {
            if let Some(v) = v {
                pairs.push((k, v.clone()));
            }
        }
        for (k, v) in [("actor_id", q.actor_id), ("campaign_id", q.campaign_id)] {
            if let Some(v) = v {
                pairs.push((k, v.to_string()));
            }
        }
        for (k, v) in [("since", q.since), ("until", q.until)] {
            if let Some(v) = v {
                pairs.push((k, v.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
            }
        }
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }
}

fn json_block(v: &Option<serde_json::Value>) -> Markup {
    html! {
        @if let Some(v) = v { pre.json { (serde_json::to_string_pretty(v).unwrap_or_default()) } }
        @else { span.muted { "—" } }
    }
}

async fn list(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Query(f): Query<AuditForm>) -> WebResult<Response> {
    let (entries, errors, export) = match f.query() {
        Ok(q) => {
            let got = audit_log::list(&s, &ctx.p, &q).await?;
            (Some(got), Vec::new(), f.api_query(&q))
        }
        Err(e) => (None, e, String::new()),
    };
    let err = |field: &str| errors.iter().find(|e| e.field == field).map(|e| e.reason.clone());
    let input = |field: &'static str, label: &str, value: &str, kind: &str| {
        html! {
            label {
                (ctx.t(label))
                input type=(kind) name=(field) value=(value);
                @if let Some(e) = err(field) { span.field-error { (e) } }
            }
        }
    };
    let rows: Vec<Vec<Markup>> = entries
        .as_ref()
        .map(|p| {
            p.items
                .iter()
                .map(|e| {
                    vec![
                        html! { (fmt_time(&e.at)) },
                        html! { (e.actor_name) @if let Some(a) = e.actor_id { " (#" (a) ")" } },
                        html! { (e.via) },
                        html! { (e.action) },
                        html! { (e.entity_type) @if let Some(i) = &e.entity_id { " #" (i) } },
                        html! { (e.summary) },
                        html! { (e.campaign_ids.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")) },
                        html! {
                            @if e.before.is_some() || e.after.is_some() {
                                details {
                                    summary { (ctx.t("audit.changes")) }
                                    div.audit-diff {
                                        div { strong { (ctx.t("audit.before")) } (json_block(&e.before)) }
                                        div { strong { (ctx.t("audit.after")) } (json_block(&e.after)) }
                                    }
                                }
                            }
                        },
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let next = entries.as_ref().and_then(|p| p.next_cursor.clone()).map(|c| {
        let f2 = AuditForm { cursor: c, ..f.clone() };
        format!("/audit?{}", serde_urlencoded::to_string(&f2).unwrap_or_default())
    });
    let body = html! {
        form.filters method="get" action="/audit" id="audit-filters" {
            (input("entity_type", "audit.entity_type", &f.entity_type, "text"))
            (input("entity_id", "audit.entity_id", &f.entity_id, "text"))
            (input("action", "audit.action", &f.action, "text"))
            (input("actor_id", "audit.actor_id", &f.actor_id, "text"))
            (input("campaign_id", "audit.campaign_id", &f.campaign_id, "text"))
            (input("since", "audit.since", &f.since, "date"))
            (input("until", "audit.until", &f.until, "date"))
            button type="submit" { (ctx.t("audit.filter")) }
            " "
            @if errors.is_empty() { a.button href=(format!("/api/v1/audit/export.csv?{export}")) id="audit-csv" { (ctx.t("audit.export_csv")) } }
        }
        (table(&ctx, "audit", &["audit.at", "audit.who", "audit.via", "audit.action", "audit.entity", "audit.summary", "audit.campaigns", "audit.changes"], rows))
        @if let Some(n) = next { p { a href=(n) id="audit-next" { (ctx.t("records.next_page")) } } }
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, page(&ctx, ctx.t("nav.audit"), body)).into_response())
}

pub fn router() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}
