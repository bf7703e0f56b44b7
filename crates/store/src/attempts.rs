//! Call attempts as a record's history: one typed row per call placed.

use crate::*;
use campana_core::record::CallResult;
use campana_core::{CampaignId, DispositionId, RecordId, UserId};

/// One call placed for a record: when it rang, was answered, connected and ended, its result,
/// the agent, and the agent's disposition and notes. Serialised as the API has always sent it
/// (times in RFC 3339 with `+00:00`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct CallAttempt {
    pub call_id: i64,
    pub campaign_id: CampaignId,
    pub phone: String,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = Option<String>)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = Option<String>)]
    pub answered_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = Option<String>)]
    pub connected_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = Option<String>)]
    pub ended_at: Option<DateTime<Utc>>,
    /// `None` while the call is open.
    pub result: Option<CallResult>,
    pub agent_id: Option<UserId>,
    pub abandoned: bool,
    pub disposition_id: Option<DispositionId>,
    pub notes: String,
}

// serde's `serialize_with` hands the field itself: `&Option<T>`.
#[allow(clippy::ref_option)]
fn rfc3339<S: serde::Serializer>(t: &Option<DateTime<Utc>>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_rfc3339()),
        None => s.serialize_none(),
    }
}

/// The most attempts read at once.
pub const MAX_ATTEMPTS_READ: i64 = 1000;

impl Store {
    /// The attempts of one record, newest first (a record's history), at most `limit` (1 to
    /// [`MAX_ATTEMPTS_READ`]).
    pub async fn record_attempts(&self, record: RecordId, limit: i64) -> Result<Vec<CallAttempt>> {
        let rows = sqlx::query(
            "SELECT call_id, campaign_id, phone, started_at, answered_at, connected_at, ended_at, result, agent_id, abandoned, disposition_id, notes \
             FROM call_attempts WHERE record_id = $1 ORDER BY started_at DESC, call_id DESC LIMIT $2",
        )
        .bind(record.0)
        .bind(limit.clamp(1, MAX_ATTEMPTS_READ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let result = r.try_get::<Option<String>, _>("result")?;
                Ok(CallAttempt {
                    call_id: r.try_get("call_id")?,
                    campaign_id: CampaignId(r.try_get("campaign_id")?),
                    phone: r.try_get("phone")?,
                    started_at: get_opt_time(r, "started_at")?,
                    answered_at: get_opt_time(r, "answered_at")?,
                    connected_at: get_opt_time(r, "connected_at")?,
                    ended_at: get_opt_time(r, "ended_at")?,
                    result: result.map(|x| x.parse::<CallResult>().map_err(|e| StoreError::Corrupt(format!("result: {e}")))).transpose()?,
                    agent_id: r.try_get::<Option<i64>, _>("agent_id")?.map(UserId),
                    abandoned: get_bool(r, "abandoned")?,
                    disposition_id: r.try_get::<Option<i64>, _>("disposition_id")?.map(DispositionId),
                    notes: r.try_get("notes")?,
                })
            })
            .collect()
    }
}
