//! Every shipped calling-hours rule (data/calling-hours.toml) with a dated example, and the
//! holiday rules (Easter, n-th weekday, observed and substitute days) on known dates.
//!
//! Each row: rule set, the region rule it exercises (`base` for the set's own rule), a number (and
//! ZIP code) in that region, the contact's local date-time, whether a call is allowed, and why.
//! `every_region_rule_has_a_dated_example` fails when a shipped region rule stricter than its set
//! has no row here.

use campana_core::PhoneNumber;
use campana_engine::rules::{easter_sunday, CallingRules};
use campana_engine::*;
use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use std::collections::BTreeSet;

struct Row {
    set: &'static str,
    rule: &'static str,
    number: &'static str,
    zip: Option<&'static str>,
    zone: &'static str,
    local: &'static str,
    allowed: bool,
    why: &'static str,
}

// One row of the table below, positionally, so that each rule's example fits on one line.
#[allow(clippy::too_many_arguments)]
const fn r(
    set: &'static str,
    rule: &'static str,
    number: &'static str,
    zip: Option<&'static str>,
    zone: &'static str,
    local: &'static str,
    allowed: bool,
    why: &'static str,
) -> Row {
    Row { set, rule, number, zip, zone, local, allowed, why }
}

const NY: &str = "America/New_York";
const CHI: &str = "America/Chicago";
const DEN: &str = "America/Denver";
const LA: &str = "America/Los_Angeles";

