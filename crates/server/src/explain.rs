//! The dialer explaining itself through the API: which records of a campaign would be skipped
//! right now and why (pre-launch compliance preview, "available now"), and why one record is not
//! dialable. Both load each record exactly as the dialer sees it (`Store::dialer_candidates`:
//! its pending retry, callback owner, result streak, chain attempts and everything that keeps the
//! store from offering it) and call the engine's own `eligibility::check`, a page at a time, so
//! memory stays bounded whatever the list size.

use campana_core::campaign::Campaign;
use campana_core::record::Record;
use campana_core::settings::{RecordFilter, Settings};
use campana_core::stored::ContactList;
use campana_core::DncListId;
use campana_engine::eligibility::{check, contact_zones, EligibilityContext};
use campana_engine::{compliance_preview, Blocked, CampaignConfig, Candidate, CompliancePreview, InMemoryDnc};
use campana_store::{PageParams, RecordFilterParams, Store, StoreError};
use chrono::{DateTime, Utc};

/// Records examined per page.
pub const PAGE_RECORDS: u32 = 1000;
/// Simultaneous calls an agentless campaign may hold until the setting exists.
pub const AGENTLESS_LINES_DEFAULT: u32 = 20;

/// The engine's view of a stored campaign with its effective settings.
pub fn campaign_config(c: &Campaign, settings: Settings) -> CampaignConfig {
    CampaignConfig {
        id: c.id,
        agent_group: settings.agent_group_id,
        settings,
        daily_hours: c.input.daily_hours,
        weekdays: c.input.weekdays,
        time_zone: c.input.time_zone.0,
        start_date: c.input.start_date,
        end_date: c.input.end_date,
        priority: c.input.priority,
        agentless_lines: AGENTLESS_LINES_DEFAULT,
    }
}

/// A page of records as the dialer's candidates (`Store::dialer_candidates`, under the
/// profile's record filters), with the DNC entries of exactly these numbers.
pub async fn candidates(
    store: &Store,
    records: &[Record],
    filters: &[RecordFilter],
    dnc_lists: &[DncListId],
    at: DateTime<Utc>,
) -> Result<(Vec<Candidate>, InMemoryDnc), StoreError> {
    let ids: Vec<_> = records.iter().map(|r| r.id).collect();
    let cands = store.dialer_candidates(&ids, filters).await?;
    let phones: Vec<_> = cands.iter().map(|c| c.record.phone.clone()).collect();
    let mut dnc = InMemoryDnc::default();
    for (phone, list_id, internal, expires) in store.dnc_entries_for(&phones, dnc_lists, at).await? {
        dnc.add(phone, if internal { None } else { Some(list_id) }, expires);
    }
    Ok((cands, dnc))
}

/// "X of Y records would be skipped at `at`, by reason", over every list of the campaign.
pub async fn preview(store: &Store, c: &Campaign, at: DateTime<Utc>) -> Result<CompliancePreview, StoreError> {
    let eff = store.effective_settings(c).await?.settings;
    let (dnc_lists, filters) = (eff.dnc_list_ids.clone(), eff.record_filters.clone());
    let cfg = campaign_config(c, eff);
    let mut total = CompliancePreview { at: Some(at), ..Default::default() };
    for list_id in &c.input.contact_list_ids {
        let list = store.get::<ContactList>(list_id.0).await?;
        let mut page = PageParams { limit: Some(PAGE_RECORDS), cursor: None };
        loop {
            let got = store.list_records(list.id, &RecordFilterParams::default(), page).await?;
            let (cands, dnc) = candidates(store, &got.items, &filters, &dnc_lists, at).await?;
            let p = compliance_preview(&cands, &cfg, crate::state::calling_rules(), &dnc, at);
            total.total += p.total;
            total.dialable_now += p.dialable_now;
            total.skipped += p.skipped;
            for (k, n) in p.by_reason {
                *total.by_reason.entry(k).or_default() += n;
            }
            for (k, t) in p.earliest_by_reason {
                let e = total.earliest_by_reason.entry(k).or_insert(t);
                *e = (*e).min(t);
            }
            match got.next_cursor {
                Some(cur) => page.cursor = Some(PageParams::parse_cursor(&cur)?),
                None => break,
            }
        }
    }
    Ok(total)
}

