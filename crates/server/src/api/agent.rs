//! The agent's side of the dialer (the agent desktop's API) and the supervisors' live views:
//! log in to the dialer, ready / not ready with a pause code, preview accept/skip, hang up,
//! disposition with notes and callback, the agent's current call with its record, campaign notes
//! and script, a server-sent event stream of the agent's notices, and campaign progress.

use super::*;
use crate::auth::Principal;
use crate::dialer::{AgentLive, CampaignLive, DialerError, LiveStatus};
use axum::extract::Path;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use campana_core::campaign::Campaign;
use campana_core::record::{CallResult, Record};
use campana_core::stored::{Disposition, ManagerTag, Script};
use campana_core::telephony::CallId;
use campana_core::{CampaignId, RecordId};
use campana_engine::{CallbackRequest, Input};
use campana_store::{AttemptBucket, AttemptCounts, RecordProgress};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

impl From<DialerError> for ApiError {
    fn from(e: DialerError) -> Self {
        match e {
            DialerError::NotRunning => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            DialerError::Busy | DialerError::Unresponsive(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            DialerError::Refused(m) => ApiError::new(StatusCode::CONFLICT, m),
        }
    }
}

/// Done.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ack {
    pub ok: bool,
}

fn ack() -> Json<Ack> {
    Json(Ack { ok: true })
}

/// Joins the dialer with the agent groups and campaigns profile of the signed-in user (calls come
/// only from campaigns of those groups within that profile), not ready yet.
#[utoipa::path(post, operation_id = "agent_login", path = "/api/v1/agent/login", tag = "agent",
    responses((status = 200, body = Ack), (status = 409, body = Problem)))]
pub async fn login(State(s): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult<Json<Ack>> {
    let login = Input::AgentLogin {
        agent: p.user.id,
        groups: p.user.input.agent_group_ids.clone(),
        campaigns: p.user.input.campaigns_profile.clone(),
    };
    crate::audit::agent_state(&s, &p, crate::audit::Via::Api, login).await?;
    Ok(ack())
}

#[utoipa::path(post, operation_id = "agent_ready", path = "/api/v1/agent/ready", tag = "agent",
    responses((status = 200, body = Ack), (status = 409, body = Problem)))]
pub async fn ready(State(s): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult<Json<Ack>> {
    crate::audit::agent_state(&s, &p, crate::audit::Via::Api, Input::AgentReady { agent: p.user.id }).await?;
    Ok(ack())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotReady {
    /// Why (break, lunch, training, ...): 1 to 40 characters.
    pub pause_code: String,
}

#[utoipa::path(post, operation_id = "agent_not_ready", path = "/api/v1/agent/not-ready", tag = "agent", request_body = NotReady,
    responses((status = 200, body = Ack), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn not_ready(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(b): ApiJson<NotReady>,
) -> ApiResult<Json<Ack>> {
    let code = b.pause_code.trim();
    if code.is_empty() || code.chars().count() > 40 {
        return Err(ApiError::field("pause_code", "must be 1 to 40 characters"));
    }
    let not_ready = Input::AgentNotReady { agent: p.user.id, pause_code: code.to_string() };
    crate::audit::agent_state(&s, &p, crate::audit::Via::Api, not_ready).await?;
    Ok(ack())
}

#[utoipa::path(post, operation_id = "agent_logout", path = "/api/v1/agent/logout", tag = "agent",
    responses((status = 200, body = Ack), (status = 409, body = Problem)))]
pub async fn logout(State(s): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult<Json<Ack>> {
    crate::audit::agent_state(&s, &p, crate::audit::Via::Api, Input::AgentLogout { agent: p.user.id }).await?;
    Ok(ack())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewAction {
    pub record_id: i64,
}

/// Preview mode: dial the offered record now.
#[utoipa::path(post, operation_id = "agent_preview_accept", path = "/api/v1/agent/preview/accept", tag = "agent", request_body = PreviewAction,
    responses((status = 200, body = Ack), (status = 409, body = Problem)))]
pub async fn preview_accept(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(b): ApiJson<PreviewAction>,
) -> ApiResult<Json<Ack>> {
    s.dialer.agent(Input::PreviewAccept { agent: p.user.id, record_id: RecordId(b.record_id) }).await?;
    Ok(ack())
}

/// Preview mode: skip the offered record (offered again after the recall delay).
#[utoipa::path(post, operation_id = "agent_preview_skip", path = "/api/v1/agent/preview/skip", tag = "agent", request_body = PreviewAction,
    responses((status = 200, body = Ack), (status = 409, body = Problem)))]
