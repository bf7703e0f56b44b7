//! Scenario files: the population, the agents and the campaign of a simulated day.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

fn d_start() -> DateTime<Utc> {
    "2026-03-03T13:00:00Z".parse().expect("valid default start")
}
fn d_hours() -> f64 {
    10.0
}
fn d_mode() -> String {
    "predictive".into()
}
fn d_lines() -> f64 {
    1.0
}
fn d_cap() -> f64 {
    0.03
}
fn d_zone() -> String {
    "America/New_York".into()
}
fn d_rules() -> String {
    "default".into()
}

/// A simulated campaign day (see docs/simulation.md for every field).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub name: String,
    /// When the day starts (UTC).
    #[serde(default = "d_start")]
    pub start: DateTime<Utc>,
    /// Length of the simulated day.
    #[serde(default = "d_hours")]
    pub hours: f64,
    /// The campaign's zone; its daily hours are `start`..`start + hours` read in this zone.
    #[serde(default = "d_zone")]
    pub campaign_zone: String,
    /// preview | progressive | power | predictive | agentless
    #[serde(default = "d_mode")]
    pub mode: String,
    /// Power mode's fixed lines per agent.
    #[serde(default = "d_lines")]
    pub lines_per_agent: f64,
    #[serde(default = "d_cap")]
    pub abandon_rate_max: f64,
    /// The rate predictive pacing aims for (default: Campana's 0.02, never above the cap).
    #[serde(default)]
    pub abandon_rate_target: Option<f64>,
    #[serde(default = "d_rules")]
    pub calling_hours_rules: String,
    #[serde(default)]
    pub agent_first: bool,
    /// Agentless mode: simultaneous lines.
    #[serde(default)]
    pub agentless_lines: Option<u32>,
    /// Benchmark baseline: a VICIdial-style controller steps `lines_per_agent` every 15 s.
    #[serde(default)]
    pub vicidial_adaptive: bool,
    /// Benchmark baselines: power mode without the engine's abandon guard (a plain fixed ratio).
    #[serde(default)]
    pub unguarded_power: bool,
    #[serde(default)]
    pub agents: AgentModel,
    #[serde(default)]
    pub population: Population,
}

fn d_agents() -> u32 {
    10
}
fn d_talk() -> f64 {
    150.0
}
fn d_wrap() -> f64 {
    15.0
}
fn d_wrap_max() -> u32 {
    60
}

/// Agents over the day.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentModel {
    /// Agents logged in all day (when `shifts` is empty).
    #[serde(default = "d_agents")]
    pub count: u32,
    /// Optional shifts: `count` agents from `from_h` to `to_h` hours after the start.
    #[serde(default)]
    pub shifts: Vec<Shift>,
    /// Mean conversation length (log-normal, coefficient of variation `talk_cv`).
    #[serde(default = "d_talk")]
    pub talk_mean_s: f64,
    #[serde(default)]
    pub talk_cv: Option<f64>,
    /// Mean after-call work before the disposition (exponential).
    #[serde(default = "d_wrap")]
    pub wrap_mean_s: f64,
    /// The engine's `wrap_up_s`: wrap-up ends at the latest after this.
    #[serde(default = "d_wrap_max")]
    pub wrap_up_max_s: u32,
    /// A break every this many minutes of work (0 = no breaks).
    #[serde(default)]
    pub break_every_min: f64,
    #[serde(default)]
    pub break_len_s: f64,
    /// Preview mode: seconds the agent reads before accepting; share of records skipped.
    #[serde(default)]
    pub preview_think_s: Option<f64>,
    #[serde(default)]
    pub preview_skip_share: f64,
    /// Share of connected calls the agent disposes as a callback one hour later.
    #[serde(default)]
    pub callback_share: f64,
    /// Share of connected calls disposed "do not call".
    #[serde(default)]
    pub dnc_share: f64,
}