#[rustfmt::skip]
const ROWS: &[Row] = &[
    // US federal (47 CFR 64.1200(c)(1)).
    r("default", "base", "+12125550143", None, NY, "2027-03-02T07:59", false, "before 08:00"),
    r("default", "base", "+12125550143", None, NY, "2027-03-02T08:00", true, "08:00 opens"),
    r("default", "base", "+12125550143", None, NY, "2027-03-02T20:59", true, "before 21:00"),
    r("default", "base", "+12125550143", None, NY, "2027-03-02T21:00", false, "21:00 closes"),
    r("us_states", "base", "+12125550143", None, NY, "2027-03-07T20:30", true, "New York: the federal window, Sundays too"),
    // Alabama.
    r("us_states", "US-AL", "+12055550143", Some("35203"), CHI, "2027-03-02T19:59", true, "before 20:00"),
    r("us_states", "US-AL", "+12055550143", Some("35203"), CHI, "2027-03-02T20:00", false, "20:00 closes"),
    r("us_states", "US-AL", "+12055550143", Some("35203"), CHI, "2027-03-07T12:00", false, "Sunday"),
    r("us_states", "US-AL", "+12055550143", Some("35203"), CHI, "2027-01-18T12:00", false, "3rd Monday of January (Robert E. Lee / MLK Day)"),
    r("us_states", "US-AL", "+12055550143", Some("35203"), CHI, "2027-01-19T12:00", true, "the Tuesday after"),
    r("us_states", "US-AL", "+12055550143", Some("35203"), CHI, "2027-07-05T12:00", false, "July 4 on a Sunday is observed Monday July 5"),
    r("us_states", "US-AL", "+12055550143", Some("35203"), CHI, "2026-07-03T12:00", false, "July 4 on a Saturday is observed Friday July 3"),
    r("us_states", "US-AL", "+12055550143", Some("35203"), CHI, "2027-05-31T12:00", false, "last Monday of May (Memorial Day)"),
    r("us_states", "US-AL", "+12055550143", Some("35203"), CHI, "2027-11-25T12:00", false, "4th Thursday of November (Thanksgiving)"),
    // Connecticut, Florida, Kentucky, Massachusetts, Maryland, Michigan, Minnesota.
    r("us_states", "US-CT", "+12035550143", Some("06103"), NY, "2027-03-02T08:30", false, "before 09:00"),
    r("us_states", "US-CT", "+12035550143", Some("06103"), NY, "2027-03-02T09:00", true, "09:00 opens"),
    r("us_states", "US-CT", "+12035550143", Some("06103"), NY, "2027-03-02T20:00", false, "20:00 closes"),
    r("us_states", "US-FL", "+13055550143", Some("33101"), NY, "2027-03-02T19:59", true, "before 20:00"),
    r("us_states", "US-FL", "+13055550143", Some("33101"), NY, "2027-03-02T20:00", false, "20:00 closes"),
    r("us_states", "US-KY", "+15025550143", Some("40202"), NY, "2027-03-02T09:59", false, "before 10:00"),
    r("us_states", "US-KY", "+15025550143", Some("40202"), NY, "2027-03-02T10:00", true, "10:00 opens"),
    r("us_states", "US-MA", "+16175550143", Some("02108"), NY, "2027-03-02T20:00", false, "20:00 closes"),
    r("us_states", "US-MA", "+16175550143", Some("02108"), NY, "2027-03-02T19:00", true, "19:00"),
    r("us_states", "US-MD", "+14105550143", Some("21201"), NY, "2027-03-02T20:30", false, "after 20:00"),
    r("us_states", "US-MI", "+13135550143", Some("48226"), NY, "2027-03-02T08:30", false, "before 09:00"),
    r("us_states", "US-MI", "+13135550143", Some("48226"), NY, "2027-03-02T09:00", true, "09:00 opens"),
    r("us_states", "US-MN", "+16125550143", Some("55401"), CHI, "2027-03-02T08:30", false, "before 09:00"),
    // Louisiana.
    r("us_states", "US-LA", "+15045550143", Some("70112"), CHI, "2027-03-07T12:00", false, "Sunday"),
    r("us_states", "US-LA", "+15045550143", Some("70112"), CHI, "2027-02-09T12:00", false, "Mardi Gras (Easter - 47)"),
    r("us_states", "US-LA", "+15045550143", Some("70112"), CHI, "2027-03-26T12:00", false, "Good Friday (Easter - 2)"),
    r("us_states", "US-LA", "+15045550143", Some("70112"), CHI, "2027-03-02T20:00", false, "20:00 closes"),
    r("us_states", "US-LA", "+15045550143", Some("70112"), CHI, "2027-03-02T12:00", true, "an ordinary Tuesday"),
    // Mississippi.
    r("us_states", "US-MS", "+16015550143", Some("39201"), CHI, "2027-03-07T12:00", false, "Sunday"),
    r("us_states", "US-MS", "+16015550143", Some("39201"), CHI, "2027-03-02T20:00", false, "20:00 closes"),
    r("us_states", "US-MS", "+16015550143", Some("39201"), CHI, "2027-04-26T12:00", false, "last Monday of April (Confederate Memorial Day)"),
    r("us_states", "US-MS", "+16015550143", Some("39201"), CHI, "2022-12-26T12:00", false, "Christmas on a Sunday is kept on Monday"),
    r("us_states", "US-MS", "+16015550143", Some("39201"), CHI, "2021-12-24T12:00", true, "Christmas on a Saturday: Friday stays open"),
    // Nevada, New Mexico, Oklahoma, Washington.
    r("us_states", "US-NV", "+17025550143", Some("89101"), LA, "2027-03-02T08:30", false, "before 09:00"),
    r("us_states", "US-NV", "+17025550143", Some("89101"), LA, "2027-03-02T20:00", false, "20:00 closes"),
    r("us_states", "US-NM", "+15055550143", Some("87102"), DEN, "2027-03-02T08:30", false, "before 09:00"),
    r("us_states", "US-OK", "+14055550143", Some("73102"), CHI, "2027-03-02T20:00", false, "20:00 closes"),
    r("us_states", "US-WA", "+12065550143", Some("98101"), LA, "2027-03-02T20:00", false, "20:00 closes"),
    // Rhode Island.
    r("us_states", "US-RI", "+14015550143", Some("02903"), NY, "2027-03-02T17:59", true, "weekday before 18:00"),
    r("us_states", "US-RI", "+14015550143", Some("02903"), NY, "2027-03-02T18:00", false, "weekday 18:00 closes"),
    r("us_states", "US-RI", "+14015550143", Some("02903"), NY, "2027-03-06T09:30", false, "Saturday before 10:00"),
    r("us_states", "US-RI", "+14015550143", Some("02903"), NY, "2027-03-06T16:59", true, "Saturday before 17:00"),
    r("us_states", "US-RI", "+14015550143", Some("02903"), NY, "2027-03-06T17:00", false, "Saturday 17:00 closes"),
    r("us_states", "US-RI", "+14015550143", Some("02903"), NY, "2027-03-07T12:00", false, "Sunday"),
    r("us_states", "US-RI", "+14015550143", Some("02903"), NY, "2027-08-09T12:00", false, "2nd Monday of August (Victory Day)"),
    r("us_states", "US-RI", "+14015550143", Some("02903"), NY, "2027-10-11T12:00", false, "2nd Monday of October"),
    // Texas.
    r("us_states", "US-TX", "+12145550143", Some("75201"), CHI, "2027-03-07T11:59", false, "Sunday before noon"),
    r("us_states", "US-TX", "+12145550143", Some("75201"), CHI, "2027-03-07T12:00", true, "Sunday noon"),
    r("us_states", "US-TX", "+12145550143", Some("75201"), CHI, "2027-03-02T08:59", false, "weekday before 09:00"),
    // Utah.
    r("us_states", "US-UT", "+18015550143", Some("84111"), DEN, "2027-07-24T12:00", false, "Pioneer Day"),
    r("us_states", "US-UT", "+18015550143", Some("84111"), DEN, "2027-07-23T12:00", false, "Pioneer Day on a Saturday is observed Friday"),
    r("us_states", "US-UT", "+18015550143", Some("84111"), DEN, "2027-07-22T12:00", true, "an ordinary Thursday"),
    r("us_states", "US-UT", "+18015550143", Some("84111"), DEN, "2027-12-31T12:00", false, "New Year's Day 2028 on a Saturday is observed Friday Dec 31"),
    // Canada (CRTC).
    r("canada", "base", "+14165550143", None, "America/Toronto", "2027-03-02T08:59", false, "weekday before 09:00"),
    r("canada", "base", "+14165550143", None, "America/Toronto", "2027-03-02T21:29", true, "weekday before 21:30"),
    r("canada", "base", "+14165550143", None, "America/Toronto", "2027-03-02T21:30", false, "weekday 21:30 closes"),
    r("canada", "base", "+14165550143", None, "America/Toronto", "2027-03-06T09:59", false, "Saturday before 10:00"),
    r("canada", "base", "+14165550143", None, "America/Toronto", "2027-03-07T17:59", true, "Sunday before 18:00"),
    r("canada", "base", "+14165550143", None, "America/Toronto", "2027-03-07T18:00", false, "Sunday 18:00 closes"),
    // Australia (Industry Standard 2017).
    r("australia", "base", "+61291234567", None, "Australia/Sydney", "2027-03-02T19:59", true, "weekday before 20:00"),
    r("australia", "base", "+61291234567", None, "Australia/Sydney", "2027-03-02T20:00", false, "weekday 20:00 closes"),
    r("australia", "base", "+61291234567", None, "Australia/Sydney", "2027-03-02T08:59", false, "before 09:00"),
    r("australia", "base", "+61291234567", None, "Australia/Sydney", "2027-03-06T16:59", true, "Saturday before 17:00"),
    r("australia", "base", "+61291234567", None, "Australia/Sydney", "2027-03-06T17:00", false, "Saturday 17:00 closes"),
    r("australia", "base", "+61291234567", None, "Australia/Sydney", "2027-03-07T12:00", false, "Sunday"),
    r("australia", "base", "+61291234567", None, "Australia/Sydney", "2027-03-26T12:00", false, "Good Friday"),
    r("australia", "base", "+61291234567", None, "Australia/Sydney", "2027-03-29T12:00", false, "Easter Monday"),
    r("australia", "base", "+61291234567", None, "Australia/Sydney", "2028-04-25T12:00", false, "Anzac Day"),
    r("australia", "base", "+61291234567", None, "Australia/Sydney", "2025-01-27T12:00", false, "Australia Day on a Sunday: substitute Monday"),
    r("australia", "base", "+61291234567", None, "Australia/Sydney", "2027-12-27T12:00", false, "Christmas on a Saturday: substitute Monday"),
    r("australia", "base", "+61291234567", None, "Australia/Sydney", "2027-12-28T12:00", false, "Boxing Day on a Sunday: substitute Tuesday"),
    r("australia", "base", "+61291234567", None, "Australia/Sydney", "2027-12-29T12:00", true, "the Wednesday after"),
    // United Kingdom.
    r("uk", "base", "+442071234567", None, "Europe/London", "2027-03-02T08:00", true, "08:00 opens"),
    r("uk", "base", "+442071234567", None, "Europe/London", "2027-03-02T21:00", false, "21:00 closes"),
    r("uk", "base", "+442071234567", None, "Europe/London", "2027-03-29T12:00", false, "Easter Monday"),
    r("uk", "base", "+442071234567", None, "Europe/London", "2027-05-03T12:00", false, "early May bank holiday (1st Monday)"),
    r("uk", "base", "+442071234567", None, "Europe/London", "2027-08-30T12:00", false, "summer bank holiday (last Monday of August)"),
    r("uk", "base", "+442071234567", None, "Europe/London", "2027-12-28T12:00", false, "Boxing Day substitute (Tuesday)"),
    r("uk", "base", "+442071234567", None, "Europe/London", "2027-12-29T12:00", true, "the Wednesday after"),
    // Europe by country prefix.
    r("europe", "+33", "+33123456789", None, "Europe/Paris", "2027-03-02T09:59", false, "before 10:00"),
    r("europe", "+33", "+33123456789", None, "Europe/Paris", "2027-03-02T10:00", true, "10:00 opens"),
    r("europe", "+33", "+33123456789", None, "Europe/Paris", "2027-03-02T13:30", false, "lunch break"),
    r("europe", "+33", "+33123456789", None, "Europe/Paris", "2027-03-02T20:00", false, "20:00 closes"),
    r("europe", "+33", "+33123456789", None, "Europe/Paris", "2027-03-06T11:00", false, "Saturday"),
    r("europe", "+33", "+33123456789", None, "Europe/Paris", "2027-03-29T11:00", false, "Easter Monday"),
    r("europe", "+33", "+33123456789", None, "Europe/Paris", "2027-05-06T11:00", false, "Ascension (Easter + 39)"),
    r("europe", "+33", "+33123456789", None, "Europe/Paris", "2027-05-17T11:00", false, "Whit Monday (Easter + 50)"),
    r("europe", "+33", "+33123456789", None, "Europe/Paris", "2027-07-14T11:00", false, "Bastille Day"),
    r("europe", "+49", "+4930123456", None, "Europe/Berlin", "2027-03-29T10:00", false, "2027-03-29 is Easter Monday in Germany"),
    r("europe", "+49", "+4930123456", None, "Europe/Berlin", "2027-03-26T10:00", false, "Good Friday"),
    r("europe", "+49", "+4930123456", None, "Europe/Berlin", "2028-10-03T10:00", false, "German Unity Day"),
    r("europe", "+49", "+4930123456", None, "Europe/Berlin", "2027-03-07T10:00", false, "Sunday"),
    r("europe", "+49", "+4930123456", None, "Europe/Berlin", "2027-03-06T10:00", true, "Saturday"),
    r("europe", "+49", "+4930123456", None, "Europe/Berlin", "2027-03-02T20:00", false, "20:00 closes"),
    r("europe", "+34", "+34912345678", None, "Europe/Madrid", "2027-03-02T08:59", false, "before 09:00"),
    r("europe", "+34", "+34912345678", None, "Europe/Madrid", "2027-03-02T09:00", true, "09:00 opens"),
    r("europe", "+34", "+34912345678", None, "Europe/Madrid", "2027-03-06T12:00", false, "Saturday"),
    r("europe", "+34", "+34912345678", None, "Europe/Madrid", "2027-03-26T12:00", false, "Good Friday"),
    r("europe", "+34", "+34912345678", None, "Europe/Madrid", "2027-10-12T12:00", false, "Fiesta Nacional"),
    r("europe", "+34", "+34612345678", None, "Europe/Madrid", "2027-03-02T09:30", false, "a Spanish mobile may be in the Canaries, where it is 08:30"),
    r("europe", "+34", "+34612345678", None, "Europe/Madrid", "2027-03-02T10:00", true, "10:00 Madrid, 09:00 Canaries"),
    r("europe", "+44", "+442071234567", None, "Europe/London", "2027-03-02T21:00", false, "21:00 closes"),
    r("europe", "+39", "+390612345678", None, "Europe/Rome", "2027-03-07T20:59", true, "Italy: the set's window, Sundays too"),
];

