//! National DNC registries: their file formats, imports with progress, the import schedule.
//!
//! Formats ([`RegistryFormat`]), one record a line, fields separated by commas:
//! - `us_full` (FTC full list, per area code or the whole registry): `2125550100` or
//!   `212,5550100`. It replaces the list's numbers in the area codes the registry covers:
//!   numbers not in the file are removed after the whole file is applied (never before).
//! - `us_changes` (FTC daily change list): the number as above plus an add/delete flag
//!   (`A`, `D`, `add`, `delete`, `del`) in any column; other columns (a date) are ignored.
//! - `uk_full` / `uk_changes` (TPS/CTPS): a UK number (`02071234567`, `+442071234567`,
//!   `442071234567`), with the flag in change lists.
//! - `csv`: a number in E.164 (with or without `+`) in the first column; a header row is
//!   skipped; adds only.
//!
//! Every line that cannot be read is counted and the first ones are named (line, reason); the
//! others are applied. A run's progress (bytes, lines, added, removed, rejected) is stored as
//! it goes and can be read while it runs.

use crate::dialer::Dialer;
use campana_core::record::DncEntryInput;
use campana_core::{CountryCode, DncListId, PhoneNumber};
use campana_store::dnc_registry::{ImportRun, RegistryFormat, RunProgress};
use campana_store::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::io::BufRead;
use std::path::Path;

/// Lines applied in one store transaction.
pub const BATCH_LINES: usize = 10_000;
/// Parsed batches waiting for the store.
pub const QUEUED_BATCHES: usize = 2;
/// Rejected lines named in the run (all are counted).
pub const NAMED_ERRORS: usize = 20;
/// How often the schedule looks for due imports.
pub const SCHEDULE_POLL_S: u64 = 60;

/// What a line asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Add(PhoneNumber),
    Delete(PhoneNumber),
}

fn action(f: &str) -> Option<bool> {
    match f.to_ascii_lowercase().as_str() {
        "a" | "add" | "added" | "i" | "insert" => Some(true),
        "d" | "del" | "delete" | "deleted" | "r" | "remove" => Some(false),
        _ => None,
    }
}

/// A NANP number from `2125550100`, `12125550100` or (`212`, `5550100`).
fn us_number(fields: &[&str]) -> Result<PhoneNumber, String> {
    let digits: Vec<&str> = fields.iter().copied().filter(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit())).collect();
    let ten = digits.iter().find_map(|d| match d.len() {
        10 => Some(d.to_string()),
        11 if d.starts_with('1') => Some(d[1..].to_string()),
        _ => None,
    });
    let ten = ten.or_else(|| digits.windows(2).find(|w| w[0].len() == 3 && w[1].len() == 7).map(|w| format!("{}{}", w[0], w[1])));
    let ten = ten.ok_or_else(|| "no US number: expected 10 digits (2125550100) or area code and number (212,5550100)".to_string())?;
    PhoneNumber::parse(&format!("+1{ten}"), None).map_err(|e| format!("{ten}: {}", e.reason))
}

fn uk_number(fields: &[&str]) -> Result<PhoneNumber, String> {
    let gb = CountryCode::parse("GB").ok();
    for f in fields.iter().filter(|f| action(f).is_none() && f.bytes().any(|b| b.is_ascii_digit())) {
        let f = if f.starts_with("44") && !f.starts_with('+') { format!("+{f}") } else { f.to_string() };
        if let Ok(p) = PhoneNumber::parse(&f, gb) {
            if p.digits().starts_with("44") {
                return Ok(p);
            }
        }
    }
    Err("no UK number (02071234567, +442071234567 or 442071234567)".into())
}

/// Reads one line of a registry file (`None`: nothing to do, e.g. a blank line or a header).
pub fn parse_line(format: RegistryFormat, line: &str) -> Result<Option<Change>, String> {
    let line = line.trim().trim_start_matches('\u{feff}');
    if line.is_empty() {
        return Ok(None);
    }
    let fields: Vec<&str> = line.split([',', ';', '\t', '|']).map(|f| f.trim().trim_matches('"').trim()).collect();
    let flag = fields.iter().find_map(|f| action(f));
    let changes = matches!(format, RegistryFormat::UsChanges | RegistryFormat::UkChanges);
    let add = match (changes, flag) {
        (true, Some(a)) => a,
        (true, None) => return Err("no add/delete flag (A or D)".into()),
        (false, Some(false)) => return Err("a delete flag in a full list (use the change-list format)".into()),
        (false, _) => true,
    };
    let number = match format {
        RegistryFormat::UsFull | RegistryFormat::UsChanges => us_number(&fields)?,
        RegistryFormat::UkFull | RegistryFormat::UkChanges => uk_number(&fields)?,
        RegistryFormat::Csv => {
            let f = fields[0];
            if !f.bytes().any(|b| b.is_ascii_digit()) {
                return Ok(None); // a header
            }
            let e164 = if f.starts_with('+') { f.to_string() } else { format!("+{f}") };
            PhoneNumber::parse(&e164, None).map_err(|e| format!("{f}: {} (write numbers in E.164, country code first)", e.reason))?
        }
    };
    Ok(Some(if add { Change::Add(number) } else { Change::Delete(number) }))
}