pub async fn preview_skip(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(b): ApiJson<PreviewAction>,
) -> ApiResult<Json<Ack>> {
    s.dialer.agent(Input::PreviewSkip { agent: p.user.id, record_id: RecordId(b.record_id) }).await?;
    Ok(ack())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallRef {
    pub call_id: u64,
}

/// Ends the agent's customer call.
#[utoipa::path(post, operation_id = "agent_hang_up", path = "/api/v1/agent/hang-up", tag = "agent", request_body = CallRef,
    responses((status = 200, body = Ack), (status = 409, body = Problem)))]
pub async fn hang_up(State(s): State<AppState>, Extension(p): Extension<Principal>, ApiJson(b): ApiJson<CallRef>) -> ApiResult<Json<Ack>> {
    s.dialer.hang_up(p.user.id, CallId(b.call_id)).await?;
    Ok(ack())
}

/// A callback the agent schedules.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackInput {
    pub at: DateTime<Utc>,
    /// Personal (this agent) or for any agent of the campaign.
    #[serde(default)]
    pub personal: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispositionRequest {
    pub call_id: u64,
    pub disposition_id: i64,
    #[serde(default)]
    pub notes: String,
    /// Required when the disposition asks for a callback.
    pub callback: Option<CallbackInput>,
}

/// The call result a disposition stands for: do-not-call and callback by their flags; a final
/// disposition closes the record (right party); a non-final one moves to the customer's next
/// number (wrong party), as the profile's treatment for `wrong_party` says.
pub fn disposition_result(d: &Disposition) -> CallResult {
    let i = &d.input;
    if i.is_do_not_call {
        CallResult::DoNotCall
    } else if i.is_callback {
        CallResult::AgentCallback
    } else if i.is_final || i.is_success {
        CallResult::RightParty
    } else {
        CallResult::WrongParty
    }
}

/// The dispositions an agent may choose on a call of campaign `c`: the campaign's own, its
/// settings profile's, and those of no campaign or profile. One rule for the screen and the
/// disposition itself.
pub fn offered_on(d: &Disposition, c: &Campaign, profile: &campana_core::stored::SettingsProfile) -> bool {
    match (d.input.campaign_id, d.input.profile_id) {
        (Some(x), _) => x == c.id,
        (None, Some(pid)) => pid == profile.id,
        (None, None) => true,
    }
}

