//! Campaign routes.

use super::*;
use crate::service::Principal;
use crate::service::{campaigns, Actor, Via};
use axum::extract::Path;
use axum::Extension;
use campana_core::campaign::{Campaign, CampaignAction, CampaignInput, CampaignState};
use campana_core::settings::Effective;
use campana_core::stored::{CampaignGroup, Page};
use campana_core::{CampaignGroupId, CampaignId};
use campana_store::CampaignFilter;
use serde::Serialize;
use utoipa::ToSchema;

/// A campaign outside the caller's campaigns profile does not exist for them.
fn visible(p: &Principal, id: i64) -> ApiResult<CampaignId> {
    p.visible_campaign(CampaignId(id))?;
    Ok(CampaignId(id))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CampaignQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub state: Option<CampaignState>,
    /// A group id, or `none` for campaigns without a group.
    pub group_id: Option<String>,
}

#[utoipa::path(get, operation_id = "campaigns_list", path = "/api/v1/campaigns", tag = "campaigns", params(CampaignQuery),
    responses((status = 200, body = Page<Campaign>), (status = 422, body = Problem)))]
pub async fn list(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<CampaignQuery>,
) -> ApiResult<Json<Page<Campaign>>> {
    let page = PageQuery { limit: q.limit, cursor: q.cursor }.params()?;
    let group_id = match q.group_id.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some(g) => {
            Some(Some(CampaignGroupId(g.parse().map_err(|_| ApiError::field("group_id", format!("'{g}' is not a group id or 'none'")))?)))
        }
    };
    let filter = CampaignFilter { state: q.state, group_id, only: p.campaign_scope() };
    Ok(Json(s.store.list_campaigns(&filter, page).await?))
}

#[utoipa::path(post, operation_id = "campaigns_create", path = "/api/v1/campaigns", tag = "campaigns", request_body = CampaignInput,
    responses((status = 201, body = Campaign), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(input): ApiJson<CampaignInput>,
) -> ApiResult<(StatusCode, Json<Campaign>)> {
    Ok(created(campaigns::create(&s, &Actor::of(&p, Via::Api), &p, &input).await?))
}

#[utoipa::path(get, operation_id = "campaigns_get_one", path = "/api/v1/campaigns/{id}", tag = "campaigns", params(("id" = i64, Path)),
    responses((status = 200, body = Campaign), (status = 404, body = Problem)))]
pub async fn get_one(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<Json<Campaign>> {
    Ok(Json(campaigns::get(&s, &p, CampaignId(id)).await?))
}

#[utoipa::path(put, operation_id = "campaigns_update", path = "/api/v1/campaigns/{id}", tag = "campaigns", params(("id" = i64, Path)), request_body = CampaignInput,
    responses((status = 200, body = Campaign), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<CampaignInput>,
) -> ApiResult<Json<Campaign>> {
    Ok(Json(campaigns::update(&s, &Actor::of(&p, Via::Api), &p, CampaignId(id), &input).await?))
}

#[utoipa::path(delete, operation_id = "campaigns_delete", path = "/api/v1/campaigns/{id}", tag = "campaigns", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    campaigns::delete(&s, &Actor::of(&p, Via::Api), &p, CampaignId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start, pause, resume, stop, complete or archive a campaign. Illegal transitions get 409
/// with the actions allowed from the current state.
#[utoipa::path(post, operation_id = "campaigns_action", path = "/api/v1/campaigns/{id}/{action}", tag = "campaigns",
    params(("id" = i64, Path), ("action" = CampaignAction, Path)),
    responses((status = 200, body = Campaign), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn action(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, action)): Path<(i64, String)>,
) -> ApiResult<Json<Campaign>> {
    let id = visible(&p, id)?;
    let action: CampaignAction = action.parse().map_err(|e: campana_core::FieldError| ApiError::field("action", e.reason))?;
    Ok(Json(campaigns::action(&s, &Actor::of(&p, Via::Api), &p, id, action).await?))
}

