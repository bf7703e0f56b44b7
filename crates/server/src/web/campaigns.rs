//! Campaign pages: the list in groups (seed 003), a campaign's page (effective settings with
//! their source, compliance preview, life-cycle actions), and its create/edit form. The
//! campaigns profile is applied to every one: a campaign outside it does not exist here.

use super::catalog::{self, Screen};
use super::form::{Field, Values};
use super::*;
use crate::service::{campaigns, Actor, Via};
use campana_core::campaign::{Campaign, CampaignAction, CampaignInput};
use campana_core::record::RecordStatus;
use campana_core::settings::{Effective, Source as SettingSource};
use campana_core::stored::CampaignGroup;
use campana_core::CampaignId;
use std::collections::HashMap;

/// Every campaign the user may see (the campaigns profile), all pages.
pub async fn visible_campaigns(s: &AppState, p: &Principal) -> WebResult<Vec<Campaign>> {
    Ok(campaigns::list_all(s, p).await?)
}

/// A campaign the user may see, else 404 (as the API answers).
pub async fn visible(s: &AppState, ctx: &Ctx, id: i64) -> WebResult<Campaign> {
    if !ctx.p.sees_campaign(CampaignId(id)) {
        return Err(WebError::not_found(ctx.tf("campaigns.missing", &[("id", &id.to_string())])));
    }
    Ok(s.store.get_campaign(CampaignId(id)).await?)
}

/// The colour class of a record status (campana.css).
fn status_chip(ctx: &Ctx, status: RecordStatus, n: i64) -> Markup {
    let label = ctx.lang.try_t(&format!("enum.{status}")).unwrap_or(status.as_str());
    html! { span class=(format!("chip st-{status}")) title=(label) { (label) " " strong { (n) } } }
}

fn state_badge(ctx: &Ctx, c: &Campaign) -> Markup {
    let state = c.state.as_str();
    html! { span class=(format!("badge state-{state}")) data-state=(state) { (ctx.lang.try_t(&format!("enum.{state}")).unwrap_or(state)) } }
}

fn action_buttons(ctx: &Ctx, c: &Campaign) -> Markup {
    let shown = [CampaignAction::Start, CampaignAction::Resume, CampaignAction::Pause, CampaignAction::Stop];
    html! {
        @if ctx.may(Method::POST, &format!("/campaigns/{}/start", c.id)) {
            @for a in c.state.allowed_actions().into_iter().filter(|a| shown.contains(a)) {
                @let label = ctx.t(&format!("action.{a}"));
                @let confirm = ctx.tf("campaigns.confirm_action", &[("action", label), ("name", &c.input.name)]);
                (post_button(ctx, &format!("/campaigns/{}/{a}", c.id), label, Some(&confirm), &format!("act act-{a}")))
            }
        }
    }
}

