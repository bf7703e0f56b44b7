//! National DNC registries kept as DNC lists: what each covers, how old its copy may be, its
//! import schedule, and the progress of each import.

use crate::catalog::{bind_all, V};
use crate::*;
use campana_core::{DncListId, PhoneNumber};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The US safe-harbor limit: a registry copy older than this is not used (16 CFR 310.4(b)(3)(iv)).
pub const DEFAULT_MAX_AGE_DAYS: u32 = 31;

/// Which registry a list copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegistryKind {
    /// The US National Do Not Call Registry (FTC), by area code.
    UsNational,
    /// The UK Telephone Preference Service.
    UkTps,
    /// The UK Corporate Telephone Preference Service.
    UkCtps,
    /// Any other registry delivered as a CSV of numbers.
    Csv,
}

/// How a registry file is written (see docs/dialing.md, "National registries").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegistryFormat {
    /// FTC full list: one number a line, 10 digits or `area code,number`; replaces the list's
    /// numbers in the area codes it covers.
    UsFull,
    /// FTC change list: a line per change with the number (10 digits or `area code,number`),
    /// an add/delete flag (`A`/`D`, `add`/`delete`) and optionally a date.
    UsChanges,
    /// TPS/CTPS full list: one UK number a line (national `0…` or `44…`).
    UkFull,
    /// TPS/CTPS change list: a UK number and an add/delete flag a line.
    UkChanges,
    /// A CSV of numbers (a `phone` column or numbers in the first column); adds only.
    Csv,
}

impl RegistryFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryFormat::UsFull => "us_full",
            RegistryFormat::UsChanges => "us_changes",
            RegistryFormat::UkFull => "uk_full",
            RegistryFormat::UkChanges => "uk_changes",
            RegistryFormat::Csv => "csv",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
    /// A full list replaces the registry's numbers in what it covers.
    pub fn is_full(self) -> bool {
        matches!(self, RegistryFormat::UsFull | RegistryFormat::UkFull)
    }
}

/// A registry's settings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryInput {
    pub kind: RegistryKind,
    /// E.164 digit prefixes the registry covers: `"1212"` for area code 212, `"44"` for the UK.
    /// When the copy is older than `max_age_days`, no number starting with one is dialed by
    /// campaigns that use the list.
    pub covers: Vec<String>,
    /// Default 31 (the US safe-harbor limit).
    #[serde(default)]
    pub max_age_days: Option<u32>,
    /// A file on the server imported on a schedule (e.g. where a download job puts it).
    #[serde(default)]
    pub source_path: Option<String>,
    #[serde(default)]
    pub source_format: Option<RegistryFormat>,
    /// Import `source_path` this often (1 to 168 hours).
    #[serde(default)]
    pub every_hours: Option<u32>,
}

/// A registry as stored.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Registry {
    pub list_id: DncListId,
    #[serde(flatten)]
    pub input: RegistryInput,
    /// When the data of the last full or change list applied was current.
    pub refreshed_at: Option<DateTime<Utc>>,
    pub next_import_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl Registry {
    pub fn max_age_days(&self) -> u32 {
        self.input.max_age_days.unwrap_or(DEFAULT_MAX_AGE_DAYS)
    }
}

/// One import of a registry file and its progress.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportRun {
    pub id: i64,
    pub list_id: DncListId,
    pub format: RegistryFormat,
    pub file_name: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub bytes_total: i64,
    pub bytes_read: i64,
    pub rows_read: i64,
    pub added: i64,
    pub removed: i64,
    pub rejected: i64,
    /// Why the run failed, or the first rejected lines of a run that succeeded.
    pub error: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Progress counters of a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunProgress {
    pub bytes_read: i64,
    pub rows_read: i64,
    pub added: i64,
    pub removed: i64,
    pub rejected: i64,
}

fn validate(i: &RegistryInput) -> Result<()> {
    if i.covers.is_empty() || i.covers.len() > 1000 {
        return Err(StoreError::invalid("covers", "name 1 to 1,000 E.164 digit prefixes (\"1212\" for area code 212, \"44\" for the UK)"));
    }
    for c in &i.covers {
        if c.is_empty() || c.len() > 15 || !c.bytes().all(|b| b.is_ascii_digit()) || c.starts_with('0') {
            return Err(StoreError::invalid("covers", format!("'{c}' is not an E.164 digit prefix (country code first, digits only)")));
        }
    }
    if let Some(d) = i.max_age_days {
        if !(1..=366).contains(&d) {
            return Err(StoreError::invalid("max_age_days", "must be 1 to 366"));
        }
    }
    match (&i.source_path, i.source_format, i.every_hours) {
        (None, None, None) => {}
        (Some(p), Some(_), Some(h)) if !p.trim().is_empty() && (1..=168).contains(&h) => {}
        _ => {
            return Err(StoreError::invalid(
                "every_hours",
                "a schedule needs source_path, source_format and every_hours (1 to 168) together",
            ))
        }
    }
    Ok(())
}

