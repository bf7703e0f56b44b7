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

/// Which day of a year a holiday falls on, before any weekend observance.
#[derive(Debug, Clone, Copy, PartialEq)]
enum HolidayDay {
    /// `MM-DD` every year.
    Yearly(u32, u32),
    /// `YYYY-MM-DD`, that year only.
    Date(NaiveDate),
    /// `easter`, `easter+1`, `easter-2`: days from Western (Gregorian) Easter Sunday.
    Easter(i64),
    /// `4th thu nov`, `last mon may`: the n-th (1 to 5, or -1 for last) weekday of a month.
    Nth(i8, Weekday, u32),
    /// `mon before 05-25`: the last such weekday strictly before a month/day.
    Before(Weekday, u32, u32),
    /// `sat after 06-19`: the first such weekday strictly after a month/day.
    After(Weekday, u32, u32),
}

/// What happens when a holiday falls on a weekend. The holiday itself stays a holiday.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Observance {
    None,
    /// `observed`: US style, Saturday -> the Friday before, Sunday -> the Monday after.
    Us,
    /// `observed-monday`: Sunday -> the Monday after (Saturday stays).
    SundayToMonday,
    /// `substitute`: UK/Australian style, Saturday or Sunday -> the next weekday that is not
    /// already a holiday (so Christmas and Boxing Day on a weekend give Monday and Tuesday).
    Substitute,
}

/// A holiday rule as written in the file (`holidays = ["easter+1", "4th thu nov observed"]`).
#[derive(Debug, Clone, PartialEq)]
struct Holiday {
    day: HolidayDay,
    observance: Observance,
    text: String,
}

/// Western Easter Sunday (anonymous Gregorian algorithm, Meeus/Jones/Butcher).
pub fn easter_sunday(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("Easter is a valid date")
}

impl HolidayDay {
    /// The date in `year`, if it has one (a 5th weekday or 02-29 may not exist).
    fn in_year(&self, year: i32) -> Option<NaiveDate> {
        match *self {
            HolidayDay::Yearly(m, d) => NaiveDate::from_ymd_opt(year, m, d),
            HolidayDay::Date(x) => (x.year() == year).then_some(x),
            HolidayDay::Easter(off) => Some(easter_sunday(year) + Duration::days(off)),
            HolidayDay::Nth(n, wd, m) if n > 0 => NaiveDate::from_weekday_of_month_opt(year, m, wd, n as u8),
            HolidayDay::Nth(_, wd, m) => {
                let first_next = if m == 12 { NaiveDate::from_ymd_opt(year + 1, 1, 1) } else { NaiveDate::from_ymd_opt(year, m + 1, 1) }?;
                let mut d = first_next - Duration::days(1);
                while d.weekday() != wd {
                    d -= Duration::days(1);
                }
                Some(d)
            }
            HolidayDay::Before(wd, m, d) => {
                let mut x = NaiveDate::from_ymd_opt(year, m, d)? - Duration::days(1);
                while x.weekday() != wd {
                    x -= Duration::days(1);
                }
                Some(x)
            }
            HolidayDay::After(wd, m, d) => {
                let mut x = NaiveDate::from_ymd_opt(year, m, d)? + Duration::days(1);
                while x.weekday() != wd {
                    x += Duration::days(1);
                }
                Some(x)
            }
        }
    }
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Every day of `year` (and the observed days it moves into neighbouring years) that the
/// holidays close, in no particular order.
fn holiday_dates(holidays: &[Holiday], year: i32) -> Vec<NaiveDate> {
    let mut out: Vec<NaiveDate> = Vec::new();
    let mut actual: Vec<(NaiveDate, Observance)> = holidays.iter().filter_map(|h| h.day.in_year(year).map(|d| (d, h.observance))).collect();
    actual.sort_by_key(|(d, _)| *d);
    out.extend(actual.iter().map(|(d, _)| *d));
    for (d, obs) in &actual {
        match obs {
            Observance::None => {}
            Observance::Us => match d.weekday() {
                Weekday::Sat => out.push(*d - Duration::days(1)),
                Weekday::Sun => out.push(*d + Duration::days(1)),
                _ => {}
            },
            Observance::SundayToMonday => {
                if d.weekday() == Weekday::Sun {
                    out.push(*d + Duration::days(1));
                }
            }
            Observance::Substitute => {
                if is_weekend(*d) {
                    let mut x = *d + Duration::days(1);
                    while is_weekend(x) || out.contains(&x) {
                        x += Duration::days(1);
                    }
                    out.push(x);
                }
            }
        }
    }
    out
}

const WEEKDAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MONTH_NAMES: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

fn weekday_of(s: &str) -> Option<Weekday> {
    let l = s.to_ascii_lowercase();
    WEEKDAY_NAMES.iter().position(|n| l.starts_with(n)).and_then(|i| Weekday::try_from(i as u8).ok())
}

fn month_day(s: &str) -> Option<(u32, u32)> {
    let (m, d) = s.split_once('-')?;
    let (m, d): (u32, u32) = (m.parse().ok()?, d.parse().ok()?);
    NaiveDate::from_ymd_opt(2024, m, d).map(|_| (m, d))
}

/// Parses one holiday: `MM-DD`, `YYYY-MM-DD`, `easter[+-N]`, `1st|2nd|3rd|4th|5th|last WEEKDAY
/// MONTH`, `WEEKDAY before|after MM-DD`, each optionally followed by `observed`,
/// `observed-monday` or `substitute`.
fn parse_holiday(text: &str) -> Option<Holiday> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let (obs, body) = match words.last().copied() {
        Some("observed") => (Observance::Us, &words[..words.len() - 1]),
        Some("observed-monday") => (Observance::SundayToMonday, &words[..words.len() - 1]),
        Some("substitute") => (Observance::Substitute, &words[..words.len() - 1]),
        _ => (Observance::None, &words[..]),
    };
    let day = match body {
        [one] => {
            if let Ok(d) = NaiveDate::parse_from_str(one, "%Y-%m-%d") {
                HolidayDay::Date(d)
            } else if let Some(rest) = one.strip_prefix("easter") {
                let off = if rest.is_empty() { 0 } else { rest.strip_prefix('+').unwrap_or(rest).parse::<i64>().ok()? };
                if off.abs() > 120 {
                    return None;
                }
                HolidayDay::Easter(off)
            } else {
                let (m, d) = month_day(one)?;
                HolidayDay::Yearly(m, d)
            }
        }
        [wd, rel @ ("before" | "after"), md] => {
            let (m, d) = month_day(md)?;
            if *rel == "before" {
                HolidayDay::Before(weekday_of(wd)?, m, d)
            } else {
                HolidayDay::After(weekday_of(wd)?, m, d)
            }
        }
        [nth, wd, month] => {
            let n = match *nth {
                "1st" => 1,
                "2nd" => 2,
                "3rd" => 3,
                "4th" => 4,
                "5th" => 5,
                "last" => -1,
                _ => return None,
            };
            let m = MONTH_NAMES.iter().position(|x| month.to_ascii_lowercase().starts_with(x))? as u32 + 1;
            HolidayDay::Nth(n, weekday_of(wd)?, m)
        }
        _ => return None,
    };
    Some(Holiday { day, observance: obs, text: text.trim().to_string() })
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
    /// Is `date` one of the rule's holidays, or a day a weekend holiday is observed on?
    pub fn is_holiday(&self, date: NaiveDate) -> bool {
        if self.holidays.is_empty() {
            return false;
        }
        // Observed days cross a year end at most by a few days (01-01 on a Saturday is observed
        // on 12-31), so the neighbouring years count near the ends of a year.
        let y = date.year();
        let years: &[i32] = match (date.month(), date.day()) {
            (1, d) if d <= 7 => &[y, y - 1],
            (12, d) if d >= 24 => &[y, y + 1],
            _ => &[y],
        };
        years.iter().any(|yy| holiday_dates(&self.holidays, *yy).contains(&date))
    }

