//! The agent's side of the dialer (the agent desktop's API) and the supervisors' live views:
//! log in to the dialer, ready / not ready with a pause code, preview accept/skip, hang up,
//! disposition with notes and callback, the agent's current call with its record, campaign notes
//! and script, a server-sent event stream of the agent's notices, and campaign progress.

use super::*;
use crate::dialer::LiveStatus;
use crate::service::agent::{self as svc, AgentScreen, CampaignAgents, DispositionRequest, Progress, TagRequest};
use crate::service::{Principal, Via};
use axum::extract::Path;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Extension;
use campana_core::telephony::CallId;
use campana_core::RecordId;
use serde::Serialize;
use utoipa::ToSchema;

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
    svc::login(&s, &p, Via::Api).await?;
    Ok(ack())
}

#[utoipa::path(post, operation_id = "agent_ready", path = "/api/v1/agent/ready", tag = "agent",
    responses((status = 200, body = Ack), (status = 409, body = Problem)))]
pub async fn ready(State(s): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult<Json<Ack>> {
    svc::ready(&s, &p, Via::Api).await?;
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
    svc::not_ready(&s, &p, Via::Api, &b.pause_code).await?;
    Ok(ack())
}

#[utoipa::path(post, operation_id = "agent_logout", path = "/api/v1/agent/logout", tag = "agent",
    responses((status = 200, body = Ack), (status = 409, body = Problem)))]
pub async fn logout(State(s): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult<Json<Ack>> {
    svc::logout(&s, &p, Via::Api).await?;
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
    svc::preview_accept(&s, &p, RecordId(b.record_id)).await?;
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
    svc::preview_skip(&s, &p, RecordId(b.record_id)).await?;
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
    svc::hang_up(&s, &p, CallId(b.call_id)).await?;
    Ok(ack())
}

/// Ends wrap-up with the agent's outcome; the record follows the result's treatment.
#[utoipa::path(post, operation_id = "agent_disposition", path = "/api/v1/agent/disposition", tag = "agent", request_body = DispositionRequest,
    responses((status = 200, body = Ack), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn disposition(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(b): ApiJson<DispositionRequest>,
) -> ApiResult<Json<Ack>> {
    svc::disposition(&s, &p, Via::Api, &b, chrono::Utc::now()).await?;
    Ok(ack())
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
    svc::tag_call(&s, &p, Via::Api, &b).await?;
    Ok(ack())
}

#[utoipa::path(get, operation_id = "agent_screen", path = "/api/v1/agent/state", tag = "agent", responses((status = 200, body = AgentScreen)))]
pub async fn screen(State(s): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult<Json<AgentScreen>> {
    Ok(Json(svc::screen(&s, &p).await?))
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

#[utoipa::path(get, operation_id = "campaigns_agents", path = "/api/v1/campaigns/{id}/agents", tag = "campaigns", params(("id" = i64, Path)),
    responses((status = 200, body = CampaignAgents), (status = 404, body = Problem)))]
pub async fn agents(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<Json<CampaignAgents>> {
    Ok(Json(svc::campaign_agents(&s, &p, id).await?))
}

#[utoipa::path(get, operation_id = "campaigns_progress", path = "/api/v1/campaigns/{id}/progress", tag = "campaigns", params(("id" = i64, Path)),
    responses((status = 200, body = Progress), (status = 404, body = Problem)))]
pub async fn progress(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<Json<Progress>> {
    Ok(Json(svc::progress_of(&s, &p, id).await?))
}

/// Server-sent events: the campaign's progress every 2 seconds.
#[utoipa::path(get, operation_id = "campaigns_progress_events", path = "/api/v1/campaigns/{id}/progress/events", tag = "campaigns", params(("id" = i64, Path)),
    responses((status = 200, description = "text/event-stream: `progress` events (a Progress), or an `error` event (a Problem) once the campaign is gone", content_type = "text/event-stream", body = String), (status = 404, body = Problem)))]
pub async fn progress_events(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
) -> ApiResult<Sse<impl futures::Stream<Item = Result<Event, std::convert::Infallible>>>> {
    svc::progress_of(&s, &p, id).await?;
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
            match svc::progress_of(&s, &p, id).await {
                Ok(pr) => Some((Ok(Event::default().event("progress").json_data(&pr).unwrap_or_default()), Some((s, p, false)))),
                Err(e) => Some((Ok(Event::default().event("error").json_data(ApiError::from(e).into_problem()).unwrap_or_default()), None)),
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// The dialer's live figures for the campaigns the caller may see.
#[utoipa::path(get, operation_id = "dialer_status", path = "/api/v1/dialer/status", tag = "campaigns", responses((status = 200, body = LiveStatus)))]
pub async fn dialer_status(State(s): State<AppState>, Extension(p): Extension<Principal>) -> Json<LiveStatus> {
    Json(svc::dialer_status(&s, &p))
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
