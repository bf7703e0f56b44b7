//! The audit log as a query: who changed what and when, filtered, newest first, a page at a
//! time or every matching entry as CSV.
//!
//! Readable with `reports` (entries about campaigns, lists, records, catalogue objects, DNC)
//! or `users_roles` (entries about users, roles, sign-ins and API tokens); a reader with both
//! sees both. A reader limited to some campaigns sees only entries about no campaign or about
//! campaigns of theirs alone.

use super::audit::USER_TYPES;
use super::{Principal, ServiceError, ServiceResult};
use crate::state::AppState;
use campana_core::stored::Page;
use campana_core::user::Privilege;
use campana_store::{AuditEntry, AuditFilter};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page (entries are newest first).
    pub cursor: Option<String>,
    /// The user who made the change.
    pub actor_id: Option<i64>,
    /// `campaign`, `contact_list`, `record`, `customer`, `import`, `user`, `role`, `session`, ...
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// `create`, `update`, `delete`, `start`, `login`, ...
    pub action: Option<String>,
    /// Entries about this campaign.
    pub campaign_id: Option<i64>,
    /// From this moment (RFC 3339, inclusive).
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Before this moment (RFC 3339, exclusive).
    pub until: Option<chrono::DateTime<chrono::Utc>>,
}

impl AuditQuery {
    /// The filter with what this reader may see.
    pub fn filter(&self, p: &Principal) -> ServiceResult<AuditFilter> {
        if let (Some(a), Some(b)) = (self.since, self.until) {
            if a >= b {
                return Err(ServiceError::field("until", format!("{b} is not after since ({a})")));
            }
        }
        let user_types = || USER_TYPES.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        Ok(AuditFilter {
            actor_id: self.actor_id,
            entity_type: self.entity_type.clone().filter(|t| !t.is_empty()),
            entity_id: self.entity_id.clone().filter(|t| !t.is_empty()),
            action: self.action.clone().filter(|t| !t.is_empty()),
            campaign_id: self.campaign_id,
            since: self.since,
            until: self.until,
            only_campaigns: p.campaign_scope().map(|c| c.into_iter().map(|c| c.0).collect()),
            entity_types_in: (!p.has(Privilege::Reports)).then(user_types),
            entity_types_not_in: if p.has(Privilege::UsersRoles) { vec![] } else { user_types() },
        })
    }
}

/// One page of the entries the query selects and the caller may read.
pub async fn list(s: &AppState, p: &Principal, q: &AuditQuery) -> ServiceResult<Page<AuditEntry>> {
    let page = super::page_params(q.limit, q.cursor.as_deref())?;
    Ok(s.store.list_audit(&q.filter(p)?, page).await?)
}

/// The CSV columns of an export.
pub const CSV_HEADER: [&str; 12] =
    ["id", "at", "actor_id", "actor_name", "via", "action", "entity_type", "entity_id", "summary", "campaign_ids", "before", "after"];

/// Every entry the query selects and the caller may read, as CSV, page by page (memory stays
/// bounded whatever the size of the log); `before` and `after` are JSON text. An export has
/// no `limit` or `cursor`.
pub fn export_csv(
    s: &AppState,
    p: &Principal,
    q: &AuditQuery,
) -> ServiceResult<impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static> {
    if q.limit.is_some() || q.cursor.is_some() {
        let field = if q.limit.is_some() { "limit" } else { "cursor" };
        return Err(ServiceError::field(field, "an export has every matching entry; filter with since/until instead"));
    }
    let filter = q.filter(p)?;
    let store = s.store.clone();
    let stream = futures::stream::unfold((Some(None::<i64>), true), move |(cursor, first)| {
        let (store, filter) = (store.clone(), filter.clone());
        async move {
            let cursor = cursor?;
            let page = match store.list_audit(&filter, campana_store::PageParams { limit: Some(campana_store::MAX_PAGE), cursor }).await {
                Ok(p) => p,
                Err(e) => return Some((Err(std::io::Error::other(e.to_string())), (None, false))),
            };
            let next = page.next_cursor.as_deref().and_then(|c| c.parse::<i64>().ok()).map(Some);
            let mut buf = Vec::new();
            {
                let mut w = campana_core::csv_out::CsvOut::new(&mut buf);
                if first {
                    let _ = w.row(CSV_HEADER);
                }
                let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
                for e in &page.items {
                    let campaigns: Vec<String> = e.campaign_ids.iter().map(|c| c.to_string()).collect();
                    let _ = w.row([
                        e.id.to_string(),
                        e.at.to_rfc3339(),
                        e.actor_id.map(|a| a.to_string()).unwrap_or_default(),
                        e.actor_name.clone(),
                        e.via.clone(),
                        e.action.clone(),
                        e.entity_type.clone(),
                        e.entity_id.clone().unwrap_or_default(),
                        e.summary.clone(),
                        campaigns.join(" "),
                        json(&e.before),
                        json(&e.after),
                    ]);
                }
                let _ = w.flush();
            }
            Some((Ok(bytes::Bytes::from(buf)), (next, false)))
        }
    });
    Ok(stream)
}
