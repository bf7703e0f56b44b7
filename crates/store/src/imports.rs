//! CSV imports, all-or-nothing for the list: rows are staged in committed batches (so the
//! write lock is held only briefly and progress is visible), then merged into the list in one
//! transaction by [`Store::import_finish`]. A failed or cancelled import deletes its staged
//! rows and leaves the list exactly as it was. Imports interrupted by a crash are marked failed
//! at start-up ([`Store::recover_interrupted_imports`]).
//!
//! Dedupe against the list (at merge time, under the list's lock):
//! - a row whose external id is already in the list is that customer: updated (`update`,
//!   `keep_both`) or counted as duplicate (`skip`);
//! - `skip`: a row any of whose numbers is already in the list is a duplicate;
//! - `update`: a row without external id whose number is in the list updates that customer;
//! - `keep_both`: numbers already in the list are imported again as new customers.

use crate::lists::{merge_staged, stage_contacts};
use crate::*;
use campana_core::import::{ColumnMapping, DedupePolicy, RowError};
use campana_core::record::Contact;
use campana_core::stored::ContactList;
use campana_core::{ContactListId, ImportId};
use serde::Serialize;
use utoipa::ToSchema;

campana_core::string_enum! {
    pub enum ImportState { Running = "running", Completed = "completed", Failed = "failed", Cancelled = "cancelled" }
}

