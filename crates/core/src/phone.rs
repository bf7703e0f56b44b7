//! Phone numbers in E.164, parsed and validated with `rlibphonenumber` (a port of Google's
//! libphonenumber tested for identical results against the C++ library).

use crate::error::FieldError;
use rlibphonenumber::enums::{PhoneNumberType, Region};
use rlibphonenumber::{PhoneNumberFormat, PHONE_NUMBER_UTIL};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// An ISO 3166-1 alpha-2 region used to read numbers written without `+` (national format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode(Region);

impl CountryCode {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let up = s.trim().to_ascii_uppercase();
        Region::from_str(&up).ok().filter(|r| PHONE_NUMBER_UTIL.get_country_code_for_region(*r).is_some()).map(CountryCode).ok_or_else(
            || {
                FieldError::new(
                    "default_country",
                    format!("'{s}' is not an ISO 3166 two-letter country code known to the phone-number metadata"),
                )
            },
        )
    }
    pub fn as_string(&self) -> String {
        self.0.to_string()
    }
}

impl Serialize for CountryCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}
impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CountryCode::parse(&s).map_err(serde::de::Error::custom)
    }
}
impl utoipa::PartialSchema for CountryCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("ISO 3166-1 alpha-2 country code, e.g. US"))
            .examples([serde_json::json!("US")])
            .into()
    }
}
impl utoipa::ToSchema for CountryCode {}

/// A valid phone number, kept as its E.164 text (`+` and up to 15 digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses what a person or a CRM wrote: E.164 (`+15551230000`), international with spaces
    /// and punctuation, or a national number read in `default_country`.
    pub fn parse(input: &str, default_country: Option<CountryCode>) -> Result<Self, FieldError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(FieldError::new("phone", "is empty"));
        }
        if !trimmed.starts_with('+') && default_country.is_none() && !trimmed.starts_with("00") {
            return Err(FieldError::new("phone", format!("'{trimmed}' has no country code (+...) and no default country was given")));
        }
        let parsed = PHONE_NUMBER_UTIL
            .parse(trimmed, default_country.map(|c| c.0))
            .map_err(|e| FieldError::new("phone", format!("'{trimmed}' is not a phone number ({e})")))?;
        if parsed.extension.as_deref().is_some_and(|x| !x.is_empty()) {
            return Err(FieldError::new("phone", format!("'{trimmed}' has an extension, which cannot be dialed")));
        }
        if !parsed.is_valid() {
            return Err(FieldError::new(
                "phone",
                format!("'{trimmed}' is not a valid number for its country (checked against libphonenumber metadata)"),
            ));
        }
        Ok(PhoneNumber(parsed.format_as(PhoneNumberFormat::E164).to_string()))
    }

    /// Accepts only canonical E.164 as stored by Campana (for values read back from the store).
    pub fn from_e164_unchecked_store(s: String) -> Self {
        debug_assert!(s.starts_with('+'));
        PhoneNumber(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits as an integer: E.164 has at most 15 digits, so this is exact and compact
    /// (used for in-memory dedupe of large imports).
    pub fn as_u64(&self) -> u64 {
        self.0[1..].parse().expect("E.164 digits fit in u64 by construction")
    }

    /// The digits without `+`, for prefix lookups.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

/// A number's type from libphonenumber's metadata (`getNumberType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberKind {
    FixedLine,
    Mobile,
    FixedLineOrMobile,
    TollFree,
    PremiumRate,
    SharedCost,
    Voip,
    PersonalNumber,
    Pager,
    Uan,
    Voicemail,
    /// The metadata matches no type (e.g. a number stored before a metadata update).
    Unknown,
}

impl NumberKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            NumberKind::FixedLine => "fixed_line",
            NumberKind::Mobile => "mobile",
            NumberKind::FixedLineOrMobile => "fixed_line_or_mobile",
            NumberKind::TollFree => "toll_free",
            NumberKind::PremiumRate => "premium_rate",
            NumberKind::SharedCost => "shared_cost",
            NumberKind::Voip => "voip",
            NumberKind::PersonalNumber => "personal_number",
            NumberKind::Pager => "pager",
            NumberKind::Uan => "uan",
            NumberKind::Voicemail => "voicemail",
            NumberKind::Unknown => "unknown",
        }
    }
}

