//! Webhooks: subscriptions, the transactional outbox and the delivery log (migration
//! `0008_webhooks.sql`).
//!
//! An event is written by [`emit`] inside the transaction of the change it announces (a call's
//! result, a disposition, a record completed, a campaign action, an import's end), with one
//! delivery row per endpoint that takes it: if the change commits, its deliveries exist; if it
//! rolls back, they never did. The event's `msg_id` (the `webhook-id` header) is fixed then and
//! never changes on retry. The server's delivery worker claims due deliveries
//! ([`Store::claim_webhook_deliveries`]), posts them and records the outcome.

use crate::{get_opt_time, get_time, ms, Result, Store, StoreError};
use campana_core::webhook::{EventType, WebhookEndpointInput};
use campana_core::{Validated, WebhookDeliveryId, WebhookEndpointId};
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;

/// Deliveries claimed by one [`Store::claim_webhook_deliveries`] call at most.
pub const MAX_CLAIM: usize = 64;
/// Deliveries listed per page at most.
pub const MAX_DELIVERY_PAGE: usize = 200;
/// Endpoints at most (every event is fanned out to each in its transaction).
pub const MAX_ENDPOINTS: i64 = 100;

/// A subscription as stored. The secrets are never serialised (they are shown once, when made).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    pub name: String,
    pub url: String,
    /// Empty: every event.
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    /// Why Campana disabled it (the endpoint answered 410 Gone), when it did.
    pub disabled_reason: Option<String>,
    /// Until when deliveries are also signed with the secret before the last rotation.
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub secret: String,
    #[serde(skip)]
    pub previous_secret: Option<String>,
}

impl WebhookEndpoint {
    /// The secrets to sign with at `now`: the current one, and the previous one during a rotation.
    pub fn signing_secrets(&self, now: DateTime<Utc>) -> Vec<&str> {
        let mut s = vec![self.secret.as_str()];
        if let (Some(p), Some(until)) = (&self.previous_secret, self.previous_secret_until) {
            if now < until {
                s.push(p.as_str());
            }
        }
        s
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not yet delivered; `next_attempt_at` says when it is tried.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up: the retry period ended, or the endpoint answered 410 Gone.
    Failed,
}

impl DeliveryState {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            other => return Err(StoreError::Corrupt(format!("webhook delivery state '{other}'"))),
        })
    }
}

/// One event to one endpoint, with its attempts (the delivery log).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookDelivery {
    pub id: WebhookDeliveryId,
    pub endpoint_id: WebhookEndpointId,
    /// The `webhook-id` header of every attempt.
    pub msg_id: String,
    pub event_type: String,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// HTTP status of the last answer (none: no answer, see `last_error`).
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A delivery claimed for an attempt: what to send, where, signed with what.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: WebhookDeliveryId,
    pub endpoint: WebhookEndpoint,
    pub msg_id: String,
    /// The body, exactly as it is signed.
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: i64,
    pub created_at: DateTime<Utc>,
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Delivered {
        status: u16,
    },
    /// Try again at `retry_at` (None: the retry period is over, give up).
    Retry {
        status: Option<u16>,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    },
    /// 410 Gone: the delivery fails and the endpoint is disabled.
    Gone,
}

const ENDPOINT_COLS: &str =
    "id, name, url, event_types, secret, previous_secret, previous_secret_until, enabled, disabled_reason, created_at, updated_at";

fn endpoint_from(row: &AnyRow) -> Result<WebhookEndpoint> {
    let types: String = row.try_get("event_types")?;
    Ok(WebhookEndpoint {
        id: WebhookEndpointId(row.try_get("id")?),
        name: row.try_get("name")?,
        url: row.try_get("url")?,
        event_types: serde_json::from_str(&types).map_err(|e| StoreError::Corrupt(format!("webhook event types: {e}")))?,
        enabled: crate::get_bool(row, "enabled")?,
        disabled_reason: row.try_get("disabled_reason")?,
        previous_secret_until: get_opt_time(row, "previous_secret_until")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
        secret: row.try_get("secret")?,
        previous_secret: row.try_get("previous_secret")?,
    })
}

fn delivery_from(row: &AnyRow) -> Result<WebhookDelivery> {
    let state = DeliveryState::parse(&row.try_get::<String, _>("state")?)?;
    Ok(WebhookDelivery {
        id: WebhookDeliveryId(row.try_get("id")?),
        endpoint_id: WebhookEndpointId(row.try_get("endpoint_id")?),
        msg_id: row.try_get("msg_id")?,
        event_type: row.try_get("event_type")?,
        state,
        attempts: row.try_get("attempts")?,
        next_attempt_at: if state == DeliveryState::Pending { get_opt_time(row, "next_attempt_at")? } else { None },
        last_attempt_at: get_opt_time(row, "last_attempt_at")?,
        last_status: row.try_get("last_status")?,
        last_error: row.try_get("last_error")?,
        delivered_at: get_opt_time(row, "delivered_at")?,
        created_at: get_time(row, "created_at")?,
    })
}

