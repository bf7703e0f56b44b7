//! Campaign settings profiles (seed 000 "campaign setting", seed 002 "dialing profile").
//!
//! A profile is a [`SettingsFields`]: every field optional. A campaign carries its own
//! [`SettingsFields`] of overrides. The *effective* settings of a campaign are, field by field,
//! the campaign's override, else the profile's value, else Campana's default; [`effective`]
//! returns them together with where each value came from.

use crate::error::{FieldError, Problems};
use crate::ids::{AgentGroupId, DncListId, ScriptId};
use crate::phone::PhoneNumber;
use crate::record::CallResult;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

string_enum! {
    /// How the dialer paces calls (see docs/dialing.md).
    pub enum DialingMode {
        /// The agent sees the record first, then dials (or skips).
        Preview = "preview",
        /// One call per free agent.
        Progressive = "progressive",
        /// A fixed number of lines per agent (`lines_per_agent`).
        Power = "power",
        /// Adaptive lines per agent under the abandon cap.
        Predictive = "predictive",
        /// No agents: answered calls hear a message or IVR.
        Agentless = "agentless",
    }
}

string_enum! {
    /// What happens when a preview record is not acted on within `preview_timeout_s`.
    pub enum PreviewTimeoutAction { Skip = "skip", Dial = "dial" }
}

string_enum! {
    /// How abandoned calls are counted against `abandon_rate_max`.
    pub enum AbandonPolicy {
        /// US FCC (47 CFR 64.1200(a)(7)): per campaign over a rolling 30 days; live answers only.
        UsFcc30d = "us_fcc_30d",
        /// UK Ofcom: per campaign over 24 hours; answering-machine detections counted as the
        /// regulator's "calls to live persons" estimate requires.
        UkOfcom24h = "uk_ofcom_24h",
    }
}

string_enum! {
    /// What to do when answering-machine detection says "machine".
    pub enum MachineAction { HangUp = "hang_up", LeaveMessage = "leave_message", ConnectAgent = "connect_agent" }
}

string_enum! {
    /// After the retries of a treatment are used up.
    pub enum AfterRetries {
        /// Try the next number of the customer's chain.
        NextInChain = "next_in_chain",
        /// Mark the record completed with this result.
        Final = "final",
        /// Mark the number "no call": never dial it again.
        NoCall = "no_call",
    }
}

string_enum! { pub enum SortKind { Numeric = "numeric", Alphabetic = "alphabetic" } }
string_enum! { pub enum SortDirection { Asc = "asc", Desc = "desc" } }
string_enum! {
    pub enum FilterOp {
        Eq = "eq", Ne = "ne", Lt = "lt", Le = "le", Gt = "gt", Ge = "ge",
        Contains = "contains", Empty = "empty", NotEmpty = "not_empty",
    }
}

/// Call-analysis options (SIT, fax and answering-machine detection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct CallAnalysis {
    pub amd_enabled: bool,
    pub amd_action: MachineAction,
    /// Silence after answer longer than this means "machine".
    pub amd_initial_silence_ms: u32,
    /// A greeting longer than this means "machine".
    pub amd_greeting_ms: u32,
    /// More words than this in the greeting means "machine".
    pub amd_max_words: u32,
    pub fax_detection: bool,
    pub sit_detection: bool,
}

impl CallAnalysis {
    /// What telephony is asked to listen for on each call.
    pub fn dial_analysis(&self) -> crate::telephony::DialAnalysis {
        crate::telephony::DialAnalysis {
            machine: self.amd_enabled.then_some(crate::telephony::MachineTuning {
                initial_silence_ms: self.amd_initial_silence_ms,
                greeting_ms: self.amd_greeting_ms,
                max_words: self.amd_max_words,
            }),
            fax: self.fax_detection,
            sit: self.sit_detection,
        }
    }
}

impl Default for CallAnalysis {
    fn default() -> Self {
        CallAnalysis {
            amd_enabled: false,
            amd_action: MachineAction::HangUp,
            amd_initial_silence_ms: 2500,
            amd_greeting_ms: 2000,
            amd_max_words: 3,
            fax_detection: true,
            sit_detection: true,
        }
    }
}

/// What happens after a call ends with `call_result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Treatment {
    pub call_result: CallResult,
    /// Wait before the next attempt on the same number.
    pub retry_after_s: u32,
    /// How many more attempts after the first; 0 moves on at once.
    #[schema(maximum = 50)]
    pub max_retries: u32,
    pub then: AfterRetries,
}