fn registry_from_row(r: &AnyRow) -> Result<Registry> {
    let kind: String = r.try_get("kind")?;
    let fmt: Option<String> = r.try_get("source_format")?;
    Ok(Registry {
        list_id: DncListId(r.try_get("list_id")?),
        input: RegistryInput {
            kind: serde_json::from_value(serde_json::Value::String(kind.clone()))
                .map_err(|_| StoreError::Corrupt(format!("registry kind {kind}")))?,
            covers: get_json(r, "covers")?,
            max_age_days: Some(r.try_get::<i64, _>("max_age_days")? as u32),
            source_path: r.try_get("source_path")?,
            source_format: fmt.as_deref().and_then(RegistryFormat::parse),
            every_hours: r.try_get::<Option<i64>, _>("every_hours")?.map(|h| h as u32),
        },
        refreshed_at: get_opt_time(r, "refreshed_at")?,
        next_import_at: get_opt_time(r, "next_import_at")?,
        updated_at: get_time(r, "updated_at")?,
    })
}

fn run_from_row(r: &AnyRow) -> Result<ImportRun> {
    let f: String = r.try_get("format")?;
    Ok(ImportRun {
        id: r.try_get("id")?,
        list_id: DncListId(r.try_get("list_id")?),
        format: RegistryFormat::parse(&f).ok_or_else(|| StoreError::Corrupt(format!("import format {f}")))?,
        file_name: r.try_get("file_name")?,
        state: r.try_get("state")?,
        bytes_total: r.try_get("bytes_total")?,
        bytes_read: r.try_get("bytes_read")?,
        rows_read: r.try_get("rows_read")?,
        added: r.try_get("added")?,
        removed: r.try_get("removed")?,
        rejected: r.try_get("rejected")?,
        error: r.try_get("error")?,
        started_at: get_time(r, "started_at")?,
        finished_at: get_opt_time(r, "finished_at")?,
    })
}

impl Store {
    /// Makes list `list` a copy of a registry (or changes its settings). The refresh time is kept.
    pub async fn put_dnc_registry(&self, list: DncListId, i: &RegistryInput, now: DateTime<Utc>) -> Result<Registry> {
        validate(i)?;
        self.get::<campana_core::stored::DncList>(list.0).await?;
        let kind = serde_json::to_value(i.kind).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let next = i.every_hours.map(|_| ms(now));
        bind_all(
            sqlx::query(
                "INSERT INTO dnc_registries (list_id, kind, covers, max_age_days, refreshed_at, source_path, source_format, every_hours, next_import_at, updated_at) \
                 VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, $8, $9) \
                 ON CONFLICT (list_id) DO UPDATE SET kind = excluded.kind, covers = excluded.covers, max_age_days = excluded.max_age_days, \
                 source_path = excluded.source_path, source_format = excluded.source_format, every_hours = excluded.every_hours, \
                 next_import_at = excluded.next_import_at, updated_at = excluded.updated_at",
            ),
            vec![
                V::I(list.0),
                V::S(kind.as_str().unwrap_or_default().to_string()),
                V::S(serde_json::to_string(&i.covers).expect("strings serialize")),
                V::I(i64::from(i.max_age_days.unwrap_or(DEFAULT_MAX_AGE_DAYS))),
                V::OS(i.source_path.clone()),
                V::OS(i.source_format.map(|f| f.as_str().to_string())),
                V::OI(i.every_hours.map(i64::from)),
                V::OI(next),
                V::I(ms(now)),
            ],
        )
        .execute(&self.pool)
        .await?;
        self.get_dnc_registry(list).await
    }

    pub async fn get_dnc_registry(&self, list: DncListId) -> Result<Registry> {
        let row = sqlx::query("SELECT * FROM dnc_registries WHERE list_id = $1")
            .bind(list.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("DNC registry", list))?;
        registry_from_row(&row)
    }

    /// Every registry.
    pub async fn dnc_registries(&self) -> Result<Vec<Registry>> {
        let rows = sqlx::query("SELECT * FROM dnc_registries ORDER BY list_id").fetch_all(&self.pool).await?;
        rows.iter().map(registry_from_row).collect()
    }

