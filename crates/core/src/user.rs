//! Users, roles with privileges, and the "campaigns" profile that limits which campaigns a user
//! sees (seed 004). Enforcement lives in the server; the model lives here.

use crate::campaign::check_name;
use crate::error::{FieldError, Problems};
use crate::ids::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

string_enum! {
    pub enum Privilege {
        CampaignsView = "campaigns_view",
        CampaignsEdit = "campaigns_edit",
        ListsImport = "lists_import",
        Dnc = "dnc",
        UsersRoles = "users_roles",
        Reports = "reports",
        Agent = "agent",
    }
}

/// Which campaigns of the company a user may see and act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "scope", rename_all = "snake_case", deny_unknown_fields)]
pub enum CampaignsProfile {
    /// Every campaign of the company.
    All,
    /// Only these campaigns.
    Only { campaign_ids: Vec<CampaignId> },
}

impl CampaignsProfile {
    pub fn allows(&self, id: CampaignId) -> bool {
        match self {
            CampaignsProfile::All => true,
            CampaignsProfile::Only { campaign_ids } => campaign_ids.contains(&id),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    #[schema(min_length = 1, max_length = 200, pattern = r"^\S([\s\S]*\S)?$")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub privileges: Vec<Privilege>,
}

impl crate::error::Validated for RoleInput {
    fn name(&self) -> &str {
        &self.name
    }
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        check_name(&mut p, "name", &self.name);
        p.into_result()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    /// Login name: 1-64 of a-z, 0-9, `.`, `_`, `-`, `@`.
    #[schema(pattern = r"^[a-z0-9._@-]{1,64}$", min_length = 1, max_length = 64)]
    pub username: String,
    #[serde(default)]
    pub display_name: String,
    pub role_id: RoleId,
    pub campaigns_profile: CampaignsProfile,
    /// The agent groups (queues) an agent takes calls from.
    #[serde(default)]
    pub agent_group_ids: Vec<AgentGroupId>,
    /// Set or replace the password (at least 10 characters); never returned, never in the audit log.
    #[serde(default, skip_serializing_if = "never_serialized")]
    #[schema(write_only, min_length = 10)]
    pub password: Option<String>,
    #[serde(default = "yes")]
    pub active: bool,
}

/// `skip_serializing_if` that always skips: unlike `skip_serializing`, utoipa still documents
/// the field (as write-only).
fn never_serialized<T>(_: &T) -> bool {
    true
}

fn yes() -> bool {
    true
}

impl UserInput {
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut p = Problems::default();
        let u = &self.username;
        p.check(
            !u.is_empty() && u.len() <= 64 && u.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || ".-_@".contains(c)),
            "username",
            || format!("'{u}' must be 1-64 characters of a-z, 0-9, '.', '_', '-', '@'"),
        );
        if let Some(pw) = &self.password {
            p.check(pw.chars().count() >= 10, "password", || "must be at least 10 characters".into());
        }
        p.into_result()
    }
}

/// A user as returned by the API (no password material).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub id: UserId,
    #[serde(flatten)]
    pub input: UserInput,
    pub created_at: chrono::DateTime<chrono::Utc>,
}