/// One column of the dialing order (up to 4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SortKey {
    /// A record field (`sort_value`, `name`, `postal_code`, `attempts_total`, ...) or a custom column.
    pub field: String,
    pub kind: SortKind,
    pub direction: SortDirection,
}

/// A condition a record must meet to be dialed by campaigns using this profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordFilter {
    pub field: String,
    pub op: FilterOp,
    #[serde(default)]
    pub value: String,
}

/// Campana's shipped treatments, as CX Contact ships them: busy retries in 5 minutes up to 3
/// times, then the next number of the chain.
pub fn default_treatments() -> Vec<Treatment> {
    use AfterRetries::*;
    use CallResult as R;
    let t = |call_result, retry_after_s, max_retries, then| Treatment { call_result, retry_after_s, max_retries, then };
    vec![
        t(R::Busy, 300, 3, NextInChain),
        t(R::NoAnswer, 3600, 3, NextInChain),
        t(R::AnsweringMachine, 7200, 2, NextInChain),
        t(R::Fax, 0, 0, NoCall),
        t(R::SitInvalid, 0, 0, NoCall),
        t(R::SitVacant, 0, 0, NoCall),
        t(R::SitNoCircuit, 600, 3, NextInChain),
        t(R::SitReorder, 600, 3, NextInChain),
        t(R::SitIntercept, 0, 0, NoCall),
        t(R::NetworkFailure, 120, 3, NextInChain),
        t(R::DialError, 300, 2, NextInChain),
        t(R::SystemError, 300, 3, NextInChain),
        t(R::Dropped, 3600, 2, NextInChain),
        t(R::Abandoned, 259_200, 1, NextInChain),
        t(R::WrongParty, 0, 0, NextInChain),
    ]
}

