//! One import of a contact file, shared by the API (`POST /contact-lists/{id}/imports`) and the
//! CLI (`campana import`). A blocking thread reads the file's CSV records (core's
//! `ContactReader`, split into its stages), up to [`MAX_PARSE_THREADS`] threads parse and
//! validate them in chunks, and one thread settles them in file order (in-file dedupe) and hands
//! batches of at most `IMPORT_BATCH_ROWS` rows over a channel of [`BATCHES_IN_FLIGHT`] to the
//! async side, which stages them; every queue is bounded, so memory stays bounded whatever the
//! file size. The list changes only when the last batch is merged.

use campana_core::import::{ByteRecord, ColumnMapping, ContactReader, FileError, ImportOptions, ParsedRow, RowOutcome};
use campana_core::stored::ContactList;
use campana_core::{ContactListId, ImportId};
use campana_store::{ImportState, ImportStatus, StagedBatch, Store, StoreError, IMPORT_BATCH_ROWS};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Batches buffered between the reader thread and the database.
pub const BATCHES_IN_FLIGHT: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file as a whole cannot be imported (empty, binary, mapping names a missing column, ...).
    #[error("{0}")]
    File(#[from] FileError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the reader thread sends.
enum Msg {
    Batch {
        batch: StagedBatch,
        bytes_read: u64,
    },
    Failed(FileError),
    /// End of file, with the readers' busy time in seconds (summed over threads).
    Done {
        parse_validate_s: f64,
        parse_threads: usize,
    },
}

/// Progress callback input: counters so far and bytes of the file read.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub rows_read: i64,
    pub rows_staged: i64,
    pub rows_rejected: i64,
    pub bytes_read: u64,
}

/// Where an import spent its time, in seconds (shown by `campana import --timings` and the
/// import benchmark).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Timings {
    /// Reading, CSV parsing, phone parsing and validation, in-file dedupe: busy time summed
    /// over the threads that do it (not counting time they waited for each other or the
    /// database). Overlaps `stage_s`.
    pub parse_validate_s: f64,
    /// Threads that parsed rows.
    pub parse_threads: usize,
    /// Writing batches to the import's scratch table (and their errors and progress).
    pub stage_s: f64,
    /// Wall clock from the header to the last batch staged (reading, parsing and staging overlap).
    pub read_stage_s: f64,
    /// The final merge into the list (dedupe against the list, inserts, updates).
    pub merge_s: f64,
    /// Wall clock from start to finish.
    pub total_s: f64,
}

/// A running import: the id, and the future that finishes it.
pub struct Started {
    pub id: ImportId,
    pub finish: tokio::task::JoinHandle<Result<(ImportStatus, Timings), ImportError>>,
}

