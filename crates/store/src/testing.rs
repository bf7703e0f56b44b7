//! Test support: fresh, migrated stores on both backends. Used by this crate's tests and the
//! server's integration tests, so every store test runs on SQLite and on PostgreSQL.

use crate::{Result, Store};

/// The PostgreSQL server tests use: `CAMPANA_TEST_PG_URL`, else the local one on 127.0.0.1:5432.
pub fn pg_admin_url() -> String {
    std::env::var("CAMPANA_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A fresh SQLite store in a new temporary directory (kept alive by the returned guard).
pub async fn sqlite_store() -> Result<(Store, tempfile::TempDir)> {
    let dir = tempfile::tempdir().map_err(|e| crate::StoreError::invalid("tempdir", e.to_string()))?;
    let store = Store::open_data_dir(dir.path()).await?;
    store.migrate().await?;
    Ok((store, dir))
}

/// A fresh PostgreSQL database (created on the test server, named uniquely) and its URL.
pub async fn postgres_store() -> Result<(Store, String)> {
    use sqlx::Executor as _;
    let admin_url = pg_admin_url();
    sqlx::any::install_default_drivers();
    let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin_url).await?;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = format!(
        "campana_test_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        chrono::Utc::now().timestamp_micros() % 1_000_000
    );
    admin.execute(format!("CREATE DATABASE {name}").as_str()).await?;
    let base = admin_url.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin_url.clone());
    let url = format!("{base}/{name}");
    let store = Store::connect(&url).await?;
    store.migrate().await?;
    Ok((store, url))
}

/// Both backends, each fresh: `(name, store, guard)`.
pub async fn both() -> Vec<(&'static str, Store, Box<dyn std::any::Any + Send>)> {
    let (s, dir) = sqlite_store().await.expect("SQLite store for tests");
    let (p, url) = postgres_store().await.unwrap_or_else(|e| {
        panic!("PostgreSQL for tests at {} is not reachable ({e}); scripts/test starts one, or set CAMPANA_TEST_PG_URL", pg_admin_url())
    });
    vec![("sqlite", s, Box::new(dir)), ("postgres", p, Box::new(url))]
}
