//! File uploads, written once for the API and the console: a multipart file part is spooled to
//! disk chunk by chunk with a size limit, never held whole in memory.

use axum::extract::multipart::Field;
use axum::http::StatusCode;
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// Largest contact file accepted.
pub const MAX_UPLOAD_BYTES: usize = 4 << 30;

/// Why an upload could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    #[error("the file is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the upload could not be stored: {0}")]
    Io(#[from] std::io::Error),
}

impl SpoolError {
    /// 400 for a broken body, 413 over the limit, 500 when the disk failed.
    pub fn http_status(&self) -> StatusCode {
        match self {
            SpoolError::Interrupted(_) => StatusCode::BAD_REQUEST,
            SpoolError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            SpoolError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Copies a multipart file part to `dest` chunk by chunk, refusing more than `max_bytes` (the
/// partial file is removed).
pub async fn spool(field: &mut Field<'_>, dest: &Path, max_bytes: usize) -> Result<u64, SpoolError> {
    let mut f = tokio::fs::File::create(dest).await?;
    let mut total = 0usize;
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                drop(f);
                let _ = tokio::fs::remove_file(dest).await;
                return Err(SpoolError::Interrupted(e.to_string()));
            }
        };
        total += chunk.len();
        if total > max_bytes {
            drop(f);
            let _ = tokio::fs::remove_file(dest).await;
            return Err(SpoolError::TooLarge(max_bytes));
        }
        f.write_all(&chunk).await?;
    }
    f.flush().await?;
    Ok(total as u64)
}

/// Spools a file part to a new temporary file in `dir` (deleted when the path is dropped).
pub async fn spool_temp(field: &mut Field<'_>, dir: &Path, max_bytes: usize) -> Result<tempfile::TempPath, SpoolError> {
    let dir = dir.to_path_buf();
    let tmp = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        tempfile::NamedTempFile::new_in(&dir).map(|f| f.into_temp_path())
    })
    .await
    .map_err(|e| SpoolError::Io(std::io::Error::other(e)))??;
    spool(field, &tmp, max_bytes).await?;
    Ok(tmp)
}
