//! Campana's persistence: one API over SQLite (embedded, default) and PostgreSQL (several nodes).
//!
//! Invariants (see ARCHITECTURE.md):
//! - Every query is written once, with `$N` placeholders understood by both backends through
//!   sqlx's `Any` driver; the only dialect difference is the id column type in the migrations.
//! - Times are stored as milliseconds since the Unix epoch (UTC) in BIGINT columns; flags as 0/1.
//! - A list never holds half an import: rows are staged and merged in one transaction.
//! - Inputs arrive already parsed (core newtypes) and validated; the store re-checks references
//!   (ids of other objects) and uniqueness and names the field at fault.

mod attempt_tags;
pub mod attempts;
pub mod audit;
pub mod auth;
mod campaigns;
mod catalog;
pub mod dialer;
pub mod dnc_registry;
mod imports;
mod lists;
mod migrate;
#[cfg(feature = "testing")]
pub mod testing;
mod users;
pub mod webhooks;

pub use attempts::CallAttempt;
pub use audit::{AuditEntry, AuditFilter, Concerns, NewAuditEntry};
pub use campaigns::CampaignFilter;
pub use catalog::Entity;
pub use dialer::{
    AbandonMinute, AttemptBucket, AttemptCounts, DialableQuery, OpenAttempt, RecordProgress, DEFERRED_NEVER_MS, SERIES_BUCKETS_MAX,
};
pub use imports::{ImportCounts, ImportState, ImportStatus, StagedBatch, IMPORT_BATCH_ROWS};
pub use lists::{RecordFilterParams, UpsertOutcome};

use campana_core::FieldError;
use chrono::{DateTime, TimeZone as _, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};
use std::str::FromStr;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{kind} {id} does not exist")]
    NotFound { kind: &'static str, id: String },
    #[error("{0}")]
    Conflict(String),
    #[error("invalid input: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Transition(#[from] campana_core::campaign::TransitionError),
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported database URL '{0}': use sqlite://PATH or postgres://...")]
    BadUrl(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

impl StoreError {
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        StoreError::Invalid(vec![FieldError::new(field, reason)])
    }
    #[allow(clippy::needless_pass_by_value)] // ids are `Copy` newtypes, passed by value
    pub(crate) fn not_found(kind: &'static str, id: impl ToString) -> Self {
        StoreError::NotFound { kind, id: id.to_string() }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Turns a unique-constraint violation into a conflict that says what was duplicated.
pub(crate) fn unique_as_conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        if db.is_unique_violation() {
            return StoreError::Conflict(what());
        }
        if db.is_foreign_key_violation() {
            return StoreError::Conflict(format!("still referenced by other objects ({})", db.message()));
        }
    }
    StoreError::Db(e)
}

/// The store: a connection pool and the backend it talks to. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The SQLite file path or the PostgreSQL URL (imports open their own connections).
    location: std::sync::Arc<str>,
    /// The scratch tables of the imports running in this process.
    scratch: std::sync::Arc<imports::ScratchRegistry>,
}

/// Pool size limit: SQLite has one writer anyway; PostgreSQL connections are per node.
pub const MAX_CONNECTIONS_SQLITE: u32 = 8;
pub const MAX_CONNECTIONS_POSTGRES: u32 = 16;

