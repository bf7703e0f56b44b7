//! Campaigns, their life cycle, groups, dispositions, manager tags and scripts.

use crate::error::{FieldError, Problems};
use crate::ids::*;
use crate::settings::SettingsFields;
use crate::time::{DailyHours, TimeZone, Weekdays};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

string_enum! {
    /// Where a campaign is in its life. Only the transitions in [`CampaignState::apply`] exist.
    pub enum CampaignState {
        Draft = "draft",
        Running = "running",
        Paused = "paused",
        Stopped = "stopped",
        Completed = "completed",
        Archived = "archived",
    }
}

string_enum! {
    /// What an administrator asks a campaign to do.
    pub enum CampaignAction {
        Start = "start",
        Pause = "pause",
        Resume = "resume",
        Stop = "stop",
        Complete = "complete",
        Archive = "archive",
    }
}

/// A refused life-cycle change, with what would have been allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a campaign that is {from}; allowed from {from}: {allowed}")]
pub struct TransitionError {
    pub from: CampaignState,
    pub action: CampaignAction,
    pub allowed: String,
}

impl CampaignState {
    fn target(self, action: CampaignAction) -> Option<CampaignState> {
        use CampaignAction as A;
        use CampaignState as S;
        Some(match (self, action) {
            (S::Draft, A::Start) | (S::Paused, A::Resume) | (S::Stopped, A::Start) => S::Running,
            (S::Running, A::Pause) => S::Paused,
            (S::Running, A::Stop) | (S::Paused, A::Stop) => S::Stopped,
            (S::Running, A::Complete) | (S::Paused, A::Complete) | (S::Stopped, A::Complete) => S::Completed,
            (S::Draft, A::Archive) | (S::Stopped, A::Archive) | (S::Completed, A::Archive) => S::Archived,
            _ => return None,
        })
    }

    /// The actions allowed from this state.
    pub fn allowed_actions(self) -> Vec<CampaignAction> {
        CampaignAction::ALL.iter().copied().filter(|a| self.target(*a).is_some()).collect()
    }

    pub fn apply(self, action: CampaignAction) -> Result<CampaignState, TransitionError> {
        self.target(action).ok_or_else(|| {
            let allowed: Vec<&str> = self.allowed_actions().iter().map(|a| a.as_str()).collect();
            TransitionError {
                from: self,
                action,
                allowed: if allowed.is_empty() { "nothing (final state)".into() } else { allowed.join(", ") },
            }
        })
    }

    /// May the dialer place calls for a campaign in this state?
    pub fn is_dialing(self) -> bool {
        self == CampaignState::Running
    }

    /// May the definition be edited? Archived campaigns are read-only history.
    pub fn is_editable(self) -> bool {
        self != CampaignState::Archived
    }
}

/// What an administrator sends to create or replace a campaign.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"^\S([\s\S]*\S)?$")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Shown to the agent on every call of this campaign.
    #[serde(default)]
    pub agent_notes: String,
    /// First day the campaign may dial (in `time_zone`). Open when absent.
    pub start_date: Option<NaiveDate>,
    /// Last day the campaign may dial (inclusive). Open when absent.
    pub end_date: Option<NaiveDate>,
    /// Daily active hours in `time_zone` (the contact's own legal window applies on top).
    pub daily_hours: DailyHours,
    pub weekdays: Weekdays,
    /// The zone the campaign's dates and daily hours are read in.
    pub time_zone: TimeZone,
    /// Higher wins: when campaigns share an agent group, the highest priority gets the next free agent.
    #[serde(default)]
    #[schema(minimum = -1000, maximum = 1000)]
    pub priority: i32,
    pub group_id: Option<CampaignGroupId>,
    /// The shared settings profile; absent means the default profile.
    pub profile_id: Option<SettingsProfileId>,
    /// Per-campaign overrides of any profile field (the agent group and script live here too).
    #[serde(default)]
    pub overrides: SettingsFields,
    #[serde(default)]
    pub contact_list_ids: Vec<ContactListId>,
}