/// Ends wrap-up with the agent's outcome; the record follows the result's treatment.
#[utoipa::path(post, operation_id = "agent_disposition", path = "/api/v1/agent/disposition", tag = "agent", request_body = DispositionRequest,
    responses((status = 200, body = Ack), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn disposition(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(b): ApiJson<DispositionRequest>,
) -> ApiResult<Json<Ack>> {
    // Only a disposition offered on the call's campaign; any other id, whether it exists or
    // not, gets the same answer.
    let not_offered = || ApiError::field("disposition_id", format!("{} is not a disposition of this call's campaign", b.disposition_id));
    let call_id = i64::try_from(b.call_id).map_err(|_| ApiError::field("call_id", format!("{} is not a call of yours", b.call_id)))?;
    let d = match s.store.call_attempt_owner(call_id).await? {
        Some((_, campaign)) => {
            let c = s.store.get_campaign(campaign).await?;
            let profile = s.store.campaign_profile(&c).await?;
            s.store.get::<Disposition>(b.disposition_id).await.ok().filter(|d| offered_on(d, &c, &profile)).ok_or_else(not_offered)?
        }
        // No such call: the dialer says so below, for any disposition.
        None => s.store.get::<Disposition>(b.disposition_id).await.map_err(|_| not_offered())?,
    };
    if b.notes.chars().count() > 4000 {
        return Err(ApiError::field("notes", "at most 4000 characters"));
    }
    let result = disposition_result(&d);
    let callback = match (&b.callback, d.input.is_callback) {
        (Some(cb), true) => {
            if cb.at <= Utc::now() {
                return Err(ApiError::field("callback.at", format!("{} is in the past", cb.at)));
            }
            Some(CallbackRequest { at: cb.at, personal: cb.personal })
        }
        (None, true) => return Err(ApiError::field("callback", format!("'{}' asks for a callback time", d.input.name))),
        (Some(_), false) => return Err(ApiError::field("callback", format!("'{}' is not a callback disposition", d.input.name))),
        (None, false) => None,
    };
    let campaign = s.dialer.status().agents.get(&p.user.id.0).and_then(|a| a.campaign_id);
    s.dialer.agent(Input::Disposition { agent: p.user.id, call_id: CallId(b.call_id), result, callback }).await?;
    s.store.set_attempt_disposition(b.call_id as i64, Some(d.id.0), &b.notes).await?;
    let change = crate::audit::Change {
        action: "disposition".into(),
        entity_type: "call_attempt",
        entity_id: Some(b.call_id.to_string()),
        summary: d.input.name.clone(),
        concerns: campana_store::Concerns::Campaigns(campaign.into_iter().collect()),
        before: None,
        after: Some(serde_json::json!({"disposition_id": d.id, "result": result, "notes": b.notes,
            "callback": b.callback.as_ref().map(|c| serde_json::json!({"at": c.at, "personal": c.personal}))})),
    };
    crate::audit::log(&s, &crate::audit::Actor::of(&p, crate::audit::Via::Api), change).await?;
    Ok(ack())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagRequest {
    pub call_id: u64,
    /// A manager tag offered on the call's campaign.
    pub tag_id: i64,
}

/// Puts a manager tag on the agent's current call (during the call or its wrap-up) or on a
/// call they took; applying a tag the call already has changes nothing.
#[utoipa::path(post, operation_id = "agent_tag", path = "/api/v1/agent/tags", tag = "agent", request_body = TagRequest,
    responses((status = 200, body = Ack), (status = 422, body = Problem)))]
pub async fn tag_call(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(b): ApiJson<TagRequest>,
) -> ApiResult<Json<Ack>> {
    let not_yours = || ApiError::field("call_id", format!("{} is not a call of yours", b.call_id));
    let call_id = i64::try_from(b.call_id).map_err(|_| not_yours())?;
    let (campaign, agent) = s.store.call_attempt_agent(call_id).await?.ok_or_else(not_yours)?;
    let live = s.dialer.status().agents.get(&p.user.id.0).is_some_and(|a| a.call_id == Some(b.call_id));
    if !(live || agent == Some(p.user.id)) || !p.sees_campaign(campaign) {
        return Err(not_yours());
    }
    let tag = s
        .store
        .get::<ManagerTag>(b.tag_id)
        .await
        .ok()
        .filter(|t| t.input.campaign_id.is_none_or(|c| c == campaign))
        .ok_or_else(|| ApiError::field("tag_id", format!("{} is not a manager tag of this call's campaign", b.tag_id)))?;
    if s.store.tag_attempt(call_id, tag.id, p.user.id).await? {
        let change = crate::audit::Change {
            action: "tag".into(),
            entity_type: "call_attempt",
            entity_id: Some(b.call_id.to_string()),
            summary: tag.input.name.clone(),
            concerns: campana_store::Concerns::Campaigns(vec![campaign.0]),
            before: None,
            after: Some(serde_json::json!({"tag_id": tag.id, "tag": tag.input.name})),
        };
        crate::audit::log(&s, &crate::audit::Actor::of(&p, crate::audit::Via::Api), change).await?;
    }
    Ok(ack())
}