/// Why one record of the campaign is or is not dialable at `at`.
pub async fn why(store: &Store, c: &Campaign, record: Record, at: DateTime<Utc>) -> Result<Result<(), Blocked>, StoreError> {
    let eff = store.effective_settings(c).await?.settings;
    let (dnc_lists, filters) = (eff.dnc_list_ids.clone(), eff.record_filters.clone());
    let cfg = campaign_config(c, eff);
    let (cands, dnc) = candidates(store, std::slice::from_ref(&record), &filters, &dnc_lists, at).await?;
    let Some(cand) = cands.first() else { return store.dialer_candidate(record.id).await.map(|_| Ok(())) };
    // A stateless question: no live calls or agents are known here (the live dialer adds them).
    let ctx = EligibilityContext {
        campaign: &cfg,
        rules: crate::state::calling_rules(),
        dnc: &dnc,
        in_call: &|_| false,
        agent_present: &|_| true,
        callback_grace_s: 0,
    };
    Ok(check(&ctx, cand, contact_zones(cand).as_ref(), at))
}

/// Most agents a forecast simulates: the "agents needed" search tries up to ten times the team,
/// capped at this many, so a larger team could not be answered anyway.
pub const FORECAST_MAX_AGENTS: u32 = 1000;
/// Longest mean talk or wrap-up a forecast takes (a day).
pub const FORECAST_MAX_MEAN_S: f64 = 86_400.0;
/// Latest `finish_by` a forecast takes, in days from now (ten years).
pub const FORECAST_MAX_HORIZON_DAYS: i64 = 3650;
/// Wall-clock time a forecast's simulation may take before it is stopped and answered 503
/// (`CAMPANA_FORECAST_BUDGET_S` changes it, e.g. on a slow machine).
pub const FORECAST_BUDGET_S: u64 = 10;

/// The forecast budget in force: `CAMPANA_FORECAST_BUDGET_S` (1 to 600), else [`FORECAST_BUDGET_S`].
pub fn forecast_budget_s() -> u64 {
    static BUDGET: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BUDGET.get_or_init(|| {
        std::env::var("CAMPANA_FORECAST_BUDGET_S")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|s| (1..=600).contains(s))
            .unwrap_or(FORECAST_BUDGET_S)
    })
}

/// What a forecast needs beyond the campaign itself: team size and observed rates (the live
/// dialer will supply measured rates; until then they are the caller's estimates). Every
/// value is checked against the limits stated here; a value outside them is a 422 naming it.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForecastRequest {
    /// Agents working the campaign (1 to 1,000).
    #[schema(minimum = 1, maximum = 1000)]
    pub agents: u32,
    /// Live answers per dial (0..1). `answer_rate + machine_rate + busy_rate` is at most 1.
    #[serde(default = "default_answer_rate")]
    #[schema(minimum = 0.0, maximum = 1.0, default = 0.2)]
    pub answer_rate: f64,
    /// Answering machines per dial (0..1).
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0, default = 0.0)]
    pub machine_rate: f64,
    /// Busy signals per dial (0..1).
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0, default = 0.0)]
    pub busy_rate: f64,
    /// Mean conversation, seconds (1 to 86,400).
    #[serde(default = "default_talk_s")]
    #[schema(minimum = 1.0, maximum = 86400.0, default = 180.0)]
    pub talk_mean_s: f64,
    /// Agent wrap-up, seconds (0 to 86,400); the campaign's `wrap_up_s` when absent.
    #[schema(minimum = 0.0, maximum = 86400.0)]
    pub wrap_mean_s: Option<f64>,
    /// "How many agents to finish by then?" (at most ten years ahead).
    pub finish_by: Option<DateTime<Utc>>,
    #[serde(default = "one")]
    pub seed: u64,
}

