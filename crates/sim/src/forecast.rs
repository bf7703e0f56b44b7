//! Forecast by simulation: "finishes at ..., needs N agents to finish by ..., expected abandon ...".
//!
//! Method: simulate one campaign day with the list's remaining records, the observed rates and
//! the given agents (same engine, same seed), take the records completed per day, and project
//! the remaining days; for "agents needed", search the smallest team whose simulated day pace
//! finishes by the deadline (searching up to ten times the current team, at most 1,000).

use crate::model::{AgentModel, Population, Scenario};
use crate::{run_until, SimError};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::sync::atomic::AtomicBool;

/// What the forecast needs to know.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForecastInput {
    /// Records still to complete.
    pub records_remaining: u32,
    /// Observed live-answer rate per dial.
    pub answer_rate: f64,
    #[serde(default)]
    pub machine_rate: f64,
    #[serde(default)]
    pub busy_rate: f64,
    pub talk_mean_s: f64,
    pub wrap_mean_s: f64,
    pub agents: u32,
    /// Dialing mode and pacing as configured.
    pub mode: String,
    #[serde(default = "one")]
    pub lines_per_agent: f64,
    pub abandon_rate_max: f64,
    /// Campaign zone and the length of a dialing day from `now`.
    pub campaign_zone: String,
    pub hours_per_day: f64,
    /// Finish-by deadline for the "agents needed" question.
    pub finish_by: Option<DateTime<Utc>>,
    pub seed: u64,
}

fn one() -> f64 {
    1.0
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Forecast {
    pub records_completed_per_day: f64,
    pub days_needed: Option<f64>,
    /// When the list is done at this pace (dialing days counted as consecutive).
    pub finishes_at: Option<DateTime<Utc>>,
    pub agents_needed_by_deadline: Option<u32>,
    pub expected_abandon_rate: f64,
    pub expected_occupancy: f64,
    pub message: String,
}

fn scenario(i: &ForecastInput, agents: u32, now: DateTime<Utc>) -> Scenario {
    Scenario {
        name: "forecast".into(),
        start: now,
        hours: i.hours_per_day,
        campaign_zone: i.campaign_zone.clone(),
        mode: i.mode.clone(),
        lines_per_agent: i.lines_per_agent,
        abandon_rate_max: i.abandon_rate_max,
        abandon_rate_target: None,
        calling_hours_rules: "default".into(),
        agent_first: false,
        agentless_lines: None,
        vicidial_adaptive: false,
        unguarded_power: false,
        agents: AgentModel { count: agents, talk_mean_s: i.talk_mean_s, wrap_mean_s: i.wrap_mean_s, ..AgentModel::default() },
        population: Population {
            records: i.records_remaining.max(1),
            answer_prob: i.answer_rate,
            machine_share: i.machine_rate,
            busy_share: i.busy_rate,
            // Every area code's zone within a day's hours of the campaign's.
            area_codes: vec!["212".into()],
            ..Population::default()
        },
    }
}

/// Forecasts a campaign at `now` by simulation.
pub fn forecast(i: &ForecastInput, now: DateTime<Utc>) -> Result<Forecast, SimError> {
    forecast_until(i, now, &AtomicBool::new(false))
}

/// [`forecast`] that gives up with [`SimError::Stopped`] soon after `stop` is raised.
pub fn forecast_until(i: &ForecastInput, now: DateTime<Utc>, stop: &AtomicBool) -> Result<Forecast, SimError> {
    let run = |sc: &crate::model::Scenario, seed| run_until(sc, seed, stop);
    let day = run(&scenario(i, i.agents, now), i.seed)?;
    let per_day = day.records_completed as f64;
    let days = if per_day > 0.0 { Some(f64::from(i.records_remaining) / per_day) } else { None };
    // Beyond what a date can hold (millions of years at a pace of one record a day) there is no
    // finishing date: checked arithmetic, never a panic.
    let finishes_at = days.and_then(|d| {
        let s = d.floor() * 86_400.0 + d.fract() * i.hours_per_day * 3600.0;
        let s = (s.is_finite() && s < i64::MAX as f64 / 1000.0).then_some(s as i64)?;
        now.checked_add_signed(Duration::try_seconds(s)?)
    });
    let mut needed = None;
    if let Some(by) = i.finish_by {
        let avail_days = ((by - now).num_seconds() as f64 / 86_400.0).max(0.0);
        let whole = avail_days.floor() + ((avail_days.fract() * 24.0).min(i.hours_per_day) / i.hours_per_day);
        if whole > 0.0 {
            let want_per_day = f64::from(i.records_remaining) / whole;
            let max_team = (i.agents * 10).clamp(10, 1000);
            let (mut lo, mut hi) = (1u32, max_team);
            let done = |n: u32| -> Result<f64, SimError> { Ok(run(&scenario(i, n, now), i.seed)?.records_completed as f64) };
            if done(hi)? >= want_per_day.min(f64::from(i.records_remaining)) {
                while lo < hi {
                    let mid = u32::midpoint(lo, hi);
                    if done(mid)? >= want_per_day.min(f64::from(i.records_remaining)) {
                        hi = mid;
                    } else {
                        lo = mid + 1;
                    }
                }
                needed = Some(lo);
            }
        }
    }
    let message = format!(
        "{} records completed per day with {} agents; {}; {}; expected abandon rate {:.2}%",
        per_day,
        i.agents,
        finishes_at.map_or("the list does not finish at this pace".to_string(), |f| format!("finishes at {f}")),
        match (i.finish_by, needed) {
            (Some(by), Some(n)) => format!("needs {n} agents to finish by {by}"),
            (Some(by), None) => format!("cannot finish by {by} with up to {} agents", (i.agents * 10).clamp(10, 1000)),
            _ => "no deadline given".to_string(),
        },
        day.abandon_rate_day * 100.0
    );
    Ok(Forecast {
        records_completed_per_day: per_day,
        days_needed: days,
        finishes_at,
        agents_needed_by_deadline: needed,
        expected_abandon_rate: day.abandon_rate_day,
        expected_occupancy: day.occupancy,
        message,
    })
}