    /// Registries whose scheduled import is due at `now`; their next import is moved on.
    pub async fn take_due_dnc_imports(&self, now: DateTime<Utc>) -> Result<Vec<Registry>> {
        let rows = sqlx::query("SELECT * FROM dnc_registries WHERE next_import_at IS NOT NULL AND next_import_at <= $1")
            .bind(ms(now))
            .fetch_all(&self.pool)
            .await?;
        let due: Vec<Registry> = rows.iter().map(registry_from_row).collect::<Result<_>>()?;
        for r in &due {
            let next = now + chrono::Duration::hours(i64::from(r.input.every_hours.unwrap_or(24)));
            sqlx::query("UPDATE dnc_registries SET next_import_at = $1 WHERE list_id = $2")
                .bind(ms(next))
                .bind(r.list_id.0)
                .execute(&self.pool)
                .await?;
        }
        Ok(due)
    }

    /// Starts an import run.
    pub async fn start_dnc_import_run(&self, list: DncListId, format: RegistryFormat, file_name: &str, bytes_total: i64) -> Result<i64> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO dnc_import_runs (list_id, format, file_name, state, bytes_total, bytes_read, rows_read, added, removed, rejected, started_at) \
             VALUES ($1, $2, $3, 'running', $4, 0, 0, 0, 0, 0, $5) RETURNING id",
        )
        .bind(list.0)
        .bind(format.as_str())
        .bind(file_name)
        .bind(bytes_total)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    pub async fn progress_dnc_import_run(&self, id: i64, p: RunProgress) -> Result<()> {
        sqlx::query("UPDATE dnc_import_runs SET bytes_read = $1, rows_read = $2, added = $3, removed = $4, rejected = $5 WHERE id = $6")
            .bind(p.bytes_read)
            .bind(p.rows_read)
            .bind(p.added)
            .bind(p.removed)
            .bind(p.rejected)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a run (`message`: why it failed, or the first rejected lines of one that succeeded);
    /// a successful run of a registry list records `refreshed_at` as the registry's refresh.
    pub async fn finish_dnc_import_run(
        &self,
        id: i64,
        ok: bool,
        message: Option<&str>,
        refreshed_at: Option<DateTime<Utc>>,
    ) -> Result<ImportRun> {
        let run = self.get_dnc_import_run(id).await?;
        sqlx::query("UPDATE dnc_import_runs SET state = $1, error = $2, finished_at = $3 WHERE id = $4")
            .bind(if ok { "done" } else { "failed" })
            .bind(message)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        if let (true, Some(at)) = (ok, refreshed_at) {
            sqlx::query("UPDATE dnc_registries SET refreshed_at = $1 WHERE list_id = $2")
                .bind(ms(at))
                .bind(run.list_id.0)
                .execute(&self.pool)
                .await?;
        }
        self.get_dnc_import_run(id).await
    }

    pub async fn get_dnc_import_run(&self, id: i64) -> Result<ImportRun> {
        let row = sqlx::query("SELECT * FROM dnc_import_runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("DNC import", id))?;
        run_from_row(&row)
    }

    /// The last `limit` runs of a list, newest first.
    pub async fn dnc_import_runs(&self, list: DncListId, limit: i64) -> Result<Vec<ImportRun>> {
        let rows = sqlx::query("SELECT * FROM dnc_import_runs WHERE list_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(list.0)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    /// Removes these numbers from a list (those not on it are ignored); how many were removed.
    pub async fn delete_dnc_entries(&self, list: DncListId, phones: &[PhoneNumber]) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let mut n = 0;
        for chunk in phones.chunks(500) {
            let ph = self.values_groups(1, chunk.len());
            let sql = format!("DELETE FROM dnc_entries WHERE list_id = {} AND phone IN {ph}", list.0);
            let vals: Vec<V> = chunk.iter().map(|p| V::S(p.to_string())).collect();
            n += bind_all(sqlx::query(&sql), vals).execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    /// After a full list: removes the list's numbers under `prefixes` that the full list did not
    /// write (their `source` is not `keep_source`). How many were removed.
    pub async fn sweep_dnc_entries(&self, list: DncListId, prefixes: &[String], keep_source: &str) -> Result<u64> {
        let mut n = 0;
        for p in prefixes {
            debug_assert!(p.bytes().all(|b| b.is_ascii_digit()));
            n += sqlx::query("DELETE FROM dnc_entries WHERE list_id = $1 AND source <> $2 AND phone LIKE $3")
                .bind(list.0)
                .bind(keep_source)
                .bind(format!("+{p}%"))
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(n)
    }
}
