//! CSV imports, all-or-nothing for the list: accepted rows wait in the import's own scratch
//! table (see [`Scratch`]), written batch by batch without taking the database's write lock;
//! progress and row errors are committed in short transactions as they come. The rows are
//! merged into the list in one transaction by [`Store::import_finish`]. A failed or cancelled
//! import drops its scratch table and leaves the list exactly as it was. Imports interrupted by
//! a crash are marked failed at start-up ([`Store::recover_interrupted_imports`]), which also
//! removes their scratch tables.
//!
//! Dedupe against the list (at merge time, under the list's lock):
//! - a row whose external id is already in the list is that customer: updated (`update`,
//!   `keep_both`) or counted as duplicate (`skip`);
//! - `skip`: a row any of whose numbers is already in the list is a duplicate;
//! - `update`: a row without external id whose number is in the list updates that customer;
//! - `keep_both`: numbers already in the list are imported again as new customers.

use crate::lists::{merge_staged, StagingRows, STAGING_COLS, STAGING_NCOLS, SV};
use crate::*;
use campana_core::import::{ColumnMapping, DedupePolicy, RowError};
use campana_core::record::Contact;
use campana_core::stored::ContactList;
use campana_core::{ContactListId, ImportId};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
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

/// The columns of a scratch table: those of `import_staging` (migration 0001), so the merge
/// reads both with the same SQL.
const SCRATCH_COLUMNS: &str = "(import_id BIGINT NOT NULL, chain_key BIGINT NOT NULL, chain_position BIGINT NOT NULL, \
    target_chain_id BIGINT, external_id TEXT, phone TEXT NOT NULL, phone_type TEXT NOT NULL, record_type TEXT NOT NULL, \
    dial_from BIGINT, dial_until BIGINT, time_zone TEXT, postal_code TEXT, name TEXT NOT NULL, sort_value TEXT, custom TEXT NOT NULL)";

/// Rows per INSERT into a SQLite scratch file (14 parameters each).
const SCRATCH_ROWS_PER_STATEMENT: usize = 256;

/// SQLite page cache of the connection that merges an import (KiB): the records' phone index
/// receives numbers in random order, and with SQLite's default 2 MiB cache a million-row merge
/// spends most of its time re-reading index pages. Reset to the default after the merge.
const MERGE_CACHE_KIB: i64 = 64 * 1024;

/// Where an import's accepted rows wait until the merge: outside the list's tables, written
/// with each backend's bulk path, dropped whole at the end (no row-by-row delete).
pub(crate) enum Scratch {
    /// A separate SQLite file next to the database (`campana.db.import-ID`), written by its own
    /// connection: staging never takes the database's write lock, so the API keeps writing while
    /// a file is read. It has no journal and no fsync: it holds nothing committed, and an import
    /// interrupted by a crash is failed and its file deleted at start-up. The merging connection
    /// attaches it.
    Sqlite { conn: sqlx::SqliteConnection },
    /// An UNLOGGED table `import_rows_ID` filled with `COPY ... FROM STDIN` on its own connection.
    Postgres { conn: sqlx::PgConnection, table: String },
}

/// The scratch tables of the imports running in this process, by import id.
#[derive(Default)]
pub(crate) struct ScratchRegistry(std::sync::Mutex<HashMap<i64, Arc<tokio::sync::Mutex<Scratch>>>>);

impl ScratchRegistry {
    fn get(&self, id: i64) -> Option<Arc<tokio::sync::Mutex<Scratch>>> {
        self.0.lock().expect("scratch registry lock").get(&id).cloned()
    }
    fn insert(&self, id: i64, s: Scratch) {
        self.0.lock().expect("scratch registry lock").insert(id, Arc::new(tokio::sync::Mutex::new(s)));
    }
    fn remove(&self, id: i64) -> Option<Arc<tokio::sync::Mutex<Scratch>>> {
        self.0.lock().expect("scratch registry lock").remove(&id)
    }
}

fn scratch_path(store: &Store, id: i64) -> std::path::PathBuf {
    format!("{}.import-{id}", store.location).into()
}

fn scratch_table(id: i64) -> String {
    format!("import_rows_{id}")
}