/// The agent's screen: state, and for the current offer or call the record, the campaign's
/// notes, the script and the dispositions to choose from.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentScreen {
    /// `None` when the agent is not logged in to the dialer.
    pub agent: Option<AgentLive>,
    pub dialer_running: bool,
    pub record: Option<Record>,
    pub campaign: Option<CampaignBrief>,
    /// The campaign's script with `{{name}}` and `{{agent}}` filled in.
    pub script: Option<String>,
    pub dispositions: Vec<Disposition>,
    /// The contact's IANA zones (from the record's zone, postal code or number; several when
    /// they disagree, the first is shown): for the contact's local time and the callback picker.
    pub contact_time_zones: Vec<String>,
    /// The record's earlier calls in campaigns the agent may see, newest first, with their
    /// disposition and notes (the record's notes).
    pub history: Vec<PastCall>,
    /// The manager tags offered on the campaign.
    pub manager_tags: Vec<ManagerTag>,
    /// The manager tags already on the current call.
    pub applied_tag_ids: Vec<i64>,
    /// The campaign's wrap-up time (effective settings): after it the agent is ready again.
    pub wrap_up_s: Option<u32>,
}

/// One earlier call of the record.
#[derive(Debug, Serialize, ToSchema)]
pub struct PastCall {
    pub call_id: i64,
    pub started_at: Option<String>,
    pub result: Option<String>,
    pub disposition: Option<String>,
    pub notes: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignBrief {
    pub id: i64,
    pub name: String,
    pub agent_notes: String,
    pub time_zone: String,
}

#[utoipa::path(get, operation_id = "agent_screen", path = "/api/v1/agent/state", tag = "agent", responses((status = 200, body = AgentScreen)))]
pub async fn screen(State(s): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult<Json<AgentScreen>> {
    let status = s.dialer.status();
    let agent = status.agents.get(&p.user.id.0).cloned();
    let mut out = AgentScreen {
        agent: agent.clone(),
        dialer_running: status.running,
        record: None,
        campaign: None,
        script: None,
        dispositions: vec![],
        contact_time_zones: vec![],
        history: vec![],
        manager_tags: vec![],
        applied_tag_ids: vec![],
        wrap_up_s: None,
    };
    let (Some(a), true) = (agent, true) else { return Ok(Json(out)) };
    let (Some(cid), Some(rid)) = (a.campaign_id, a.record_id) else { return Ok(Json(out)) };
    let c: Campaign = s.store.get_campaign(CampaignId(cid)).await?;
    let cand = s.store.dialer_candidate(RecordId(rid)).await?;
    let settings = s.store.effective_settings(&c).await?.settings;
    if let Some(sid) = settings.script_id {
        if let Ok(script) = s.store.get::<Script>(sid.0).await {
            let agent_name = if p.user.input.display_name.is_empty() { &p.user.input.username } else { &p.user.input.display_name };
            out.script = Some(script.input.body.replace("{{name}}", &cand.record.name).replace("{{agent}}", agent_name));
        }
    }
    let profile = s.store.campaign_profile(&c).await?;
    let dispositions = s.store.list_all::<Disposition>().await?;
    out.history = s
        .store
        .record_attempts(RecordId(rid), 20)
        .await?
        .into_iter()
        .filter(|x| x["call_id"].as_u64() != a.call_id && x["campaign_id"].as_i64().is_some_and(|c| p.sees_campaign(CampaignId(c))))
        .map(|x| PastCall {
            call_id: x["call_id"].as_i64().unwrap_or_default(),
            started_at: x["started_at"].as_str().map(str::to_string),
            result: x["result"].as_str().map(str::to_string),
            disposition: x["disposition_id"]
                .as_i64()
                .and_then(|id| dispositions.iter().find(|d| d.id.0 == id))
                .map(|d| d.input.name.clone()),
            notes: x["notes"].as_str().unwrap_or_default().to_string(),
        })
        .collect();
    out.dispositions = dispositions.into_iter().filter(|d| offered_on(d, &c, &profile)).collect();
    out.manager_tags =
        s.store.list_all::<ManagerTag>().await?.into_iter().filter(|t| t.input.campaign_id.is_none_or(|x| x == c.id)).collect();
    if let Some(call) = a.call_id {
        out.applied_tag_ids = s.store.attempt_tags(call as i64).await?.into_iter().map(|t| t.0).collect();
    }
    out.contact_time_zones = campana_engine::eligibility::contact_zones(&cand)
        .map(|z| z.zones.iter().map(|t| t.name().to_string()).collect())
        .unwrap_or_default();
    out.wrap_up_s = Some(settings.wrap_up_s);
    out.campaign = Some(CampaignBrief {
        id: c.id.0,
        name: c.input.name.clone(),
        agent_notes: c.input.agent_notes.clone(),
        time_zone: c.input.time_zone.name().to_string(),
    });
    out.record = Some(cand.record);
    Ok(Json(out))
}

/// Server-sent events: this agent's notices (`preview_offer`, `call_connected`, `wrap_up`, ...)
/// as JSON; after each, GET /api/v1/agent/state has the details.
#[utoipa::path(get, operation_id = "agent_events", path = "/api/v1/agent/events", tag = "agent",
    responses((status = 200, description = "text/event-stream of the agent's notices", content_type = "text/event-stream", body = String)))]
