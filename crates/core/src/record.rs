//! Contact-list records (seed 002): one phone number each, grouped into chains per customer.

use crate::error::{FieldError, Problems};
use crate::ids::*;
use crate::phone::PhoneNumber;
use crate::time::TimeZone;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

string_enum! {
    pub enum PhoneType { Home = "home", Work = "work", Mobile = "mobile", Other = "other" }
}

string_enum! {
    /// Whether and how a record is to be dialed (CX Contact's record types).
    pub enum RecordType {
        General = "general",
        CampaignRescheduled = "campaign_rescheduled",
        PersonalCallback = "personal_callback",
        CampaignCallback = "campaign_callback",
        NoCall = "no_call",
        Unknown = "unknown",
    }
}

string_enum! {
    /// The latest processing status of a record.
    pub enum RecordStatus {
        Ready = "ready",
        Retrieved = "retrieved",
        Updated = "updated",
        Stale = "stale",
        Cancelled = "cancelled",
        AgentError = "agent_error",
        MissedCallback = "missed_callback",
        ChainReady = "chain_ready",
        Completed = "completed",
    }
}

string_enum! {
    /// The catalogue of call outcomes, from the network, call analysis or the agent.
    pub enum CallResult {
        Answered = "answered",
        Busy = "busy",
        NoAnswer = "no_answer",
        AnsweringMachine = "answering_machine",
        Fax = "fax",
        SitInvalid = "sit_invalid",
        SitVacant = "sit_vacant",
        SitNoCircuit = "sit_no_circuit",
        SitReorder = "sit_reorder",
        SitIntercept = "sit_intercept",
        NetworkFailure = "network_failure",
        Abandoned = "abandoned",
        Dropped = "dropped",
        Cancelled = "cancelled",
        DialError = "dial_error",
        SystemError = "system_error",
        WrongParty = "wrong_party",
        RightParty = "right_party",
        DoNotCall = "do_not_call",
        AgentCallback = "agent_callback",
    }
}

impl CallResult {
    /// A person answered (counts toward abandon accounting when not connected in time).
    pub fn is_live_answer(self) -> bool {
        matches!(
            self,
            CallResult::Answered
                | CallResult::Abandoned
                | CallResult::WrongParty
                | CallResult::RightParty
                | CallResult::AgentCallback
                | CallResult::DoNotCall
        )
    }
}

string_enum! {
    /// The type of a contact list's custom column; values are checked on import.
    pub enum ColumnKind {
        Text = "text",
        Number = "number",
        Date = "date",
        Phone = "phone",
        TimeZone = "time_zone",
        PostalCode = "postal_code",
    }
}

impl ColumnKind {
    /// Parses a cell of this kind into its stored JSON value.
    pub fn parse_value(self, raw: &str, default_country: Option<crate::phone::CountryCode>) -> Result<serde_json::Value, String> {
        let s = raw.trim();
        Ok(match self {
            ColumnKind::Text => serde_json::Value::String(raw.to_string()),
            ColumnKind::Number => {
                let n: f64 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
                if !n.is_finite() {
                    return Err(format!("'{s}' is not a finite number"));
                }
                serde_json::json!(n)
            }
            ColumnKind::Date => {
                let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("'{s}' is not a date as YYYY-MM-DD"))?;
                serde_json::Value::String(d.to_string())
            }
            ColumnKind::Phone => serde_json::Value::String(PhoneNumber::parse(s, default_country).map_err(|e| e.reason)?.to_string()),
            ColumnKind::TimeZone => serde_json::Value::String(TimeZone::parse(s).map_err(|e| e.reason)?.name().to_string()),
            ColumnKind::PostalCode => {
                let ok = !s.is_empty() && s.len() <= 12 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
                if !ok {
                    return Err(format!("'{s}' is not a postal code"));
                }
                serde_json::Value::String(s.to_ascii_uppercase())
            }
        })
    }
}

/// A typed custom column of a contact list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomColumn {
    pub name: String,
    pub kind: ColumnKind,
}

pub const MAX_CUSTOM_COLUMNS: usize = 100;