macro_rules! settings {
    ($( $(#[$m:meta])* $field:ident : $ty:ty = $default:expr ),+ $(,)?) => {
        /// A settings profile's values, or a campaign's overrides: every field optional.
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct SettingsFields {
            $( $(#[$m])* #[serde(default, skip_serializing_if = "Option::is_none")] pub $field: Option<$ty>, )+
        }

        /// The settings a campaign runs with: every field present.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
        pub struct Settings {
            $( $(#[$m])* pub $field: $ty, )+
        }

        impl Default for Settings {
            fn default() -> Self { Settings { $( $field: $default, )+ } }
        }

        /// The effective settings and where each value came from.
        pub fn effective(profile: &SettingsFields, overrides: &SettingsFields) -> Effective {
            let mut sources = BTreeMap::new();
            let d = Settings::default();
            let settings = Settings { $(
                $field: if let Some(v) = &overrides.$field {
                    sources.insert(stringify!($field).to_string(), Source::Campaign); v.clone()
                } else if let Some(v) = &profile.$field {
                    sources.insert(stringify!($field).to_string(), Source::Profile); v.clone()
                } else {
                    sources.insert(stringify!($field).to_string(), Source::Default); d.$field
                },
            )+ };
            Effective { settings, sources }
        }

        impl SettingsFields {
            /// Names of the fields that are set.
            pub fn set_fields(&self) -> Vec<&'static str> {
                let mut v = Vec::new();
                $( if self.$field.is_some() { v.push(stringify!($field)); } )+
                v
            }
        }
    };
}

settings! {
    dialing_mode: DialingMode = DialingMode::Progressive,
    /// Preview mode: seconds the agent has to act on a record.
    #[schema(minimum = 5, maximum = 3600)]
    preview_timeout_s: u32 = 30,
    preview_timeout_action: PreviewTimeoutAction = PreviewTimeoutAction::Skip,
    /// Progressive mode: alert and connect the agent before dialing the customer (seed 004).
    agent_first: bool = false,
    /// Power mode: lines dialed per ready agent (1.0 to 10.0).
    #[schema(minimum = 1.0, maximum = 10.0)]
    lines_per_agent: f64 = 1.0,
    /// Predictive mode: the abandon rate pacing aims for (fraction, 0.02 = 2%).
    #[schema(exclusive_minimum = 0.0, maximum = 0.5)]
    abandon_rate_target: f64 = 0.02,
    /// Never exceeded in any accounting window (fraction, 0.03 = 3%).
    #[schema(exclusive_minimum = 0.0, maximum = 0.5)]
    abandon_rate_max: f64 = 0.03,
    abandon_policy: AbandonPolicy = AbandonPolicy::UsFcc30d,
    /// A live answer not connected to an agent within this is abandoned (regulators: 2 s).
    #[schema(minimum = 500, maximum = 2000)]
    connect_deadline_ms: u32 = 2000,
    /// The agent group (queue) whose agents take this campaign's calls.
    agent_group_id: Option<AgentGroupId> = None,
    script_id: Option<ScriptId> = None,
    /// Do-not-call lists checked besides the internal list.
    dnc_list_ids: Vec<DncListId> = Vec::new(),
    call_analysis: CallAnalysis = CallAnalysis::default(),
    /// Per call result; results without a treatment are final.
    retry_treatments: Vec<Treatment> = default_treatments(),
    /// Dialing order, up to 4 keys.
    #[schema(max_items = 4)]
    sort_order: Vec<SortKey> = Vec::new(),
    #[schema(max_items = 20)]
    record_filters: Vec<RecordFilter> = Vec::new(),
    /// Name of the calling-hours rule set (see docs/dialing.md and data/calling-hours.toml).
    calling_hours_rules: String = "default".to_string(),
    /// When a record has an explicit `time_zone` (typed by the customer or the CRM), use that zone
    /// alone instead of every source's zones (ZIP code, number). Off by default: every source
    /// counts and the most restrictive combination wins. State and country rules always apply.
    explicit_zone_wins: bool = false,
    #[schema(minimum = 1, maximum = 100)]
    max_attempts_per_number: u32 = 5,
    #[schema(minimum = 1, maximum = 300)]
    max_attempts_per_chain: u32 = 12,
    /// Per number per day, the day reset at midnight in the contact's zone.
    #[schema(minimum = 1, maximum = 50)]
    max_attempts_per_day: u32 = 3,
    min_recall_delay_s: u32 = 600,
    /// After an abandoned call, no new call to that number for this long (default 72 h).
    #[schema(minimum = 0, maximum = 2592000)]
    abandon_recall_block_s: u32 = 259_200,
    #[schema(minimum = 5, maximum = 120)]
    ring_timeout_s: u32 = 25,
    /// Presented caller id (From and P-Asserted-Identity).
    caller_id: Option<PhoneNumber> = None,
    /// The SIP trunk calls go out through: a name from the SIP configuration's `[trunks]`;
    /// `None` for the default (top-level) trunk.
    sip_trunk: Option<String> = None,
    recording: bool = false,
    /// After-call work before the agent is ready again.
    #[schema(minimum = 0, maximum = 3600)]
    wrap_up_s: u32 = 30,
}

string_enum! {
    /// Where an effective setting came from.
    pub enum Source { Campaign = "campaign", Profile = "profile", Default = "default" }
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Effective {
    pub settings: Settings,
    /// Field name -> where its value came from.
    pub sources: BTreeMap<String, Source>,
}

impl SettingsFields {
    /// Checks ranges and cross-field rules of the fields that are set.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        let frac = |p: &mut Problems, name: &str, v: Option<f64>| {
            if let Some(v) = v {
                p.check(v > 0.0 && v <= 0.5, name, || format!("{v} must be a fraction in (0, 0.5]; 0.03 means 3%"));
            }
        };
        frac(&mut p, "abandon_rate_target", self.abandon_rate_target);
        frac(&mut p, "abandon_rate_max", self.abandon_rate_max);
        if let (Some(t), Some(m)) = (self.abandon_rate_target, self.abandon_rate_max) {
            p.check(t <= m, "abandon_rate_target", || format!("target {t} is above the maximum {m}"));
        }
        if let Some(l) = self.lines_per_agent {
            p.check((1.0..=10.0).contains(&l), "lines_per_agent", || format!("{l} is outside 1.0..=10.0"));
        }
        let range = |p: &mut Problems, name: &str, v: Option<u32>, lo: u32, hi: u32| {
            if let Some(v) = v {
                p.check((lo..=hi).contains(&v), name, || format!("{v} is outside {lo}..={hi}"));
            }
        };
        range(&mut p, "preview_timeout_s", self.preview_timeout_s, 5, 3600);
        range(&mut p, "connect_deadline_ms", self.connect_deadline_ms, 500, 2000);
        range(&mut p, "ring_timeout_s", self.ring_timeout_s, 5, 120);
        range(&mut p, "max_attempts_per_number", self.max_attempts_per_number, 1, 100);
        range(&mut p, "max_attempts_per_chain", self.max_attempts_per_chain, 1, 300);
        range(&mut p, "max_attempts_per_day", self.max_attempts_per_day, 1, 50);
        range(&mut p, "wrap_up_s", self.wrap_up_s, 0, 3600);
        range(&mut p, "abandon_recall_block_s", self.abandon_recall_block_s, 0, 30 * 86_400);
        if let Some(sort) = &self.sort_order {
            p.check(sort.len() <= 4, "sort_order", || format!("has {} keys; at most 4", sort.len()));
            for (i, k) in sort.iter().enumerate() {
                p.check(!k.field.trim().is_empty(), &format!("sort_order[{i}].field"), || "must not be empty".into());
            }
        }
        if let Some(ts) = &self.retry_treatments {
            let mut seen = std::collections::HashSet::new();
            for (i, t) in ts.iter().enumerate() {
                p.check(seen.insert(t.call_result), &format!("retry_treatments[{i}].call_result"), || {
                    format!("{} has two treatments", t.call_result)
                });
                p.check(t.max_retries <= 50, &format!("retry_treatments[{i}].max_retries"), || "at most 50".into());
            }
        }
        if let Some(f) = &self.record_filters {
            p.check(f.len() <= 20, "record_filters", || "at most 20 filters".into());
        }
        if let Some(r) = &self.calling_hours_rules {
            p.check(!r.trim().is_empty(), "calling_hours_rules", || "must name a rule set".into());
        }
        if let Some(Some(t)) = &self.sip_trunk {
            p.check(
                !t.is_empty() && t.len() <= 64 && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "sip_trunk",
                || format!("{t:?} must be a trunk name: 1 to 64 letters, digits, '-' or '_'"),
            );
        }
        if let Some(ca) = &self.call_analysis {
            p.check(ca.amd_initial_silence_ms <= 10_000, "call_analysis.amd_initial_silence_ms", || "at most 10000".into());
            p.check(ca.amd_greeting_ms <= 10_000, "call_analysis.amd_greeting_ms", || "at most 10000".into());
        }
        p.into_result()
    }
}

/// A settings profile shared by many campaigns.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsProfileInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"^\S([\s\S]*\S)?$")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The profile used by campaigns that name none; at most one profile is the default.
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub settings: SettingsFields,
}

impl crate::error::Validated for SettingsProfileInput {
    fn name(&self) -> &str {
        &self.name
    }
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        crate::campaign::check_name(&mut p, "name", &self.name);
        if let Err(errs) = self.settings.validate() {
            for e in errs {
                p.push(e.within("settings"));
            }
        }
        p.into_result()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_beats_profile_beats_default() {
        let profile = SettingsFields { dialing_mode: Some(DialingMode::Predictive), abandon_rate_max: Some(0.02), ..Default::default() };
        let over = SettingsFields { abandon_rate_max: Some(0.01), ..Default::default() };
        let e = effective(&profile, &over);
        assert_eq!(e.settings.dialing_mode, DialingMode::Predictive);
        assert_eq!(e.settings.abandon_rate_max, 0.01);
        assert_eq!(e.settings.ring_timeout_s, 25);
        assert_eq!(e.sources["dialing_mode"], Source::Profile);
        assert_eq!(e.sources["abandon_rate_max"], Source::Campaign);
        assert_eq!(e.sources["ring_timeout_s"], Source::Default);
    }

    #[test]
    fn validation_names_fields() {
        let bad = SettingsFields {
            abandon_rate_max: Some(3.0),
            lines_per_agent: Some(0.5),
            sort_order: Some(vec![SortKey { field: "a".into(), kind: SortKind::Numeric, direction: SortDirection::Asc }; 5]),
            ..Default::default()
        };
        let errs = bad.validate().unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["abandon_rate_max", "lines_per_agent", "sort_order"]);
        let json = r#"{"dialing_mode":"predictive","bogus":1}"#;
        assert!(serde_json::from_str::<SettingsFields>(json).unwrap_err().to_string().contains("bogus"));
    }

    #[test]
    fn default_treatments_are_valid() {
        let s = SettingsFields { retry_treatments: Some(default_treatments()), ..Default::default() };
        s.validate().unwrap();
    }
}