impl Store {
    /// Connects to `sqlite://PATH` (created when missing) or `postgres://...`.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url, location) = if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            let path = path.split('?').next().unwrap_or(path);
            (Backend::Sqlite, format!("sqlite://{path}?mode=rwc"), path.to_string())
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, url.to_string(), url.to_string())
        } else {
            return Err(StoreError::BadUrl(url.to_string()));
        };
        let opts = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => MAX_CONNECTIONS_SQLITE,
                Backend::Postgres => MAX_CONNECTIONS_POSTGRES,
            })
            .acquire_timeout(std::time::Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        use sqlx::Executor as _;
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = NORMAL",
                            "PRAGMA foreign_keys = ON",
                            "PRAGMA busy_timeout = 10000",
                        ] {
                            conn.execute(pragma).await?;
                        }
                    }
                    Ok(())
                })
            });
        let pool = opts.connect(&url).await?;
        Ok(Store { pool, backend, location: location.into(), scratch: Default::default() })
    }

    /// Opens (creating when needed) the SQLite database file `campana.db` under `data_dir`.
    pub async fn open_data_dir(data_dir: &std::path::Path) -> Result<Store> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::invalid("data_dir", format!("cannot create {}: {e}", data_dir.display())))?;
        Store::connect(&format!("sqlite://{}", data_dir.join("campana.db").display())).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies pending migrations; returns how many were applied.
    pub async fn migrate(&self) -> Result<usize> {
        migrate::run(self).await
    }

    /// Cheap liveness query for /readyz.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Starts a transaction that holds the write lock from its first statement (SQLite
    /// `BEGIN IMMEDIATE`), so read-then-write sequences cannot deadlock.
    pub(crate) async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Placeholder for the `n`th (1-based) parameter of a bulk statement. SQLite gets anonymous
    /// `?`: its `sqlite3_bind_parameter_name` walks the list of named parameters, which makes
    /// binding a statement with thousands of `$N` parameters quadratic. The SQL text is otherwise
    /// the same for both backends.
    pub(crate) fn bulk_placeholder(&self, n: usize, out: &mut String) {
        match self.backend {
            Backend::Sqlite => out.push('?'),
            Backend::Postgres => {
                out.push('$');
                out.push_str(&n.to_string());
            }
        }
    }

    /// `(p1, p2, ...), (...)`: `rows` groups of `cols` placeholders for a multi-row INSERT.
    pub(crate) fn values_groups(&self, rows: usize, cols: usize) -> String {
        let mut sql = String::with_capacity(rows * cols * 4);
        for r in 0..rows {
            sql.push_str(if r == 0 { "(" } else { ",(" });
            for c in 0..cols {
                if c > 0 {
                    sql.push(',');
                }
                self.bulk_placeholder(r * cols + c + 1, &mut sql);
            }
            sql.push(')');
        }
        sql
    }

    pub async fn close(&self) {
        self.pool.close().await
    }
}

// ---- value conversions shared by every module ----

pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub(crate) fn get_time(row: &AnyRow, col: &str) -> Result<DateTime<Utc>> {
    Ok(from_ms(row.try_get::<i64, _>(col)?))
}

pub(crate) fn get_opt_time(row: &AnyRow, col: &str) -> Result<Option<DateTime<Utc>>> {
    Ok(row.try_get::<Option<i64>, _>(col)?.map(from_ms))
}

pub(crate) fn get_bool(row: &AnyRow, col: &str) -> Result<bool> {
    Ok(row.try_get::<i64, _>(col)? != 0)
}

pub(crate) fn get_json<T: serde::de::DeserializeOwned>(row: &AnyRow, col: &str) -> Result<T> {
    let s: String = row.try_get(col)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

pub(crate) fn get_parsed<T: FromStr>(row: &AnyRow, col: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let s: String = row.try_get(col)?;
    s.parse().map_err(|e: T::Err| StoreError::Corrupt(format!("{col}: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("serialising plain data to JSON cannot fail")
}

/// Listing parameters: at most [`MAX_PAGE`] items a page, after the item whose id is `cursor`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageParams {
    pub limit: Option<u32>,
    pub cursor: Option<i64>,
}

pub const MAX_PAGE: u32 = 1000;
pub const DEFAULT_PAGE: u32 = 50;

impl PageParams {
    pub(crate) fn limit(&self) -> i64 {
        i64::from(self.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE))
    }
    pub(crate) fn after(&self) -> i64 {
        self.cursor.unwrap_or(0)
    }
    /// Parses the opaque cursor the API hands out.
    pub fn parse_cursor(s: &str) -> Result<i64> {
        s.parse::<i64>().map_err(|_| StoreError::invalid("cursor", format!("'{s}' is not a cursor returned by this API")))
    }
}

/// Cuts a page fetched with `limit + 1` rows into items and the next cursor.
pub(crate) fn paginate<T>(mut items: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> campana_core::stored::Page<T> {
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|t| id(t).to_string())
    } else {
        None
    };
    campana_core::stored::Page { items, next_cursor }
}
