//! Calling-hours rule sets (`data/calling-hours.toml`) and local-time window arithmetic.
//!
//! Every time rule in the engine is a [`LocalSchedule`]: for a local calendar day in some zone,
//! the list of allowed `[start, end)` windows. [`is_open`] and [`next_open`] turn that into
//! "allowed at this instant?" and "next allowed instant", handling DST gaps and overlaps through
//! chrono-tz (never fixed offsets).

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone as _, Utc, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The shipped rule sets, embedded at build time.
pub const DEFAULT_RULES_TOML: &str = include_str!("../../../data/calling-hours.toml");

/// How many local days ahead [`next_open`] looks before answering "never".
pub const NEXT_OPEN_HORIZON_DAYS: i64 = 400;

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("calling-hours rules are not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("calling-hours rule set '{set}': {reason}")]
    Invalid { set: String, reason: String },
}

/// A window of local time, `[start, end)`.
pub type Window = (NaiveTime, NaiveTime);

/// A local schedule: the allowed windows on a given local date.
pub trait LocalSchedule {
    fn windows(&self, date: NaiveDate) -> Vec<Window>;
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRaw {
    #[serde(default)]
    description: String,
    hours: Vec<[String; 2]>,
    #[serde(default)]
    days: BTreeMap<String, Vec<[String; 2]>>,
    #[serde(default)]
    closed_weekdays: Vec<String>,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    regions: BTreeMap<String, RuleRaw>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRaw {
    sets: BTreeMap<String, RuleRaw>,
}

/// A holiday: every year on a month/day, or one date.
#[derive(Debug, Clone, PartialEq)]
enum Holiday {
    Yearly(u32, u32),
    Date(NaiveDate),
}

/// One calling-hours rule (a set's base rule or a region's).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub description: String,
    hours: Vec<Window>,
    days: BTreeMap<u32, Vec<Window>>,
    closed: [bool; 7],
    holidays: Vec<Holiday>,
}

impl LocalSchedule for Rule {
    fn windows(&self, date: NaiveDate) -> Vec<Window> {
        let wd = date.weekday().num_days_from_monday();
        if self.closed[wd as usize] || self.is_holiday(date) {
            return Vec::new();
        }
        self.days.get(&wd).unwrap_or(&self.hours).clone()
    }
}

impl Rule {
    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        self.holidays.iter().any(|h| match h {
            Holiday::Yearly(m, d) => date.month() == *m && date.day() == *d,
            Holiday::Date(x) => *x == date,
        })
    }
}

/// A rule as people read it (the console's calling-hours page, `GET /api/v1/calling-hours`):
/// windows as `HH:MM-HH:MM`, weekdays as `mon`..`sun`, holidays as written in the file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuleView {
    pub description: String,
    /// Allowed windows every day (`08:00-21:00`).
    pub hours: Vec<String>,
    /// Days whose windows replace `hours`.
    pub days: BTreeMap<String, Vec<String>>,
    pub closed_weekdays: Vec<String>,
    /// `MM-DD` every year or `YYYY-MM-DD`.
    pub holidays: Vec<String>,
}

/// A rule set as people read it: its base rule and its regions' (`US-FL`, `+33`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuleSetView {
    pub name: String,
    pub base: RuleView,
    pub regions: BTreeMap<String, RuleView>,
}

const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn window_text(w: &[Window]) -> Vec<String> {
    let hm = |t: NaiveTime| {
        if t == NaiveTime::from_hms_opt(23, 59, 59).expect("valid") {
            "24:00".to_string()
        } else {
            t.format("%H:%M").to_string()
        }
    };
    w.iter().map(|(a, b)| format!("{}-{}", hm(*a), hm(*b))).collect()
}

impl Rule {
    pub fn view(&self) -> RuleView {
        RuleView {
            description: self.description.clone(),
            hours: window_text(&self.hours),
            days: self.days.iter().map(|(d, w)| (WEEKDAYS[*d as usize].to_string(), window_text(w))).collect(),
            closed_weekdays: (0..7).filter(|d| self.closed[*d]).map(|d| WEEKDAYS[d].to_string()).collect(),
            holidays: self
                .holidays
                .iter()
                .map(|h| match h {
                    Holiday::Yearly(m, d) => format!("{m:02}-{d:02}"),
                    Holiday::Date(x) => x.to_string(),
                })
                .collect(),
        }
    }
}