/// What the phone-number metadata says about where a number may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberFacts {
    /// Country calling code (`1`, `44`, `7`); `None` when the metadata cannot read the number.
    pub country_code: Option<u16>,
    /// ISO 3166 region the number belongs to (`US`, `KY`, `KZ`), when the metadata knows it.
    pub region: Option<String>,
    pub kind: NumberKind,
    /// libphonenumber's `isNumberTypeGeographical`: fixed-line, fixed-line-or-mobile, and mobile
    /// in the countries whose mobile numbers have area codes (MX, AR, BR, ID, CN). Only a
    /// geographic number's digit prefix says where it is; any other number may be anywhere in
    /// its country.
    pub geographic: bool,
}

impl PhoneNumber {
    /// The number's type, region and calling code, from the metadata of `rlibphonenumber` (the
    /// same data libphonenumber ships).
    pub fn facts(&self) -> NumberFacts {
        let Ok(p) = PHONE_NUMBER_UTIL.parse(self.as_str(), None) else {
            return NumberFacts { country_code: None, region: None, kind: NumberKind::Unknown, geographic: false };
        };
        let kind = match PHONE_NUMBER_UTIL.get_number_type(&p) {
            PhoneNumberType::FixedLine => NumberKind::FixedLine,
            PhoneNumberType::Mobile => NumberKind::Mobile,
            PhoneNumberType::FixedLineOrMobile => NumberKind::FixedLineOrMobile,
            PhoneNumberType::TollFree => NumberKind::TollFree,
            PhoneNumberType::PremiumRate => NumberKind::PremiumRate,
            PhoneNumberType::SharedCost => NumberKind::SharedCost,
            PhoneNumberType::VoIP => NumberKind::Voip,
            PhoneNumberType::PersonalNumber => NumberKind::PersonalNumber,
            PhoneNumberType::Pager => NumberKind::Pager,
            PhoneNumberType::UAN => NumberKind::Uan,
            PhoneNumberType::VoiceMail => NumberKind::Voicemail,
            PhoneNumberType::Unknown => NumberKind::Unknown,
        };
        NumberFacts {
            country_code: u16::try_from(p.country_code).ok(),
            region: PHONE_NUMBER_UTIL.get_region_for_number(&p).map(|r| r.to_string()),
            kind,
            geographic: PHONE_NUMBER_UTIL.is_number_geographical(&p),
        }
    }
}

impl std::fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PhoneNumber::parse(&s, None).map_err(|e| serde::de::Error::custom(e.reason))
    }
}

impl utoipa::PartialSchema for PhoneNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("Phone number in E.164 form"))
            .examples([serde_json::json!("+12125550143")])
            .into()
    }
}
impl utoipa::ToSchema for PhoneNumber {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_e164_and_national() {
        let us = CountryCode::parse("us").unwrap();
        assert_eq!(PhoneNumber::parse("+1 (212) 555-0143", None).unwrap().as_str(), "+12125550143");
        assert_eq!(PhoneNumber::parse("212-555-0143", Some(us)).unwrap().as_str(), "+12125550143");
        let es = CountryCode::parse("ES").unwrap();
        assert_eq!(PhoneNumber::parse("612 345 678", Some(es)).unwrap().as_str(), "+34612345678");
        assert_eq!(PhoneNumber::parse("+34612345678", None).unwrap().as_u64(), 34612345678);
    }

    #[test]
    fn refuses_bad_numbers_with_reason() {
        let e = PhoneNumber::parse("5550143", None).unwrap_err();
        assert!(e.reason.contains("no country code"), "{e}");
        assert!(PhoneNumber::parse("+1 212 555", None).is_err());
        assert!(PhoneNumber::parse("hello", Some(CountryCode::parse("US").unwrap())).is_err());
        assert!(PhoneNumber::parse("", None).is_err());
        assert!(CountryCode::parse("XX").is_err());
    }
}
