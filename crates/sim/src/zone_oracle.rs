//! The simulator's own answer to "which zones may this record be in", written apart from the
//! engine's resolver (`campana_engine::zones`) so that the simulator's calling-hours check does
//! not share the code it checks. It reads the same public tables (libphonenumber's prefix map and
//! the ZIP table, themselves checked against libphonenumber by `crates/engine/tests/zone_oracle.rs`)
//! with its own plain lookup and applies the documented rule (docs/dialing.md): a geographic
//! number's longest-prefix zones, plus the ZIP code's zone. The simulator only makes US
//! geographic numbers (`+1 AAA EEE LLLL`, exchange 200-899), so no number-type rule is needed;
//! [`zones`] refuses any other number.
//!
//! [`forbids`] is its answer to "does this rule set allow a call now": every shipped rule set
//! (`data/calling-hours.toml`), read with its own code (see there).

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

const PREFIX_TSV: &str = include_str!("../../../data/phone-prefix-timezones.tsv");
const ZIP_TSV: &str = include_str!("../../../data/us-zip-timezones.tsv");

struct Tables {
    prefixes: BTreeMap<String, Vec<Tz>>,
    zips: BTreeMap<String, Tz>,
}

fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines().filter(|l| !l.starts_with('#')).skip(1).map(|l| l.split('\t').collect())
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let zone = |s: &str| s.trim().parse::<Tz>().unwrap_or_else(|_| panic!("zone {s:?} in the prefix table is an IANA zone"));
        let prefixes = rows(PREFIX_TSV).filter(|f| f.len() >= 2).map(|f| (f[0].to_string(), f[1].split('&').map(zone).collect())).collect();
        // A ZIP row whose zone is no IANA zone (one row of the source, 99634) gives no zone.
        let zips =
            rows(ZIP_TSV).filter(|f| f.len() >= 3).filter_map(|f| Some((f[0].to_string(), f[2].trim().parse::<Tz>().ok()?))).collect();
        Tables { prefixes, zips }
    })
}

/// Every zone a simulated record may be in: its number's (longest table prefix) and its ZIP
/// code's. `None` for a number the simulator does not make (not a US geographic number), or when
/// the tables know no zone.
pub fn zones(e164: &str, zip: Option<&str>) -> Option<Vec<Tz>> {
    let digits = e164.strip_prefix("+1")?;
    let exchange: u32 = digits.get(3..6)?.parse().ok()?;
    if digits.len() != 10 || !(200..=899).contains(&exchange) {
        return None;
    }
    let t = tables();
    let full = format!("1{digits}");
    let mut out: Vec<Tz> = (1..=full.len()).rev().find_map(|n| t.prefixes.get(&full[..n])).cloned()?;
    if let Some(z) = zip.and_then(|z| t.zips.get(z.get(..5)?)) {
        if !out.contains(z) {
            out.insert(0, *z);
        }
    }
    Some(out)
}

/// The calling-hours rule sets (`data/calling-hours.toml`), read by the simulator itself: plain
/// `toml::Value` reading, its own holiday dates (Easter from a table of dates, the n-th weekday by
/// walking the month) and its own region lookup, so that the simulator's check of every dial does
/// not share the engine's `rules.rs` and `zones.rs`. It follows the file's documented meaning: a
/// moment is allowed when the set's rule and the rule of every region that applies allow it in
/// every zone of the contact; a rule allows a local moment when its weekday is not closed, its day
/// is no holiday (nor the day a weekend holiday is observed on), and the local time is inside one
/// of that weekday's windows (`days`, else `hours`), start included, end excluded.
const RULES_TOML: &str = include_str!("../../../data/calling-hours.toml");

/// Western Easter Sunday, from published tables (the simulator's days fall in these years).
const EASTER: [(i32, u32, u32); 13] = [
    (2020, 4, 12),
    (2021, 4, 4),
    (2022, 4, 17),
    (2023, 4, 9),
    (2024, 3, 31),
    (2025, 4, 20),
    (2026, 4, 5),
    (2027, 3, 28),
    (2028, 4, 16),
    (2029, 4, 1),
    (2030, 4, 21),
    (2031, 4, 13),
    (2032, 3, 28),
];

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[derive(Debug, Clone)]
struct OracleRule {
    /// Minutes of the local day, `[from, to)`, per weekday (0 = Monday); empty: closed.
    windows: [Vec<(u32, u32)>; 7],
    holidays: Vec<String>,
}

#[derive(Debug, Clone)]
struct OracleSet {
    base: OracleRule,
    regions: BTreeMap<String, OracleRule>,
}

