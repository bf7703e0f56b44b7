//! `campana`: the outbound contact-center server and its command-line tools.

use anyhow::Context;
use campana::{config, demo, import_job, state};
use campana_core::import::{ColumnMapping, DedupePolicy, ImportOptions};
use campana_store::Store;
use clap::{Parser, Subcommand};
use config::ConfigArgs;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "campana", version, about = "Outbound contact-center campaigns and dialer")]
struct Cli {
    #[command(flatten)]
    config: ConfigArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (HTTP API).
    Serve,
    /// Run the server with demo data in its own data directory (created on first run).
    Demo {
        /// Contacts generated into the demo lists on first run.
        #[arg(long, default_value_t = 20_000)]
        records: usize,
    },
    /// Import a contact file (CSV) into a contact list, with a progress bar.
    Import(ImportArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// May this number be called at this moment? Prints JSON: zones, local times, allowed or not
    /// with the reason, and the next allowed moment (the same check the dialer makes).
    CheckNumber {
        /// The number, E.164 (`+13125550143`).
        number: String,
        /// US ZIP code of the contact (its zone wins over the number's).
        #[arg(long)]
        postal_code: Option<String>,
        /// The moment to check (RFC 3339); default: now.
        #[arg(long)]
        at: Option<String>,
        /// Calling-hours rule set (see docs/dialing.md).
        #[arg(long, default_value = "default")]
        rules: String,
    },
    /// Pre-launch compliance preview of a campaign: how many records would be skipped now, by reason.
    Preview {
        #[arg(long)]
        campaign: i64,
        /// The moment to evaluate (RFC 3339); default: now.
        #[arg(long)]
        at: Option<String>,
    },
    /// Forecast a campaign by simulation: when it finishes, agents needed by a deadline, abandon rate.
    Forecast {
        #[arg(long)]
        campaign: i64,
        #[arg(long)]
        agents: u32,
        /// Live answers per dial.
        #[arg(long, default_value_t = 0.2)]
        answer_rate: f64,
        #[arg(long, default_value_t = 180.0)]
        talk_mean_s: f64,
        /// Deadline for "agents needed" (RFC 3339).
        #[arg(long)]
        finish_by: Option<String>,
    },
    /// Simulate a campaign day from a scenario file; prints the JSON summary (same seed, same result).
    Simulate {
        #[arg(long)]
        scenario: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The contact list, by id or name.
    #[arg(long)]
    list: String,
    /// Create the list (with this name) when there is none of that name.
    #[arg(long)]
    create_list: bool,
    /// The CSV file (comma, semicolon or tab separated; UTF-8 with or without BOM).
    file: PathBuf,
    /// JSON file with the column mapping; default: the list's saved mapping, else a guess from the headers.
    #[arg(long)]
    mapping: Option<PathBuf>,
    /// What to do with rows already in the list or earlier in the file.
    #[arg(long, default_value = "skip", value_parser = parse_dedupe)]
    dedupe: DedupePolicy,
    /// ISO country for numbers without `+` (default: the list's).
    #[arg(long)]
    default_country: Option<String>,
    /// Field delimiter: `,` `;` or `tab`; detected when absent.
    #[arg(long)]
    delimiter: Option<String>,
    /// Write the rejected rows (row, column, value, reason) to this CSV file.
    #[arg(long)]
    errors_out: Option<PathBuf>,
    /// Print no progress bar.
    #[arg(long)]
    quiet: bool,
    /// Print where the time went (parsing and validation, staging, merge) to stderr.
    #[arg(long)]
    timings: bool,
}

fn parse_dedupe(s: &str) -> Result<DedupePolicy, String> {
    s.parse().map_err(|e: campana_core::FieldError| e.reason)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAMPANA_LOG").unwrap_or_else(|_| "info,sqlx=warn,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => {
            let cfg = cli.config.resolve()?;
            campana::state::install_calling_rules(cfg.calling_hours.as_deref())?;
            let store = open_store(&cfg).await?;
            campana::service::account::ensure_admin(&store).await?;
            serve(store, cfg, Default::default()).await
        }
        Command::Demo { records } => {
            let mut args = cli.config.clone();
            if args.data_dir.is_none() && args.database_url.is_none() {
                args.data_dir = Some(PathBuf::from("campana-demo-data"));
            }
            // The demo dials simulated calls with simulated agents beside the people logged in.
            args.telephony = args.telephony.or(Some(config::TelephonyMode::Sim));
            args.sim_agents = args.sim_agents.or(Some(demo::SIM_AGENTS));
            let cfg = args.resolve()?;
            campana::state::install_calling_rules(cfg.calling_hours.as_deref())?;
            let store = open_store(&cfg).await?;
            let logins = demo::seed(&store, records).await?;
            eprintln!("\nCampana demo data is in {}.", cfg.data_dir.display());
            for (user, pw, role) in &logins {
                eprintln!("  login {user:<12} password {pw:<16} ({role})");
            }
            serve(store, cfg, demo::population()).await
        }
        Command::Import(a) => {
            let cfg = cli.config.resolve()?;
            let store = open_store(&cfg).await?;
            import_cli(store, a).await
        }
        Command::CheckNumber { number, postal_code, at, rules } => {
            let number = campana_core::PhoneNumber::parse(&number, None).map_err(|e| anyhow::anyhow!("{}", e.reason))?;
            let at = match at {
                Some(t) => {
                    chrono::DateTime::parse_from_rfc3339(&t).with_context(|| format!("--at '{t}' is not an RFC 3339 time"))?.to_utc()
                }
                None => chrono::Utc::now(),
            };
            let cfg = cli.config.resolve()?;
            campana::state::install_calling_rules(cfg.calling_hours.as_deref())?;
            let report = campana_engine::check_number_with(
                campana::state::calling_rules(),
                &number,
                None,
                postal_code.as_deref(),
                at,
                &rules,
                false,
            );
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
        Command::Simulate { scenario, seed } => {
            let text = std::fs::read_to_string(&scenario).with_context(|| format!("reading {}", scenario.display()))?;
            let sc = campana_sim::Scenario::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", scenario.display()))?;
            let summary = campana_sim::run(&sc, seed).map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string_pretty(&summary)?);
            Ok(())
        }
        Command::Preview { campaign, at } => {
            let cfg = cli.config.resolve()?;
            campana::state::install_calling_rules(cfg.calling_hours.as_deref())?;
            let store = open_store(&cfg).await?;
            let c = store.get_campaign(campana_core::CampaignId(campaign)).await?;
            let at = parse_time("--at", at.as_deref())?.unwrap_or_else(chrono::Utc::now);
            println!("{}", serde_json::to_string_pretty(&campana::explain::preview(&store, &c, at).await?)?);
            Ok(())
        }
        Command::Forecast { campaign, agents, answer_rate, talk_mean_s, finish_by } => {
            let cfg = cli.config.resolve()?;
            campana::state::install_calling_rules(cfg.calling_hours.as_deref())?;
            let store = open_store(&cfg).await?;
            let c = store.get_campaign(campana_core::CampaignId(campaign)).await?;
            let req = campana::explain::ForecastRequest {
                agents,
                answer_rate,
                machine_rate: 0.0,
                busy_rate: 0.0,
                talk_mean_s,
                wrap_mean_s: None,
                finish_by: parse_time("--finish-by", finish_by.as_deref())?,
                seed: 1,
            };
            let f = campana::explain::forecast(&store, &c, &req, chrono::Utc::now()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string_pretty(&f)?);
            Ok(())
        }
        Command::Migrate => {
            let cfg = cli.config.resolve()?;
            let store = Store::connect(&cfg.database_url).await?;
            let n = store.migrate().await?;
            println!("{n} migrations applied to {}", redact(&cfg.database_url));
            Ok(())
        }
    }
}

fn parse_time(flag: &str, t: Option<&str>) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    t.map(|t| chrono::DateTime::parse_from_rfc3339(t).map(|d| d.to_utc()).with_context(|| format!("{flag} '{t}' is not an RFC 3339 time")))
        .transpose()
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://***{}", &url[..s], &url[a..]),
        _ => url.to_string(),
    }
}