enum Parsed {
    Batch { adds: Vec<PhoneNumber>, deletes: Vec<PhoneNumber>, rejected: Vec<String>, rejected_n: i64, bytes: i64, lines: i64 },
    Fatal(String),
}

fn read_file(path: &Path, format: RegistryFormat, tx: tokio::sync::mpsc::Sender<Parsed>) {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            let _ = tx.blocking_send(Parsed::Fatal(format!("{}: {e}", path.display())));
            return;
        }
    };
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let mut buf = Vec::new();
    let (mut bytes, mut lines, mut line_no) = (0i64, 0i64, 0u64);
    let mut named = 0usize;
    let new = || Parsed::Batch { adds: Vec::new(), deletes: Vec::new(), rejected: Vec::new(), rejected_n: 0, bytes: 0, lines: 0 };
    let mut batch = new();
    loop {
        buf.clear();
        let n = match r.read_until(b'\n', &mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.blocking_send(Parsed::Fatal(format!("line {}: {e}", line_no + 1)));
                return;
            }
        };
        if n == 0 {
            break;
        }
        line_no += 1;
        bytes += n as i64;
        lines += 1;
        let Parsed::Batch { adds, deletes, rejected, rejected_n, .. } = &mut batch else { unreachable!("only batches are built here") };
        let res = match std::str::from_utf8(&buf) {
            Ok(s) => parse_line(format, s),
            Err(_) => Err("not UTF-8 text".into()),
        };
        match res {
            Ok(Some(Change::Add(p))) => adds.push(p),
            Ok(Some(Change::Delete(p))) => deletes.push(p),
            Ok(None) => {}
            Err(reason) => {
                *rejected_n += 1;
                if named < NAMED_ERRORS {
                    named += 1;
                    rejected.push(format!("line {line_no}: {reason}"));
                }
            }
        }
        if adds.len() + deletes.len() >= BATCH_LINES {
            let mut b = std::mem::replace(&mut batch, new());
            if let Parsed::Batch { bytes: bb, lines: ll, .. } = &mut b {
                (*bb, *ll) = (bytes, lines);
            }
            if tx.blocking_send(b).is_err() {
                return;
            }
        }
    }
    if let Parsed::Batch { bytes: bb, lines: ll, .. } = &mut batch {
        (*bb, *ll) = (bytes, lines);
    }
    let _ = tx.blocking_send(batch);
}

/// Imports a registry file into `list` as one run with progress; `data_as_of` is when the
/// file's data was current (its download time), recorded as the registry's refresh time when
/// the run succeeds. A full list removes, at the end, the numbers under the registry's
/// coverage that it did not hold.
pub async fn import(
    store: &Store,
    dialer: &Dialer,
    list: DncListId,
    format: RegistryFormat,
    path: &Path,
    file_name: &str,
    data_as_of: DateTime<Utc>,
) -> Result<ImportRun, StoreError> {
    let bytes_total = std::fs::metadata(path).map(|m| m.len() as i64).unwrap_or(0);
    let run = store.start_dnc_import_run(list, format, file_name, bytes_total).await?;
    finish(store, dialer, list, format, path, run, data_as_of).await
}

/// Starts importing a spooled file in the background (the file is deleted when it ends); the
/// run is returned at once, its progress stored as it goes.
pub async fn start(
    store: &Store,
    dialer: &Dialer,
    list: DncListId,
    format: RegistryFormat,
    file: tempfile::TempPath,
    file_name: &str,
    data_as_of: DateTime<Utc>,
) -> Result<ImportRun, StoreError> {
    let bytes_total = std::fs::metadata(&file).map(|m| m.len() as i64).unwrap_or(0);
    let run = store.start_dnc_import_run(list, format, file_name, bytes_total).await?;
    let (store2, dialer2) = (store.clone(), dialer.clone());
    tokio::spawn(async move {
        if let Err(e) = finish(&store2, &dialer2, list, format, &file, run, data_as_of).await {
            tracing::error!(error = %e, run, "DNC registry import failed");
        }
        drop(file);
    });
    store.get_dnc_import_run(run).await
}

async fn finish(
    store: &Store,
    dialer: &Dialer,
    list: DncListId,
    format: RegistryFormat,
    path: &Path,
    run: i64,
    data_as_of: DateTime<Utc>,
) -> Result<ImportRun, StoreError> {
    let done = match apply(store, dialer, list, format, path, run).await {
        Ok(named) => store.finish_dnc_import_run(run, true, named.as_deref(), Some(data_as_of)).await?,
        Err(e) => store.finish_dnc_import_run(run, false, Some(&e), None).await?,
    };
    // Numbers a full list removed were not told one by one: the dialer reads its lists again.
    dialer.dnc_reload();
    Ok(done)
}