fn local_to_utc(zone: &str, local: &str) -> chrono::DateTime<chrono::Utc> {
    let tz: Tz = zone.parse().expect("zone");
    let l = NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M").expect("local date-time");
    tz.from_local_datetime(&l).single().expect("not in a DST gap").to_utc()
}

#[test]
fn every_shipped_rule_on_its_dated_examples() {
    let mut wrong = Vec::new();
    for row in ROWS {
        let num = PhoneNumber::parse(row.number, None).expect("valid test number");
        let rep = check_number(&num, row.zip, local_to_utc(row.zone, row.local), row.set);
        let rule_applied = rep.region_rule.clone().unwrap_or_else(|| "base".into());
        if rep.allowed != row.allowed || (row.rule != "base" && !rule_applied.split(" and ").any(|r| r == row.rule)) {
            wrong.push(format!(
                "{} {} {} {} {}: expected {} ({}), got {} under {rule_applied}: {}",
                row.set,
                row.rule,
                row.number,
                row.zone,
                row.local,
                if row.allowed { "allowed" } else { "blocked" },
                row.why,
                if rep.allowed { "allowed" } else { "blocked" },
                rep.message
            ));
        }
    }
    assert!(wrong.is_empty(), "{} of {} dated examples fail:\n{}", wrong.len(), ROWS.len(), wrong.join("\n"));
}