impl ForecastRequest {
    /// Every value outside its limits, by field.
    pub fn problems(&self, now: DateTime<Utc>) -> Vec<campana_core::FieldError> {
        use campana_core::FieldError;
        let mut problems = Vec::new();
        for (field, v) in [("answer_rate", self.answer_rate), ("machine_rate", self.machine_rate), ("busy_rate", self.busy_rate)] {
            if !(0.0..=1.0).contains(&v) {
                problems.push(FieldError::new(field, format!("{v} is not a rate between 0 and 1")));
            }
        }
        if problems.is_empty() && self.answer_rate + self.machine_rate + self.busy_rate > 1.0 {
            problems.push(FieldError::new("answer_rate", "answer_rate + machine_rate + busy_rate exceeds 1 (shares of the same dials)"));
        }
        if !(1..=FORECAST_MAX_AGENTS).contains(&self.agents) {
            problems.push(FieldError::new("agents", format!("{} is outside 1..={FORECAST_MAX_AGENTS}", self.agents)));
        }
        if !(1.0..=FORECAST_MAX_MEAN_S).contains(&self.talk_mean_s) {
            problems.push(FieldError::new("talk_mean_s", format!("{} is outside 1..={FORECAST_MAX_MEAN_S} seconds", self.talk_mean_s)));
        }
        if let Some(w) = self.wrap_mean_s.filter(|w| !(0.0..=FORECAST_MAX_MEAN_S).contains(w)) {
            problems.push(FieldError::new("wrap_mean_s", format!("{w} is outside 0..={FORECAST_MAX_MEAN_S} seconds")));
        }
        if let Some(by) = self.finish_by.filter(|by| *by > now + chrono::Duration::days(FORECAST_MAX_HORIZON_DAYS)) {
            problems.push(FieldError::new("finish_by", format!("{by} is more than {FORECAST_MAX_HORIZON_DAYS} days ahead")));
        }
        problems
    }
}

fn default_answer_rate() -> f64 {
    0.2
}
fn default_talk_s() -> f64 {
    180.0
}
fn one() -> u64 {
    1
}