async fn list(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> WebResult<Markup> {
    let campaigns = visible_campaigns(&s, &ctx.p).await?;
    let groups = s.store.list_all::<CampaignGroup>().await?;
    let mut sections: Vec<(String, Option<i64>, Vec<&Campaign>)> = groups
        .iter()
        .map(|g| (g.input.name.clone(), Some(g.id.0), campaigns.iter().filter(|c| c.input.group_id == Some(g.id)).collect()))
        .collect();
    sections.push((ctx.t("campaigns.no_group").to_string(), None, campaigns.iter().filter(|c| c.input.group_id.is_none()).collect()));
    let headers =
        ["common.id", "common.name", "campaigns.state", "campaigns.records", "campaigns.available", "campaigns.statuses", "common.actions"];
    let mut body = Vec::new();
    for (name, gid, items) in &sections {
        // A supervisor sees groups only through their campaigns: empty groups are shown to those who see all.
        if items.is_empty() && (gid.is_some() && ctx.p.campaign_scope().is_some()) {
            continue;
        }
        let mut rows = Vec::new();
        for c in items {
            let counts = s.store.record_status_counts(&c.input.contact_list_ids).await?;
            let total: i64 = counts.iter().map(|(_, n)| n).sum();
            rows.push(vec![
                html! { (c.id) },
                html! { a href=(format!("/campaigns/{}", c.id)) { (c.input.name) } },
                state_badge(&ctx, c),
                html! { (total) },
                html! { span hx-get=(format!("/campaigns/{}/available", c.id)) hx-trigger="load" { "…" } },
                html! { @for (st, n) in &counts { (status_chip(&ctx, *st, *n)) " " } },
                action_buttons(&ctx, c),
            ]);
        }
        let id = format!("group-{}", gid.map(|g| g.to_string()).unwrap_or_else(|| "none".into()));
        body.push(html! {
            details.group open id=(id) {
                summary { (name) " " span.count { "(" (items.len()) ")" } }
                (table(&ctx, &format!("{id}-table"), &headers, rows))
            }
        });
    }
    Ok(page(
        &ctx,
        ctx.t("nav.campaigns"),
        html! {
            @if ctx.may(Method::POST, "/campaigns") && ctx.p.campaign_scope().is_none() {
                p { a.button.primary href="/campaigns/new" id="new" { (ctx.t("campaigns.new")) } }
            }
            p.note { (ctx.t("campaigns.available_help")) }
            @for b in body { (b) }
        },
    ))
}

/// "Available now": the records the dialer could call at this moment (the engine's own
/// eligibility over every record, as the compliance preview computes it).
async fn available(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> WebResult<Markup> {
    let c = visible(&s, &ctx, id).await?;
    let now = chrono::Utc::now();
    let p = crate::explain::preview(&s.store, &c, now).await?;
    Ok(html! { span.available title=(ctx.tf("campaigns.available_note", &[("time", &fmt_time(&now))])) { (p.dialable_now) } })
}

/// The compliance preview: X of Y would be skipped now, by reason, with when each reason lifts.
async fn preview(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> WebResult<Markup> {
    let c = visible(&s, &ctx, id).await?;
    let p = crate::explain::preview(&s.store, &c, chrono::Utc::now()).await?;
    let rows = p
        .by_reason
        .iter()
        .map(|(code, n)| {
            let code = serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            let earliest = p
                .earliest_by_reason
                .iter()
                .find(|(k, _)| serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_string)) == Some(code.clone()));
            vec![
                html! { (ctx.lang.try_t(&format!("reason.{code}")).unwrap_or(&code)) },
                html! { (n) },
                html! { @if let Some((_, t)) = earliest { (fmt_time(t)) } },
            ]
        })
        .collect();
    let summary = ctx.tf(
        "preview.summary",
        &[("skipped", &p.skipped.to_string()), ("total", &p.total.to_string()), ("dialable", &p.dialable_now.to_string())],
    );
    Ok(html! {
        p #preview-summary { (summary) }
        (table(&ctx, "preview-table", &["preview.reason", "preview.records", "preview.earliest"], rows))
    })
}

fn effective_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "—".into(),
        other => other.to_string(),
    }
}

fn source_label(ctx: &Ctx, src: SettingSource) -> &'static str {
    ctx.t(&format!("source.{src}"))
}

async fn view(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> WebResult<Markup> {
    let c = visible(&s, &ctx, id).await?;
    let eff = s.store.effective_settings(&c).await?;
    let profile = s.store.campaign_profile(&c).await?;
    let counts = s.store.record_status_counts(&c.input.contact_list_ids).await?;
    let settings = serde_json::to_value(&eff.settings).unwrap_or_default();
    let progress = crate::service::agent::progress_of(&s, &ctx.p, id).await?;
    let rows = eff
        .sources
        .iter()
        .map(|(k, src)| {
            vec![
                html! { (ctx.t(&format!("field.{k}"))) },
                html! { code { (effective_value(settings.get(k).unwrap_or(&serde_json::Value::Null))) } },
                html! { span class=(format!("src src-{src}")) { (source_label(&ctx, *src)) } },
            ]
        })
        .collect();
    let i = &c.input;
    let details: Vec<(&str, String)> = vec![
        ("field.description", i.description.clone()),
        ("field.agent_notes", i.agent_notes.clone()),
        ("field.profile_id", format!("{} (#{})", profile.input.name, profile.id)),
        ("field.time_zone", i.time_zone.name().to_string()),
        ("campaigns.hours", format!("{}–{} {}", i.daily_hours.start, i.daily_hours.end, i.weekdays.names().join(", "))),
        (
            "campaigns.dates",
            format!(
                "{} → {}",
                i.start_date.map(|d| d.to_string()).unwrap_or_default(),
                i.end_date.map(|d| d.to_string()).unwrap_or_default()
            ),
        ),
        ("field.priority", i.priority.to_string()),
        ("field.contact_list_ids", i.contact_list_ids.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", ")),
    ];
    Ok(page(
        &ctx,
        &format!("{} · {}", c.input.name, ctx.t("campaigns.one")),
        html! {
            div.toolbar {
                (state_badge(&ctx, &c)) " "
                (action_buttons(&ctx, &c))
                @if ctx.may(Method::POST, &format!("/campaigns/{id}")) { a.button href=(format!("/campaigns/{id}/edit")) id="edit" { (ctx.t("common.edit")) } }
            }
            dl.details { @for (k, v) in &details { dt { (ctx.t(k)) } dd { (v) } } }
            h2 { (ctx.t("campaigns.statuses")) }
            p { @for (st, n) in &counts { (status_chip(&ctx, *st, *n)) " " } }
            h2 { (ctx.t("campaigns.progress")) }
            (progress_panel(&ctx, id, &progress))
            h2 { (ctx.t("campaigns.agents")) }
            p.help { (ctx.t("campaigns.agents_intro")) }
            // Refreshed on every fifth progress event (SSE), not on a timer.
            div #agents hx-get=(format!("/campaigns/{id}/agents")) hx-trigger="load, campana:progress5 from:body" { (ctx.t("common.loading")) }
            h2 { (ctx.t("preview.title")) }
            div #preview hx-get=(format!("/campaigns/{id}/preview")) hx-trigger="load" { (ctx.t("common.loading")) }
            h2 { (ctx.t("campaigns.effective")) }
            (table(&ctx, "effective", &["campaigns.setting", "campaigns.value", "campaigns.source"], rows))
        },
    ))
}