impl CampaignInput {
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        check_name(&mut p, "name", &self.name);
        if let (Some(s), Some(e)) = (self.start_date, self.end_date) {
            p.check(s <= e, "end_date", || format!("end date {e} is before start date {s}"));
        }
        p.check((-1000..=1000).contains(&self.priority), "priority", || format!("{} is outside -1000..=1000", self.priority));
        let mut seen = std::collections::HashSet::new();
        for l in &self.contact_list_ids {
            p.check(seen.insert(*l), "contact_list_ids", || format!("list {l} is named twice"));
        }
        if let Err(errs) = self.overrides.validate() {
            for e in errs {
                p.push(e.within("overrides"));
            }
        }
        p.into_result()
    }
}

pub(crate) fn check_name(p: &mut Problems, field: &str, name: &str) {
    let t = name.trim();
    p.check(!t.is_empty(), field, || "must not be empty".into());
    p.check(t.chars().count() <= 200, field, || "must be at most 200 characters".into());
    p.check(t == name, field, || "must not start or end with spaces".into());
}

/// A campaign as stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Campaign {
    pub id: CampaignId,
    pub state: CampaignState,
    #[serde(flatten)]
    pub input: CampaignInput,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A named set of campaigns (seed 003); a campaign belongs to at most one group.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamedInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"^\S([\s\S]*\S)?$")]
    pub name: String,
    /// At most 10,000 characters.
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub description: String,
}

impl crate::error::Validated for NamedInput {
    fn name(&self) -> &str {
        &self.name
    }
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        check_name(&mut p, "name", &self.name);
        p.check(self.description.chars().count() <= 10_000, "description", || "must be at most 10,000 characters".into());
        p.into_result()
    }
}

/// An RGB colour written `#RRGGBB`, shown next to statuses and tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^#[0-9a-fA-F]{6}$", example = "#2e7d32")]
pub struct Colour(String);

impl Colour {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let ok = s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit());
        if ok {
            Ok(Colour(s.to_ascii_lowercase()))
        } else {
            Err(FieldError::new("colour", format!("'{s}' is not a colour as #RRGGBB")))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl<'de> Deserialize<'de> for Colour {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Colour::parse(&s).map_err(|e| serde::de::Error::custom(e.reason))
    }
}

/// An agent's outcome for a call, as defined per profile (or globally when no profile is set).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispositionInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"^\S([\s\S]*\S)?$")]
    pub name: String,
    pub colour: Colour,
    /// Counts as a successful call in progress views.
    #[serde(default)]
    pub is_success: bool,
    /// The record is done: no further attempts.
    #[serde(default)]
    pub is_final: bool,
    /// Asks the agent for a callback time.
    #[serde(default)]
    pub is_callback: bool,
    /// Adds the number to the internal do-not-call list.
    #[serde(default)]
    pub is_do_not_call: bool,
    /// Offered on the campaigns of this profile (absent: on every profile).
    pub profile_id: Option<SettingsProfileId>,
    /// Offered on this campaign only (absent: as `profile_id` says). At most one of the two.
    #[serde(default)]
    pub campaign_id: Option<CampaignId>,
}

impl crate::error::Validated for DispositionInput {
    fn name(&self) -> &str {
        &self.name
    }
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        check_name(&mut p, "name", &self.name);
        p.check(self.profile_id.is_none() || self.campaign_id.is_none(), "campaign_id", || {
            "a disposition belongs to a profile or to a campaign, not both".into()
        });
        p.into_result()
    }
}

/// A label an agent may apply to a call for managers (seed 003).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManagerTagInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"^\S([\s\S]*\S)?$")]
    pub name: String,
    pub colour: Colour,
    /// Limited to one campaign, or offered on all when absent.
    pub campaign_id: Option<CampaignId>,
}

impl crate::error::Validated for ManagerTagInput {
    fn name(&self) -> &str {
        &self.name
    }
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        check_name(&mut p, "name", &self.name);
        p.into_result()
    }
}

/// A call script shown to agents.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScriptInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"^\S([\s\S]*\S)?$")]
    pub name: String,
    /// The text agents read, Markdown; `{{field}}` is replaced by the contact's field. At most
    /// 100,000 characters.
    #[schema(max_length = 100000)]
    pub body: String,
}

impl crate::error::Validated for ScriptInput {
    fn name(&self) -> &str {
        &self.name
    }
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        check_name(&mut p, "name", &self.name);
        p.check(self.body.chars().count() <= 100_000, "body", || "must be at most 100,000 characters".into());
        p.into_result()
    }
}

