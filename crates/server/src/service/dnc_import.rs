//! Do-not-call lists from CSV files (a regulator's registry extract, a CRM's opt-outs): the API
//! (`POST /api/v1/dnc-lists/{id}/entries/import`) and the console's DNC page both upload through
//! [`crate::upload::spool_temp`] and apply through [`import`].
//!
//! The file is read row by row, never whole: parsed entries go to the store in batches of
//! [`BATCH_ROWS`] through a queue of [`QUEUED_BATCHES`], each batch is told to the live dialer,
//! and one audit entry records the import (file, counts, the first rejected rows), not every
//! number. Rows that cannot be read are rejected with their row number, field and reason; the
//! rest are applied. Columns, by header name: `phone` (or `number`, `phone_number`, `msisdn`),
//! optional `expires_on` (`YYYY-MM-DD`, the end of that day UTC, or RFC 3339) and `reason`. A
//! file whose first row is already a number has no header: its first column is the number.

use super::audit::{self, Actor};
use super::{ServiceError, ServiceResult};
use crate::state::AppState;
use campana_core::record::DncEntryInput;
use campana_core::stored::DncList;
use campana_core::{CountryCode, DncListId, PhoneNumber};
use campana_store::Concerns;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::path::Path;
use utoipa::ToSchema;

/// Largest DNC file accepted (a national registry extract for a few area codes fits).
pub const MAX_DNC_FILE_BYTES: usize = 2 << 30;
/// Entries written to the store in one transaction.
pub const BATCH_ROWS: usize = 10_000;
/// Parsed batches waiting for the store (the reader waits beyond this).
pub const QUEUED_BATCHES: usize = 2;
/// Rejected rows listed in the answer and the audit entry (all are counted).
pub const MAX_LISTED_ERRORS: usize = 1_000;

/// How to read a DNC file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DncImportOptions {
    /// Country (ISO 3166 alpha-2) for numbers written without `+` and country code, as
    /// national registries list them (`US`: 10 digits). Without it such numbers are rejected.
    pub default_country: Option<CountryCode>,
    /// Field separator; `,` unless given (`;`, tab, `|` are common).
    pub delimiter: Option<char>,
    /// Reason for rows without a `reason` column or with it empty.
    pub reason: Option<String>,
    /// Expiry for rows without one.
    pub expires_on: Option<NaiveDate>,
}

/// A row that was not applied.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DncRowError {
    /// 1-based line of the file's records (the header is row 1 when there is one).
    pub row: u64,
    pub field: String,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DncImportResult {
    pub file_name: String,
    /// Data rows read (the header not counted).
    pub rows: u64,
    /// Entries added or replaced.
    pub applied: u64,
    pub rejected: u64,
    /// The first rejected rows (at most 1,000).
    pub errors: Vec<DncRowError>,
    /// More rows were rejected than listed.
    pub errors_truncated: bool,
}

/// Where each field is in a row.
#[derive(Debug, Clone, Copy)]
struct Columns {
    phone: usize,
    expires: Option<usize>,
    reason: Option<usize>,
}

/// Reads the header (or decides there is none), naming what is wrong with it.
fn columns(first: &csv::StringRecord, opts: &DncImportOptions) -> Result<(Columns, bool), String> {
    let looks_like_number = first.get(0).is_some_and(|f| PhoneNumber::parse(unbom(f), opts.default_country).is_ok());
    if looks_like_number {
        return Ok((Columns { phone: 0, expires: None, reason: None }, false));
    }
    let find = |names: &[&str]| first.iter().position(|h| names.contains(&unbom(h).trim().to_ascii_lowercase().as_str()));
    let phone = find(&["phone", "number", "phone_number", "msisdn", "telephone"]).ok_or_else(|| {
        let seen: Vec<&str> = first.iter().collect();
        format!("no phone column: the header is {seen:?}; name one column phone (or number, phone_number, msisdn)")
    })?;
    Ok((Columns { phone, expires: find(&["expires_on", "expires_at", "expiry"]), reason: find(&["reason"]) }, true))
}

/// A field without the byte-order mark spreadsheets put at the start of a file.
fn unbom(field: &str) -> &str {
    field.strip_prefix('\u{feff}').unwrap_or(field)
}

fn expiry(s: &str) -> Result<Option<DateTime<Utc>>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(Some(d.and_hms_opt(23, 59, 59).expect("valid time").and_utc()));
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|_| format!("'{s}' is not a date (YYYY-MM-DD) or an RFC 3339 time"))
}

fn entry(rec: &csv::StringRecord, cols: Columns, opts: &DncImportOptions) -> Result<DncEntryInput, (String, String)> {
    let phone_text = unbom(rec.get(cols.phone).unwrap_or(""));
    let phone = PhoneNumber::parse(phone_text, opts.default_country).map_err(|e| ("phone".to_string(), e.reason))?;
    let default_expiry = opts.expires_on.map(|d| d.and_hms_opt(23, 59, 59).expect("valid time").and_utc());
    let expires_at = match cols.expires.and_then(|i| rec.get(i)) {
        Some(t) => expiry(t).map_err(|r| ("expires_on".to_string(), r))?.or(default_expiry),
        None => default_expiry,
    };
    let reason = cols.reason.and_then(|i| rec.get(i)).map(str::trim).filter(|r| !r.is_empty());
    let reason = reason.map(str::to_string).or_else(|| opts.reason.clone()).unwrap_or_else(|| "imported".into());
    if reason.chars().count() > 200 {
        return Err(("reason".into(), "is longer than 200 characters".into()));
    }
    Ok(DncEntryInput { phone, expires_at, reason, source: "file".into() })
}

