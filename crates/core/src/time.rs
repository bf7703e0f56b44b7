//! Time zones (IANA, via chrono-tz), local times of day, daily hours and weekdays.

use crate::error::FieldError;
use chrono::{NaiveTime, Timelike, Weekday};
use serde::{Deserialize, Serialize};

/// An IANA time zone such as `America/Chicago`. DST comes from the IANA database, never from
/// a fixed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeZone(pub chrono_tz::Tz);

impl TimeZone {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        s.trim()
            .parse::<chrono_tz::Tz>()
            .map(TimeZone)
            .map_err(|_| FieldError::new("time_zone", format!("'{s}' is not an IANA time zone name (e.g. America/Chicago, Europe/Madrid)")))
    }
    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

impl Serialize for TimeZone {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}
impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TimeZone::parse(&s).map_err(|e| serde::de::Error::custom(e.reason))
    }
}
impl utoipa::PartialSchema for TimeZone {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("IANA time zone name"))
            .examples([serde_json::json!("America/Chicago")])
            .into()
    }
}
impl utoipa::ToSchema for TimeZone {}

/// A wall-clock time of day, minute precision, written `HH:MM` (24 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime(NaiveTime);

impl LocalTime {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        NaiveTime::parse_from_str(s.trim(), "%H:%M")
            .map(LocalTime)
            .map_err(|_| FieldError::new("time", format!("'{s}' is not a time of day as HH:MM (24 h), e.g. 08:00")))
    }
    pub fn hm(h: u32, m: u32) -> Self {
        LocalTime(NaiveTime::from_hms_opt(h, m, 0).expect("valid hour and minute"))
    }
    pub fn naive(&self) -> NaiveTime {
        self.0
    }
    pub fn minutes_from_midnight(&self) -> u32 {
        self.0.hour() * 60 + self.0.minute()
    }
}
impl std::fmt::Display for LocalTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.format("%H:%M"))
    }
}
impl Serialize for LocalTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        LocalTime::parse(&s).map_err(|e| serde::de::Error::custom(e.reason))
    }
}
impl utoipa::PartialSchema for LocalTime {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-2][0-9]:[0-5][0-9]$"))
            .examples([serde_json::json!("08:00")])
            .into()
    }
}
impl utoipa::ToSchema for LocalTime {}

/// A daily window `[start, end)`; `start` is strictly before `end` (no overnight windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "DailyHoursRaw")]
pub struct DailyHours {
    pub start: LocalTime,
    pub end: LocalTime,
}

#[derive(Deserialize)]
struct DailyHoursRaw {
    start: LocalTime,
    end: LocalTime,
}

impl TryFrom<DailyHoursRaw> for DailyHours {
    type Error = String;
    fn try_from(r: DailyHoursRaw) -> Result<Self, String> {
        DailyHours::new(r.start, r.end).map_err(|e| e.reason)
    }
}

impl DailyHours {
    pub fn new(start: LocalTime, end: LocalTime) -> Result<Self, FieldError> {
        if start >= end {
            return Err(FieldError::new("daily_hours", format!("start {start} must be before end {end} (windows do not cross midnight)")));
        }
        Ok(DailyHours { start, end })
    }
    pub fn contains(&self, t: NaiveTime) -> bool {
        t >= self.start.naive() && t < self.end.naive()
    }
}

/// A set of weekdays, serialised as a list such as `["mon","tue"]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Weekdays(u8);

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Weekdays {
    pub const ALL: Weekdays = Weekdays(0b111_1111);
    pub const MON_FRI: Weekdays = Weekdays(0b001_1111);
    pub fn contains(&self, d: Weekday) -> bool {
        self.0 & (1 << d.num_days_from_monday()) != 0
    }
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }
    pub fn names(&self) -> Vec<&'static str> {
        (0..7).filter(|i| self.0 & (1 << i) != 0).map(|i| DAY_NAMES[i]).collect()
    }
    pub fn parse_list<S: AsRef<str>>(items: &[S]) -> Result<Self, FieldError> {
        let mut bits = 0u8;
        for it in items {
            let s = it.as_ref().trim().to_ascii_lowercase();
            let i = DAY_NAMES.iter().position(|d| s.starts_with(d)).ok_or_else(|| {
                FieldError::new("weekdays", format!("'{}' is not a weekday (mon, tue, wed, thu, fri, sat, sun)", it.as_ref()))
            })?;
            bits |= 1 << i;
        }
        if bits == 0 {
            return Err(FieldError::new("weekdays", "at least one weekday is required"));
        }
        Ok(Weekdays(bits))
    }
    /// Compact form for storage: `mon,tue,wed`.
    pub fn to_csv(&self) -> String {
        self.names().join(",")
    }
    pub fn from_csv(s: &str) -> Result<Self, FieldError> {
        let parts: Vec<&str> = s.split(',').filter(|p| !p.trim().is_empty()).collect();
        Weekdays::parse_list(&parts)
    }
}

impl Serialize for Weekdays {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}
impl<'de> Deserialize<'de> for Weekdays {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        Weekdays::parse_list(&v).map_err(|e| serde::de::Error::custom(e.reason))
    }
}
impl utoipa::PartialSchema for Weekdays {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ArrayBuilder::new()
            .items(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::String).enum_values(Some(DAY_NAMES)))
            .examples([serde_json::json!(["mon", "tue", "wed", "thu", "fri"])])
            .into()
    }
}
impl utoipa::ToSchema for Weekdays {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(TimeZone::parse("America/Chicago").unwrap().name(), "America/Chicago");
        assert!(TimeZone::parse("CST").unwrap_err().reason.contains("IANA"));
        assert!(LocalTime::parse("25:00").is_err());
        assert!(DailyHours::new(LocalTime::hm(21, 0), LocalTime::hm(8, 0)).is_err());
        let w = Weekdays::parse_list(&["Mon", "friday"]).unwrap();
        assert!(w.contains(Weekday::Fri) && !w.contains(Weekday::Sun));
        assert_eq!(Weekdays::from_csv(&w.to_csv()).unwrap(), w);
        assert!(Weekdays::parse_list(&["funday"]).is_err());
    }
}