/// Counters of one import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ImportCounts {
    /// Data rows read from the file so far.
    pub rows_read: i64,
    /// Rows accepted and staged (not yet in the list while the import runs).
    pub rows_staged: i64,
    /// Rows refused, each with its reasons in the error file.
    pub rows_rejected: i64,
    /// Rows skipped because an earlier row of the same file had the same external id or number.
    pub rows_duplicate_in_file: i64,
    /// Customers already in the list and left as they were (policy `skip`).
    pub rows_duplicate_in_list: i64,
    pub customers_created: i64,
    pub customers_updated: i64,
    pub records_created: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportStatus {
    pub id: ImportId,
    pub list_id: ContactListId,
    pub file_name: String,
    pub state: ImportState,
    #[serde(flatten)]
    pub counts: ImportCounts,
    pub error: Option<String>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One batch handed from the file reader to the store.
#[derive(Debug, Default)]
pub struct StagedBatch {
    pub contacts: Vec<(u64, Contact)>,
    pub errors: Vec<RowError>,
    pub rows_read: i64,
    pub rows_duplicate_in_file: i64,
}

/// The most rows a [`StagedBatch`] should hold (the reader keeps at most two in flight).
pub const IMPORT_BATCH_ROWS: usize = 5_000;

fn status_from_row(row: &AnyRow) -> Result<ImportStatus> {
    Ok(ImportStatus {
        id: row.try_get::<i64, _>("id")?.into(),
        list_id: row.try_get::<i64, _>("list_id")?.into(),
        file_name: row.try_get("file_name")?,
        state: get_parsed(row, "state")?,
        counts: ImportCounts {
            rows_read: row.try_get("rows_read")?,
            rows_staged: row.try_get("rows_staged")?,
            rows_rejected: row.try_get("rows_rejected")?,
            rows_duplicate_in_file: row.try_get("rows_duplicate_in_file")?,
            rows_duplicate_in_list: row.try_get("rows_duplicate_in_list")?,
            customers_created: row.try_get("customers_created")?,
            customers_updated: row.try_get("customers_updated")?,
            records_created: row.try_get("records_created")?,
        },
        error: row.try_get("error")?,
        started_at: get_time(row, "started_at")?,
        finished_at: get_opt_time(row, "finished_at")?,
    })
}

impl Store {
    /// Registers a new import; refuses a second running import into the same list.
    pub async fn import_begin(&self, list: ContactListId, file_name: &str, options_json: &str) -> Result<ImportId> {
        self.get::<ContactList>(list.0).await?;
        let mut tx = self.begin_write().await?;
        let running: Option<i64> = sqlx::query_scalar("SELECT id FROM imports WHERE list_id = $1 AND state = 'running'")
            .bind(list.0)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(r) = running {
            return Err(StoreError::Conflict(format!("import {r} into list {list} is still running; wait for it or cancel it")));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO imports (list_id, file_name, state, options, started_at) VALUES ($1, $2, 'running', $3, $4) RETURNING id",
        )
        .bind(list.0)
        .bind(file_name)
        .bind(options_json)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ImportId(id))
    }

    /// Stages one batch and its errors, and advances the counters, in one short transaction.
    pub async fn import_stage(&self, id: ImportId, batch: &StagedBatch) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let keyed: Vec<(u64, &Contact)> = batch.contacts.iter().map(|(k, c)| (*k, c)).collect();
        stage_contacts(self, &mut tx, id.0, &keyed).await?;
        for chunk in batch.errors.chunks(200) {
            let sql = format!(
                "INSERT INTO import_errors (import_id, row_number, column_name, value, reason) VALUES {}",
                self.values_groups(chunk.len(), 5)
            );
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q.bind(id.0).bind(e.row as i64).bind(e.column.clone()).bind(e.value.clone()).bind(e.reason.clone());
            }
            q.execute(&mut *tx).await?;
        }
        let rejected_rows = {
            let mut rows: Vec<u64> = batch.errors.iter().map(|e| e.row).collect();
            rows.dedup();
            rows.len() as i64
        };
        sqlx::query(
            "UPDATE imports SET rows_read = rows_read + $1, rows_staged = rows_staged + $2, rows_rejected = rows_rejected + $3, \
             rows_duplicate_in_file = rows_duplicate_in_file + $4 WHERE id = $5 AND state = 'running'",
        )
        .bind(batch.rows_read)
        .bind(batch.contacts.len() as i64)
        .bind(rejected_rows)
        .bind(batch.rows_duplicate_in_file)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Merges the staged rows into the list in one transaction, saves the mapping with the
    /// list, and marks the import completed.
    pub async fn import_finish(&self, id: ImportId, policy: DedupePolicy, mapping: &ColumnMapping) -> Result<ImportStatus> {
        let status = self.import_status(id).await?;
        if status.state != ImportState::Running {
            return Err(StoreError::Conflict(format!("import {id} is {}, not running", status.state)));
        }
        let mut tx = self.begin_write().await?;
        let out = merge_staged(self, &mut tx, id.0, status.list_id, policy).await?;
        sqlx::query("UPDATE contact_lists SET mapping = $1 WHERE id = $2")
            .bind(to_json(mapping))
            .bind(status.list_id.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE imports SET state = 'completed', finished_at = $1, customers_created = $2, customers_updated = $3, records_created = $4, \
             rows_duplicate_in_list = $5 WHERE id = $6",
        )
        .bind(now_ms())
        .bind(out.customers_created)
        .bind(out.customers_updated)
        .bind(out.records_created)
        .bind(out.customers_duplicate)
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.import_status(id).await
    }

    /// Ends an import without touching the list: staged rows are deleted, the errors kept.
    pub async fn import_abort(&self, id: ImportId, state: ImportState, error: Option<&str>) -> Result<ImportStatus> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM import_staging WHERE import_id = $1").bind(id.0).execute(&mut *tx).await?;
        sqlx::query("UPDATE imports SET state = $1, error = $2, finished_at = $3 WHERE id = $4 AND state = 'running'")
            .bind(state.as_str())
            .bind(error)
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.import_status(id).await
    }

    pub async fn import_status(&self, id: ImportId) -> Result<ImportStatus> {
        let row = sqlx::query("SELECT * FROM imports WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("import", id))?;
        status_from_row(&row)
    }

    pub async fn list_imports(&self, list: ContactListId) -> Result<Vec<ImportStatus>> {
        let rows =
            sqlx::query("SELECT * FROM imports WHERE list_id = $1 ORDER BY id DESC LIMIT 1000").bind(list.0).fetch_all(&self.pool).await?;
        rows.iter().map(status_from_row).collect()
    }

    /// Row errors of an import in row order, a page at a time (after `after_row`).
    pub async fn import_errors(&self, id: ImportId, after_row: i64, limit: i64) -> Result<Vec<RowError>> {
        let rows = sqlx::query("SELECT row_number, column_name, value, reason FROM import_errors WHERE import_id = $1 AND row_number > $2 ORDER BY row_number LIMIT $3")
            .bind(id.0)
            .bind(after_row)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RowError {
                    row: r.try_get::<i64, _>("row_number")? as u64,
                    column: r.try_get("column_name")?,
                    value: r.try_get("value")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    /// Marks imports left running by a stopped process as failed and clears their staging rows.
    pub async fn recover_interrupted_imports(&self) -> Result<u64> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM imports WHERE state = 'running'").fetch_all(&self.pool).await?;
        for id in &ids {
            self.import_abort(ImportId(*id), ImportState::Failed, Some("the server stopped during the import; nothing of it was applied"))
                .await?;
        }
        Ok(ids.len() as u64)
    }
}