/// Appends `s` to a `COPY ... FROM STDIN` text-format line.
fn copy_text(out: &mut String, s: &str) {
    for ch in s.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

impl Scratch {
    async fn create(store: &Store, id: i64) -> Result<Scratch> {
        use sqlx::{ConnectOptions as _, Connection as _};
        match store.backend {
            Backend::Sqlite => {
                let path = scratch_path(store, id);
                let _ = std::fs::remove_file(&path);
                let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Off)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
                    .locking_mode(sqlx::sqlite::SqliteLockingMode::Exclusive)
                    .connect()
                    .await?;
                sqlx::query(&format!("CREATE TABLE import_rows {SCRATCH_COLUMNS}")).execute(&mut conn).await?;
                Ok(Scratch::Sqlite { conn })
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(&store.location).await?;
                let table = scratch_table(id);
                sqlx::query(&format!("DROP TABLE IF EXISTS {table}")).execute(&mut conn).await?;
                sqlx::query(&format!("CREATE UNLOGGED TABLE {table} {SCRATCH_COLUMNS}")).execute(&mut conn).await?;
                Ok(Scratch::Postgres { conn, table })
            }
        }
    }

    /// Appends the staged rows of `contacts` (one per phone).
    async fn write(&mut self, store: &Store, id: i64, contacts: &[(u64, &Contact)]) -> Result<()> {
        use sqlx::Connection as _;
        let staged = StagingRows::new(contacts);
        match self {
            Scratch::Sqlite { conn, .. } => {
                let rows: Vec<[SV<'_>; STAGING_NCOLS]> = staged.rows(id).collect();
                let full = format!(
                    "INSERT INTO import_rows ({STAGING_COLS}) VALUES {}",
                    store.values_groups(SCRATCH_ROWS_PER_STATEMENT, STAGING_NCOLS)
                );
                let mut tx = conn.begin().await?;
                for chunk in rows.chunks(SCRATCH_ROWS_PER_STATEMENT) {
                    let partial;
                    let sql = if chunk.len() == SCRATCH_ROWS_PER_STATEMENT {
                        &full
                    } else {
                        partial =
                            format!("INSERT INTO import_rows ({STAGING_COLS}) VALUES {}", store.values_groups(chunk.len(), STAGING_NCOLS));
                        &partial
                    };
                    let mut q = sqlx::query::<sqlx::Sqlite>(sql);
                    for v in chunk.iter().flatten() {
                        q = match *v {
                            SV::I(x) => q.bind(x),
                            SV::OI(x) => q.bind(x),
                            SV::S(x) => q.bind(x),
                            SV::OS(x) => q.bind(x),
                        };
                    }
                    q.execute(&mut *tx).await?;
                }
                tx.commit().await?;
            }
            Scratch::Postgres { conn, table } => {
                use std::fmt::Write as _;
                let mut buf = String::with_capacity(contacts.len() * 3 * 128);
                for row in staged.rows(id) {
                    for (i, v) in row.iter().enumerate() {
                        if i > 0 {
                            buf.push('\t');
                        }
                        match *v {
                            SV::I(x) | SV::OI(Some(x)) => write!(buf, "{x}").expect("writing to a String"),
                            SV::S(x) | SV::OS(Some(x)) => copy_text(&mut buf, x),
                            SV::OI(None) | SV::OS(None) => buf.push_str("\\N"),
                        }
                    }
                    buf.push('\n');
                }
                let mut copy = conn.copy_in_raw(&format!("COPY {table} ({STAGING_COLS}) FROM STDIN")).await?;
                copy.send(buf.into_bytes()).await?;
                copy.finish().await?;
            }
        }
        Ok(())
    }

    /// Closes the scratch connection (a SQLite file must be closed before another connection
    /// attaches it).
    async fn close(self) {
        use sqlx::Connection as _;
        let _ = match self {
            Scratch::Sqlite { conn, .. } => conn.close().await,
            Scratch::Postgres { conn, .. } => conn.close().await,
        };
    }
}

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
        match Scratch::create(self, id).await {
            Ok(scratch) => self.scratch.insert(id, scratch),
            Err(e) => {
                self.import_abort(ImportId(id), ImportState::Failed, Some(&format!("could not create the import's scratch table: {e}")))
                    .await?;
                return Err(e);
            }
        }
        Ok(ImportId(id))
    }

    /// Stages one batch and its errors, and advances the counters, in one short transaction.
    pub async fn import_stage(&self, id: ImportId, batch: &StagedBatch) -> Result<()> {
        let scratch = self.scratch.get(id.0).ok_or_else(|| StoreError::Conflict(format!("import {id} is not running in this process")))?;
        let keyed: Vec<(u64, &Contact)> = batch.contacts.iter().map(|(k, c)| (*k, c)).collect();
        scratch.lock().await.write(self, id.0, &keyed).await?;
        let mut tx = self.begin_write().await?;
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
        let scratch =
            self.scratch.remove(id.0).ok_or_else(|| StoreError::Conflict(format!("import {id} is not running in this process")))?;
        let scratch = Arc::into_inner(scratch).map(tokio::sync::Mutex::into_inner);
        let staging = match &scratch {
            Some(Scratch::Sqlite { .. }) => "import_scratch.import_rows".to_string(),
            Some(Scratch::Postgres { table, .. }) => table.clone(),
            None => return Err(StoreError::Conflict(format!("import {id} is still being written"))),
        };
        if let Some(s) = scratch {
            s.close().await;
        }
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Sqlite {
            sqlx::query("ATTACH DATABASE $1 AS import_scratch")
                .bind(scratch_path(self, id.0).to_string_lossy().into_owned())
                .execute(&mut *conn)
                .await?;
            sqlx::query(&format!("PRAGMA cache_size = -{MERGE_CACHE_KIB}")).execute(&mut *conn).await?;
        }
        let merged = self.merge_import(&mut conn, &staging, id, status.list_id, policy, mapping).await;
        if self.backend == Backend::Sqlite {
            let reset = async {
                sqlx::query("PRAGMA cache_size = -2000").execute(&mut *conn).await?;
                sqlx::query("DETACH DATABASE import_scratch").execute(&mut *conn).await
            };
            if reset.await.is_err() {
                // Never hand a connection with the scratch file attached back to the pool.
                conn.close_on_drop();
            }
        }
        drop(conn);
        // After a failed merge the import stays running until the caller aborts it; its rows are
        // gone with the scratch table either way.
        self.drop_scratch(id.0).await;
        merged?;
        self.import_status(id).await
    }

    /// The merge of an import's scratch rows, its mapping and its completion, in one transaction.
    async fn merge_import(
        &self,
        conn: &mut sqlx::AnyConnection,
        staging: &str,
        id: ImportId,
        list: ContactListId,
        policy: DedupePolicy,
        mapping: &ColumnMapping,
    ) -> Result<()> {
        use sqlx::Connection as _;
        let mut tx = match self.backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => conn.begin().await?,
        };
        let out = merge_staged(self, &mut tx, staging, id.0, list, policy).await?;
        sqlx::query("UPDATE contact_lists SET mapping = $1 WHERE id = $2").bind(to_json(mapping)).bind(list.0).execute(&mut *tx).await?;
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
        let data = serde_json::json!({
            "import_id": id, "list_id": list, "state": "completed", "records_created": out.records_created,
            "customers_created": out.customers_created, "customers_updated": out.customers_updated,
            "rows_duplicate_in_list": out.customers_duplicate,
        });
        crate::webhooks::emit(&mut tx, campana_core::webhook::EventType::ImportFinished, data, chrono::Utc::now()).await?;
        let t = std::time::Instant::now();
        tx.commit().await?;
        tracing::debug!(elapsed_ms = t.elapsed().as_millis() as u64, "merge commit");
        Ok(())
    }

    /// Whether an import's scratch table or file still exists (tests check that none is left behind).
    #[cfg(feature = "testing")]
    pub async fn import_scratch_exists(&self, id: ImportId) -> Result<bool> {
        Ok(match self.backend {
            Backend::Sqlite => scratch_path(self, id.0).exists(),
            Backend::Postgres => {
                sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM pg_class WHERE relname = $1")
                    .bind(scratch_table(id.0))
                    .fetch_one(&self.pool)
                    .await?
                    > 0
            }
        })
    }

    /// Removes an import's scratch table: this process's connection to it if any, and the
    /// file or table itself (also when a stopped process left it behind).
    async fn drop_scratch(&self, id: i64) {
        if let Some(s) = self.scratch.remove(id) {
            if let Some(s) = Arc::into_inner(s) {
                s.into_inner().close().await;
            }
        }
        match self.backend {
            Backend::Sqlite => {
                let _ = std::fs::remove_file(scratch_path(self, id));
            }
            Backend::Postgres => {
                if let Err(e) = sqlx::query(&format!("DROP TABLE IF EXISTS {}", scratch_table(id))).execute(&self.pool).await {
                    tracing::warn!(import = id, error = %e, "could not drop the import's scratch table");
                }
            }
        }
    }

    /// Ends an import without touching the list: its scratch table is dropped, the errors kept.
    pub async fn import_abort(&self, id: ImportId, state: ImportState, error: Option<&str>) -> Result<ImportStatus> {
        self.drop_scratch(id.0).await;
        let mut tx = self.begin_write().await?;
        let ended = sqlx::query("UPDATE imports SET state = $1, error = $2, finished_at = $3 WHERE id = $4 AND state = 'running'")
            .bind(state.as_str())
            .bind(error)
            .bind(now_ms())
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        if ended.rows_affected() == 1 {
            let list: i64 = sqlx::query_scalar("SELECT list_id FROM imports WHERE id = $1").bind(id.0).fetch_one(&mut *tx).await?;
            let data = serde_json::json!({"import_id": id, "list_id": list, "state": state.as_str(), "error": error});
            crate::webhooks::emit(&mut tx, campana_core::webhook::EventType::ImportFinished, data, chrono::Utc::now()).await?;
        }
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

    /// Marks imports left running by a stopped process as failed and removes their scratch tables.
    pub async fn recover_interrupted_imports(&self) -> Result<u64> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM imports WHERE state = 'running'").fetch_all(&self.pool).await?;
        for id in &ids {
            self.import_abort(ImportId(*id), ImportState::Failed, Some("the server stopped during the import; nothing of it was applied"))
                .await?;
        }
        Ok(ids.len() as u64)
    }
}