/// The settings the campaign runs with, and for each field whether it comes from the campaign
/// (override), its profile or Campana's default.
#[utoipa::path(get, operation_id = "campaigns_settings", path = "/api/v1/campaigns/{id}/settings", tag = "campaigns", params(("id" = i64, Path)),
    responses((status = 200, body = Effective), (status = 404, body = Problem)))]
pub async fn settings(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<Json<Effective>> {
    let c = s.store.get_campaign(visible(&p, id)?).await?;
    Ok(Json(s.store.effective_settings(&c).await?))
}

/// Campaigns listed in their groups, then "Campaigns without a group" (seed 003).
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupedCampaigns {
    /// Absent for the "Campaigns without a group" entry.
    pub group: Option<CampaignGroup>,
    pub name: String,
    pub campaigns: Vec<Campaign>,
}

#[utoipa::path(get, operation_id = "campaigns_by_group", path = "/api/v1/campaigns/by-group", tag = "campaigns", responses((status = 200, body = Vec<GroupedCampaigns>)))]
pub async fn by_group(State(s): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult<Json<Vec<GroupedCampaigns>>> {
    let groups = s.store.list_all::<CampaignGroup>().await?;
    let mut all = Vec::new();
    let mut page = campana_store::PageParams { limit: Some(campana_store::MAX_PAGE), cursor: None };
    loop {
        let got = s.store.list_campaigns(&CampaignFilter { only: p.campaign_scope(), ..Default::default() }, page).await?;
        all.extend(got.items);
        match got.next_cursor {
            Some(c) => page.cursor = Some(campana_store::PageParams::parse_cursor(&c)?),
            None => break,
        }
    }
    let mut out: Vec<GroupedCampaigns> = groups
        .into_iter()
        .map(|g| GroupedCampaigns {
            name: g.input.name.clone(),
            campaigns: all.iter().filter(|c| c.input.group_id == Some(g.id)).cloned().collect(),
            group: Some(g),
        })
        .collect();
    out.push(GroupedCampaigns {
        group: None,
        name: "Campaigns without a group".into(),
        campaigns: all.into_iter().filter(|c| c.input.group_id.is_none()).collect(),
    });
    Ok(Json(out))
}

/// The calling-hours rule sets in force (a profile picks one by name in `calling_hours_rules`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CallingHours {
    /// The file they come from: `--calling-hours FILE`, or the shipped `data/calling-hours.toml`.
    pub source: String,
    /// Each set's base rule and its stricter regions (`US-FL`, `+33`); times are the contact's
    /// local time, windows `HH:MM-HH:MM` with the end excluded.
    #[schema(value_type = Vec<Object>)]
    pub sets: Vec<campana_engine::rules::RuleSetView>,
}

#[utoipa::path(get, operation_id = "campaigns_calling_hours", path = "/api/v1/calling-hours", tag = "campaigns", responses((status = 200, body = CallingHours)))]
pub async fn calling_hours() -> Json<CallingHours> {
    Json(CallingHours {
        source: crate::state::calling_rules_source().to_string(),
        sets: crate::state::calling_rules().sets.values().map(|s| s.view()).collect(),
    })
}

/// One outcome of the call-result catalogue.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallResultInfo {
    pub result: campana_core::record::CallResult,
    /// A person answered (counts in abandon accounting when not connected in time).
    pub live_answer: bool,
    /// Campana's shipped treatment for it, when one exists.
    pub default_treatment: Option<campana_core::settings::Treatment>,
}