/// A record as stored: one phone number of one customer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Record {
    pub id: RecordId,
    pub list_id: ContactListId,
    /// The customer this number belongs to; records of one chain share it.
    pub chain_id: ChainId,
    /// 1 for the first number of the chain, 2 for the second, ...
    pub chain_position: i32,
    /// The source system's id for the customer (CRM campaign member id).
    pub external_id: Option<String>,
    pub phone: PhoneNumber,
    pub phone_type: PhoneType,
    pub record_type: RecordType,
    pub record_status: RecordStatus,
    pub attempts_total: i32,
    pub attempts_today: i32,
    /// The contact-local day `attempts_today` counts.
    pub attempts_day: Option<NaiveDate>,
    /// Not to be dialed before this moment.
    pub dial_from: Option<DateTime<Utc>>,
    /// Not to be dialed after this moment.
    pub dial_until: Option<DateTime<Utc>>,
    /// Explicit zone; when absent the engine derives it from the postal code or the number.
    pub time_zone: Option<TimeZone>,
    pub postal_code: Option<String>,
    pub name: String,
    pub sort_value: Option<String>,
    /// Custom column values, typed by the list's columns.
    pub custom: serde_json::Map<String, serde_json::Value>,
    pub last_result: Option<CallResult>,
    pub last_call_at: Option<DateTime<Utc>>,
    pub callback_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Record {
    /// A new, never-dialed general record: the first number of its own chain, no zone, no
    /// custom fields (simulations and tests; imports build records in the store).
    pub fn fresh(id: RecordId, list_id: ContactListId, phone: PhoneNumber, now: DateTime<Utc>) -> Record {
        Record {
            id,
            list_id,
            chain_id: ChainId(id.0),
            chain_position: 1,
            external_id: None,
            phone,
            phone_type: PhoneType::Home,
            record_type: RecordType::General,
            record_status: RecordStatus::Ready,
            attempts_total: 0,
            attempts_today: 0,
            attempts_day: None,
            dial_from: None,
            dial_until: None,
            time_zone: None,
            postal_code: None,
            name: String::new(),
            sort_value: None,
            custom: serde_json::Map::new(),
            last_result: None,
            last_call_at: None,
            callback_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// One phone of a customer in an upsert.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneInput {
    /// E.164, or national when the list has a default country.
    pub number: String,
    #[serde(rename = "type", default = "default_phone_type")]
    pub phone_type: PhoneType,
}

fn default_phone_type() -> PhoneType {
    PhoneType::Other
}

/// A customer (chain) as a CRM pushes it: up to 10 phones and the customer's fields.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactUpsert {
    #[serde(default)]
    pub name: String,
    pub phones: Vec<PhoneInput>,
    pub time_zone: Option<TimeZone>,
    pub postal_code: Option<String>,
    pub sort_value: Option<String>,
    pub dial_from: Option<DateTime<Utc>>,
    pub dial_until: Option<DateTime<Utc>>,
    #[serde(default = "default_record_type")]
    pub record_type: RecordType,
    #[serde(default)]
    pub custom: serde_json::Map<String, serde_json::Value>,
}

fn default_record_type() -> RecordType {
    RecordType::General
}

/// A parsed, validated customer ready for the store: the same shape from CSV rows and API upserts.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub external_id: Option<String>,
    pub name: String,
    pub phones: Vec<(PhoneType, PhoneNumber)>,
    pub time_zone: Option<TimeZone>,
    pub postal_code: Option<String>,
    pub sort_value: Option<String>,
    pub dial_from: Option<DateTime<Utc>>,
    pub dial_until: Option<DateTime<Utc>>,
    pub record_type: RecordType,
    pub custom: serde_json::Map<String, serde_json::Value>,
}

pub const MAX_PHONES_PER_CHAIN: usize = 10;

/// Checks an external id as given in a URL or a file.
pub fn parse_external_id(s: &str) -> Result<String, FieldError> {
    let t = s.trim();
    if t.is_empty() || t.len() > 128 || t.chars().any(|c| c.is_control()) {
        return Err(FieldError::new("external_id", format!("'{s}' must be 1 to 128 printable characters")));
    }
    Ok(t.to_string())
}