/// Applies the file; `Ok(Some(text))` names the first rejected lines (the run still succeeds).
async fn apply(
    store: &Store,
    dialer: &Dialer,
    list: DncListId,
    format: RegistryFormat,
    path: &Path,
    run: i64,
) -> Result<Option<String>, String> {
    let source = format!("registry run {run}");
    let (tx, mut rx) = tokio::sync::mpsc::channel(QUEUED_BATCHES);
    let p = path.to_path_buf();
    let reader = tokio::task::spawn_blocking(move || read_file(&p, format, tx));
    let mut prog = RunProgress::default();
    let mut named: Vec<String> = Vec::new();
    let se = |e: StoreError| e.to_string();
    while let Some(msg) = rx.recv().await {
        match msg {
            Parsed::Fatal(m) => return Err(m),
            Parsed::Batch { adds, deletes, rejected, rejected_n, bytes, lines } => {
                if !adds.is_empty() {
                    let entries: Vec<DncEntryInput> = adds
                        .iter()
                        .map(|p| DncEntryInput { phone: p.clone(), expires_at: None, reason: "registry".into(), source: source.clone() })
                        .collect();
                    prog.added += store.put_dnc_entries(list, &entries).await.map_err(se)? as i64;
                }
                if !deletes.is_empty() {
                    prog.removed += store.delete_dnc_entries(list, &deletes).await.map_err(se)? as i64;
                }
                dialer.dnc_changed(adds.into_iter().chain(deletes).collect());
                named.extend(rejected);
                prog.rejected += rejected_n;
                prog.bytes_read = bytes;
                prog.rows_read = lines;
                store.progress_dnc_import_run(run, prog).await.map_err(se)?;
            }
        }
    }
    reader.await.map_err(|e| e.to_string())?;
    if format.is_full() {
        let covers = match store.get_dnc_registry(list).await {
            Ok(r) => r.input.covers,
            Err(StoreError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e.to_string()),
        };
        prog.removed += store.sweep_dnc_entries(list, &covers, &source).await.map_err(se)? as i64;
        store.progress_dnc_import_run(run, prog).await.map_err(se)?;
    }
    Ok((!named.is_empty()).then(|| format!("rejected lines: {}", named.join("; "))))
}

/// Runs the registries' scheduled imports forever (a file on the server, read when due; its
/// modification time is the data's date).
pub async fn schedule(store: Store, dialer: Dialer) {
    loop {
        match store.take_due_dnc_imports(Utc::now()).await {
            Ok(due) => {
                for r in due {
                    let (Some(path), Some(format)) = (r.input.source_path.as_deref(), r.input.source_format) else { continue };
                    let path = Path::new(path);
                    let as_of =
                        std::fs::metadata(path).and_then(|m| m.modified()).map(DateTime::<Utc>::from).unwrap_or_else(|_| Utc::now());
                    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    match import(&store, &dialer, r.list_id, format, path, &name, as_of).await {
                        Ok(run) => {
                            tracing::info!(list = %r.list_id, state = %run.state, added = run.added, removed = run.removed, "scheduled DNC registry import")
                        }
                        Err(e) => tracing::error!(list = %r.list_id, error = %e, "scheduled DNC registry import failed"),
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "reading the DNC import schedule failed"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(SCHEDULE_POLL_S)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s, None).unwrap()
    }

    #[test]
    fn us_full_and_change_lines() {
        use RegistryFormat::*;
        assert_eq!(parse_line(UsFull, "2125550100\n").unwrap(), Some(Change::Add(num("+12125550100"))));
        assert_eq!(parse_line(UsFull, "212,5550100").unwrap(), Some(Change::Add(num("+12125550100"))));
        assert_eq!(parse_line(UsFull, "").unwrap(), None);
        assert!(parse_line(UsFull, "212,555").is_err());
        assert!(parse_line(UsFull, "2125550100,D").is_err(), "no deletes in a full list");
        assert_eq!(parse_line(UsChanges, "212,5550100,2026-11-30,D").unwrap(), Some(Change::Delete(num("+12125550100"))));
        assert_eq!(parse_line(UsChanges, "A,2125550100").unwrap(), Some(Change::Add(num("+12125550100"))));
        assert_eq!(parse_line(UsChanges, "2125550100").unwrap_err(), "no add/delete flag (A or D)");
        assert_eq!(parse_line(UkFull, "020 7123 4567").unwrap(), Some(Change::Add(num("+442071234567"))));
        assert_eq!(parse_line(UkChanges, "442071234567,D").unwrap(), Some(Change::Delete(num("+442071234567"))));
        assert_eq!(parse_line(Csv, "phone").unwrap(), None);
        assert_eq!(parse_line(Csv, "33123456789,opt-out").unwrap(), Some(Change::Add(num("+33123456789"))));
    }
}