/// Starts importing `path` into `list`. Returns once the header and mapping are checked: a
/// file that cannot be imported at all fails here (the import is recorded as failed).
pub async fn start(
    store: Store,
    list: ContactListId,
    path: PathBuf,
    file_name: String,
    options: ImportOptions,
    cancel: Arc<AtomicBool>,
    progress: Option<mpsc::UnboundedSender<Progress>>,
) -> Result<Started, ImportError> {
    let list: ContactList = store.get::<ContactList>(list.0).await?;
    let options_json = serde_json::to_string(&serde_json::json!({
        "dedupe": options.dedupe, "delimiter": options.delimiter, "default_country": options.default_country, "mapping": options.mapping,
    }))
    .expect("options serialise");
    let id = store.import_begin(list.id, &file_name, &options_json).await?;
    let (tx, mut rx) = mpsc::channel::<Msg>(BATCHES_IN_FLIGHT);
    let (header_tx, header_rx) = oneshot::channel::<Result<ColumnMapping, FileError>>();
    let policy = options.dedupe;
    let cancel_reader = cancel.clone();
    tokio::task::spawn_blocking(move || read_file(path, options, list, header_tx, tx, cancel_reader));
    let mapping = match header_rx.await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            store.import_abort(id, ImportState::Failed, Some(&e.to_string())).await?;
            return Err(ImportError::File(e));
        }
        Err(_) => {
            store.import_abort(id, ImportState::Failed, Some("the file reader stopped unexpectedly")).await?;
            return Err(ImportError::File(FileError::Empty));
        }
    };
    let t0 = std::time::Instant::now();
    let finish = tokio::spawn(async move {
        let mut timings = Timings::default();
        let mut p = Progress { rows_read: 0, rows_staged: 0, rows_rejected: 0, bytes_read: 0 };
        const CANCELLED: &str = "cancelled by a user; the list is unchanged";
        let end = |state: ImportState, msg: String, timings: Timings| {
            let store = store.clone();
            async move { Ok((store.import_abort(id, state, Some(&msg)).await?, timings)) }
        };
        loop {
            if cancel.load(Ordering::Relaxed) {
                return end(ImportState::Cancelled, CANCELLED.into(), timings).await;
            }
            match rx.recv().await {
                Some(Msg::Batch { batch, bytes_read }) => {
                    let ts = std::time::Instant::now();
                    let staged = store.import_stage(id, &batch).await;
                    timings.stage_s += ts.elapsed().as_secs_f64();
                    if let Err(e) = staged {
                        store.import_abort(id, ImportState::Failed, Some(&e.to_string())).await?;
                        return Err(e.into());
                    }
                    p.rows_read += batch.rows_read;
                    p.rows_staged += batch.contacts.len() as i64;
                    let rejected: std::collections::BTreeSet<u64> = batch.errors.iter().map(|e| e.row).collect();
                    p.rows_rejected += rejected.len() as i64;
                    p.bytes_read = bytes_read;
                    metrics::counter!("campana_import_rows_total").increment(batch.rows_read as u64);
                    if let Some(tx) = &progress {
                        let _ = tx.send(p);
                    }
                }
                Some(Msg::Failed(e)) => {
                    return end(ImportState::Failed, format!("{e}; nothing of this import was applied"), timings).await;
                }
                Some(Msg::Done { parse_validate_s, parse_threads }) => {
                    timings.parse_validate_s = parse_validate_s;
                    timings.parse_threads = parse_threads;
                    timings.read_stage_s = t0.elapsed().as_secs_f64();
                    break;
                }
                None if cancel.load(Ordering::Relaxed) => return end(ImportState::Cancelled, CANCELLED.into(), timings).await,
                None => return end(ImportState::Failed, "the file reader stopped unexpectedly".into(), timings).await,
            }
        }
        let tm = std::time::Instant::now();
        let status = store.import_finish(id, policy, &mapping).await;
        timings.merge_s = tm.elapsed().as_secs_f64();
        timings.total_s = t0.elapsed().as_secs_f64();
        match status {
            Ok(s) => Ok((s, timings)),
            Err(e) => {
                store.import_abort(id, ImportState::Failed, Some(&e.to_string())).await?;
                Err(e.into())
            }
        }
    });
    Ok(Started { id, finish })
}

/// Registers a started import's cancel flag and finishes it in the background (API uploads and
/// the web console's wizard); `upload` is deleted when the import ends.
pub fn finish_in_background(state: crate::state::AppState, started: Started, cancel: Arc<AtomicBool>, upload: tempfile::TempPath) {
    let import_id = started.id;
    state.imports.register(import_id, cancel);
    tokio::spawn(async move {
        let _keep_until_done = upload;
        match started.finish.await {
            Ok(Ok((st, t))) => tracing::info!(import = %st.id, state = %st.state, total_s = t.total_s, "import finished"),
            Ok(Err(e)) => tracing::warn!(import = %import_id, error = %e, "import failed"),
            Err(e) => tracing::error!(import = %import_id, error = %e, "import task panicked"),
        }
        state.imports.remove(import_id);
    });
}

/// Rows a parsing thread takes at a time.
const CHUNK_ROWS: usize = 1024;
/// At most this many threads parse rows (phone numbers are most of the CPU time of reading).
const MAX_PARSE_THREADS: usize = 4;

/// A chunk of rows on its way from the CSV reader to the in-order dedupe.
enum Chunk {
    Parsed { rows: std::sync::mpsc::Receiver<Vec<(u64, ParsedRow)>>, bytes_read: u64 },
    Failed(FileError),
}