impl RuleSet {
    pub fn view(&self) -> RuleSetView {
        RuleSetView {
            name: self.name.clone(),
            base: self.base.view(),
            regions: self.regions.iter().map(|(k, r)| (k.clone(), r.view())).collect(),
        }
    }
}

/// A named rule set: a base rule plus stricter rules per region.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    pub name: String,
    pub base: Rule,
    /// Keyed `US-FL` (state) or `+33` (country prefix).
    pub regions: BTreeMap<String, Rule>,
}

/// The rule for one contact: the set's base rule intersected with its region's rule.
#[derive(Debug, Clone)]
pub struct ContactRule<'a> {
    pub base: &'a Rule,
    pub region: Option<(&'a str, &'a Rule)>,
}

impl LocalSchedule for ContactRule<'_> {
    fn windows(&self, date: NaiveDate) -> Vec<Window> {
        let b = self.base.windows(date);
        match self.region {
            None => b,
            Some((_, r)) => intersect(&b, &r.windows(date)),
        }
    }
}

impl RuleSet {
    /// The rule that applies to a contact in `us_state` (e.g. `US-FL`) and `country_prefix` (`+33`).
    pub fn for_contact(&self, us_state: Option<&str>, country_prefix: &str) -> ContactRule<'_> {
        let region = us_state
            .and_then(|s| self.regions.get_key_value(s))
            .or_else(|| self.regions.get_key_value(country_prefix))
            .map(|(k, v)| (k.as_str(), v));
        ContactRule { base: &self.base, region }
    }
}

/// All rule sets, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct CallingRules {
    pub sets: BTreeMap<String, RuleSet>,
}

fn parse_hm(set: &str, s: &str) -> Result<NaiveTime, RulesError> {
    if s == "24:00" {
        return Ok(NaiveTime::from_hms_opt(23, 59, 59).expect("valid"));
    }
    NaiveTime::parse_from_str(s, "%H:%M").map_err(|_| RulesError::Invalid { set: set.into(), reason: format!("'{s}' is not HH:MM") })
}

fn parse_windows(set: &str, v: &[[String; 2]]) -> Result<Vec<Window>, RulesError> {
    let mut out = Vec::with_capacity(v.len());
    for [a, b] in v {
        let (s, e) = (parse_hm(set, a)?, parse_hm(set, b)?);
        if s >= e {
            return Err(RulesError::Invalid { set: set.into(), reason: format!("window {a}-{b} does not end after it starts") });
        }
        out.push((s, e));
    }
    out.sort();
    Ok(out)
}

fn parse_weekday(set: &str, s: &str) -> Result<u32, RulesError> {
    let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let l = s.trim().to_ascii_lowercase();
    names
        .iter()
        .position(|n| l.starts_with(n))
        .map(|i| i as u32)
        .ok_or_else(|| RulesError::Invalid { set: set.into(), reason: format!("'{s}' is not a weekday") })
}

fn build_rule(set: &str, r: &RuleRaw) -> Result<Rule, RulesError> {
    let mut days = BTreeMap::new();
    for (k, v) in &r.days {
        days.insert(parse_weekday(set, k)?, parse_windows(set, v)?);
    }
    let mut closed = [false; 7];
    for d in &r.closed_weekdays {
        closed[parse_weekday(set, d)? as usize] = true;
    }
    let mut holidays = Vec::new();
    for h in &r.holidays {
        let bad = || RulesError::Invalid { set: set.into(), reason: format!("holiday '{h}' is neither MM-DD nor YYYY-MM-DD") };
        if let Ok(d) = NaiveDate::parse_from_str(h, "%Y-%m-%d") {
            holidays.push(Holiday::Date(d));
        } else {
            let (m, d) = h.split_once('-').ok_or_else(bad)?;
            let (m, d): (u32, u32) = (m.parse().map_err(|_| bad())?, d.parse().map_err(|_| bad())?);
            NaiveDate::from_ymd_opt(2024, m, d).ok_or_else(bad)?;
            holidays.push(Holiday::Yearly(m, d));
        }
    }
    Ok(Rule { description: r.description.clone(), hours: parse_windows(set, &r.hours)?, days, closed, holidays })
}