/// A new `webhook-id`: `msg_` and 26 characters (time in ms, then randomness), unique.
fn new_msg_id(now_ms: i64) -> String {
    use rand::Rng as _;
    let r: u64 = rand::thread_rng().gen();
    format!("msg_{:011x}{:016x}", now_ms & 0xfff_ffff_ffff, r)
}

/// Writes an event to the outbox, in the caller's transaction, with one delivery per enabled
/// endpoint that takes events of `event_type` (nothing when none does). `data` becomes the
/// payload's `data`; the payload follows Standard Webhooks: `{"type", "timestamp", "data"}`.
pub(crate) async fn emit(tx: &mut sqlx::AnyConnection, event_type: EventType, data: serde_json::Value, now: DateTime<Utc>) -> Result<()> {
    let rows = sqlx::query("SELECT id, event_types FROM webhook_endpoints WHERE enabled = 1").fetch_all(&mut *tx).await?;
    let mut targets = Vec::new();
    for row in &rows {
        let types: Vec<EventType> = serde_json::from_str(&row.try_get::<String, _>("event_types")?).unwrap_or_default();
        if WebhookEndpointInput::wants(&types, event_type) {
            targets.push(row.try_get::<i64, _>("id")?);
        }
    }
    if targets.is_empty() {
        return Ok(());
    }
    let at = ms(now);
    let payload = serde_json::json!({
        "type": event_type.as_str(),
        "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": data,
    })
    .to_string();
    let msg_id = new_msg_id(at);
    let event_id: i64 =
        sqlx::query_scalar("INSERT INTO webhook_events (msg_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4) RETURNING id")
            .bind(&msg_id)
            .bind(event_type.as_str())
            .bind(&payload)
            .bind(at)
            .fetch_one(&mut *tx)
            .await?;
    for endpoint in targets {
        sqlx::query(
            "INSERT INTO webhook_deliveries (event_id, endpoint_id, state, attempts, next_attempt_at, created_at) \
             VALUES ($1, $2, 'pending', 0, $3, $3)",
        )
        .bind(event_id)
        .bind(endpoint)
        .bind(at)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Creates a subscription with its first secret (`whsec_...`, made by the caller).
    pub async fn create_webhook(&self, input: &WebhookEndpointInput, secret: &str) -> Result<WebhookEndpoint> {
        input.validate().map_err(StoreError::Invalid)?;
        let mut tx = self.begin_write().await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints").fetch_one(&mut *tx).await?;
        if n >= MAX_ENDPOINTS {
            return Err(StoreError::Conflict(format!("at most {MAX_ENDPOINTS} webhook endpoints; delete one first")));
        }
        let now = crate::now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO webhook_endpoints (name, url, event_types, secret, enabled, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
        )
        .bind(&input.name)
        .bind(input.url.trim())
        .bind(serde_json::to_string(&input.event_types).expect("event types serialise"))
        .bind(secret)
        .bind(i64::from(input.enabled))
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.webhook(WebhookEndpointId(id)).await
    }

    pub async fn webhook(&self, id: WebhookEndpointId) -> Result<WebhookEndpoint> {
        let row = sqlx::query(&format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("webhook", id))?;
        endpoint_from(&row)
    }

    pub async fn webhooks(&self) -> Result<Vec<WebhookEndpoint>> {
        let rows = sqlx::query(&format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints ORDER BY id")).fetch_all(&self.pool).await?;
        rows.iter().map(endpoint_from).collect()
    }

    /// Replaces a subscription's name, address, events and switch. Enabling it clears the reason
    /// Campana disabled it for.
    pub async fn update_webhook(&self, id: WebhookEndpointId, input: &WebhookEndpointInput) -> Result<WebhookEndpoint> {
        input.validate().map_err(StoreError::Invalid)?;
        let n = sqlx::query(
            "UPDATE webhook_endpoints SET name = $1, url = $2, event_types = $3, enabled = $4, \
             disabled_reason = CASE WHEN $4 = 1 THEN NULL ELSE disabled_reason END, updated_at = $5 WHERE id = $6",
        )
        .bind(&input.name)
        .bind(input.url.trim())
        .bind(serde_json::to_string(&input.event_types).expect("event types serialise"))
        .bind(i64::from(input.enabled))
        .bind(crate::now_ms())
        .bind(id.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found("webhook", id));
        }
        self.webhook(id).await
    }

    /// Deletes a subscription and its delivery log.
    pub async fn delete_webhook(&self, id: WebhookEndpointId) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1").bind(id.0).execute(&mut *tx).await?;
        let n = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1").bind(id.0).execute(&mut *tx).await?.rows_affected();
        if n == 0 {
            return Err(StoreError::not_found("webhook", id));
        }
        // Events no endpoint waits for any more.
        sqlx::query(
            "DELETE FROM webhook_events WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = webhook_events.id)",
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A new secret; the old one keeps signing (a second signature) until `old_valid_until`.
    pub async fn rotate_webhook_secret(
        &self,
        id: WebhookEndpointId,
        secret: &str,
        old_valid_until: DateTime<Utc>,
    ) -> Result<WebhookEndpoint> {
        let n = sqlx::query(
            "UPDATE webhook_endpoints SET previous_secret = secret, previous_secret_until = $1, secret = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(ms(old_valid_until))
        .bind(secret)
        .bind(crate::now_ms())
        .bind(id.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found("webhook", id));
        }
        self.webhook(id).await
    }

    /// Claims up to `limit` (at most [`MAX_CLAIM`]) deliveries due at `now` of enabled endpoints:
    /// each is moved `lease_s` ahead, so another worker (or node) does not take it meanwhile, and
    /// a crash mid-attempt only delays it. Oldest first.
    pub async fn claim_webhook_deliveries(&self, now: DateTime<Utc>, limit: usize, lease_s: i64) -> Result<Vec<ClaimedDelivery>> {
        let limit = limit.min(MAX_CLAIM) as i64;
        let mut tx = self.begin_write().await?;
        let rows = sqlx::query(&format!(
            "SELECT d.id AS d_id, d.attempts AS d_attempts, d.created_at AS d_created_at, e.msg_id, e.payload, \
             {} FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id \
             JOIN webhook_endpoints w ON w.id = d.endpoint_id \
             WHERE d.state = 'pending' AND d.next_attempt_at <= $1 AND w.enabled = 1 ORDER BY d.next_attempt_at, d.id LIMIT $2",
            ENDPOINT_COLS.split(", ").map(|c| format!("w.{c}")).collect::<Vec<_>>().join(", ")
        ))
        .bind(ms(now))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get("d_id")?;
            sqlx::query("UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id = $2")
                .bind(ms(now) + lease_s * 1000)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            out.push(ClaimedDelivery {
                id: WebhookDeliveryId(id),
                endpoint: endpoint_from(row)?,
                msg_id: row.try_get("msg_id")?,
                payload: row.try_get("payload")?,
                attempts: row.try_get("d_attempts")?,
                created_at: get_time(row, "d_created_at")?,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Records an attempt's outcome. A 410 Gone also disables the endpoint, with the reason.
    pub async fn record_webhook_attempt(&self, d: &ClaimedDelivery, at: DateTime<Utc>, outcome: &AttemptOutcome) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let at_ms = ms(at);
        let (state, next, status, error, delivered) = match outcome {
            AttemptOutcome::Delivered { status } => ("delivered", at_ms, Some(i64::from(*status)), None, Some(at_ms)),
            AttemptOutcome::Retry { status, error, retry_at: Some(r) } => {
                ("pending", ms(*r), status.map(i64::from), Some(error.clone()), None)
            }
            AttemptOutcome::Retry { status, error, retry_at: None } => {
                ("failed", at_ms, status.map(i64::from), Some(format!("{error}; gave up: the retry period is over")), None)
            }
            AttemptOutcome::Gone => ("failed", at_ms, Some(410), Some("410 Gone: the endpoint was disabled".to_string()), None),
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, next_attempt_at = $2, last_attempt_at = $3, \
             last_status = $4, last_error = $5, delivered_at = $6 WHERE id = $7",
        )
        .bind(state)
        .bind(next)
        .bind(at_ms)
        .bind(status)
        .bind(error)
        .bind(delivered)
        .bind(d.id.0)
        .execute(&mut *tx)
        .await?;
        if *outcome == AttemptOutcome::Gone {
            sqlx::query("UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $1, updated_at = $2 WHERE id = $3")
                .bind(format!("the endpoint answered 410 Gone at {}", at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
                .bind(at_ms)
                .bind(d.endpoint.id.0)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// An endpoint's deliveries, newest first, `before` a delivery id (paging).
    pub async fn webhook_deliveries(
        &self,
        endpoint: WebhookEndpointId,
        before: Option<WebhookDeliveryId>,
        limit: usize,
    ) -> Result<Vec<WebhookDelivery>> {
        self.webhook(endpoint).await?;
        let rows = sqlx::query(
            "SELECT d.id, d.endpoint_id, e.msg_id, e.event_type, d.state, d.attempts, d.next_attempt_at, d.last_attempt_at, \
             d.last_status, d.last_error, d.delivered_at, d.created_at FROM webhook_deliveries d \
             JOIN webhook_events e ON e.id = d.event_id WHERE d.endpoint_id = $1 AND d.id < $2 ORDER BY d.id DESC LIMIT $3",
        )
        .bind(endpoint.0)
        .bind(before.map_or(i64::MAX, |b| b.0))
        .bind(limit.min(MAX_DELIVERY_PAGE) as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery_from).collect()
    }

    /// Sends a delivery again now (same event, same `webhook-id`), whatever its state.
    pub async fn redeliver_webhook(&self, endpoint: WebhookEndpointId, id: WebhookDeliveryId) -> Result<()> {
        let n = sqlx::query(
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $1, delivered_at = NULL WHERE id = $2 AND endpoint_id = $3",
        )
        .bind(crate::now_ms())
        .bind(id.0)
        .bind(endpoint.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::not_found("webhook delivery", id));
        }
        Ok(())
    }

    /// Pending deliveries (the backlog), for metrics.
    pub async fn webhook_backlog(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending'").fetch_one(&self.pool).await?)
    }
}
