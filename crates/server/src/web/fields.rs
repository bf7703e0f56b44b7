//! The fields of every edit form, in display order. Names are the JSON paths of the API's input
//! types; labels are `field.<last segment>` in the catalogues.

use super::form::{Field, Kind, Source};
use campana_core::settings::{AbandonPolicy, DialingMode, PreviewTimeoutAction};

/// A `Kind::Choice` / `Kind::Choices` over a string enum's values.
macro_rules! values_of {
    ($t:ty) => {{
        fn f() -> Vec<&'static str> {
            <$t>::ALL.iter().map(|v| v.as_str()).collect()
        }
        f
    }};
}

fn weekdays() -> Vec<&'static str> {
    vec!["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
}

/// Every field of a settings profile, under `settings.` (profiles) or `overrides.` (campaigns).
macro_rules! settings_fields {
    ($p:literal) => {
        [
            Field::inherited(concat!($p, "dialing_mode"), Kind::Choice(values_of!(DialingMode))),
            Field::inherited(concat!($p, "preview_timeout_s"), Kind::Int),
            Field::inherited(concat!($p, "preview_timeout_action"), Kind::Choice(values_of!(PreviewTimeoutAction))),
            Field::inherited(concat!($p, "agent_first"), Kind::YesNo),
            Field::inherited(concat!($p, "lines_per_agent"), Kind::Float),
            Field::inherited(concat!($p, "abandon_rate_target"), Kind::Float),
            Field::inherited(concat!($p, "abandon_rate_max"), Kind::Float),
            Field::inherited(concat!($p, "abandon_policy"), Kind::Choice(values_of!(AbandonPolicy))),
            Field::inherited(concat!($p, "connect_deadline_ms"), Kind::Int),
            Field::inherited(concat!($p, "agent_group_id"), Kind::Ref(Source::AgentGroups)),
            Field::inherited(concat!($p, "script_id"), Kind::Ref(Source::Scripts)),
            Field::inherited(concat!($p, "dnc_list_ids"), Kind::Refs(Source::DncLists)),
            Field::inherited(concat!($p, "call_analysis"), Kind::Json),
            Field::inherited(concat!($p, "retry_treatments"), Kind::Json),
            Field::inherited(concat!($p, "sort_order"), Kind::Json),
            Field::inherited(concat!($p, "record_filters"), Kind::Json),
            Field::inherited(concat!($p, "calling_hours_rules"), Kind::Text),
            Field::inherited(concat!($p, "explicit_zone_wins"), Kind::YesNo),
            Field::inherited(concat!($p, "max_attempts_per_number"), Kind::Int),
            Field::inherited(concat!($p, "max_attempts_per_chain"), Kind::Int),
            Field::inherited(concat!($p, "max_attempts_per_day"), Kind::Int),
            Field::inherited(concat!($p, "min_recall_delay_s"), Kind::Int),
            Field::inherited(concat!($p, "abandon_recall_block_s"), Kind::Int),
            Field::inherited(concat!($p, "ring_timeout_s"), Kind::Int),
            Field::inherited(concat!($p, "caller_id"), Kind::Text),
            Field::inherited(concat!($p, "sip_trunk"), Kind::Text),
            Field::inherited(concat!($p, "recording"), Kind::YesNo),
            Field::inherited(concat!($p, "wrap_up_s"), Kind::Int),
        ]
    };
}

pub const OVERRIDES: [Field; 28] = settings_fields!("overrides.");

pub const CAMPAIGN_MAIN: [Field; 13] = [
    Field::req("name", Kind::Text),
    Field::new("description", Kind::LongText),
    Field::new("agent_notes", Kind::LongText),
    Field::new("group_id", Kind::Ref(Source::CampaignGroups)),
    Field::new("profile_id", Kind::Ref(Source::SettingsProfiles)),
    Field::new("contact_list_ids", Kind::Refs(Source::ContactLists)),
    Field::new("start_date", Kind::Date),
    Field::new("end_date", Kind::Date),
    Field::req("daily_hours.start", Kind::Time),
    Field::req("daily_hours.end", Kind::Time),
    Field::new("weekdays", Kind::Choices(weekdays)),
    Field::req("time_zone", Kind::Text),
    Field::new("priority", Kind::Int),
];

/// The campaign form: its own fields, then every override.
pub fn campaign() -> Vec<Field> {
    CAMPAIGN_MAIN.iter().chain(OVERRIDES.iter()).copied().collect()
}

const PROFILE_MAIN: [Field; 3] =
    [Field::req("name", Kind::Text), Field::new("description", Kind::LongText), Field::new("is_default", Kind::Check)];
const PROFILE_SETTINGS: [Field; 28] = settings_fields!("settings.");

pub fn profile() -> Vec<Field> {
    PROFILE_MAIN.iter().chain(PROFILE_SETTINGS.iter()).copied().collect()
}

pub const NAMED: &[Field] = &[Field::req("name", Kind::Text), Field::new("description", Kind::LongText)];

pub const SCRIPT: &[Field] = &[Field::req("name", Kind::Text), Field::req("body", Kind::LongText)];

pub const DISPOSITION: &[Field] = &[
    Field::req("name", Kind::Text),
    Field::req("colour", Kind::Colour),
    Field::new("is_success", Kind::Check),
    Field::new("is_final", Kind::Check),
    Field::new("is_callback", Kind::Check),
    Field::new("is_do_not_call", Kind::Check),
    Field::new("profile_id", Kind::Ref(Source::SettingsProfiles)),
    Field::new("campaign_id", Kind::Ref(Source::Campaigns)),
];

pub const MANAGER_TAG: &[Field] =
    &[Field::req("name", Kind::Text), Field::req("colour", Kind::Colour), Field::new("campaign_id", Kind::Ref(Source::Campaigns))];

pub const ROLE: &[Field] = &[
    Field::req("name", Kind::Text),
    Field::new("description", Kind::LongText),
    Field::new("privileges", Kind::Choices(values_of!(campana_core::user::Privilege))),
];

pub const CONTACT_LIST: &[Field] = &[
    Field::req("name", Kind::Text),
    Field::new("description", Kind::LongText),
    Field::new("default_country", Kind::Text),
    Field::new("columns", Kind::Json),
];

fn scopes() -> Vec<&'static str> {
    vec!["all", "only"]
}

pub const USER: &[Field] = &[
    Field::req("username", Kind::Text),
    Field::new("display_name", Kind::Text),
    Field::req("role_id", Kind::Ref(Source::Roles)),
    Field::req("campaigns_profile.scope", Kind::Choice(scopes)),
    Field::new("campaigns_profile.campaign_ids", Kind::Refs(Source::Campaigns)),
    Field::new("agent_group_ids", Kind::Refs(Source::AgentGroups)),
    Field::new("password", Kind::Password),
    Field::new("active", Kind::Check),
];