async fn open_store(cfg: &config::Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("creating data directory {}", cfg.data_dir.display()))?;
    let store = Store::connect(&cfg.database_url).await.with_context(|| format!("opening database {}", redact(&cfg.database_url)))?;
    store.migrate().await.context("migrating the database")?;
    let recovered = store.recover_interrupted_imports().await?;
    if recovered > 0 {
        tracing::warn!(recovered, "imports interrupted by a stop were marked failed; their lists are unchanged");
    }
    Ok(store)
}

async fn serve(store: Store, cfg: config::Config, sim_population: campana_sim::model::Population) -> anyhow::Result<()> {
    let mut state = state::AppState::new(store.clone(), cfg.data_dir.clone())?;
    let opts = campana::dialer::DialerOptions {
        telephony: cfg.telephony,
        sim_agents: cfg.sim_agents,
        sim_agent_groups: Vec::new(),
        sim_population,
        seed: rand::random(),
        sip: cfg.sip.clone(),
    };
    state.dialer = campana::dialer::Dialer::start(store, opts).await.context("starting the dialer")?;
    // National DNC registries imported on their schedules (files on this server).
    tokio::spawn(campana::dnc_registry::schedule(state.store.clone(), state.dialer.clone()));
    // Webhooks: the outbox's deliveries, with retries.
    state.webhooks = cfg.webhooks.clone();
    tokio::spawn(campana::webhooks::run(state.store.clone(), cfg.webhooks.clone()));
    if cfg.telephony == config::TelephonyMode::Sim {
        tracing::warn!(
            sim_agents = cfg.sim_agents,
            "the dialer places SIMULATED calls: results are random; never use this on real contact lists"
        );
    }
    let app = campana::router::router(state);
    let listener = tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("listening on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    // The first line on stdout is the URL: scripts and tests read it.
    println!("Campana is listening on http://{addr}/ (API: http://{addr}/api/v1, OpenAPI: http://{addr}/api/openapi.json)");
    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
}

async fn import_cli(store: Store, a: ImportArgs) -> anyhow::Result<()> {
    use campana_core::stored::ContactList;
    let list = match a.list.parse::<i64>() {
        Ok(id) => store.get::<ContactList>(id).await?,
        Err(_) => {
            let found = store.list_all::<ContactList>().await?.into_iter().find(|l| l.input.name == a.list);
            match found {
                Some(l) => l,
                None if a.create_list => {
                    let input = campana_core::stored::ContactListInput {
                        name: a.list.clone(),
                        description: String::new(),
                        columns: vec![],
                        default_country: a
                            .default_country
                            .as_deref()
                            .map(campana_core::CountryCode::parse)
                            .transpose()
                            .map_err(|e| anyhow::anyhow!("--default-country: {}", e.reason))?,
                    };
                    store.create::<ContactList>(&input).await?
                }
                None => anyhow::bail!("no contact list named '{}' (add --create-list to create it)", a.list),
            }
        }
    };
    let mapping: Option<ColumnMapping> = match &a.mapping {
        Some(p) => Some(serde_json::from_str(&std::fs::read_to_string(p)?).with_context(|| format!("mapping file {}", p.display()))?),
        None => None,
    };
    let delimiter = match a.delimiter.as_deref() {
        None => None,
        Some("tab" | "\\t" | "\t") => Some('\t'),
        Some(d) if d.chars().count() == 1 => d.chars().next(),
        Some(d) => anyhow::bail!("--delimiter '{d}': use , ; or tab"),
    };
    let default_country = a
        .default_country
        .as_deref()
        .map(campana_core::CountryCode::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--default-country: {}", e.reason))?;
    let options = ImportOptions { mapping, delimiter, default_country, dedupe: a.dedupe };
    let size = std::fs::metadata(&a.file).with_context(|| format!("reading {}", a.file.display()))?.len();
    let bar = if a.quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(size) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel();
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let name = a.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let started = import_job::start(store.clone(), list.id, a.file.clone(), name, options, cancel.clone(), Some(ptx))
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let bar2 = bar.clone();
    let progress = tokio::spawn(async move {
        while let Some(p) = prx.recv().await {
            bar2.set_position(p.bytes_read);
            bar2.set_message(format!("{} rows read, {} ok, {} rejected", p.rows_read, p.rows_staged, p.rows_rejected));
        }
    });
    let cancel2 = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel2.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let (status, timings) = started.finish.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
    if a.timings {
        eprintln!("timings: {}", serde_json::to_string(&timings)?);
    }
    let _ = progress.await;
    bar.finish_and_clear();
    if let Some(out) = &a.errors_out {
        let errors = store.import_errors(status.id, 0, i64::MAX).await?;
        campana_core::import::write_error_csv(std::fs::File::create(out)?, &errors)?;
        eprintln!("{} rejected rows written to {}", errors.len(), out.display());
    }
    println!("{}", serde_json::to_string_pretty(&status)?);
    match status.state {
        campana_store::ImportState::Completed => Ok(()),
        s => anyhow::bail!("import {} {s}: {}", status.id, status.error.unwrap_or_default()),
    }
}