pub async fn events(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>> {
    let me = p.user.id;
    let rx = s.dialer.subscribe();
    let mut recheck = tokio::time::interval(std::time::Duration::from_secs(crate::auth::STREAM_RECHECK_S));
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Ends when the caller's token, account or role no longer allows it.
    let stream = futures::stream::unfold((rx, recheck, s, p), move |(mut rx, mut recheck, s, p)| async move {
        loop {
            tokio::select! {
                got = rx.recv() => match got {
                    Ok(n) if n.agent == me => {
                        let ev = Event::default().event("notice").json_data(&n.notice).unwrap_or_default();
                        return Some((Ok(ev), (rx, recheck, s, p)));
                    }
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        return Some((Ok(Event::default().event("resync").data("{}")), (rx, recheck, s, p)));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                },
                _ = recheck.tick() => {
                    crate::auth::recheck(&s, &p, "/api/v1/agent/events").await?;
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A campaign's progress (seed 004): records, today's attempts, live figures, agents.
#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    pub campaign_id: i64,
    pub state: String,
    pub records: RecordProgress,
    /// Records by status.
    pub statuses: std::collections::BTreeMap<String, i64>,
    /// Since midnight in the campaign's zone.
    pub today: AttemptCounts,
    /// Abandoned / live answers today.
    pub abandon_rate_today: f64,
    pub live: CampaignLive,
    pub agents_assigned: u32,
    pub agents_logged_in: u32,
    pub agents_on_call: u32,
    /// The campaign's cap on the abandon rate (effective settings), for the chart.
    pub abandon_rate_max: f64,
    /// Width of the chart's intervals, seconds.
    pub series_bucket_s: u32,
    /// Today's dials, live answers, connects and abandons per interval (since midnight in the
    /// campaign's zone; intervals without attempts left out).
    pub series: Vec<AttemptBucket>,
    pub at: DateTime<Utc>,
}

/// The progress chart's interval: 5 minutes (at most 300 a day, DST included).
pub const PROGRESS_BUCKET_S: u32 = 300;

pub async fn progress_of(s: &AppState, p: &Principal, id: i64) -> ApiResult<Progress> {
    if !p.sees_campaign(CampaignId(id)) {
        return Err(ApiError::not_found(format!("campaign {id} does not exist")));
    }
    let c = s.store.get_campaign(CampaignId(id)).await?;
    let now = Utc::now();
    let lists = &c.input.contact_list_ids;
    let tz = c.input.time_zone.0;
    let midnight = now.with_timezone(&tz).date_naive().and_hms_opt(0, 0, 0).expect("midnight exists");
    let since = campana_engine::rules::local_to_utc(tz, midnight);
    let today = s.store.attempt_counts(c.id, since).await?;
    let settings = s.store.effective_settings(&c).await?.settings;
    let group = settings.agent_group_id;
    let users = s.store.list_all_users().await?;
    let assigned: Vec<i64> =
        users.iter().filter(|u| u.input.active && group.is_none_or(|g| u.input.agent_group_ids.contains(&g))).map(|u| u.id.0).collect();
    let status: LiveStatus = s.dialer.status();
    let logged: Vec<&AgentLive> = assigned.iter().filter_map(|u| status.agents.get(u)).collect();
    let sim_in_group = status
        .agents
        .iter()
        .filter(|(id, a)| a.simulated && !assigned.contains(id) && group.is_none_or(|g| status.sim_agent_groups.get(id) == Some(&g.0)))
        .count() as u32;
    Ok(Progress {
        campaign_id: id,
        state: c.state.to_string(),
        records: s.store.record_progress(lists, now).await?,
        statuses: s.store.record_status_counts(lists).await?.into_iter().map(|(k, n)| (k.to_string(), n)).collect(),
        abandon_rate_today: if today.live_answers > 0 { today.abandons as f64 / today.live_answers as f64 } else { 0.0 },
        today,
        live: status.campaigns.get(&id).cloned().unwrap_or_default(),
        agents_assigned: assigned.len() as u32 + sim_in_group,
        agents_logged_in: logged.len() as u32 + sim_in_group,
        agents_on_call: status.agents.values().filter(|a| a.campaign_id == Some(id) && a.state == "on_call").count() as u32,
        abandon_rate_max: settings.abandon_rate_max,
        series_bucket_s: PROGRESS_BUCKET_S,
        series: s.store.attempt_series(c.id, since, now, PROGRESS_BUCKET_S).await?,
        at: now,
    })
}

/// One agent of the company as a campaign sees it (seed 003 "Users list"): whether they take
/// its calls, every reason they do not, and what they are doing in the dialer now.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignAgent {
    /// `None` for a simulated agent (simulated telephony).
    pub user_id: Option<i64>,
    pub name: String,
    pub role: String,
    pub takes_calls: bool,
    /// Why not (empty when `takes_calls`).
    pub reasons: Vec<AgentReason>,
    /// Signed in to the dialer: their state (`ready`, `on_call`, ...); `None` when not.
    pub dialer_state: Option<String>,
    /// Busy with this campaign now (offer, call or wrap-up).
    pub on_this_campaign: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentReason {
    /// `inactive`, `no_agent_privilege`, `not_in_agent_group`, `outside_campaigns_profile`.
    pub code: String,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignAgents {
    pub campaign_id: i64,
    /// The campaign's effective agent group (`None`: every agent).
    pub agent_group: Option<String>,
    /// Agents who may take its calls first, then the others; each group by name.
    pub agents: Vec<CampaignAgent>,
}

/// The agents of the company for one campaign: who takes its calls and why the others do not
/// (the engine's own rule: [`campana_engine::agent_mismatches`]).
pub async fn campaign_agents(s: &AppState, p: &Principal, id: i64) -> ApiResult<CampaignAgents> {
    use campana_core::stored::{AgentGroup, Role};
    use campana_core::user::Privilege;
    use campana_engine::AgentMismatch;
    if !p.sees_campaign(CampaignId(id)) {
        return Err(ApiError::not_found(format!("campaign {id} does not exist")));
    }
    let c = s.store.get_campaign(CampaignId(id)).await?;
    let group = s.store.effective_settings(&c).await?.settings.agent_group_id;
    let group_name = match group {
        Some(g) => Some(match s.store.get::<AgentGroup>(g.0).await {
            Ok(ag) => format!("{} (#{})", ag.input.name, g.0),
            Err(_) => format!("#{}", g.0),
        }),
        None => None,
    };
    let roles: std::collections::HashMap<i64, Role> = s.store.list_all::<Role>().await?.into_iter().map(|r| (r.id.0, r)).collect();
    let status: LiveStatus = s.dialer.status();
    let mut agents = Vec::new();
    for u in s.store.list_all_users().await? {
        let role = roles.get(&u.input.role_id.0);
        let mut reasons = Vec::new();
        let mut why = |code: &str, message: String| reasons.push(AgentReason { code: code.into(), message });
        if !u.input.active {
            why("inactive", "the user is deactivated".into());
        }
        match role {
            Some(r) if r.input.privileges.contains(&Privilege::Agent) => {}
            Some(r) => why("no_agent_privilege", format!("the role '{}' has no agent privilege", r.input.name)),
            None => why("no_agent_privilege", "the user has no role".into()),
        }
        for m in campana_engine::agent_mismatches(&u.input.agent_group_ids, &u.input.campaigns_profile, c.id, group) {
            let message = match m {
                AgentMismatch::NotInAgentGroup => {
                    format!("not a member of the campaign's agent group {}", group_name.as_deref().unwrap_or_default())
                }
                AgentMismatch::OutsideCampaignsProfile => "the campaign is outside the user's campaigns profile".into(),
            };
            why(m.as_str(), message);
        }
        // Users who are no agents at all are listed only to those who manage users; a reader
        // limited to some campaigns sees only the users limited to campaigns of theirs.
        let is_agent = role.is_some_and(|r| r.input.privileges.contains(&Privilege::Agent));
        if (!is_agent && !p.has(Privilege::UsersRoles)) || !p.sees_user(&u) {
            continue;
        }
        let live = status.agents.get(&u.id.0).filter(|a| !a.simulated);
        let name = if u.input.display_name.is_empty() {
            u.input.username.clone()
        } else {
            format!("{} ({})", u.input.display_name, u.input.username)
        };
        agents.push(CampaignAgent {
            user_id: Some(u.id.0),
            name,
            role: role.map(|r| r.input.name.clone()).unwrap_or_default(),
            takes_calls: reasons.is_empty(),
            reasons,
            dialer_state: live.map(|a| a.state.clone()),
            on_this_campaign: live.is_some_and(|a| a.campaign_id == Some(id)),
        });
    }
    for (sid, a) in status.agents.iter().filter(|(_, a)| a.simulated) {
        let all = campana_core::user::CampaignsProfile::All;
        let groups: Vec<_> = status.sim_agent_groups.get(sid).map(|g| campana_core::AgentGroupId(*g)).into_iter().collect();
        let reasons: Vec<AgentReason> = campana_engine::agent_mismatches(&groups, &all, c.id, group)
            .map(|m| AgentReason {
                code: m.as_str().into(),
                message: format!("simulated agents belong to another agent group than {}", group_name.as_deref().unwrap_or_default()),
            })
            .collect();
        agents.push(CampaignAgent {
            user_id: None,
            name: format!("simulated agent {sid}"),
            role: "simulated".into(),
            takes_calls: reasons.is_empty(),
            reasons,
            dialer_state: Some(a.state.clone()),
            on_this_campaign: a.campaign_id == Some(id),
        });
    }
    agents.sort_by(|a, b| b.takes_calls.cmp(&a.takes_calls).then_with(|| a.name.cmp(&b.name)));
    Ok(CampaignAgents { campaign_id: id, agent_group: group_name, agents })
}

#[utoipa::path(get, operation_id = "campaigns_agents", path = "/api/v1/campaigns/{id}/agents", tag = "campaigns", params(("id" = i64, Path)),
    responses((status = 200, body = CampaignAgents), (status = 404, body = Problem)))]
pub async fn agents(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<Json<CampaignAgents>> {
    Ok(Json(campaign_agents(&s, &p, id).await?))
}

#[utoipa::path(get, operation_id = "campaigns_progress", path = "/api/v1/campaigns/{id}/progress", tag = "campaigns", params(("id" = i64, Path)),
    responses((status = 200, body = Progress), (status = 404, body = Problem)))]
pub async fn progress(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<Json<Progress>> {
    Ok(Json(progress_of(&s, &p, id).await?))
}

/// Server-sent events: the campaign's progress every 2 seconds.
#[utoipa::path(get, operation_id = "campaigns_progress_events", path = "/api/v1/campaigns/{id}/progress/events", tag = "campaigns", params(("id" = i64, Path)),
    responses((status = 200, description = "text/event-stream: `progress` events (a Progress), or an `error` event (a Problem) once the campaign is gone", content_type = "text/event-stream", body = String), (status = 404, body = Problem)))]
pub async fn progress_events(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>>> {
    progress_of(&s, &p, id).await?;
    // Each event is computed for the caller as they are now; the stream ends when their token,
    // account or role no longer allows it, or the campaign left their profile (an `error`
    // event says why).
    let path = format!("/api/v1/campaigns/{id}/progress/events");
    let stream = futures::stream::unfold(Some((s, p, true)), move |state| {
        let path = path.clone();
        async move {
            let (s, p, first) = state?;
            if !first {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            let Some(p) = crate::auth::recheck(&s, &p, &path).await else {
                let problem = ApiError::new(axum::http::StatusCode::FORBIDDEN, "your session, token or privileges no longer allow this")
                    .into_problem();
                return Some((Ok(Event::default().event("error").json_data(problem).unwrap_or_default()), None));
            };
            match progress_of(&s, &p, id).await {
                Ok(pr) => Some((Ok(Event::default().event("progress").json_data(&pr).unwrap_or_default()), Some((s, p, false)))),
                Err(e) => Some((Ok(Event::default().event("error").json_data(e.into_problem()).unwrap_or_default()), None)),
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The dialer's live figures for the campaigns the caller may see.
#[utoipa::path(get, operation_id = "dialer_status", path = "/api/v1/dialer/status", tag = "campaigns", responses((status = 200, body = LiveStatus)))]
pub async fn dialer_status(State(s): State<AppState>, Extension(p): Extension<Principal>) -> Json<LiveStatus> {
    let mut st = s.dialer.status();
    st.campaigns.retain(|id, _| p.sees_campaign(CampaignId(*id)));
    st.agents.retain(|_, a| a.campaign_id.is_none_or(|c| p.sees_campaign(CampaignId(c))));
    for a in st.agents.values_mut() {
        if a.campaign_id.is_none_or(|c| !p.sees_campaign(CampaignId(c))) {
            a.record_id = None;
        }
    }
    Json(st)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(utoipa_axum::routes!(login))
        .routes(utoipa_axum::routes!(ready))
        .routes(utoipa_axum::routes!(not_ready))
        .routes(utoipa_axum::routes!(logout))
        .routes(utoipa_axum::routes!(preview_accept))
        .routes(utoipa_axum::routes!(preview_skip))
        .routes(utoipa_axum::routes!(hang_up))
        .routes(utoipa_axum::routes!(disposition))
        .routes(utoipa_axum::routes!(tag_call))
        .routes(utoipa_axum::routes!(screen))
        .routes(utoipa_axum::routes!(events))
        .routes(utoipa_axum::routes!(progress))
        .routes(utoipa_axum::routes!(progress_events))
        .routes(utoipa_axum::routes!(agents))
        .routes(utoipa_axum::routes!(dialer_status))
}