/// The live progress (seed 004): figures rendered now, then kept current by `campana.js` from
/// the campaign's progress stream (SSE), with today's chart drawn from its series.
fn progress_panel(ctx: &Ctx, id: i64, p: &crate::service::agent::Progress) -> Markup {
    let pct = |x: f64| format!("{:.2}%", x * 100.0);
    let r = &p.records;
    let figures: Vec<(&str, &str, String)> = vec![
        ("pg-total", "campaigns.pg_total", r.total.to_string()),
        ("pg-yet", "campaigns.pg_yet", r.yet_to_call.to_string()),
        ("pg-in-progress", "campaigns.pg_in_progress", p.today.in_progress.to_string()),
        ("pg-successful", "campaigns.pg_successful", r.successful.to_string()),
        ("pg-failed", "campaigns.pg_failed", r.failed.to_string()),
        ("pg-rescheduled", "campaigns.pg_rescheduled", r.rescheduled.to_string()),
        ("pg-agents", "campaigns.pg_agents", format!("{} · {} · {}", p.agents_assigned, p.agents_logged_in, p.agents_on_call)),
        (
            "pg-today",
            "campaigns.pg_today",
            format!("{} · {} · {} · {}", p.today.dials, p.today.live_answers, p.today.connects, p.today.abandons),
        ),
        (
            "pg-abandon",
            "campaigns.pg_abandon",
            format!("{} · {} · {}", pct(p.abandon_rate_today), pct(p.live.abandon_rate_24h), pct(p.live.abandon_rate_30d)),
        ),
    ];
    let labels = serde_json::json!({
        "dials": ctx.t("campaigns.pg_dials"), "connects": ctx.t("campaigns.pg_connects"),
        "rate": ctx.t("campaigns.pg_rate"), "cap": ctx.t("campaigns.pg_cap"), "none": ctx.t("campaigns.pg_none"),
    });
    html! {
        div #campaign-progress data-stream=(format!("/api/v1/campaigns/{id}/progress/events")) data-labels=(labels.to_string())
            data-initial=(serde_json::to_string(p).unwrap_or_default()) {
            p.help { (ctx.t("campaigns.progress_live")) " " span #pg-updated { (fmt_time(&p.at)) } }
            dl.figures {
                @for (fid, key, v) in &figures { div { dt { (ctx.t(key)) } dd id=(fid) { (v) } } }
            }
            figure {
                svg #pg-chart viewBox="0 0 720 220" role="img" aria-label=(ctx.t("campaigns.pg_chart")) {}
                figcaption { (ctx.t("campaigns.pg_chart")) }
            }
        }
    }
}

/// The campaign's agents (seed 003 "Users list"): who takes its calls and why the others do
/// not; refreshed by the page as the progress stream ticks.
async fn agents(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> WebResult<Markup> {
    visible(&s, &ctx, id).await?;
    let list = crate::service::agent::campaign_agents(&s, &ctx.p, id).await?;
    let group = list.agent_group.clone().unwrap_or_else(|| ctx.t("campaigns.agents_any").to_string());
    let rows = list
        .agents
        .iter()
        .map(|a| {
            let why: Vec<String> = a
                .reasons
                .iter()
                .map(|r| ctx.tf(&format!("campaigns.why_{}", r.code), &[("role", &a.role), ("group", &group)]))
                .collect();
            vec![
                html! { (a.name) },
                html! { (a.role) },
                html! { span class=(if a.takes_calls { "dot dot-on" } else { "dot dot-off" }) {} " " (ctx.t(if a.takes_calls { "common.yes" } else { "common.no" })) },
                html! { (why.join("; ")) },
                html! {
                    @match &a.dialer_state {
                        Some(st) => { (ctx.lang.try_t(&format!("campaigns.agentstate_{st}")).unwrap_or(st)) @if a.on_this_campaign { " · " (ctx.t("campaigns.agent_here")) } }
                        None => { span.muted { (ctx.t("campaigns.agent_off")) } }
                    }
                },
            ]
        })
        .collect();
    Ok(html! {
        p { (ctx.t("campaigns.agents_group")) ": " strong #agents-group { (group) } }
        (table(&ctx, "agents-table", &["campaigns.agent_name", "campaigns.agent_role", "campaigns.agent_takes", "campaigns.agent_why", "campaigns.agent_now"], rows))
    })
}

/// Start, pause, resume or stop; back to the page the button was on.
async fn action(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
) -> WebResult<Response> {
    let c = visible(&s, &ctx, id).await?;
    let action: CampaignAction = action.parse().map_err(|e: campana_core::FieldError| WebError::not_found(e.reason))?;
    campaigns::action(&s, &Actor::of(&ctx.p, Via::Console), &ctx.p, c.id, action).await?;
    Ok(see_other(&back_to(&headers, &format!("/campaigns/{id}"))))
}

impl Screen for Campaign {
    type Input = CampaignInput;
    const PATH: &'static str = "campaigns";
    const TITLE: &'static str = "nav.campaigns";
    fn fields() -> Vec<Field> {
        super::fields::campaign()
    }
    fn id(&self) -> i64 {
        self.id.0
    }
    fn name(&self) -> String {
        self.input.name.clone()
    }
    fn input(&self) -> &CampaignInput {
        &self.input
    }
    fn blank() -> Values {
        let mut v: Vec<(String, String)> =
            [("daily_hours.start", "09:00"), ("daily_hours.end", "20:00"), ("time_zone", "America/New_York")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        v.extend(["mon", "tue", "wed", "thu", "fri"].into_iter().map(|d| ("weekdays".to_string(), d.to_string())));
        Values(v)
    }
    async fn hints(s: &AppState, ctx: &Ctx, id: Option<i64>) -> WebResult<HashMap<String, Markup>> {
        let Some(id) = id else { return Ok(HashMap::new()) };
        let c = visible(s, ctx, id).await?;
        let Effective { settings, sources } = s.store.effective_settings(&c).await?;
        let settings = serde_json::to_value(&settings).unwrap_or_default();
        Ok(sources
            .iter()
            .map(|(k, src)| {
                let v = effective_value(settings.get(k).unwrap_or(&serde_json::Value::Null));
                let shown: String = v.chars().take(80).collect();
                (format!("overrides.{k}"), html! { (ctx.t("campaigns.effective_now")) " " code { (shown) } " · " span class=(format!("src src-{src}")) { (source_label(ctx, *src)) } })
            })
            .collect())
    }
    async fn list(s: &AppState, ctx: &Ctx) -> WebResult<Vec<Self>> {
        visible_campaigns(s, &ctx.p).await
    }
    async fn get(s: &AppState, ctx: &Ctx, id: i64) -> WebResult<Self> {
        visible(s, ctx, id).await
    }
    async fn create(s: &AppState, ctx: &Ctx, input: CampaignInput) -> Result<Self, WebError> {
        if ctx.p.campaign_scope().is_some() {
            return Err(WebError::forbidden(ctx.t("campaigns.create_forbidden")));
        }
        Ok(campaigns::create(s, &Actor::of(&ctx.p, Via::Console), &ctx.p, &input).await?)
    }
    async fn update(s: &AppState, ctx: &Ctx, id: i64, input: CampaignInput) -> Result<Self, WebError> {
        let c = visible(s, ctx, id).await?;
        Ok(campaigns::update(s, &Actor::of(&ctx.p, Via::Console), &ctx.p, c.id, &input).await?)
    }
    async fn delete(s: &AppState, ctx: &Ctx, id: i64) -> WebResult<()> {
        let c = visible(s, ctx, id).await?;
        Ok(campaigns::delete(s, &Actor::of(&ctx.p, Via::Console), &ctx.p, c.id).await?)
    }
}

pub fn router() -> Router<AppState> {
    catalog::routes::<Campaign>(Some(get(list)), Some(get(view)))
        .route("/campaigns/{id}/available", get(available))
        .route("/campaigns/{id}/preview", get(preview))
        .route("/campaigns/{id}/agents", get(agents))
        .route("/campaigns/{id}/{action}", post(action))
}
