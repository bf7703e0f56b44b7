//! What an agent does in the dialer and what supervisors see of it, for the agent desktop's
//! API and the console: joining and leaving, ready and not ready, preview, hang-up, the
//! disposition of a call (its effect is the domain's [`DispositionEffect`]), manager tags, the
//! agent's screen, and a campaign's live progress and agents.

use super::audit::{self, Actor, Change, Via};
use super::{Principal, ServiceError, ServiceResult};
use crate::dialer::{AgentLive, CampaignLive, LiveStatus};
use crate::state::AppState;
use campana_core::campaign::{Campaign, DispositionEffect};
use campana_core::record::Record;
use campana_core::stored::{Disposition, ManagerTag, Script};
use campana_core::telephony::CallId;
use campana_core::{CampaignId, RecordId};
use campana_engine::{CallbackRequest, Input};
use campana_store::{AttemptBucket, AttemptCounts, Concerns, RecordProgress};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The longest pause code, in characters.
pub const MAX_PAUSE_CODE_CHARS: usize = 40;
/// The longest disposition notes, in characters.
pub const MAX_NOTES_CHARS: usize = 4000;

/// Joins the dialer with the caller's agent groups and campaigns profile, not ready yet.
pub async fn login(s: &AppState, p: &Principal, via: Via) -> ServiceResult<()> {
    let login = Input::AgentLogin {
        agent: p.user.id,
        groups: p.user.input.agent_group_ids.clone(),
        campaigns: p.user.input.campaigns_profile.clone(),
    };
    audit::agent_state(s, p, via, login).await
}

pub async fn ready(s: &AppState, p: &Principal, via: Via) -> ServiceResult<()> {
    audit::agent_state(s, p, via, Input::AgentReady { agent: p.user.id }).await
}

/// Not ready, with a pause code of 1 to 40 characters (trimmed).
pub async fn not_ready(s: &AppState, p: &Principal, via: Via, pause_code: &str) -> ServiceResult<()> {
    let code = pause_code.trim();
    if code.is_empty() || code.chars().count() > MAX_PAUSE_CODE_CHARS {
        return Err(ServiceError::field("pause_code", "must be 1 to 40 characters"));
    }
    audit::agent_state(s, p, via, Input::AgentNotReady { agent: p.user.id, pause_code: code.to_string() }).await
}

pub async fn logout(s: &AppState, p: &Principal, via: Via) -> ServiceResult<()> {
    audit::agent_state(s, p, via, Input::AgentLogout { agent: p.user.id }).await
}

/// Preview mode: dial the offered record now.
pub async fn preview_accept(s: &AppState, p: &Principal, record: RecordId) -> ServiceResult<()> {
    Ok(s.dialer.agent(Input::PreviewAccept { agent: p.user.id, record_id: record }).await?)
}

/// Preview mode: skip the offered record (offered again after the recall delay).
pub async fn preview_skip(s: &AppState, p: &Principal, record: RecordId) -> ServiceResult<()> {
    Ok(s.dialer.agent(Input::PreviewSkip { agent: p.user.id, record_id: record }).await?)
}

