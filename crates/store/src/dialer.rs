//! The live dialer's persistence: which records to offer the engine next (in the profile's
//! dialing order and filters), and writing the engine's [`PersistCommand`]s. Dials are written
//! before the telephony layer is told to place them, so a crash never loses one; calls still
//! open after a restart are closed as "system error" by [`Store::open_attempts`] +
//! [`Store::close_attempt`].

use crate::catalog::{bind_all, V};
use crate::lists::record_from_row;
use crate::*;
use campana_core::record::{CallResult, RecordStatus};
use campana_core::settings::{FilterOp, RecordFilter, SortDirection, SortKey, SortKind};
use campana_core::webhook::EventType;
use campana_core::{CampaignId, ContactListId, PhoneNumber, RecordId, UserId};
use campana_engine::{Candidate, ChainStep, PersistCommand, RecordUpdate, StoreHold};
use std::collections::HashSet;

/// `records.available_at` of a record the engine gave back with no foreseeable moment: it is
/// offered again when something about it changes (an edit, a campaign restart).
pub const DEFERRED_NEVER_MS: i64 = 253_402_300_799_000;

/// The earlier numbers of `r`'s chain that are still open (an earlier number given back "never"
/// does not hold the chain). The one definition, used to leave records out of the dialer's offer
/// and to explain why (`StoreHold::earlier_open`).
const EARLIER_OPEN_FROM: &str = "FROM records p WHERE p.list_id = r.list_id AND p.chain_id = r.chain_id \
     AND p.chain_position < r.chain_position AND p.record_status NOT IN ('completed', 'cancelled') \
     AND p.record_type NOT IN ('no_call', 'unknown') AND (p.available_at IS NULL OR p.available_at < 253402300799000)";
/// The other numbers of `r`'s chain whose call ended the chain (`StoreHold::chain_ended_by`).
const CHAIN_ENDED_FROM: &str =
    "FROM records e WHERE e.list_id = r.list_id AND e.chain_id = r.chain_id AND e.ends_chain = 1 AND e.id <> r.id";
/// Attempts on every number of `r`'s chain.
const CHAIN_ATTEMPTS: &str =
    "(SELECT CAST(SUM(c.attempts_total) AS BIGINT) FROM records c WHERE c.list_id = r.list_id AND c.chain_id = r.chain_id) AS chain_attempts_sum";

/// Records fetched per [`Store::dialable_records`] call at most.
pub const MAX_DIALABLE_BATCH: usize = 1000;

/// Record fields a profile may sort or filter on (besides custom columns, `custom.NAME`).
const RECORD_FIELDS: &[&str] = &[
    "id",
    "name",
    "sort_value",
    "postal_code",
    "external_id",
    "phone",
    "phone_type",
    "chain_id",
    "chain_position",
    "attempts_total",
    "last_call_at",
    "created_at",
    "time_zone",
    "last_result",
];

/// What the dialer asks for.
#[derive(Debug, Clone)]
pub struct DialableQuery<'a> {
    pub lists: &'a [ContactListId],
    pub sort_order: &'a [SortKey],
    pub filters: &'a [RecordFilter],
    pub now: DateTime<Utc>,
    pub limit: usize,
    /// Records already in the engine (buffered or in a call); never returned.
    pub exclude: &'a HashSet<RecordId>,
}

/// A call that was open when the server stopped.
#[derive(Debug, Clone)]
pub struct OpenAttempt {
    pub call_id: i64,
    pub campaign_id: CampaignId,
    pub record_id: RecordId,
    pub started_at: DateTime<Utc>,
    /// The engine abandoned the call (no agent in time) before the server stopped.
    pub abandoned: bool,
}

/// Live answers, abandons and unconnected machine verdicts of a campaign in one minute (the
/// engine ledger's bucket), for replaying abandon accounting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AbandonMinute {
    pub campaign_id: CampaignId,
    pub minute_start: DateTime<Utc>,
    pub live_answers: u32,
    pub abandons: u32,
    pub machine_verdicts: u32,
}