impl ContactUpsert {
    /// Parses the upsert against the list's columns and default country.
    pub fn into_contact(
        self,
        external_id: Option<String>,
        columns: &[CustomColumn],
        default_country: Option<crate::phone::CountryCode>,
    ) -> Result<Contact, Vec<FieldError>> {
        let mut p = Problems::default();
        p.check(!self.phones.is_empty(), "phones", || "at least one phone is required".into());
        p.check(self.phones.len() <= MAX_PHONES_PER_CHAIN, "phones", || format!("at most {MAX_PHONES_PER_CHAIN} phones per customer"));
        let mut phones = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, ph) in self.phones.iter().enumerate() {
            match PhoneNumber::parse(&ph.number, default_country) {
                Ok(n) => {
                    if seen.insert(n.clone()) {
                        phones.push((ph.phone_type, n));
                    } else {
                        p.push(FieldError::new(format!("phones[{i}].number"), format!("{n} is listed twice")));
                    }
                }
                Err(e) => p.push(e.renamed(format!("phones[{i}].number"))),
            }
        }
        if let (Some(f), Some(u)) = (self.dial_from, self.dial_until) {
            p.check(f < u, "dial_until", || format!("{u} is not after dial_from {f}"));
        }
        let postal_code = match self.postal_code.as_deref().map(|s| ColumnKind::PostalCode.parse_value(s, None)) {
            None => None,
            Some(Ok(v)) => v.as_str().map(str::to_string),
            Some(Err(r)) => {
                p.push(FieldError::new("postal_code", r));
                None
            }
        };
        let mut custom = serde_json::Map::new();
        for (k, v) in self.custom {
            match columns.iter().find(|c| c.name == k) {
                None => p.push(FieldError::new(format!("custom.{k}"), "is not a column of this list")),
                Some(col) => {
                    let raw = match &v {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Null => continue,
                        other => other.to_string(),
                    };
                    match col.kind.parse_value(&raw, default_country) {
                        Ok(val) => {
                            custom.insert(k, val);
                        }
                        Err(r) => p.push(FieldError::new(format!("custom.{k}"), r)),
                    }
                }
            }
        }
        p.check(self.name.len() <= 500, "name", || "at most 500 bytes".into());
        p.into_result()?;
        Ok(Contact {
            external_id,
            name: self.name,
            phones,
            time_zone: self.time_zone,
            postal_code,
            sort_value: self.sort_value,
            dial_from: self.dial_from,
            dial_until: self.dial_until,
            record_type: self.record_type,
            custom,
        })
    }
}

fn present<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A supervisor's change to one record. Absent fields stay; `null` clears a time or zone.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordPatch {
    pub record_type: Option<RecordType>,
    pub record_status: Option<RecordStatus>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub dial_from: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub dial_until: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub callback_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub time_zone: Option<Option<TimeZone>>,
}

impl RecordPatch {
    /// Applies the patch to a copy of `r`, checking the result.
    pub fn apply(&self, r: &Record) -> Result<Record, Vec<FieldError>> {
        let mut n = r.clone();
        if let Some(t) = self.record_type {
            n.record_type = t;
        }
        if let Some(s) = self.record_status {
            n.record_status = s;
        }
        if let Some(v) = self.dial_from {
            n.dial_from = v;
        }
        if let Some(v) = self.dial_until {
            n.dial_until = v;
        }
        if let Some(v) = self.callback_at {
            n.callback_at = v;
        }
        if let Some(v) = self.time_zone {
            n.time_zone = v;
        }
        let mut p = Problems::default();
        if let (Some(f), Some(u)) = (n.dial_from, n.dial_until) {
            p.check(f < u, "dial_until", || format!("{u} is not after dial_from {f}"));
        }
        let callback_type = matches!(n.record_type, RecordType::PersonalCallback | RecordType::CampaignCallback);
        p.check(!callback_type || n.callback_at.is_some(), "callback_at", || format!("a {} record needs callback_at", n.record_type));
        p.into_result()?;
        Ok(n)
    }
}

/// A number on a do-not-call list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DncEntryInput {
    pub phone: PhoneNumber,
    /// The entry stops applying at this moment; permanent when absent.
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub reason: String,
    /// Who asked: `agent`, `customer`, `import`, `regulator`, ...
    #[serde(default)]
    pub source: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DncEntry {
    pub list_id: DncListId,
    #[serde(flatten)]
    pub input: DncEntryInput,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsert_validation_names_every_field() {
        let u: ContactUpsert = serde_json::from_value(serde_json::json!({
            "phones": [{"number": "+12125550143", "type": "home"}, {"number": "nope"}, {"number": "+1 212 555 0143"}],
            "postal_code": "!!",
            "custom": {"balance": "abc", "unknown": 1}
        }))
        .unwrap();
        let cols = vec![CustomColumn { name: "balance".into(), kind: ColumnKind::Number }];
        let errs = u.into_contact(Some("m1".into()), &cols, None).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["phones[1].number", "phones[2].number", "postal_code", "custom.balance", "custom.unknown"]);
    }
}