/// Ends the agent's customer call.
pub async fn hang_up(s: &AppState, p: &Principal, call: CallId) -> ServiceResult<()> {
    Ok(s.dialer.hang_up(p.user.id, call).await?)
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

/// Ends wrap-up with the agent's outcome: the disposition must be offered on the call's
/// campaign; its [`DispositionEffect`] gives the call's result (the record follows that
/// result's treatment) and whether a callback time is required. The dialer is told first,
/// then the attempt keeps the disposition and notes, and the change is audited.
pub async fn disposition(s: &AppState, p: &Principal, via: Via, b: &DispositionRequest, now: DateTime<Utc>) -> ServiceResult<()> {
    // Only a disposition offered on the call's campaign; any other id, whether it exists or
    // not, gets the same answer.
    let not_offered =
        || ServiceError::field("disposition_id", format!("{} is not a disposition of this call's campaign", b.disposition_id));
    let call_id = i64::try_from(b.call_id).map_err(|_| ServiceError::field("call_id", format!("{} is not a call of yours", b.call_id)))?;
    let d = match s.store.call_attempt_owner(call_id).await? {
        Some((_, campaign)) => {
            let c = s.store.get_campaign(campaign).await?;
            let profile = s.store.campaign_profile(&c).await?;
            s.store.get::<Disposition>(b.disposition_id).await.ok().filter(|d| offered_on(d, &c, &profile)).ok_or_else(not_offered)?
        }
        // No such call: the dialer says so below, for any disposition.
        None => s.store.get::<Disposition>(b.disposition_id).await.map_err(|_| not_offered())?,
    };
    if b.notes.chars().count() > MAX_NOTES_CHARS {
        return Err(ServiceError::field("notes", "at most 4000 characters"));
    }
    let effect = DispositionEffect::of(&d.input);
    let at = effect.callback(&d.input.name, b.callback.as_ref().map(|c| c.at), now).map_err(|e| ServiceError::invalid(vec![e]))?;
    let callback = at.map(|at| CallbackRequest { at, personal: b.callback.as_ref().is_some_and(|c| c.personal) });
    let result = effect.result;
    let campaign = s.dialer.status().agents.get(&p.user.id.0).and_then(|a| a.campaign_id);
    s.dialer.agent(Input::Disposition { agent: p.user.id, call_id: CallId(b.call_id), result, callback }).await?;
    s.store.set_attempt_disposition(call_id, Some(d.id.0), &b.notes).await?;
    let change = Change {
        action: "disposition".into(),
        entity_type: "call_attempt",
        entity_id: Some(b.call_id.to_string()),
        summary: d.input.name.clone(),
        concerns: Concerns::Campaigns(campaign.into_iter().collect()),
        before: None,
        after: Some(serde_json::json!({"disposition_id": d.id, "result": result, "notes": b.notes,
            "callback": b.callback.as_ref().map(|c| serde_json::json!({"at": c.at, "personal": c.personal}))})),
    };
    audit::log(s, &Actor::of(p, via), change).await
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
pub async fn tag_call(s: &AppState, p: &Principal, via: Via, b: &TagRequest) -> ServiceResult<()> {
    let not_yours = || ServiceError::field("call_id", format!("{} is not a call of yours", b.call_id));
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
        .ok_or_else(|| ServiceError::field("tag_id", format!("{} is not a manager tag of this call's campaign", b.tag_id)))?;
    if s.store.tag_attempt(call_id, tag.id, p.user.id).await? {
        let change = Change {
            action: "tag".into(),
            entity_type: "call_attempt",
            entity_id: Some(b.call_id.to_string()),
            summary: tag.input.name.clone(),
            concerns: Concerns::Campaigns(vec![campaign.0]),
            before: None,
            after: Some(serde_json::json!({"tag_id": tag.id, "tag": tag.input.name})),
        };
        audit::log(s, &Actor::of(p, via), change).await?;
    }
    Ok(())
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

/// The agent's screen (see [`AgentScreen`]).
pub async fn screen(s: &AppState, p: &Principal) -> ServiceResult<AgentScreen> {
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
    let (Some(a), true) = (agent, true) else { return Ok(out) };
    let (Some(cid), Some(rid)) = (a.campaign_id, a.record_id) else { return Ok(out) };
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
    out.history = p
        .visible_items(s.store.record_attempts(RecordId(rid), 20).await?, |x| x.campaign_id)
        .into_iter()
        .filter(|x| Some(x.call_id as u64) != a.call_id)
        .map(|x| PastCall {
            call_id: x.call_id,
            started_at: x.started_at.map(|t| t.to_rfc3339()),
            result: x.result.map(|r| r.as_str().to_string()),
            disposition: x.disposition_id.and_then(|id| dispositions.iter().find(|d| d.id == id)).map(|d| d.input.name.clone()),
            notes: x.notes,
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
    Ok(out)
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

/// A campaign's progress now, if the caller sees it.
pub async fn progress_of(s: &AppState, p: &Principal, id: i64) -> ServiceResult<Progress> {
    p.visible_campaign(CampaignId(id))?;
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
pub async fn campaign_agents(s: &AppState, p: &Principal, id: i64) -> ServiceResult<CampaignAgents> {
    use campana_core::stored::{AgentGroup, Role};
    use campana_core::user::Privilege;
    use campana_engine::AgentMismatch;
    p.visible_campaign(CampaignId(id))?;
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

/// The dialer's live figures for the campaigns the caller may see (an agent busy with another
/// campaign is listed without the record).
pub fn dialer_status(s: &AppState, p: &Principal) -> LiveStatus {
    let mut st = s.dialer.status();
    st.campaigns.retain(|id, _| p.sees_campaign(CampaignId(*id)));
    st.agents.retain(|_, a| p.sees_campaign_of(a.campaign_id.map(CampaignId)));
    for a in st.agents.values_mut() {
        if a.campaign_id.is_none_or(|c| !p.sees_campaign(CampaignId(c))) {
            a.record_id = None;
        }
    }
    st
}