/// Why a forecast was not made.
#[derive(Debug, thiserror::Error)]
pub enum ForecastError {
    /// The request's fields at fault.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<campana_core::FieldError>),
    /// The simulation refused the inputs as a whole.
    #[error("{0}")]
    Simulation(String),
    /// No room on the CPU pool, or over the time budget: try again later.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Forecast for a campaign by simulation: when its open records finish, agents needed by a
/// deadline, expected abandon rate.
pub async fn forecast(
    store: &Store,
    c: &Campaign,
    req: &ForecastRequest,
    now: DateTime<Utc>,
) -> Result<campana_sim::Forecast, ForecastError> {
    use campana_core::record::RecordStatus;
    let problems = req.problems(now);
    if !problems.is_empty() {
        return Err(ForecastError::Invalid(problems));
    }
    let eff = store.effective_settings(c).await?.settings;
    let open: i64 = store
        .record_status_counts(&c.input.contact_list_ids)
        .await?
        .into_iter()
        .filter(|(s, _)| !matches!(s, RecordStatus::Completed | RecordStatus::Cancelled))
        .map(|(_, n)| n)
        .sum();
    let (start, hours_per_day) = next_dialing_window(c, now);
    let input = campana_sim::ForecastInput {
        records_remaining: open.clamp(0, u32::MAX as i64) as u32,
        answer_rate: req.answer_rate,
        machine_rate: req.machine_rate,
        busy_rate: req.busy_rate,
        talk_mean_s: req.talk_mean_s,
        wrap_mean_s: req.wrap_mean_s.unwrap_or(eff.wrap_up_s as f64),
        agents: req.agents,
        mode: eff.dialing_mode.as_str().to_string(),
        lines_per_agent: eff.lines_per_agent,
        abandon_rate_max: eff.abandon_rate_max,
        campaign_zone: c.input.time_zone.name().to_string(),
        hours_per_day,
        finish_by: req.finish_by,
        seed: req.seed,
    };
    // The simulation is CPU-heavy: it runs on the bounded pool, off the async threads that
    // serve other requests and the dialer, and is stopped when over its budget.
    let budget_s = forecast_budget_s();
    let budget = std::time::Duration::from_secs(budget_s);
    let run = crate::cpu_pool::CpuPool::global().run(budget, move |stop| campana_sim::forecast_until(&input, start, stop)).await;
    match run {
        Ok(Ok(f)) => Ok(f),
        Ok(Err(campana_sim::SimError::Stopped)) => {
            Err(ForecastError::Unavailable(crate::cpu_pool::PoolError::OverBudget { budget_s }.to_string()))
        }
        Ok(Err(e)) => Err(ForecastError::Simulation(e.to_string())),
        Err(e) => Err(ForecastError::Unavailable(e.to_string())),
    }
}

/// The start of the campaign's current or next dialing window (its zone, hours, weekdays and
/// dates) and the hours left in that window.
pub fn next_dialing_window(c: &Campaign, now: DateTime<Utc>) -> (DateTime<Utc>, f64) {
    use chrono::{Datelike, TimeZone};
    let tz = c.input.time_zone.0;
    let hours = c.input.daily_hours;
    let mut date = now.with_timezone(&tz).date_naive();
    for _ in 0..400 {
        let in_dates = c.input.start_date.is_none_or(|s| date >= s) && c.input.end_date.is_none_or(|e| date <= e);
        if in_dates && c.input.weekdays.contains(date.weekday()) {
            let open = tz.from_local_datetime(&date.and_time(hours.start.naive())).earliest();
            let close = tz.from_local_datetime(&date.and_time(hours.end.naive())).latest();
            if let (Some(open), Some(close)) = (open, close) {
                let (open, close) = (open.to_utc(), close.to_utc());
                if now < close {
                    let start = open.max(now);
                    return (start, (close - start).num_seconds() as f64 / 3600.0);
                }
            }
        }
        date = date.succ_opt().unwrap_or(date);
    }
    (now, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use campana_core::campaign::{CampaignInput, CampaignState};

    fn campaign(weekdays: &[&str]) -> Campaign {
        let input: CampaignInput = serde_json::from_value(serde_json::json!({
            "name": "W", "daily_hours": {"start": "09:00", "end": "17:00"}, "weekdays": weekdays, "time_zone": "America/New_York"
        }))
        .expect("valid campaign");
        Campaign { id: campana_core::CampaignId(1), state: CampaignState::Draft, input, created_at: Utc::now(), updated_at: Utc::now() }
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339")
    }

    #[test]
    fn next_window_before_during_after_and_across_weekends() {
        let c = campaign(&["mon", "tue", "wed", "thu", "fri"]);
        // Wednesday 2026-11-25, New York is UTC-5: 09:00-17:00 local = 14:00-22:00 UTC.
        assert_eq!(next_dialing_window(&c, t("2026-11-25T12:00:00Z")), (t("2026-11-25T14:00:00Z"), 8.0));
        assert_eq!(next_dialing_window(&c, t("2026-11-25T20:00:00Z")), (t("2026-11-25T20:00:00Z"), 2.0));
        assert_eq!(next_dialing_window(&c, t("2026-11-25T23:00:00Z")).0, t("2026-11-26T14:00:00Z"));
        // Friday evening: the next window is Monday.
        assert_eq!(next_dialing_window(&c, t("2026-11-27T23:00:00Z")).0, t("2026-11-30T14:00:00Z"));
        // Across the DST change (2026-11-01): the window follows local time.
        assert_eq!(next_dialing_window(&c, t("2026-10-30T23:00:00Z")).0, t("2026-11-02T14:00:00Z"));
        assert_eq!(next_dialing_window(&c, t("2026-10-29T12:00:00Z")).0, t("2026-10-29T13:00:00Z"));
    }
}
