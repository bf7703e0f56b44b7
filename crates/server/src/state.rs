//! Shared server state.

use campana_core::ImportId;
use campana_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub data_dir: PathBuf,
    pub imports: Arc<ImportRegistry>,
    pub metrics: PrometheusHandle,
    /// The live dialer (or a handle that says it is off).
    pub dialer: crate::dialer::Dialer,
    /// Webhook delivery options (the destination guard is also checked when a subscription is saved).
    pub webhooks: crate::webhooks::WebhookOptions,
}

impl AppState {
    pub fn new(store: Store, data_dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir.join("uploads"))?;
        Ok(AppState {
            store,
            data_dir,
            imports: Arc::new(ImportRegistry::default()),
            metrics: metrics_handle(),
            dialer: crate::dialer::Dialer::off(),
            webhooks: Default::default(),
        })
    }
    /// Uploads are spooled here while they import, then deleted.
    pub fn upload_dir(&self) -> PathBuf {
        self.data_dir.join("uploads")
    }
}

/// The process-wide Prometheus recorder (installed once).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests start several servers); keep ours for rendering.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Cancel flags of the imports running in this process (one per list at most).
#[derive(Default)]
pub struct ImportRegistry {
    running: Mutex<HashMap<ImportId, Arc<AtomicBool>>>,
}

impl ImportRegistry {
    pub fn register(&self, id: ImportId, flag: Arc<AtomicBool>) {
        self.running.lock().expect("import registry lock").insert(id, flag);
        metrics::gauge!("campana_imports_running").increment(1.0);
    }
    pub fn remove(&self, id: ImportId) {
        if self.running.lock().expect("import registry lock").remove(&id).is_some() {
            metrics::gauge!("campana_imports_running").decrement(1.0);
        }
    }
    /// Asks a running import to stop; false when it is not running here.
    pub fn cancel(&self, id: ImportId) -> bool {
        match self.running.lock().expect("import registry lock").get(&id) {
            Some(f) => {
                f.store(true, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

/// Counts requests by method and status class for /metrics.
pub async fn track_requests(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let method = req.method().as_str().to_string();
    let res = next.run(req).await;
    let class = format!("{}xx", res.status().as_u16() / 100);
    metrics::counter!("campana_http_requests_total", "method" => method, "status" => class).increment(1);
    res
}

/// The calling-hours rules in force: a deployment's file (`--calling-hours`), else the shipped
/// `data/calling-hours.toml`. Installed once at start-up, before the dialer and the API run.
static CALLING_RULES: std::sync::OnceLock<(campana_engine::CallingRules, String)> = std::sync::OnceLock::new();

/// Loads the deployment's calling-hours file, if any, as the rules in force; an invalid file is
/// an error naming the set and the fault. A second call keeps the first rules.
pub fn install_calling_rules(path: Option<&std::path::Path>) -> anyhow::Result<()> {
    let (rules, source) = match path {
        Some(p) => (
            campana_engine::CallingRules::load(p).map_err(|e| anyhow::anyhow!("calling-hours file {}: {e}", p.display()))?,
            p.display().to_string(),
        ),
        None => (campana_engine::CallingRules::builtin().clone(), SHIPPED_RULES.to_string()),
    };
    let _ = CALLING_RULES.set((rules, source));
    Ok(())
}

const SHIPPED_RULES: &str = "shipped (data/calling-hours.toml)";

/// The calling-hours rules in force (the shipped ones until a file is installed).
pub fn calling_rules() -> &'static campana_engine::CallingRules {
    CALLING_RULES.get().map(|(r, _)| r).unwrap_or_else(|| campana_engine::CallingRules::builtin())
}

/// Where the rules in force come from: the file's path, or the shipped file.
pub fn calling_rules_source() -> &'static str {
    CALLING_RULES.get().map(|(_, s)| s.as_str()).unwrap_or(SHIPPED_RULES)
}