/// Reads the file on this thread, parses its rows on `parse_threads()` threads, and settles
/// them (in-file dedupe) in file order on another, which hands batches to the database side.
/// Every queue between them is bounded, so memory stays bounded whatever the file size.
fn read_file(
    path: PathBuf,
    options: ImportOptions,
    list: ContactList,
    header_tx: oneshot::Sender<Result<ColumnMapping, FileError>>,
    tx: mpsc::Sender<Msg>,
    cancel: Arc<AtomicBool>,
) {
    use std::sync::mpsc::sync_channel;
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) => {
            let _ = header_tx.send(Err(FileError::Io(e)));
            return;
        }
    };
    let reader = match ContactReader::new(file, &options, list.mapping.as_ref(), &list.input.columns, list.input.default_country) {
        Ok(r) => r,
        Err(e) => {
            let _ = header_tx.send(Err(e));
            return;
        }
    };
    if header_tx.send(Ok(reader.mapping().clone())).is_err() {
        return;
    }
    let (mut records, parser, mut dedupe) = reader.into_parallel();
    let threads = parse_threads();
    let busy_ns = std::sync::atomic::AtomicU64::new(0);
    let busy = &busy_ns;
    let add_busy = move |t: std::time::Instant| busy.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
    let cancel: &AtomicBool = &cancel;
    type Job = (Vec<(u64, ByteRecord)>, std::sync::mpsc::SyncSender<Vec<(u64, ParsedRow)>>);
    let (job_tx, job_rx) = sync_channel::<Job>(threads);
    let job_rx = std::sync::Mutex::new(job_rx);
    let (order_tx, order_rx) = sync_channel::<Chunk>(threads * 2);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let job = job_rx.lock().expect("parse queue lock").recv();
                let Ok((recs, out)) = job else { return };
                let t = std::time::Instant::now();
                let parsed = recs.iter().map(|(row, rec)| (*row, parser.parse(*row, rec))).collect();
                add_busy(t);
                let _ = out.send(parsed);
            });
        }
        // Settles rows in file order and hands batches to the database side.
        scope.spawn(move || {
            let mut batch = StagedBatch::default();
            let mut last_bytes = 0;
            for chunk in order_rx {
                let (rows, bytes_read) = match chunk {
                    Chunk::Failed(e) => {
                        let _ = tx.blocking_send(Msg::Failed(e));
                        return;
                    }
                    Chunk::Parsed { rows, bytes_read } => match rows.recv() {
                        Ok(rows) => {
                            last_bytes = bytes_read;
                            (rows, bytes_read)
                        }
                        Err(_) => return, // a parsing thread panicked; the scope reports it
                    },
                };
                let t = std::time::Instant::now();
                for (row, parsed) in rows {
                    batch.rows_read += 1;
                    match dedupe.settle(row, parsed) {
                        RowOutcome::Contact { row, contact } => batch.contacts.push((row, contact)),
                        RowOutcome::DuplicateInFile { .. } => batch.rows_duplicate_in_file += 1,
                        RowOutcome::Rejected { errors, .. } => batch.errors.extend(errors),
                    }
                }
                add_busy(t);
                if batch.rows_read as usize >= IMPORT_BATCH_ROWS {
                    let b = std::mem::take(&mut batch);
                    if tx.blocking_send(Msg::Batch { batch: b, bytes_read }).is_err() {
                        return;
                    }
                }
            }
            if cancel.load(Ordering::Relaxed) {
                return;
            }
            if batch.rows_read > 0 && tx.blocking_send(Msg::Batch { batch, bytes_read: last_bytes }).is_err() {
                return;
            }
            // The in-file dedupe sets are the reader's largest memory: freed before the merge starts.
            drop(dedupe);
            let parse_validate_s = busy.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = tx.blocking_send(Msg::Done { parse_validate_s, parse_threads: threads });
        });
        // This thread reads the CSV records.
        loop {
            if cancel.load(Ordering::Relaxed) {
                break;
            }
            let t = std::time::Instant::now();
            let mut recs = Vec::with_capacity(CHUNK_ROWS);
            let mut failed = None;
            while recs.len() < CHUNK_ROWS {
                let mut rec = ByteRecord::new();
                match records.next_into(&mut rec) {
                    None => break,
                    Some(Ok(row)) => recs.push((row, rec)),
                    Some(Err(e)) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            add_busy(t);
            let last = recs.len() < CHUNK_ROWS;
            if !recs.is_empty() {
                let (out_tx, out_rx) = sync_channel(1);
                let bytes_read = records.bytes_read();
                if job_tx.send((recs, out_tx)).is_err() || order_tx.send(Chunk::Parsed { rows: out_rx, bytes_read }).is_err() {
                    break;
                }
            }
            if let Some(e) = failed {
                let _ = order_tx.send(Chunk::Failed(e));
                break;
            }
            if last {
                break;
            }
        }
        drop(job_tx);
        drop(order_tx);
    });
}

/// Threads that parse rows: `CAMPANA_IMPORT_PARSE_THREADS` when set (1 to [`MAX_PARSE_THREADS`]),
/// else the machine's cores, at most [`MAX_PARSE_THREADS`].
fn parse_threads() -> usize {
    let configured = std::env::var("CAMPANA_IMPORT_PARSE_THREADS").ok().and_then(|v| v.parse::<usize>().ok());
    configured.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).clamp(1, MAX_PARSE_THREADS)
}