/// What the reader thread sends.
enum Parsed {
    Batch(Vec<DncEntryInput>),
    Error(DncRowError),
    /// The file itself cannot be read (header, encoding): nothing more follows.
    Fatal(String),
}

fn read_file(path: &Path, opts: &DncImportOptions, tx: tokio::sync::mpsc::Sender<Parsed>) -> u64 {
    let delimiter = opts.delimiter.unwrap_or(',');
    let mut rdr = match std::fs::File::open(path) {
        Ok(f) => {
            csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter as u8).from_reader(std::io::BufReader::new(f))
        }
        Err(e) => {
            let _ = tx.blocking_send(Parsed::Fatal(e.to_string()));
            return 0;
        }
    };
    let mut records = rdr.records();
    let mut rows = 0u64;
    let mut batch = Vec::with_capacity(BATCH_ROWS);
    let mut line = 0u64;
    let mut cols = None;
    for rec in records.by_ref() {
        line += 1;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                if cols.is_none() {
                    let _ = tx.blocking_send(Parsed::Fatal(format!("row {line}: {e}")));
                    return rows;
                }
                rows += 1;
                let err = DncRowError { row: line, field: "row".into(), reason: e.to_string() };
                if tx.blocking_send(Parsed::Error(err)).is_err() {
                    return rows;
                }
                continue;
            }
        };
        let c = match cols {
            Some(c) => c,
            None => match columns(&rec, opts) {
                Ok((c, header)) => {
                    cols = Some(c);
                    if header {
                        continue;
                    }
                    c
                }
                Err(m) => {
                    let _ = tx.blocking_send(Parsed::Fatal(m));
                    return rows;
                }
            },
        };
        if rec.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        rows += 1;
        match entry(&rec, c, opts) {
            Ok(e) => batch.push(e),
            Err((field, reason)) => {
                if tx.blocking_send(Parsed::Error(DncRowError { row: line, field, reason })).is_err() {
                    return rows;
                }
            }
        }
        if batch.len() == BATCH_ROWS && tx.blocking_send(Parsed::Batch(std::mem::take(&mut batch))).is_err() {
            return rows;
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Parsed::Batch(batch));
    }
    rows
}

/// Applies a spooled DNC file to a list: every readable row is added (or replaces the number's
/// entry), every other row is reported. A file that cannot be read at all (no phone column,
/// not CSV) is refused with 422 on `file` and changes nothing.
pub async fn import(
    s: &AppState,
    a: &Actor,
    list: DncListId,
    path: &Path,
    file_name: &str,
    opts: &DncImportOptions,
) -> ServiceResult<DncImportResult> {
    s.store.get::<DncList>(list.0).await?;
    if let Some(d) = opts.delimiter {
        if !d.is_ascii() || d == '"' || d == '\n' || d == '\r' {
            return Err(ServiceError::field("options.delimiter", format!("'{d}' cannot separate fields (use one ASCII character)")));
        }
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(QUEUED_BATCHES);
    let (p, o) = (path.to_path_buf(), opts.clone());
    let reader = tokio::task::spawn_blocking(move || read_file(&p, &o, tx));
    let mut result =
        DncImportResult { file_name: file_name.to_string(), rows: 0, applied: 0, rejected: 0, errors: Vec::new(), errors_truncated: false };
    while let Some(msg) = rx.recv().await {
        match msg {
            Parsed::Batch(entries) => {
                result.applied += s.store.put_dnc_entries(list, &entries).await?;
                s.dialer.dnc_changed(entries.into_iter().map(|e| e.phone).collect());
            }
            Parsed::Error(e) => {
                result.rejected += 1;
                if result.errors.len() < MAX_LISTED_ERRORS {
                    result.errors.push(e);
                } else {
                    result.errors_truncated = true;
                }
            }
            Parsed::Fatal(m) => {
                if result.applied == 0 {
                    return Err(ServiceError::field("file", m));
                }
                result.errors.push(DncRowError { row: 0, field: "file".into(), reason: m });
            }
        }
    }
    result.rows = reader.await.map_err(|e| ServiceError::internal(e, "the DNC file reader failed; see the server log"))?;
    let first: Vec<_> = result.errors.iter().take(20).collect();
    let change = audit::Change {
        action: "import".into(),
        entity_type: "dnc_list",
        entity_id: Some(list.0.to_string()),
        summary: format!("{file_name}: {} numbers, {} rows rejected", result.applied, result.rejected),
        concerns: Concerns::Global,
        before: None,
        after: Some(serde_json::json!({"file_name": file_name, "rows": result.rows, "applied": result.applied,
            "rejected": result.rejected, "first_errors": first, "options": opts})),
    };
    audit::log(s, a, change).await?;
    Ok(result)
}