    /// The holidays of `year` that close this rule, sorted (for tests and the console).
    pub fn holidays_in(&self, year: i32) -> Vec<NaiveDate> {
        let mut v: Vec<NaiveDate> =
            [year - 1, year, year + 1].iter().flat_map(|y| holiday_dates(&self.holidays, *y)).filter(|d| d.year() == year).collect();
        v.sort();
        v.dedup();
        v
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
    /// As written: `MM-DD`, `YYYY-MM-DD`, `easter+1`, `4th thu nov observed`...
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
            holidays: self.holidays.iter().map(|h| h.text.clone()).collect(),
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

/// The rule for one contact: the set's base rule intersected with the rule of every region
/// that applies (each US state a source names, and the country prefix).
#[derive(Debug, Clone)]
pub struct ContactRule<'a> {
    pub base: &'a Rule,
    pub regions: Vec<(&'a str, &'a Rule)>,
}

impl LocalSchedule for ContactRule<'_> {
    fn windows(&self, date: NaiveDate) -> Vec<Window> {
        let mut w = self.base.windows(date);
        for (_, r) in &self.regions {
            if w.is_empty() {
                break;
            }
            w = intersect(&w, &r.windows(date));
        }
        w
    }
}

impl ContactRule<'_> {
    /// The regions applied, `US-FL and US-NY`, or `None`.
    pub fn region_names(&self) -> Option<String> {
        (!self.regions.is_empty()).then(|| self.regions.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(" and "))
    }
}

impl RuleSet {
    /// The rule that applies to a contact in `us_states` (e.g. `US-FL`, from the ZIP code and the
    /// area code) and `country_prefix` (`+33`): every matching region's rule applies.
    pub fn for_contact(&self, us_states: &[String], country_prefix: &str) -> ContactRule<'_> {
        let mut regions: Vec<(&str, &Rule)> = Vec::new();
        for key in us_states.iter().map(String::as_str).chain(std::iter::once(country_prefix)) {
            if let Some((k, v)) = self.regions.get_key_value(key) {
                if !regions.iter().any(|(r, _)| *r == k.as_str()) {
                    regions.push((k.as_str(), v));
                }
            }
        }
        ContactRule { base: &self.base, regions }
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
        holidays.push(parse_holiday(h).ok_or_else(|| RulesError::Invalid {
            set: set.into(),
            reason: format!(
                "holiday '{h}' is not MM-DD, YYYY-MM-DD, easter[+-N], '4th thu nov', 'last mon may' or 'mon before 05-25' \
                 (optionally followed by observed, observed-monday or substitute)"
            ),
        })?);
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