fn minutes(s: &str) -> u32 {
    let (h, m) = s.split_once(':').unwrap_or_else(|| panic!("{s:?} is HH:MM"));
    let (h, m): (u32, u32) = (h.parse().expect("hour"), m.parse().expect("minute"));
    assert!(h < 24 && m < 60 || (h, m) == (24, 0), "{s:?} is a time of day");
    h * 60 + m
}

fn windows_of(v: &toml::Value) -> Vec<(u32, u32)> {
    v.as_array()
        .expect("windows are an array")
        .iter()
        .map(|w| {
            let w = w.as_array().expect("a window is [from, to]");
            (minutes(w[0].as_str().expect("HH:MM")), minutes(w[1].as_str().expect("HH:MM")))
        })
        .collect()
}

fn rule_of(v: &toml::Value) -> OracleRule {
    let hours = windows_of(&v["hours"]);
    let mut windows: [Vec<(u32, u32)>; 7] = std::array::from_fn(|_| hours.clone());
    if let Some(days) = v.get("days").and_then(toml::Value::as_table) {
        for (d, w) in days {
            let i = DAY_NAMES.iter().position(|n| n == d).unwrap_or_else(|| panic!("day {d:?}"));
            windows[i] = windows_of(w);
        }
    }
    for d in v.get("closed_weekdays").and_then(toml::Value::as_array).into_iter().flatten() {
        let d = d.as_str().expect("a weekday");
        let i = DAY_NAMES.iter().position(|n| *n == d).unwrap_or_else(|| panic!("weekday {d:?}"));
        windows[i].clear();
    }
    let holidays =
        v.get("holidays").and_then(toml::Value::as_array).into_iter().flatten().map(|h| h.as_str().expect("text").to_string()).collect();
    OracleRule { windows, holidays }
}

fn rule_sets() -> &'static BTreeMap<String, OracleSet> {
    static SETS: OnceLock<BTreeMap<String, OracleSet>> = OnceLock::new();
    SETS.get_or_init(|| {
        let file: toml::Value = RULES_TOML.parse().expect("calling-hours.toml is TOML");
        let sets = file["sets"].as_table().expect("[sets]");
        sets.iter()
            .map(|(name, v)| {
                let regions = v
                    .get("regions")
                    .and_then(toml::Value::as_table)
                    .map(|r| r.iter().map(|(k, rv)| (k.clone(), rule_of(rv))).collect())
                    .unwrap_or_default();
                (name.clone(), OracleSet { base: rule_of(v), regions })
            })
            .collect()
    })
}