impl Default for AgentModel {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shift {
    pub from_h: f64,
    pub to_h: f64,
    pub count: u32,
}

fn d_records() -> u32 {
    5000
}
fn d_answer() -> f64 {
    0.2
}
fn d_ring() -> f64 {
    9.0
}
fn d_patience() -> f64 {
    6.0
}
fn d_zones() -> Vec<String> {
    vec!["212".into(), "312".into(), "214".into(), "602".into(), "213".into()]
}

/// The people called.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Population {
    /// List size (one number per customer).
    #[serde(default = "d_records")]
    pub records: u32,
    /// Probability a person answers a call (live answer, the "hit rate").
    #[serde(default = "d_answer")]
    pub answer_prob: f64,
    /// Optional multiplier per hour since the start, e.g. a lunch dip `[1,1,1,0.5,1,...]`.
    #[serde(default)]
    pub answer_by_hour: Vec<f64>,
    /// Share of calls answered by a machine.
    #[serde(default)]
    pub machine_share: f64,
    /// Share of calls that are busy.
    #[serde(default)]
    pub busy_share: f64,
    /// Share of numbers that are invalid (SIT).
    #[serde(default)]
    pub invalid_share: f64,
    /// Mean seconds until answer (exponential, within the ring timeout).
    #[serde(default = "d_ring")]
    pub time_to_answer_s: f64,
    /// Mean seconds a person waits for an agent after answering before hanging up.
    #[serde(default = "d_patience")]
    pub patience_s: f64,
    /// NANP area codes the numbers are drawn from (their zones come from the prefix table).
    #[serde(default = "d_zones")]
    pub area_codes: Vec<String>,
    /// Share of numbers on the do-not-call list.
    #[serde(default)]
    pub dnc_share: f64,
    /// Share of records with a US ZIP code (then the ZIP's zone is used).
    #[serde(default)]
    pub zip_share: f64,
}

impl Default for Population {
    fn default() -> Self {
        toml::from_str("").expect("defaults")
    }
}

/// The longest delay the simulation schedules (a year): any sampled or configured duration is
/// clamped to it, so no value, however large, overflows the simulated clock.
pub const MAX_SIM_DELAY_S: f64 = 365.0 * 86_400.0;
/// The longest mean duration a scenario may give (talk, wrap-up, patience, ...): a day.
pub const MAX_MEAN_S: f64 = 86_400.0;

/// Seconds as a simulated delay: not finite or negative is 0, beyond [`MAX_SIM_DELAY_S`] is that.
pub fn sim_duration(s: f64) -> chrono::Duration {
    let s = if s.is_finite() {
        s.clamp(0.0, MAX_SIM_DELAY_S)
    } else if s == f64::INFINITY {
        MAX_SIM_DELAY_S
    } else {
        0.0
    };
    chrono::Duration::milliseconds((s * 1000.0).round() as i64)
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("scenario field {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl Scenario {
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        let s: Scenario = toml::from_str(text)?;
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), ScenarioError> {
        let bad = |field, reason: String| Err(ScenarioError::Invalid { field, reason });
        if !(0.1..=48.0).contains(&self.hours) {
            return bad("hours", format!("{} is outside 0.1..=48", self.hours));
        }
        if self.mode.parse::<campana_core::settings::DialingMode>().is_err() {
            return bad("mode", format!("'{}' is not preview, progressive, power, predictive or agentless", self.mode));
        }
        if self.campaign_zone.parse::<chrono_tz::Tz>().is_err() {
            return bad("campaign_zone", format!("'{}' is not an IANA zone", self.campaign_zone));
        }
        let p = &self.population;
        for (f, v) in [
            ("population.answer_prob", p.answer_prob),
            ("population.machine_share", p.machine_share),
            ("population.busy_share", p.busy_share),
            ("population.invalid_share", p.invalid_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return bad("population", format!("{f} = {v} is not a probability"));
            }
        }
        if p.answer_prob + p.machine_share + p.busy_share > 1.0 {
            return bad("population", "answer_prob + machine_share + busy_share exceeds 1".into());
        }
        if p.records == 0 || p.records > 5_000_000 {
            return bad("population.records", format!("{} is outside 1..=5000000", p.records));
        }
        if p.area_codes.is_empty() {
            return bad("population.area_codes", "at least one area code".into());
        }
        let a = &self.agents;
        for (f, v) in [
            ("agents.talk_mean_s", a.talk_mean_s),
            ("agents.wrap_mean_s", a.wrap_mean_s),
            ("agents.break_len_s", a.break_len_s),
            ("agents.break_every_min", a.break_every_min),
            ("agents.preview_think_s", a.preview_think_s.unwrap_or(0.0)),
            ("agents.talk_cv", a.talk_cv.unwrap_or(0.0)),
            ("population.time_to_answer_s", p.time_to_answer_s),
            ("population.patience_s", p.patience_s),
        ] {
            if !v.is_finite() || !(0.0..=MAX_MEAN_S).contains(&v) {
                return bad(f, format!("{v} is outside 0..={MAX_MEAN_S}"));
            }
        }
        if self.agents.count > 10_000 || self.agents.shifts.iter().any(|s| s.count > 10_000 || s.from_h >= s.to_h) {
            return bad("agents", "at most 10000 agents; shifts must end after they start".into());
        }
        Ok(())
    }
}