impl CallingRules {
    /// Parses a rules file (the format of `data/calling-hours.toml`).
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        let raw: FileRaw = toml::from_str(text)?;
        let mut sets = BTreeMap::new();
        for (name, r) in &raw.sets {
            let base = build_rule(name, r)?;
            let mut regions = BTreeMap::new();
            for (k, v) in &r.regions {
                if !v.regions.is_empty() {
                    return Err(RulesError::Invalid { set: name.clone(), reason: format!("region {k} cannot have regions") });
                }
                regions.insert(k.clone(), build_rule(&format!("{name}.{k}"), v)?);
            }
            sets.insert(name.clone(), RuleSet { name: name.clone(), base, regions });
        }
        if !sets.contains_key("default") {
            return Err(RulesError::Invalid { set: "default".into(), reason: "the file must define a 'default' set".into() });
        }
        Ok(CallingRules { sets })
    }

    /// Reads a rules file from disk (a deployment's override of the shipped file). This is the
    /// only function of the engine that touches the file system; drivers call it at start-up.
    pub fn load(path: &std::path::Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RulesError::Invalid { set: path.display().to_string(), reason: format!("cannot read: {e}") })?;
        Self::parse(&text)
    }

    /// The shipped rules.
    pub fn builtin() -> &'static CallingRules {
        static RULES: OnceLock<CallingRules> = OnceLock::new();
        RULES.get_or_init(|| CallingRules::parse(DEFAULT_RULES_TOML).expect("the shipped data/calling-hours.toml is valid (tested)"))
    }

    /// The named set; unknown names fall back to nothing (the caller reports `rules_unknown`).
    pub fn get(&self, name: &str) -> Option<&RuleSet> {
        self.sets.get(name)
    }
}

/// Intersection of two sorted window lists.
pub fn intersect(a: &[Window], b: &[Window]) -> Vec<Window> {
    let mut out = Vec::new();
    for &(s1, e1) in a {
        for &(s2, e2) in b {
            let (s, e) = (s1.max(s2), e1.min(e2));
            if s < e {
                out.push((s, e));
            }
        }
    }
    out.sort();
    out
}

/// The UTC instant of a local date-time; in a DST gap, the first valid instant after it; in an
/// overlap, the earlier instant.
pub fn local_to_utc(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut l = local;
    for _ in 0..8 {
        if let Some(t) = tz.from_local_datetime(&l).earliest() {
            return t.with_timezone(&Utc);
        }
        l += Duration::minutes(15);
    }
    tz.from_utc_datetime(&local).with_timezone(&Utc)
}

/// Is `t` inside the schedule in zone `tz`?
pub fn is_open(tz: Tz, sched: &dyn LocalSchedule, t: DateTime<Utc>) -> bool {
    let l = t.with_timezone(&tz).naive_local();
    sched.windows(l.date()).iter().any(|(s, e)| l.time() >= *s && l.time() < *e)
}

/// The first instant at or after `t` inside the schedule, within [`NEXT_OPEN_HORIZON_DAYS`].
pub fn next_open(tz: Tz, sched: &dyn LocalSchedule, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let l = t.with_timezone(&tz).naive_local();
    for i in 0..NEXT_OPEN_HORIZON_DAYS {
        let date = l.date() + Duration::days(i);
        for (s, e) in sched.windows(date) {
            let start = local_to_utc(tz, date.and_time(s));
            let end = local_to_utc(tz, date.and_time(e));
            if end <= t {
                continue;
            }
            let cand = start.max(t);
            if cand < end && is_open(tz, sched, cand) {
                return Some(cand);
            }
        }
    }
    None
}

/// Weekday helper for reports.
pub fn weekday_name(d: Weekday) -> &'static str {
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][d.num_days_from_monday() as usize]
}