/// The names of every shipped rule set.
pub fn rule_set_names() -> Vec<String> {
    rule_sets().keys().cloned().collect()
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

fn month_number(s: &str) -> u32 {
    const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    MONTHS.iter().position(|m| *m == s).unwrap_or_else(|| panic!("month {s:?}")) as u32 + 1
}

fn weekday_index(s: &str) -> u32 {
    DAY_NAMES.iter().position(|n| *n == s).unwrap_or_else(|| panic!("weekday {s:?}")) as u32
}

fn md(s: &str) -> (u32, u32) {
    let (m, d) = s.split_once('-').unwrap_or_else(|| panic!("{s:?} is MM-DD"));
    (m.parse().expect("month"), d.parse().expect("day"))
}

/// The day a holiday's words (without its observance) name in `year`, if any.
fn holiday_in(words: &[&str], year: i32) -> Option<NaiveDate> {
    let wd = |d: NaiveDate| d.weekday().num_days_from_monday();
    match words {
        [one] if one.starts_with("easter") => {
            let &(_, m, d) =
                EASTER.iter().find(|(y, _, _)| *y == year).unwrap_or_else(|| panic!("no Easter date for {year} in the oracle's table"));
            let off: i64 = one["easter".len()..].trim_start_matches('+').parse().unwrap_or(0);
            Some(date(year, m, d)? + Duration::days(off))
        }
        [one] if one.len() == 10 => {
            let d = NaiveDate::parse_from_str(one, "%Y-%m-%d").expect("YYYY-MM-DD");
            (d.year() == year).then_some(d)
        }
        [one] => {
            let (m, d) = md(one);
            date(year, m, d)
        }
        [day, rel, at] if *rel == "before" || *rel == "after" => {
            let (m, d) = md(at);
            let anchor = date(year, m, d)?;
            let want = weekday_index(day);
            let step = if *rel == "before" { -1 } else { 1 };
            (1..=7).map(|k| anchor + Duration::days(step * k)).find(|x| wd(*x) == want)
        }
        [nth, day, month] => {
            let (want, m) = (weekday_index(day), month_number(month));
            let days: Vec<NaiveDate> = (1..=31).filter_map(|d| date(year, m, d)).filter(|x| wd(*x) == want).collect();
            match *nth {
                "last" => days.last().copied(),
                n => days.get(n[..1].parse::<usize>().expect("1st..5th") - 1).copied(),
            }
        }
        _ => panic!("holiday {words:?} is not one the file documents"),
    }
}

/// Every closed day the holidays give around `year` (actual days and observed ones).
fn closed_days(holidays: &[String], year: i32) -> Vec<NaiveDate> {
    let mut actual: Vec<(NaiveDate, &str)> = Vec::new();
    for h in holidays {
        let words: Vec<&str> = h.split_whitespace().collect();
        let (obs, body) = match words.last() {
            Some(&w @ ("observed" | "observed-monday" | "substitute")) => (w, &words[..words.len() - 1]),
            _ => ("", &words[..]),
        };
        for y in [year - 1, year, year + 1] {
            if let Some(d) = holiday_in(body, y) {
                actual.push((d, obs));
            }
        }
    }
    actual.sort();
    let mut closed: Vec<NaiveDate> = actual.iter().map(|(d, _)| *d).collect();
    let weekend = |d: NaiveDate| d.weekday().num_days_from_monday() >= 5;
    for (d, obs) in &actual {
        let sat = d.weekday().num_days_from_monday() == 5;
        let sun = d.weekday().num_days_from_monday() == 6;
        match *obs {
            "observed" if sat => closed.push(*d - Duration::days(1)),
            "observed" | "observed-monday" if sun => closed.push(*d + Duration::days(1)),
            "substitute" if weekend(*d) => {
                let mut x = *d + Duration::days(1);
                while weekend(x) || closed.contains(&x) {
                    x += Duration::days(1);
                }
                closed.push(x);
            }
            _ => {}
        }
    }
    closed
}

impl OracleRule {
    fn allows(&self, local: chrono::NaiveDateTime) -> bool {
        let d = local.date();
        if closed_days(&self.holidays, d.year()).contains(&d) {
            return false;
        }
        let m = local.hour() * 60 + local.minute();
        self.windows[d.weekday().num_days_from_monday() as usize].iter().any(|(a, b)| *a <= m && m < *b)
    }
}

/// The US state (`US-XX`) of a ZIP code, and of an area code used in one state only.
fn states_of(e164: &str, zip: Option<&str>) -> Vec<String> {
    static AREAS: OnceLock<BTreeMap<String, BTreeSet<String>>> = OnceLock::new();
    static ZIP_STATES: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    let zip_states =
        ZIP_STATES.get_or_init(|| rows(ZIP_TSV).filter(|f| f.len() >= 2).map(|f| (f[0].to_string(), f[1].to_string())).collect());
    let areas = AREAS.get_or_init(|| {
        let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in rows(ZIP_TSV).filter(|f| f.len() >= 4) {
            for a in f[3].split(',').map(str::trim).filter(|a| !a.is_empty()) {
                m.entry(a.to_string()).or_default().insert(f[1].to_string());
            }
        }
        m
    });
    let mut out = Vec::new();
    if let Some(s) = zip.and_then(|z| zip_states.get(z.get(..5)?)) {
        out.push(format!("US-{s}"));
    }
    if let Some(states) = e164.strip_prefix("+1").and_then(|d| areas.get(d.get(..3)?)) {
        if states.len() == 1 {
            let s = format!("US-{}", states.iter().next().expect("one"));
            if !out.contains(&s) {
                out.push(s);
            }
        }
    }
    out
}

/// Why the rule set `set` forbids a call at `now` to this simulated contact (its number, ZIP
/// code and the zones [`zones`] gave it), or `None` when it allows it: the set's rule and every
/// region rule that applies (the contact's US states, its country prefix) must allow the moment
/// in every zone the contact may be in.
pub fn forbids(set: &str, e164: &str, zip: Option<&str>, zones: &[Tz], now: DateTime<Utc>) -> Option<String> {
    let s = rule_sets().get(set).unwrap_or_else(|| panic!("no rule set {set:?} in data/calling-hours.toml"));
    let mut rules: Vec<(String, &OracleRule)> = vec![(set.to_string(), &s.base)];
    if !s.regions.is_empty() {
        for r in states_of(e164, zip).into_iter().chain(std::iter::once("+1".to_string())) {
            if let Some(rule) = s.regions.get(&r) {
                rules.push((r, rule));
            }
        }
    }
    for tz in zones {
        let local = now.with_timezone(tz).naive_local();
        for (name, rule) in &rules {
            if !rule.allows(local) {
                return Some(format!("{name} forbids {} in {}", local.format("%a %Y-%m-%d %H:%M"), tz.name()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America;

    #[test]
    fn known_answers() {
        // From libphonenumber (phonenumbers 9.0.43) and the USPS ZIP areas, written by hand.
        assert_eq!(zones("+12125550143", None), Some(vec![America::New_York]));
        assert_eq!(zones("+13125550143", None), Some(vec![America::Chicago]));
        assert_eq!(zones("+16025550143", None), Some(vec![America::Phoenix]));
        assert_eq!(zones("+18085550143", None), Some(vec![chrono_tz::Pacific::Honolulu]));
        assert_eq!(zones("+19075550143", None).map(|z| z.len()), Some(2), "Alaska: Adak and Anchorage");
        assert_eq!(zones("+12125550143", Some("90012")), Some(vec![America::Los_Angeles, America::New_York]));
        assert_eq!(zones("+12125550143", Some("10001")), Some(vec![America::New_York]));
        assert_eq!(zones("+447700900123", None), None);
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339")
    }

    fn forbid(set: &str, e164: &str, zip: Option<&str>, t: &str) -> Option<String> {
        let z = zones(e164, zip).expect("a simulated number");
        forbids(set, e164, zip, &z, at(t))
    }

    #[test]
    fn every_shipped_set_is_read_and_known_answers_hold() {
        let names = rule_set_names();
        for n in ["default", "us_states", "canada", "australia", "uk", "europe"] {
            assert!(names.contains(&n.to_string()), "{n} in {names:?}");
        }
        // Written by hand from data/calling-hours.toml and a calendar.
        // Tue 2026-03-03 20:30 in New York: federal window open until 21:00.
        assert_eq!(forbid("default", "+12125550143", None, "2026-03-04T01:30:00Z"), None);
        assert!(forbid("default", "+12125550143", None, "2026-03-04T02:00:00Z").is_some(), "21:00 is closed");
        // Florida (area 305): 08:00-20:00 in us_states; 20:30 is closed there, open in default.
        assert!(forbid("us_states", "+13055550143", None, "2026-03-04T01:30:00Z").is_some());
        assert_eq!(forbid("default", "+13055550143", None, "2026-03-04T01:30:00Z"), None);
        // A New York number (212: New York and New Jersey, no state) with a ZIP in Dallas (75201): Texas rules apply through
        // the ZIP: Sunday 2026-03-08 11:30 in Dallas (CDT) is before Texas's Sunday 12:00.
        assert!(forbid("us_states", "+12125550143", Some("75201"), "2026-03-08T16:30:00Z").expect("closed").contains("US-TX"));
        assert_eq!(forbid("us_states", "+12125550143", Some("75201"), "2026-03-08T18:30:00Z"), None);
        // Canada's weekend window 10:00-18:00; Saturday 2026-03-07 18:30 in New York is closed.
        assert!(forbid("canada", "+12125550143", None, "2026-03-07T23:30:00Z").is_some());
        assert_eq!(forbid("canada", "+12125550143", None, "2026-03-06T23:30:00Z"), None, "Friday 18:30");
        // Easter Monday 2026-04-06 is a UK bank holiday and an Australian national one.
        assert!(forbid("uk", "+12125550143", None, "2026-04-06T15:00:00Z").is_some());
        assert!(forbid("australia", "+12125550143", None, "2026-04-06T15:00:00Z").is_some());
        assert_eq!(forbid("uk", "+12125550143", None, "2026-04-07T15:00:00Z"), None);
        // Boxing Day 2026 is a Saturday: the UK substitute day is Monday 2026-12-28.
        assert!(forbid("uk", "+12125550143", None, "2026-12-28T15:00:00Z").is_some());
        assert_eq!(forbid("uk", "+12125550143", None, "2026-12-29T15:00:00Z"), None);
        // Utah observes 07-04 (a Saturday in 2026) on Friday 07-03; area 801 is Utah only.
        assert_eq!(states_of("+18015550143", None), vec!["US-UT".to_string()]);
        assert!(forbid("us_states", "+18015550143", None, "2026-07-03T18:00:00Z").is_some());
        assert_eq!(forbid("us_states", "+18015550143", None, "2026-07-02T18:00:00Z"), None);
    }
}