/// Today's counters of a campaign (progress page).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AttemptCounts {
    pub dials: i64,
    pub live_answers: i64,
    pub connects: i64,
    pub abandons: i64,
    pub in_progress: i64,
}

impl Store {
    /// SQL for a record field or custom column (`custom.NAME`) as a sortable expression; the
    /// only place that differs by backend.
    fn field_expr(&self, field: &str, numeric: bool) -> Result<String> {
        if let Some(name) = field.strip_prefix("custom.") {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ' ' || c == '-') {
                return Err(StoreError::invalid("sort_order", format!("'{field}' is not a custom column name")));
            }
            return Ok(match (self.backend, numeric) {
                (Backend::Sqlite, _) => format!("json_extract(r.custom, '$.\"{name}\"')"),
                (Backend::Postgres, false) => format!("((r.custom)::jsonb ->> '{name}')"),
                (Backend::Postgres, true) => format!("((r.custom)::jsonb -> '{name}')"),
            });
        }
        if !RECORD_FIELDS.contains(&field) {
            return Err(StoreError::invalid(
                "sort_order",
                format!("'{field}' is not a record field ({}) or custom.NAME", RECORD_FIELDS.join(", ")),
            ));
        }
        Ok(match (self.backend, numeric, field) {
            (_, true, "sort_value" | "postal_code" | "external_id" | "name") => match self.backend {
                Backend::Sqlite => format!("CAST(r.{field} AS REAL)"),
                Backend::Postgres => {
                    format!("(CASE WHEN r.{field} ~ '^\\s*-?[0-9]+(\\.[0-9]+)?\\s*$' THEN CAST(r.{field} AS DOUBLE PRECISION) END)")
                }
            },
            _ => format!("r.{field}"),
        })
    }

    fn filter_sql(&self, f: &RecordFilter, vals: &mut Vec<V>) -> Result<String> {
        let e = self
            .field_expr(&f.field, false)
            .map_err(|_| StoreError::invalid("record_filters", format!("'{}' is not a record field or custom.NAME", f.field)))?;
        // The same cast on both backends.
        let text = format!("CAST({e} AS TEXT)");
        let mut bind = |v: String| {
            vals.push(V::S(v));
            format!("${}", vals.len())
        };
        Ok(match f.op {
            FilterOp::Empty => format!("({e} IS NULL OR {text} = '')"),
            FilterOp::NotEmpty => format!("({e} IS NOT NULL AND {text} <> '')"),
            FilterOp::Contains => format!("{text} LIKE {}", bind(format!("%{}%", f.value))),
            op => {
                let sym = match op {
                    FilterOp::Eq => "=",
                    FilterOp::Ne => "<>",
                    FilterOp::Lt => "<",
                    FilterOp::Le => "<=",
                    FilterOp::Gt => ">",
                    _ => ">=",
                };
                format!("{text} {sym} {}", bind(f.value.clone()))
            }
        })
    }

    /// The next records to offer the engine, in dialing order: due callbacks first, then the
    /// profile's sort order, then id. Only the first open number of each chain is offered.
    /// Returns each with its chain's attempts and the dialer state the engine needs.
    pub async fn dialable_records(&self, q: &DialableQuery<'_>) -> Result<Vec<Candidate>> {
        if q.lists.is_empty() || q.limit == 0 {
            return Ok(Vec::new());
        }
        let now = ms(q.now);
        let mut vals = vec![V::I(now)];
        let lists: Vec<String> = q.lists.iter().map(|l| l.0.to_string()).collect();
        // Every condition here is one of `StoreHold`'s or one `eligibility::check` reports too
        // (the explanation test in crates/server/tests/it/dialer.rs compares the two).
        let mut sql = format!(
            "SELECT r.*, {CHAIN_ATTEMPTS} FROM records r WHERE r.list_id IN ({}) \
             AND r.record_status NOT IN ('completed', 'cancelled') AND r.record_type NOT IN ('no_call', 'unknown') \
             AND (r.available_at IS NULL OR r.available_at <= $1) AND (r.retry_at IS NULL OR r.retry_at <= $1) \
             AND NOT EXISTS (SELECT 1 {EARLIER_OPEN_FROM}) AND NOT EXISTS (SELECT 1 {CHAIN_ENDED_FROM})",
            lists.join(",")
        );
        for f in q.filters {
            sql.push_str(" AND ");
            sql.push_str(&self.filter_sql(f, &mut vals)?);
        }
        sql.push_str(" ORDER BY CASE WHEN r.callback_at IS NOT NULL AND r.callback_at <= $1 THEN 0 ELSE 1 END, r.callback_at");
        for k in q.sort_order {
            let e = self.field_expr(&k.field, k.kind == SortKind::Numeric)?;
            let dir = if k.direction == SortDirection::Desc { "DESC" } else { "ASC" };
            sql.push_str(&format!(", {e} {dir}"));
        }
        let fetch = q.limit.min(MAX_DIALABLE_BATCH) + q.exclude.len();
        vals.push(V::I(fetch as i64));
        sql.push_str(&format!(", r.id LIMIT ${}", vals.len()));
        let rows = bind_all(sqlx::query(&sql), vals).fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(q.limit.min(rows.len()));
        for row in &rows {
            let id = RecordId(row.try_get("id")?);
            if q.exclude.contains(&id) {
                continue;
            }
            out.push(candidate_from_row(row, false)?);
            if out.len() >= q.limit {
                break;
            }
        }
        Ok(out)
    }

    /// Writes the engine's persistence commands in one transaction, in order.
    pub async fn persist_dialer(&self, cmds: &[PersistCommand]) -> Result<()> {
        if cmds.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        let internal =
            if cmds.iter().any(|c| matches!(c, PersistCommand::DncAdd { .. })) { Some(self.internal_dnc_list().await?) } else { None };
        let now = now_ms();
        for c in cmds {
            match c {
                PersistCommand::AttemptStarted { call_id, campaign_id, record_id, chain_id, number, at } => {
                    sqlx::query(
                        "INSERT INTO call_attempts (call_id, campaign_id, record_id, chain_id, phone, started_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(call_id.0 as i64)
                    .bind(campaign_id.0)
                    .bind(record_id.0)
                    .bind(chain_id.0)
                    .bind(number.as_str())
                    .bind(ms(*at))
                    .execute(&mut *tx)
                    .await?;
                }
                PersistCommand::CallResult {
                    call_id,
                    campaign_id,
                    record_id,
                    result,
                    dialed_at,
                    answered_at,
                    connected_at,
                    ended_at,
                    agent,
                    live_answer,
                } => {
                    sqlx::query(
                        "UPDATE call_attempts SET result = $1, answered_at = $2, connected_at = $3, ended_at = $4, agent_id = $5, \
                         live_answer = $6 WHERE call_id = $7",
                    )
                    .bind(result.as_str())
                    .bind(answered_at.map(ms))
                    .bind(connected_at.map(ms))
                    .bind(ms(*ended_at))
                    .bind(agent.map(|a| a.0))
                    .bind(i64::from(*live_answer))
                    .bind(call_id.0 as i64)
                    .execute(&mut *tx)
                    .await?;
                    let data = serde_json::json!({
                        "call_id": call_id.0, "campaign_id": campaign_id, "record_id": record_id, "result": result.as_str(),
                        "dialed_at": dialed_at, "answered_at": answered_at, "connected_at": connected_at, "ended_at": ended_at,
                        "agent_id": agent, "live_answer": live_answer,
                    });
                    crate::webhooks::emit(&mut tx, EventType::CallEnded, data, *ended_at).await?;
                }
                PersistCommand::AbandonRecorded { call_id, .. } => {
                    sqlx::query("UPDATE call_attempts SET abandoned = 1 WHERE call_id = $1")
                        .bind(call_id.0 as i64)
                        .execute(&mut *tx)
                        .await?;
                }
                PersistCommand::RecordUpdate(u) => {
                    write_record_update(&mut tx, u, now).await?;
                    if u.record_status == RecordStatus::Completed {
                        record_completed(&mut tx, u).await?;
                    }
                }
                PersistCommand::RecordDeferred { record_id, reason, .. } => {
                    sqlx::query("UPDATE records SET available_at = $1, defer_code = $2 WHERE id = $3")
                        .bind(reason.next_dialable_at.map(ms).unwrap_or(DEFERRED_NEVER_MS))
                        .bind(reason.code.as_str())
                        .bind(record_id.0)
                        .execute(&mut *tx)
                        .await?;
                }
                PersistCommand::DncAdd { number, reason } => {
                    let list = internal.expect("looked up above when a DncAdd is present");
                    sqlx::query(
                        "INSERT INTO dnc_entries (list_id, phone, expires_at, reason, source, created_at) VALUES ($1, $2, NULL, $3, 'agent', $4) \
                         ON CONFLICT (list_id, phone) DO NOTHING",
                    )
                    .bind(list.0)
                    .bind(number.as_str())
                    .bind(reason.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Calls persisted as started but never finished (the server stopped during them).
    pub async fn open_attempts(&self) -> Result<Vec<OpenAttempt>> {
        let rows = sqlx::query(
            "SELECT call_id, campaign_id, record_id, started_at, abandoned FROM call_attempts WHERE ended_at IS NULL ORDER BY call_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(OpenAttempt {
                    call_id: r.try_get("call_id")?,
                    campaign_id: CampaignId(r.try_get("campaign_id")?),
                    record_id: RecordId(r.try_get("record_id")?),
                    started_at: get_time(r, "started_at")?,
                    abandoned: get_bool(r, "abandoned")?,
                })
            })
            .collect()
    }

    /// Closes a call that was open at a crash with `result` and writes the record's treatment.
    pub async fn close_attempt(&self, call_id: i64, result: CallResult, ended_at: DateTime<Utc>, update: &RecordUpdate) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let closed = sqlx::query("UPDATE call_attempts SET result = $1, ended_at = $2 WHERE call_id = $3 AND ended_at IS NULL")
            .bind(result.as_str())
            .bind(ms(ended_at))
            .bind(call_id)
            .execute(&mut *tx)
            .await?;
        if closed.rows_affected() == 1 {
            let data = serde_json::json!({
                "call_id": call_id, "campaign_id": update.campaign_id, "record_id": update.record_id, "result": result.as_str(),
                "ended_at": ended_at, "closed_at_restart": true,
            });
            crate::webhooks::emit(&mut tx, EventType::CallEnded, data, ended_at).await?;
        }
        write_record_update(&mut tx, update, now_ms()).await?;
        if update.record_status == RecordStatus::Completed {
            record_completed(&mut tx, update).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The record with its dialer state, as the engine would have been offered it.
    pub async fn dialer_candidate(&self, id: RecordId) -> Result<Candidate> {
        self.dialer_candidates(&[id], &[]).await?.pop().ok_or_else(|| StoreError::not_found("record", id))
    }

    /// These records with their dialer state and everything that keeps the store from offering
    /// them ([`StoreHold`], under the profile's `filters`), in id order: what "why not dialable",
    /// the compliance preview and "available now" check with the engine's `eligibility::check`.
    /// At most [`MAX_DIALABLE_BATCH`] ids.
    pub async fn dialer_candidates(&self, ids: &[RecordId], filters: &[RecordFilter]) -> Result<Vec<Candidate>> {
        assert!(ids.len() <= MAX_DIALABLE_BATCH, "at most {MAX_DIALABLE_BATCH} records a call");
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut vals = Vec::new();
        let filtered_out = if filters.is_empty() {
            "0".to_string()
        } else {
            let conds = filters.iter().map(|f| self.filter_sql(f, &mut vals)).collect::<Result<Vec<_>>>()?;
            format!("CASE WHEN {} THEN 0 ELSE 1 END", conds.join(" AND "))
        };
        let ids: Vec<String> = ids.iter().map(|i| i.0.to_string()).collect();
        let sql = format!(
            "SELECT r.*, {CHAIN_ATTEMPTS}, (SELECT MIN(p.chain_position) {EARLIER_OPEN_FROM}) AS earlier_open, \
             (SELECT MIN(e.id) {CHAIN_ENDED_FROM}) AS chain_ended_by, \
             (SELECT e.last_result {CHAIN_ENDED_FROM} ORDER BY e.id LIMIT 1) AS chain_ended_result, \
             {filtered_out} AS filtered_out FROM records r WHERE r.id IN ({}) ORDER BY r.id",
            ids.join(",")
        );
        let rows = bind_all(sqlx::query(&sql), vals).fetch_all(&self.pool).await?;
        rows.iter().map(|row| candidate_from_row(row, true)).collect()
    }

    /// The highest call id ever used (a restarted dialer continues after it).
    pub async fn max_call_id(&self) -> Result<u64> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(call_id) FROM call_attempts").fetch_one(&self.pool).await?;
        Ok(v.unwrap_or(0).max(0) as u64)
    }

    /// Live answers, abandons and unconnected machine verdicts per campaign and minute since
    /// `since` (abandon accounting replay; at most 43,200 rows per campaign for 30 days).
    pub async fn abandon_history(&self, since: DateTime<Utc>) -> Result<Vec<AbandonMinute>> {
        let rows = sqlx::query(
            "SELECT campaign_id, (started_at / 60000) AS minute, CAST(SUM(live_answer) AS BIGINT) AS live, CAST(SUM(abandoned) AS BIGINT) AS abandons, \
             CAST(SUM(CASE WHEN result = 'answering_machine' AND live_answer = 0 THEN 1 ELSE 0 END) AS BIGINT) AS machines \
             FROM call_attempts WHERE started_at >= $1 AND (live_answer = 1 OR abandoned = 1 OR result = 'answering_machine') \
             GROUP BY campaign_id, started_at / 60000 ORDER BY campaign_id, minute",
        )
        .bind(ms(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let count = |c: &str| -> Result<u32> { Ok(r.try_get::<Option<i64>, _>(c)?.unwrap_or(0).max(0) as u32) };
                Ok(AbandonMinute {
                    campaign_id: CampaignId(r.try_get("campaign_id")?),
                    minute_start: from_ms(r.try_get::<i64, _>("minute")? * 60_000),
                    live_answers: count("live")?,
                    abandons: count("abandons")?,
                    machine_verdicts: count("machines")?,
                })
            })
            .collect()
    }

    /// Counters of a campaign's attempts since `since`.
    pub async fn attempt_counts(&self, campaign: CampaignId, since: DateTime<Utc>) -> Result<AttemptCounts> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS dials, CAST(SUM(live_answer) AS BIGINT) AS live, CAST(SUM(CASE WHEN connected_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS connects, \
             CAST(SUM(abandoned) AS BIGINT) AS abandons, CAST(SUM(CASE WHEN ended_at IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS open \
             FROM call_attempts WHERE campaign_id = $1 AND started_at >= $2",
        )
        .bind(campaign.0)
        .bind(ms(since))
        .fetch_one(&self.pool)
        .await?;
        let n = |c: &str| -> Result<i64> { Ok(r.try_get::<Option<i64>, _>(c)?.unwrap_or(0)) };
        Ok(AttemptCounts {
            dials: r.try_get::<i64, _>("dials")?,
            live_answers: n("live")?,
            connects: n("connects")?,
            abandons: n("abandons")?,
            in_progress: n("open")?,
        })
    }

    /// A campaign's attempts since `since` in buckets of `bucket_s` seconds (the progress chart),
    /// oldest first; buckets without attempts are left out. At most [`SERIES_BUCKETS_MAX`]
    /// buckets: a longer span is refused.
    pub async fn attempt_series(
        &self,
        campaign: CampaignId,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket_s: u32,
    ) -> Result<Vec<AttemptBucket>> {
        let bucket_ms = i64::from(bucket_s.max(1)) * 1000;
        let span_ms = (ms(until) - ms(since)).max(0);
        if span_ms / bucket_ms >= SERIES_BUCKETS_MAX as i64 {
            return Err(StoreError::invalid(
                "bucket_s",
                format!("{bucket_s} s buckets over {} s make more than {SERIES_BUCKETS_MAX} buckets", span_ms / 1000),
            ));
        }
        let rows = sqlx::query(
            "SELECT (started_at - $2) / $3 AS bucket, COUNT(*) AS dials, CAST(SUM(live_answer) AS BIGINT) AS live, \
             CAST(SUM(CASE WHEN connected_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS connects, CAST(SUM(abandoned) AS BIGINT) AS abandons \
             FROM call_attempts WHERE campaign_id = $1 AND started_at >= $2 AND started_at < $4 \
             GROUP BY (started_at - $2) / $3 ORDER BY bucket",
        )
        .bind(campaign.0)
        .bind(ms(since))
        .bind(bucket_ms)
        .bind(ms(until))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let n = |c: &str| -> Result<i64> { Ok(r.try_get::<Option<i64>, _>(c)?.unwrap_or(0)) };
                Ok(AttemptBucket {
                    start: from_ms(ms(since) + r.try_get::<i64, _>("bucket")? * bucket_ms),
                    dials: r.try_get::<i64, _>("dials")?,
                    live_answers: n("live")?,
                    connects: n("connects")?,
                    abandons: n("abandons")?,
                })
            })
            .collect()
    }

    /// The record and campaign of one call attempt, `None` when no attempt has this call id.
    pub async fn call_attempt_owner(&self, call_id: i64) -> Result<Option<(RecordId, CampaignId)>> {
        let row = sqlx::query("SELECT record_id, campaign_id FROM call_attempts WHERE call_id = $1")
            .bind(call_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((RecordId(r.try_get("record_id")?), CampaignId(r.try_get("campaign_id")?)))).transpose()
    }

    /// Offers every deferred record of these lists again (a campaign was started or changed).
    pub async fn clear_deferrals(&self, lists: &[ContactListId]) -> Result<u64> {
        if lists.is_empty() {
            return Ok(0);
        }
        let ids: Vec<String> = lists.iter().map(|l| l.0.to_string()).collect();
        let r = sqlx::query(&format!(
            "UPDATE records SET available_at = NULL, defer_code = NULL WHERE list_id IN ({}) AND available_at IS NOT NULL",
            ids.join(",")
        ))
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Offers one record again (it was edited).
    pub async fn clear_deferral(&self, record: RecordId) -> Result<()> {
        sqlx::query("UPDATE records SET available_at = NULL, defer_code = NULL WHERE id = $1").bind(record.0).execute(&self.pool).await?;
        Ok(())
    }

    /// Every DNC entry in force at `at` for these numbers, over all lists.
    pub async fn dnc_entries_all_lists(
        &self,
        phones: &[PhoneNumber],
        at: DateTime<Utc>,
    ) -> Result<Vec<(PhoneNumber, campana_core::DncListId, bool, Option<DateTime<Utc>>)>> {
        let lists: Vec<campana_core::DncListId> =
            sqlx::query_scalar::<_, i64>("SELECT id FROM dnc_lists").fetch_all(&self.pool).await?.into_iter().map(Into::into).collect();
        self.dnc_entries_for(phones, &lists, at).await
    }
}

/// A record row with `chain_attempts_sum` (and, `with_hold`, the [`StoreHold`] columns of
/// [`Store::dialer_candidates`]) as the engine's candidate.
fn candidate_from_row(row: &sqlx::any::AnyRow, with_hold: bool) -> Result<Candidate> {
    let mut hold = StoreHold::default();
    if with_hold {
        let ended: Option<i64> = row.try_get("chain_ended_by")?;
        let result: Option<String> = row.try_get("chain_ended_result")?;
        hold.chain_ended_by = ended.map(|e| (RecordId(e), result.and_then(|r| r.parse::<CallResult>().ok())));
        hold.earlier_open = row.try_get::<Option<i64>, _>("earlier_open")?.map(|p| p as i32);
        hold.filtered_out = row.try_get::<i64, _>("filtered_out")? != 0;
        let available: Option<i64> = row.try_get("available_at")?;
        let code: Option<String> = row.try_get("defer_code")?;
        hold.deferred = available.map(|a| ((a < DEFERRED_NEVER_MS).then(|| from_ms(a)), code.unwrap_or_else(|| "deferred".to_string())));
    }
    Ok(Candidate {
        record: record_from_row(row)?,
        chain_attempts: row.try_get::<Option<i64>, _>("chain_attempts_sum")?.unwrap_or(0).max(0) as u32,
        retry_at: get_opt_time(row, "retry_at")?,
        callback_agent: row.try_get::<Option<i64>, _>("callback_agent")?.map(UserId),
        result_streak: row.try_get::<i64, _>("result_streak")?.max(0) as u32,
        hold,
    })
}

/// `record.completed`: the record's final state, keyed by its list and external id (the CRM's).
async fn record_completed(tx: &mut sqlx::AnyConnection, u: &RecordUpdate) -> Result<()> {
    let row = sqlx::query("SELECT list_id, external_id, phone, chain_position FROM records WHERE id = $1")
        .bind(u.record_id.0)
        .fetch_one(&mut *tx)
        .await?;
    let data = serde_json::json!({
        "record_id": u.record_id, "campaign_id": u.campaign_id, "list_id": row.try_get::<i64, _>("list_id")?,
        "external_id": row.try_get::<Option<String>, _>("external_id")?, "phone": row.try_get::<String, _>("phone")?,
        "chain_id": u.chain_id, "chain_position": row.try_get::<i64, _>("chain_position")?,
        "record_status": u.record_status.as_str(), "last_result": u.last_result.as_str(), "attempts_total": u.attempts_total,
        "last_call_at": u.last_call_at, "ends_chain": u.chain == ChainStep::End,
    });
    crate::webhooks::emit(tx, EventType::RecordCompleted, data, u.last_call_at).await
}

async fn write_record_update(tx: &mut sqlx::Transaction<'static, sqlx::Any>, u: &RecordUpdate, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE records SET record_type = $1, record_status = $2, attempts_total = $3, attempts_today = $4, attempts_day = $5, \
         last_result = $6, last_call_at = $7, retry_at = $8, callback_at = $9, callback_agent = $10, result_streak = $11, \
         available_at = NULL, defer_code = NULL, updated_at = $12, ends_chain = $14 WHERE id = $13",
    )
    .bind(u.record_type.as_str())
    .bind(u.record_status.as_str())
    .bind(i64::from(u.attempts_total))
    .bind(i64::from(u.attempts_today))
    .bind(u.attempts_day.map(|d| d.to_string()))
    .bind(u.last_result.as_str())
    .bind(ms(u.last_call_at))
    .bind(u.retry_at.map(ms))
    .bind(u.callback_at.map(ms))
    .bind(u.callback_agent.map(|a| a.0))
    .bind(i64::from(u.result_streak))
    .bind(now)
    .bind(u.record_id.0)
    .bind(i64::from(u.chain == ChainStep::End))
    .execute(&mut **tx)
    .await?;
    if u.chain == ChainStep::NextNumber {
        // The next open number of the customer becomes the one the dialer offers.
        sqlx::query(
            "UPDATE records SET record_status = 'chain_ready', updated_at = $1 WHERE id = (SELECT n.id FROM records n \
             JOIN records o ON o.id = $2 WHERE n.list_id = o.list_id AND n.chain_id = o.chain_id AND n.chain_position > o.chain_position \
             AND n.record_status NOT IN ('completed', 'cancelled') ORDER BY n.chain_position LIMIT 1)",
        )
        .bind(now)
        .bind(u.record_id.0)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// The agent's disposition and notes on a call (after the engine wrote its result).
    pub async fn set_attempt_disposition(&self, call_id: i64, disposition: Option<i64>, notes: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("UPDATE call_attempts SET disposition_id = $1, notes = $2 WHERE call_id = $3")
            .bind(disposition)
            .bind(notes)
            .bind(call_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 1 {
            let row = sqlx::query(
                "SELECT a.campaign_id, a.record_id, a.agent_id, a.result, d.name AS disposition FROM call_attempts a \
                 LEFT JOIN dispositions d ON d.id = a.disposition_id WHERE a.call_id = $1",
            )
            .bind(call_id)
            .fetch_one(&mut *tx)
            .await?;
            let data = serde_json::json!({
                "call_id": call_id, "campaign_id": row.try_get::<i64, _>("campaign_id")?, "record_id": row.try_get::<i64, _>("record_id")?,
                "agent_id": row.try_get::<Option<i64>, _>("agent_id")?, "result": row.try_get::<Option<String>, _>("result")?,
                "disposition_id": disposition, "disposition": row.try_get::<Option<String>, _>("disposition")?, "notes": notes,
            });
            crate::webhooks::emit(&mut tx, EventType::DispositionSaved, data, chrono::Utc::now()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Counters of the records of these lists at `now`: the campaign progress view (seed 004).
    pub async fn record_progress(&self, lists: &[ContactListId], now: DateTime<Utc>) -> Result<RecordProgress> {
        if lists.is_empty() {
            return Ok(RecordProgress::default());
        }
        let ids: Vec<String> = lists.iter().map(|l| l.0.to_string()).collect();
        let closed = "record_status IN ('completed', 'cancelled') OR record_type = 'no_call'";
        // An open number of a chain another number ended is never dialed (the dialer's offer leaves it
        // out): it is counted apart, not as yet to call.
        let chain_ended = format!("EXISTS (SELECT 1 {CHAIN_ENDED_FROM})");
        let r = sqlx::query(&format!(
            "SELECT COUNT(*) AS total, \
             CAST(SUM(CASE WHEN attempts_total = 0 AND NOT ({closed}) AND NOT {chain_ended} THEN 1 ELSE 0 END) AS BIGINT) AS yet_to_call, \
             CAST(SUM(CASE WHEN NOT ({closed}) AND {chain_ended} THEN 1 ELSE 0 END) AS BIGINT) AS chain_ended, \
             CAST(SUM(CASE WHEN last_result IN ('right_party', 'agent_callback') THEN 1 ELSE 0 END) AS BIGINT) AS successful, \
             CAST(SUM(CASE WHEN ({closed}) AND (last_result IS NULL OR last_result NOT IN ('right_party', 'agent_callback')) THEN 1 ELSE 0 END) AS BIGINT) AS failed, \
             CAST(SUM(CASE WHEN NOT ({closed}) AND NOT {chain_ended} AND (retry_at > $1 OR callback_at > $1) THEN 1 ELSE 0 END) AS BIGINT) AS rescheduled \
             FROM records r WHERE r.list_id IN ({})",
            ids.join(",")
        ))
        .bind(ms(now))
        .fetch_one(&self.pool)
        .await?;
        let n = |c: &str| -> Result<i64> { Ok(r.try_get::<Option<i64>, _>(c)?.unwrap_or(0)) };
        Ok(RecordProgress {
            total: r.try_get::<i64, _>("total")?,
            yet_to_call: n("yet_to_call")?,
            chain_ended: n("chain_ended")?,
            successful: n("successful")?,
            failed: n("failed")?,
            rescheduled: n("rescheduled")?,
        })
    }
}

/// Most buckets [`Store::attempt_series`] returns (a day in one-minute buckets).
pub const SERIES_BUCKETS_MAX: usize = 1_440;

/// A campaign's attempts in one interval of the progress chart.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct AttemptBucket {
    /// Start of the interval.
    pub start: DateTime<Utc>,
    pub dials: i64,
    pub live_answers: i64,
    /// Live answers connected to an agent.
    pub connects: i64,
    pub abandons: i64,
}

/// Record counters of a campaign's lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct RecordProgress {
    pub total: i64,
    /// Open records never dialed (and not of a chain another number ended).
    pub yet_to_call: i64,
    /// Open records of a chain another number ended (a success, a do-not-call, a final result on
    /// another of the customer's numbers): they are never dialed.
    pub chain_ended: i64,
    /// Last result right party or callback.
    pub successful: i64,
    /// Closed without success.
    pub failed: i64,
    /// Open with a retry or callback later.
    pub rescheduled: i64,
}
