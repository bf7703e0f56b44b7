//! Objects as stored and returned by the API: the input that created them plus id and times.

use crate::campaign::{DispositionInput, ManagerTagInput, NamedInput, ScriptInput};
use crate::error::{FieldError, Problems};
use crate::ids::*;
use crate::import::ColumnMapping;
use crate::phone::CountryCode;
use crate::record::{CustomColumn, MAX_CUSTOM_COLUMNS};
use crate::settings::SettingsProfileInput;
use crate::user::RoleInput;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A stored object's id as the database holds it.
pub trait Identified {
    fn raw_id(&self) -> i64;
}

macro_rules! stored {
    ($($(#[$m:meta])* $name:ident($id:ty, $input:ty) $({ $($(#[$fm:meta])* $f:ident : $t:ty),* })?;)+) => {$(
        $(#[$m])*
        #[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
        pub struct $name {
            pub id: $id,
            #[serde(flatten)]
            pub input: $input,
            $($( $(#[$fm])* pub $f: $t, )*)?
            pub created_at: DateTime<Utc>,
            pub updated_at: DateTime<Utc>,
        }

        impl Identified for $name {
            fn raw_id(&self) -> i64 {
                self.id.0
            }
        }
    )+};
}

stored! {
    /// A campaign group (seed 003).
    CampaignGroup(CampaignGroupId, NamedInput);
    /// An agent group: the queue whose agents take a campaign's calls.
    AgentGroup(AgentGroupId, NamedInput);
    /// A do-not-call list; the internal one is checked by every campaign and cannot be deleted.
    DncList(DncListId, NamedInput) { is_internal: bool };
    Script(ScriptId, ScriptInput);
    Disposition(DispositionId, DispositionInput);
    ManagerTag(ManagerTagId, ManagerTagInput);
    Role(RoleId, RoleInput) { builtin: bool };
    SettingsProfile(SettingsProfileId, SettingsProfileInput) {
        /// Campaigns using this profile.
        campaign_count: i64
    };
    ContactList(ContactListId, ContactListInput) {
        /// The column mapping saved by the last successful import, used when a file comes without one.
        mapping: Option<ColumnMapping>,
        record_count: i64
    };
}

/// A contact list: usable by several campaigns.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactListInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"^\S([\s\S]*\S)?$")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Typed custom columns (at most 100).
    #[serde(default)]
    #[schema(max_items = 100)]
    pub columns: Vec<CustomColumn>,
    /// Region for numbers written without `+`.
    pub default_country: Option<CountryCode>,
}

impl crate::error::Validated for ContactListInput {
    fn name(&self) -> &str {
        &self.name
    }
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        crate::campaign::check_name(&mut p, "name", &self.name);
        p.check(self.columns.len() <= MAX_CUSTOM_COLUMNS, "columns", || format!("at most {MAX_CUSTOM_COLUMNS} custom columns"));
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.columns.iter().enumerate() {
            let ok = !c.name.is_empty() && c.name.len() <= 64 && c.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
            p.check(ok, &format!("columns[{i}].name"), || format!("'{}' must be 1-64 characters of A-Z, a-z, 0-9, _", c.name));
            p.check(seen.insert(c.name.clone()), &format!("columns[{i}].name"), || format!("'{}' is named twice", c.name));
        }
        p.into_result()
    }
}

/// One page of a listing; pass `next_cursor` back as `cursor` for the next page.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}
