//! What happens to a record after a call: the profile's retry treatment for the call result,
//! callbacks, do-not-call. One function, used by the engine when a call ends and by the live
//! server when it closes a call that was in flight during a crash ("system error").

use crate::eligibility::Candidate;
use crate::types::{CallbackRequest, ChainStep, RecordUpdate};
use campana_core::record::{CallResult, RecordStatus, RecordType};
use campana_core::settings::{AfterRetries, Settings};
use campana_core::{CampaignId, UserId};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;

/// A finished call, as the treatment needs it.
pub struct FinishedCall<'a> {
    pub campaign_id: CampaignId,
    /// The record as it was offered (before this call).
    pub cand: &'a Candidate,
    pub settings: &'a Settings,
    /// The contact's zone (first of its zones), which decides the attempts' local day.
    pub zone: Tz,
    pub result: CallResult,
    pub callback: Option<CallbackRequest>,
    pub agent: Option<UserId>,
    pub dialed_at: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// The record's new state; `true` when the number must go on the internal do-not-call list.
pub fn after_call(c: &FinishedCall<'_>) -> (RecordUpdate, bool) {
    let r = &c.cand.record;
    let result = c.result;
    let day = c.dialed_at.with_timezone(&c.zone).date_naive();
    let attempts_today = if r.attempts_day == Some(day) { r.attempts_today + 1 } else { 1 };
    let streak = if r.last_result == Some(result) { c.cand.result_streak + 1 } else { 1 };
    let was_callback = matches!(r.record_type, RecordType::PersonalCallback | RecordType::CampaignCallback);
    let mut u = RecordUpdate {
        campaign_id: c.campaign_id,
        record_id: r.id,
        chain_id: r.chain_id,
        record_type: if was_callback { RecordType::General } else { r.record_type },
        record_status: RecordStatus::Updated,
        attempts_total: r.attempts_total + 1,
        attempts_today,
        attempts_day: Some(day),
        chain_attempts: c.cand.chain_attempts + 1,
        last_result: result,
        last_call_at: c.dialed_at,
        retry_at: None,
        callback_at: None,
        callback_agent: None,
        result_streak: streak,
        chain: ChainStep::Stay,
    };
    let mut dnc = false;
    if let Some(cb) = &c.callback {
        u.record_type = if cb.personal { RecordType::PersonalCallback } else { RecordType::CampaignCallback };
        u.callback_at = Some(cb.at);
        u.callback_agent = if cb.personal { c.agent } else { None };
    } else if result == CallResult::DoNotCall {
        u.record_type = RecordType::NoCall;
        u.record_status = RecordStatus::Completed;
        dnc = true;
    } else if ends_chain_always(result) {
        u.record_status = RecordStatus::Completed;
    } else {
        match c.settings.retry_treatments.iter().find(|t| t.call_result == result) {
            Some(t) if streak <= t.max_retries => {
                u.retry_at = Some(c.now + Duration::seconds(i64::from(t.retry_after_s)));
            }
            Some(t) => {
                u.record_status = RecordStatus::Completed;
                if t.then == AfterRetries::NoCall {
                    u.record_type = RecordType::NoCall;
                }
            }
            None => u.record_status = RecordStatus::Completed,
        }
    }
    u.chain = chain_step(c.settings, &u);
    (u, dnc)
}

/// Results that end the customer's chain whatever the treatments say: the customer was reached
/// (`right_party`) or asked not to be called (`do_not_call`).
pub fn ends_chain_always(result: CallResult) -> bool {
    matches!(result, CallResult::RightParty | CallResult::DoNotCall)
}

/// The one rule of what a finished call does to the customer's chain (the engine drops the
/// chain's other numbers on [`ChainStep::End`]; the store stops offering them):
/// - a retry or a callback is pending on this number: [`ChainStep::Stay`];
/// - success (`right_party`) or `do_not_call`: [`ChainStep::End`];
/// - the number is done and its treatment says `next_in_chain` or `no_call` (wrong party, an
///   invalid number, retries used up): [`ChainStep::NextNumber`];
/// - otherwise the number is done with a final result (a treatment `final`, or a result with no
///   treatment: `answered`, a final disposition, ...): [`ChainStep::End`].
pub fn chain_step(settings: &Settings, u: &RecordUpdate) -> ChainStep {
    if ends_chain_always(u.last_result) {
        return ChainStep::End;
    }
    if u.record_status != RecordStatus::Completed {
        return ChainStep::Stay;
    }
    match settings.retry_treatments.iter().find(|t| t.call_result == u.last_result).map(|t| t.then) {
        Some(AfterRetries::NextInChain | AfterRetries::NoCall) => ChainStep::NextNumber,
        Some(AfterRetries::Final) | None => ChainStep::End,
    }
}
