//! Manager tags on call attempts: an agent marks a call (escalate, great call, ...) from the
//! agent desktop; supervisors read them with the call's history.

use crate::*;
use campana_core::{CampaignId, ManagerTagId, UserId};

impl Store {
    /// The campaign of a call attempt and the agent who took it (`None` until the call's result
    /// is written); `None` when no attempt has this call id.
    pub async fn call_attempt_agent(&self, call_id: i64) -> Result<Option<(CampaignId, Option<UserId>)>> {
        let row = sqlx::query("SELECT campaign_id, agent_id FROM call_attempts WHERE call_id = $1")
            .bind(call_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((CampaignId(r.try_get("campaign_id")?), r.try_get::<Option<i64>, _>("agent_id")?.map(UserId)))).transpose()
    }

    /// Puts a manager tag on a call; `false` when the call already had it. The caller checks
    /// that the tag is offered on the call's campaign.
    pub async fn tag_attempt(&self, call_id: i64, tag: ManagerTagId, agent: UserId) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let exists: Option<i64> =
            sqlx::query_scalar("SELECT call_id FROM call_attempts WHERE call_id = $1").bind(call_id).fetch_optional(&mut *tx).await?;
        if exists.is_none() {
            return Err(StoreError::invalid("call_id", format!("{call_id} is not a call")));
        }
        let done = sqlx::query(
            "INSERT INTO call_attempt_tags (call_id, tag_id, agent_id, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (call_id, tag_id) DO NOTHING",
        )
        .bind(call_id)
        .bind(tag.0)
        .bind(agent.0)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The manager tags of a call, in the order they were applied.
    pub async fn attempt_tags(&self, call_id: i64) -> Result<Vec<ManagerTagId>> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT tag_id FROM call_attempt_tags WHERE call_id = $1 ORDER BY created_at, tag_id")
            .bind(call_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(ManagerTagId).collect())
    }
}