/// What filing a disposition does to the call and its record: the call's result (the
/// campaign's treatment of that result then decides the record's fate) and whether the agent
/// must give a callback time. One rule for the agent API, the console and the dialer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispositionEffect {
    /// Do-not-call and callback by their flags; a final or successful disposition closes the
    /// record (right party); any other moves to the customer's next number (wrong party).
    pub result: crate::record::CallResult,
    /// The agent must give a callback time (and may give none otherwise).
    pub asks_callback: bool,
}

impl DispositionEffect {
    pub fn of(d: &DispositionInput) -> DispositionEffect {
        use crate::record::CallResult;
        let result = if d.is_do_not_call {
            CallResult::DoNotCall
        } else if d.is_callback {
            CallResult::AgentCallback
        } else if d.is_final || d.is_success {
            CallResult::RightParty
        } else {
            CallResult::WrongParty
        };
        DispositionEffect { result, asks_callback: d.is_callback }
    }

    /// The callback the agent asked for, checked against this disposition (`name`) and `now`:
    /// required by a callback disposition, refused by any other, and never in the past.
    pub fn callback(
        &self,
        name: &str,
        at: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, FieldError> {
        match (at, self.asks_callback) {
            (Some(at), true) if at <= now => Err(FieldError::new("callback.at", format!("{at} is in the past"))),
            (Some(at), true) => Ok(Some(at)),
            (None, true) => Err(FieldError::new("callback", format!("'{name}' asks for a callback time"))),
            (Some(_), false) => Err(FieldError::new("callback", format!("'{name}' is not a callback disposition"))),
            (None, false) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_machine_allows_and_refuses() {
        use CampaignAction as A;
        use CampaignState as S;
        assert_eq!(S::Draft.apply(A::Start).unwrap(), S::Running);
        assert_eq!(S::Running.apply(A::Pause).unwrap(), S::Paused);
        assert_eq!(S::Paused.apply(A::Resume).unwrap(), S::Running);
        let e = S::Draft.apply(A::Pause).unwrap_err();
        assert_eq!(e.to_string(), "cannot pause a campaign that is draft; allowed from draft: start, archive");
        let e = S::Archived.apply(A::Start).unwrap_err();
        assert!(e.to_string().contains("nothing (final state)"));
        for s in S::ALL {
            for a in s.allowed_actions() {
                assert!(s.apply(a).is_ok());
            }
        }
    }

    #[test]
    fn colour() {
        assert_eq!(Colour::parse("#A1B2C3").unwrap().as_str(), "#a1b2c3");
        assert!(Colour::parse("red").is_err());
    }

    #[test]
    fn disposition_effects() {
        use crate::record::CallResult;
        let base = DispositionInput {
            name: "x".into(),
            colour: Colour::parse("#000000").unwrap(),
            is_success: false,
            is_final: false,
            is_callback: false,
            is_do_not_call: false,
            profile_id: None,
            campaign_id: None,
        };
        let with = |f: fn(&mut DispositionInput)| {
            let mut d = base.clone();
            f(&mut d);
            DispositionEffect::of(&d).result
        };
        assert_eq!(with(|_| {}), CallResult::WrongParty);
        assert_eq!(with(|d| d.is_final = true), CallResult::RightParty);
        assert_eq!(with(|d| d.is_success = true), CallResult::RightParty);
        assert_eq!(with(|d| d.is_callback = true), CallResult::AgentCallback);
        // Do-not-call wins over every other flag.
        assert_eq!(
            with(|d| {
                d.is_do_not_call = true;
                d.is_callback = true;
                d.is_final = true
            }),
            CallResult::DoNotCall
        );
        let now = chrono::Utc::now();
        let later = now + chrono::Duration::hours(1);
        let cb = DispositionEffect::of(&DispositionInput { is_callback: true, ..base.clone() });
        assert_eq!(cb.callback("cb", Some(later), now), Ok(Some(later)));
        assert_eq!(cb.callback("cb", Some(now), now).unwrap_err().field, "callback.at");
        assert_eq!(cb.callback("cb", None, now).unwrap_err().field, "callback");
        let plain = DispositionEffect::of(&base);
        assert_eq!(plain.callback("x", None, now), Ok(None));
        assert_eq!(plain.callback("x", Some(later), now).unwrap_err().field, "callback");
    }
}