#[test]
fn every_region_rule_has_a_dated_example() {
    let rules = CallingRules::builtin();
    let covered: BTreeSet<(&str, &str)> = ROWS.iter().map(|r| (r.set, r.rule)).collect();
    let mut missing = Vec::new();
    for (name, set) in &rules.sets {
        if !covered.contains(&(name.as_str(), "base")) && !covered.iter().any(|(s, _)| s == name) {
            missing.push(format!("{name} (base)"));
        }
        let base = set.base.view();
        for (region, rule) in &set.regions {
            let v = rule.view();
            let same_as_base =
                v.hours == base.hours && v.days == base.days && v.closed_weekdays == base.closed_weekdays && v.holidays.is_empty();
            if !same_as_base && !covered.contains(&(name.as_str(), region.as_str())) {
                missing.push(format!("{name}.{region}"));
            }
        }
    }
    assert!(missing.is_empty(), "rules without a dated example: {missing:?}");
}

fn d(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

#[test]
fn easter_is_computed_not_listed() {
    // Known Western Easter Sundays.
    for (y, e) in
        [(2024, "2024-03-31"), (2025, "2025-04-20"), (2026, "2026-04-05"), (2027, "2027-03-28"), (2038, "2038-04-25"), (2285, "2285-03-22")]
    {
        assert_eq!(easter_sunday(y), d(e), "{y}");
    }
}

#[test]
fn holiday_rules_compute_their_dates() {
    let rules = CallingRules::parse(
        r#"
[sets.default]
hours = [["08:00", "21:00"]]
holidays = ["easter+1", "4th thu nov", "last mon may", "mon before 05-25", "sat after 06-19", "07-04 observed", "12-25 substitute", "12-26 substitute", "01-01 observed-monday", "2027-06-03"]
"#,
    )
    .expect("valid");
    let base = &rules.get("default").expect("set").base;
    let y2027 = base.holidays_in(2027);
    for (date, why) in [
        ("2027-03-29", "Easter Monday"),
        ("2027-11-25", "4th Thursday of November"),
        ("2027-05-31", "last Monday of May"),
        ("2027-05-24", "Monday before May 25 (Victoria Day)"),
        ("2027-06-26", "Saturday after June 19 (Midsummer)"),
        ("2027-07-04", "July 4 itself"),
        ("2027-07-05", "July 4 on a Sunday observed Monday"),
        ("2027-12-27", "Christmas on a Saturday: substitute Monday"),
        ("2027-12-28", "Boxing Day on a Sunday: substitute Tuesday"),
        ("2027-06-03", "a one-off date"),
    ] {
        assert!(y2027.contains(&d(date)), "{date} ({why}) not in {y2027:?}");
    }
    assert!(base.is_holiday(d("2026-07-03")), "July 4 2026 (Saturday) observed Friday");
    assert!(base.is_holiday(d("2023-01-02")), "New Year's Day 2023 (Sunday) observed Monday");
    assert!(!base.is_holiday(d("2027-07-06")) && !base.is_holiday(d("2028-06-03")));
    assert!(base.is_holiday(d("2028-04-17")), "Easter Monday 2028");
    for bad in ["easter+x", "6th mon may", "13-01", "mon between 05-25", "07-04 observed-tuesday"] {
        let text = format!("[sets.default]\nhours = [[\"08:00\", \"21:00\"]]\nholidays = [\"{bad}\"]\n");
        let e = CallingRules::parse(&text).expect_err(bad).to_string();
        assert!(e.contains(bad), "{bad}: {e}");
    }
}
