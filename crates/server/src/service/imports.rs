//! Imports of contact files: started from a spooled file, followed, cancelled, and their
//! rejected rows as CSV. An import of a list outside the caller's campaigns does not exist for
//! them.

use super::audit::{self, Actor};
use super::{Principal, ServiceError, ServiceResult};
use crate::import_job::{self, ImportError};
use crate::state::AppState;
use campana_core::import::ImportOptions;
use campana_core::{ContactListId, ImportId};
use campana_store::ImportStatus;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Rows of the error file read from the store at a time (memory stays bounded).
pub const ERRORS_PAGE_ROWS: i64 = 5000;

/// An import, if its list is visible to the caller (404 otherwise).
pub async fn visible(s: &AppState, p: &Principal, id: i64) -> ServiceResult<ImportStatus> {
    let st = s.store.import_status(ImportId(id)).await?;
    p.check_list(&s.store, st.list_id.0).await.map_err(|_| ServiceError::not_found(format!("import {id} does not exist")))?;
    Ok(st)
}

/// Starts importing a spooled file into a list the caller sees. Once it started, the import
/// owns the file and deletes it when it ends (the caller must then `keep()` its own handle); a
/// file that cannot be imported at all is refused on `file` and stays with the caller.
pub async fn start(
    s: &AppState,
    a: &Actor,
    p: &Principal,
    list: ContactListId,
    path: &std::path::Path,
    file_name: &str,
    options: ImportOptions,
) -> ServiceResult<ImportStatus> {
    p.check_list(&s.store, list.0).await?;
    let cancel = Arc::new(AtomicBool::new(false));
    let started =
        match import_job::start(s.store.clone(), list, path.to_path_buf(), file_name.to_string(), options, cancel.clone(), None).await {
            Ok(st) => st,
            Err(ImportError::File(e)) => return Err(ServiceError::field("file", e.to_string())),
            Err(ImportError::Store(e)) => return Err(e.into()),
        };
    let import_id = started.id;
    let upload = tempfile::TempPath::try_from_path(path)
        .map_err(|e| ServiceError::internal(e, "the upload could not be kept; see the server log"))?;
    import_job::finish_in_background(s.clone(), started, cancel, upload);
    let st = s.store.import_status(import_id).await?;
    audit::import(s, a, "start", &st).await?;
    Ok(st)
}

/// The imports of a list the caller sees.
pub async fn history(s: &AppState, p: &Principal, list: i64) -> ServiceResult<Vec<ImportStatus>> {
    p.check_list(&s.store, list).await?;
    s.store.get::<campana_core::stored::ContactList>(list).await?;
    Ok(s.store.list_imports(ContactListId(list)).await?)
}

/// Asks a running import to stop (409 when it is not running here).
pub async fn cancel(s: &AppState, a: &Actor, p: &Principal, id: i64) -> ServiceResult<ImportStatus> {
    let st = visible(s, p, id).await?;
    if !s.imports.cancel(st.id) {
        return Err(ServiceError::conflict(format!("import {id} is {}, not running", st.state)));
    }
    audit::import(s, a, "cancel", &st).await?;
    Ok(st)
}

/// The rejected rows of an import as CSV (row, column, value, reason), streamed page by page.
pub async fn errors_csv(
    s: &AppState,
    p: &Principal,
    id: i64,
) -> ServiceResult<impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static> {
    let st = visible(s, p, id).await?;
    let store = s.store.clone();
    Ok(futures::stream::unfold((Some(0i64), true), move |(after, first)| {
        let store = store.clone();
        async move {
            let after = after?;
            let page = match store.import_errors(st.id, after, ERRORS_PAGE_ROWS).await {
                Ok(p) => p,
                Err(e) => return Some((Err(std::io::Error::other(e.to_string())), (None, false))),
            };
            let next = if (page.len() as i64) < ERRORS_PAGE_ROWS { None } else { page.last().map(|e| e.row as i64) };
            let mut buf = Vec::new();
            {
                let mut w = campana_core::csv_out::CsvOut::new(&mut buf);
                if first {
                    let _ = w.row(["row", "column", "value", "reason"]);
                }
                for e in &page {
                    let _ = w.row([e.row.to_string().as_str(), &e.column, &e.value, &e.reason]);
                }
                let _ = w.flush();
            }
            Some((Ok(bytes::Bytes::from(buf)), (next, false)))
        }
    }))
}