/// The catalogue of call results, with the default treatment of each.
#[utoipa::path(get, operation_id = "campaigns_call_results", path = "/api/v1/call-results", tag = "campaigns", responses((status = 200, body = Vec<CallResultInfo>)))]
pub async fn call_results() -> Json<Vec<CallResultInfo>> {
    let treatments = campana_core::settings::default_treatments();
    Json(
        campana_core::record::CallResult::ALL
            .iter()
            .map(|r| CallResultInfo {
                result: *r,
                live_answer: r.is_live_answer(),
                default_treatment: treatments.iter().find(|t| t.call_result == *r).cloned(),
            })
            .collect(),
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AtQuery {
    /// The moment to evaluate (RFC 3339); default: now.
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Pre-launch compliance preview: how many of the campaign's records could be dialed at `at`,
/// and how many would be skipped, by reason code, with the earliest moment each reason lifts.
#[utoipa::path(get, operation_id = "campaigns_compliance_preview", path = "/api/v1/campaigns/{id}/compliance-preview", tag = "campaigns", params(("id" = i64, Path), AtQuery),
    responses((status = 200, description = "total, dialable_now, skipped, by_reason, earliest_by_reason"), (status = 404, body = Problem)))]
pub async fn compliance_preview(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    ApiQuery(q): ApiQuery<AtQuery>,
) -> ApiResult<Json<campana_engine::CompliancePreview>> {
    let c = s.store.get_campaign(visible(&p, id)?).await?;
    Ok(Json(crate::explain::preview(&s.store, &c, q.at.unwrap_or_else(chrono::Utc::now)).await?))
}

/// Whether a record could be dialed by this campaign at `at`, and if not: the reason code, a
/// sentence, and the next moment it becomes dialable.
#[derive(Debug, Serialize, ToSchema)]
pub struct Eligibility {
    pub dialable: bool,
    pub reason: Option<String>,
    pub message: String,
    pub next_dialable_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[utoipa::path(get, operation_id = "campaigns_eligibility", path = "/api/v1/campaigns/{id}/records/{record_id}/eligibility", tag = "campaigns",
    params(("id" = i64, Path), ("record_id" = i64, Path), AtQuery),
    responses((status = 200, body = Eligibility), (status = 404, body = Problem)))]
pub async fn eligibility(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((id, rid)): Path<(i64, i64)>,
    ApiQuery(q): ApiQuery<AtQuery>,
) -> ApiResult<Json<Eligibility>> {
    let c = s.store.get_campaign(visible(&p, id)?).await?;
    let mut record = None;
    for l in &c.input.contact_list_ids {
        if let Ok(r) = s.store.get_record(*l, campana_core::RecordId(rid)).await {
            record = Some(r);
            break;
        }
    }
    let record = record.ok_or_else(|| ApiError::not_found(format!("record {rid} is not in a contact list of campaign {id}")))?;
    let at = q.at.unwrap_or_else(chrono::Utc::now);
    Ok(Json(match crate::explain::why(&s.store, &c, record, at).await? {
        Ok(()) => Eligibility { dialable: true, reason: None, message: "dialable now".into(), next_dialable_at: Some(at) },
        Err(b) => Eligibility {
            dialable: false,
            reason: Some(serde_json::to_value(b.code).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()),
            message: b.message,
            next_dialable_at: b.next_dialable_at,
        },
    }))
}

/// Forecast by simulation: when the campaign's open records finish with this team and these
/// rates, how many agents finish them by `finish_by`, the expected abandon rate.
#[utoipa::path(post, operation_id = "campaigns_forecast", path = "/api/v1/campaigns/{id}/forecast", tag = "campaigns", params(("id" = i64, Path)),
    request_body = crate::explain::ForecastRequest,
    responses((status = 200, description = "finishes_at, days_needed, agents_needed_by_deadline, expected_abandon_rate, message"), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn forecast(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    ApiJson(req): ApiJson<crate::explain::ForecastRequest>,
) -> ApiResult<Json<campana_sim::Forecast>> {
    Ok(Json(campaigns::forecast(&s, &p, CampaignId(id), &req, chrono::Utc::now()).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list, create))
        .routes(utoipa_axum::routes!(by_group))
        .routes(utoipa_axum::routes!(get_one, update, delete))
        .routes(utoipa_axum::routes!(settings))
        .routes(utoipa_axum::routes!(action))
        .routes(utoipa_axum::routes!(call_results))
        .routes(utoipa_axum::routes!(calling_hours))
        .routes(utoipa_axum::routes!(compliance_preview))
        .routes(utoipa_axum::routes!(eligibility))
        .routes(utoipa_axum::routes!(forecast))
}
