//! The live dialer: one tokio task that drives the sans-IO engine (`campana-engine`) on the wall
//! clock, exactly as the simulator drives it on simulated time.
//!
//! - Records come from the store in the profile's dialing order ([`Store::dialable_records`])
//!   when the engine asks for them. Every DNC list is held in memory, exact and compact
//!   ([`crate::dnc_lists`]), built before the first dial and replaced whole in the
//!   background; changes told through the API, and any difference the store shows for the
//!   numbers of records handed to the engine, reach the engine as [`Input::DncChanged`].
//! - The engine's persistence commands are written in order, in one transaction per batch, and
//!   every batch is committed before the next telephony command leaves: a dial is on disk
//!   before the telephony layer hears of it.
//! - Telephony is simulated (`campana demo`, tests) with the simulator's own [`SimTelephony`],
//!   and simulated agents ([`SimAgents`]) can work beside people logged in through the API.
//! - At start-up, calls still open from a previous run (a crash) are closed as "system error"
//!   and follow that result's treatment; abandon accounting is replayed from the attempts.

use crate::explain::campaign_config;
use campana_core::campaign::{Campaign, CampaignState};
use campana_core::telephony::{CallId, TelephonyCommand};
use campana_core::{AgentGroupId, CampaignId, PhoneNumber, UserId};
use campana_dialer::{
    close_open_call, open_call_result, AgentMirror, CampaignLoad, DriverCore, HistoryMinute, Op, RecordQuery, HISTORY_DAYS,
};
use campana_engine::dnc::DncLists;
use campana_engine::{AfterWrapUp, AgentNotice, Candidate, DncHit, Engine, EngineConfig, Input, PersistCommand, SharedDnc};
use campana_sim::agents::SimAgents;
use campana_sim::model::{AgentModel, Population};
use campana_sim::telephony::SimTelephony;
use campana_store::{CampaignFilter, DialableQuery, PageParams, Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{broadcast, mpsc, oneshot};

/// Commands waiting for the dialer task.
pub const COMMAND_QUEUE: usize = 1024;
/// Agent notices buffered for slow listeners (a listener that falls further behind misses some
/// and re-reads the agent's state).
pub const NOTICE_BUFFER: usize = 1024;
/// Longest sleep of the loop: the live status is refreshed at least this often.
const MAX_SLEEP_MS: i64 = 1000;
/// The dialer is stalled when its loop has not turned for this long. A turn sleeps at most
/// [`MAX_SLEEP_MS`], so a healthy loop turns at least once a second.
pub const STALL_AFTER_S: f64 = 10.0;
/// Test hook: the driver's loop stops for this many seconds after its first turn (fault
/// injection for the health reporting's tests; never set in production).
pub const TEST_STALL_ENV: &str = "CAMPANA_TEST_DIALER_STALL_S";

/// The driver's heartbeat: updated at every turn of its loop, read by `/readyz`, the status,
/// `/metrics` and the console without waiting for the driver (which may be stuck).
#[derive(Debug, Default)]
pub struct Heartbeat {
    /// Wall-clock milliseconds of the last turn's start (0: never turned).
    last_loop_ms: AtomicI64,
    loop_iterations: AtomicU64,
    /// The driver task ended (SIP telephony stopped, or a panic).
    stopped: AtomicBool,
}

impl Heartbeat {
    fn beat(&self, now: DateTime<Utc>) {
        self.last_loop_ms.store(now.timestamp_millis(), Ordering::Relaxed);
        self.loop_iterations.fetch_add(1, Ordering::Relaxed);
    }
}

/// The dialer's own health, computed when asked (a stuck driver cannot report itself).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DialerHealth {
    /// `ok`, `stalled` (the loop has not turned for [`STALL_AFTER_S`]), `stopped` (the
    /// dialer task ended) or `off` (no telephony).
    pub state: String,
    /// When the loop last turned.
    pub last_loop_at: Option<DateTime<Utc>>,
    /// Seconds since the loop last turned.
    pub last_loop_age_s: Option<f64>,
    /// Turns of the loop since the start.
    pub loop_iterations: u64,
    /// Seconds without a turn after which the dialer counts as stalled.
    pub stall_after_s: f64,
    /// What is wrong, for people (`None` when healthy).
    pub reason: Option<String>,
}

impl Default for DialerHealth {
    fn default() -> Self {
        DialerHealth {
            state: "off".into(),
            last_loop_at: None,
            last_loop_age_s: None,
            loop_iterations: 0,
            stall_after_s: STALL_AFTER_S,
            reason: None,
        }
    }
}

impl DialerHealth {
    pub fn is_ok(&self) -> bool {
        matches!(self.state.as_str(), "ok" | "off")
    }

    /// The health at `now` of a dialer whose loop last turned at `last_loop` (`None`: not yet,
    /// counted from `started`), `iterations` times, whose task has `stopped` or not.
    pub fn at(
        now: DateTime<Utc>,
        started: DateTime<Utc>,
        last_loop: Option<DateTime<Utc>>,
        iterations: u64,
        stopped: bool,
    ) -> DialerHealth {
        let since = last_loop.unwrap_or(started);
        let age_s = ((now - since).num_milliseconds() as f64 / 1000.0).max(0.0);
        let (state, reason) = if stopped {
            ("stopped", Some("the dialer task has stopped; no campaign is dialed until the server restarts (see the log)".to_string()))
        } else if age_s >= STALL_AFTER_S {
            (
                "stalled",
                Some(format!(
                    "the dialer's loop has not turned for {age_s:.0} s (limit {STALL_AFTER_S:.0} s): no calls are placed and agents' actions wait"
                )),
            )
        } else {
            ("ok", None)
        };
        DialerHealth {
            state: state.into(),
            last_loop_at: last_loop,
            last_loop_age_s: Some(age_s),
            loop_iterations: iterations,
            stall_after_s: STALL_AFTER_S,
            reason,
        }
    }
}

/// Which telephony the dialer drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TelephonyMode {
    /// No dialer: campaigns can be managed but nothing is dialed.
    Off,
    /// Simulated calls (demo, tests): results are drawn at random; never use on real data.
    Sim,
    /// Real calls through a SIP trunk (`--sip-config FILE`, see crates/sip/README.md).
    Sip,
}

/// How the dialer runs.
#[derive(Debug, Clone)]
pub struct DialerOptions {
    pub telephony: TelephonyMode,
    /// Simulated agents working beside the people logged in (simulated telephony only).
    pub sim_agents: u32,
    /// The agent groups the simulated agents are spread over, one group each (empty: every
    /// agent group there is when the dialer starts).
    pub sim_agent_groups: Vec<AgentGroupId>,
    /// How the simulated customers behave (answer rate, time to answer, patience).
    pub sim_population: Population,
    pub seed: u64,
    /// The trunk, phones' registrar, prompts and recordings (SIP telephony only).
    pub sip: Option<campana_sip::TrunkConfig>,
}

/// A dialer's live figures, refreshed about every second (progress pages, SSE).
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct LiveStatus {
    pub running: bool,
    pub telephony: String,
    pub updated_at: Option<DateTime<Utc>>,
    pub campaigns: BTreeMap<i64, CampaignLive>,
    pub agents: BTreeMap<i64, AgentLive>,
    /// What is wrong with the set-up and what it means (e.g. a missing safe-harbor prompt).
    pub warnings: Vec<String>,
    /// The agent group of each simulated agent (simulated telephony with simulated agents).
    pub sim_agent_groups: BTreeMap<i64, i64>,
    /// The dialer's DNC lists in memory.
    pub dnc: Option<DncLive>,
    /// SIP telephony's counters (calls, RTP packets), with `--telephony sip`.
    #[schema(value_type = Option<Object>)]
    pub sip: Option<campana_sip::SipStats>,
    /// The dialer's own health (computed when the status is read, not by the loop).
    pub health: DialerHealth,
}

/// The dialer's copy of every DNC list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DncLive {
    /// Entries held (a number on two lists counts twice).
    pub numbers: u64,
    /// Memory they take.
    pub bytes: u64,
    /// When the copy was read from the store.
    pub built_at: DateTime<Utc>,
    /// Numbers changed since, held one by one until the next rebuild.
    pub changes_since_build: u64,
    pub rebuilding: bool,
    /// DNC lists whose registry copy is too old: the numbers they cover are not dialed.
    pub stale_registries: Vec<i64>,
}

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct CampaignLive {
    pub live_calls: u32,
    pub live_answers_24h: f64,
    pub abandons_24h: f64,
    pub abandon_rate_24h: f64,
    pub abandon_rate_30d: f64,
    /// The live-answer probability the pacer assumes now.
    pub answer_estimate: Option<f64>,
}

/// What an agent is doing, as the dialer sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentLive {
    /// `ready`, `not_ready`, `preview`, `dialing` (the previewed record is being called),
    /// `alerting`, `on_call`, `wrap_up`.
    pub state: String,
    pub pause_code: Option<String>,
    pub campaign_id: Option<i64>,
    pub record_id: Option<i64>,
    pub call_id: Option<u64>,
    pub since: DateTime<Utc>,
    /// Until when (preview offer, wrap-up).
    pub until: Option<DateTime<Utc>>,
    pub simulated: bool,
    /// With SIP telephony: the Contact the agent's phone registered, `None` when not registered.
    pub phone: Option<String>,
}

/// A notice for an agent's screen.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    pub agent: UserId,
    pub notice: AgentNotice,
}

#[derive(Debug)]
enum Command {
    Resync,
    DncChanged(Vec<PhoneNumber>),
    /// Read every DNC list again (after a registry import).
    DncReload,
    Agent {
        input: Input,
        reply: oneshot::Sender<Result<(), String>>,
    },
    HangUp {
        agent: UserId,
        call_id: CallId,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// Errors of requests to the dialer.
#[derive(Debug, thiserror::Error)]
pub enum DialerError {
    #[error("the dialer is not running (telephony is off; start the server with --telephony sip --sip-config FILE, or --telephony sim for simulated calls, or use `campana demo`)")]
    NotRunning,
    #[error("the dialer is busy; try again")]
    Busy,
    /// The dialer's loop is stalled or stopped, or did not answer in time.
    #[error("{0}")]
    Unresponsive(String),
    #[error("{0}")]
    Refused(String),
}

/// The handle the API holds.
#[derive(Clone)]
pub struct Dialer {
    /// Where SIP telephony writes call recordings (`call-N.wav`).
    pub recordings_dir: Option<std::path::PathBuf>,
    tx: Option<mpsc::Sender<Command>>,
    notices: broadcast::Sender<Arc<Notice>>,
    status: Arc<RwLock<LiveStatus>>,
    heartbeat: Arc<Heartbeat>,
    started: DateTime<Utc>,
}

impl Dialer {
    /// A dialer that does not run (telephony off).
    pub fn off() -> Dialer {
        Dialer {
            recordings_dir: None,
            tx: None,
            notices: broadcast::channel(1).0,
            status: Arc::new(RwLock::new(LiveStatus { telephony: "off".into(), ..Default::default() })),
            heartbeat: Arc::default(),
            started: Utc::now(),
        }
    }

    /// Recovers calls cut off by a crash, then starts the dialer task.
    pub async fn start(store: Store, opts: DialerOptions) -> anyhow::Result<Dialer> {
        // Calls a crashed run left open are closed whatever the telephony is now.
        let now = Utc::now();
        let recovered = recover_open_calls(&store, now).await?;
        if recovered > 0 {
            tracing::warn!(recovered, "closed calls left open by the previous run as system errors");
        }
        if opts.telephony == TelephonyMode::Off {
            return Ok(Dialer::off());
        }
        let mut warnings = Vec::new();
        let tel = match opts.telephony {
            TelephonyMode::Sip => {
                if opts.sim_agents > 0 {
                    anyhow::bail!("simulated agents need simulated telephony (--telephony sim); SIP calls go to real agents' phones");
                }
                let trunk = opts.sip.clone().ok_or_else(|| anyhow::anyhow!("--telephony sip needs --sip-config FILE (the trunk)"))?;
                let prompt_warnings = check_prompts(&trunk).await;
                for w in &prompt_warnings {
                    tracing::warn!("{w}");
                }
                warnings.extend(prompt_warnings);
                let trunks = trunk.trunks.keys().cloned().collect();
                let (handle, events) = campana_sip::SipTelephony::start(trunk).await?;
                tracing::info!(sip = %handle.local_sip_addr(), "SIP telephony: agents' phones register here");
                Tel::Sip { handle, events, trunks }
            }
            _ => Tel::Sim(SimTelephony::new(opts.seed, opts.sim_population.clone(), 120.0, 0.6, now)),
        };
        let first_call_id = store.max_call_id().await? + 1;
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let notices = broadcast::channel(NOTICE_BUFFER).0;
        let telephony = tel.name().to_string();
        let status = Arc::new(RwLock::new(LiveStatus {
            running: true,
            telephony: telephony.clone(),
            warnings: warnings.clone(),
            ..Default::default()
        }));
        let groups = match &opts.sim_agent_groups[..] {
            [] => store.list_all::<campana_core::stored::AgentGroup>().await?.into_iter().map(|g| g.id).collect(),
            given => given.to_vec(),
        };
        // Every DNC list is in memory before anything is dialed.
        let dnc_lists = Arc::new(crate::dnc_lists::load(&store, now).await?);
        tracing::info!(numbers = dnc_lists.len(), bytes = dnc_lists.memory_bytes(), "DNC lists loaded");
        let engine_cfg = EngineConfig { rules: crate::state::calling_rules().clone(), ..EngineConfig::default() };
        // A refill shorter than asked means "the list is running out" (`Input::ListExhausted`):
        // the store must be able to return all the engine asks for at once.
        assert!(
            engine_cfg.max_buffer_per_campaign <= campana_store::dialer::MAX_DIALABLE_BATCH,
            "the engine asks for more records than the store returns in one read"
        );
        let engine = Engine::new(engine_cfg, Box::new(SharedDnc(dnc_lists.clone())), first_call_id, now);
        let model = AgentModel { count: opts.sim_agents, wrap_mean_s: 8.0, preview_think_s: Some(4.0), ..AgentModel::default() };
        // Simulated agents work for a year; they come and go only with the server. Their
        // logins are spread over the minute before `start`, so they are all in at once.
        let agents = SimAgents::in_groups(opts.seed, model, &groups, now - Duration::seconds(60), 24.0 * 365.0);
        let driver = Driver {
            store,
            core: DriverCore::new(engine, dnc_lists, now),
            tel,
            agents,
            dnc_rebuild: None,
            notices: notices.clone(),
            status: status.clone(),
            next_status: now,
            telephony,
            warnings,
            sim_regroup_pending: opts.sim_agents > 0 && opts.sim_agent_groups.is_empty() && groups.is_empty(),
        };
        let heartbeat = Arc::new(Heartbeat::default());
        let test_stall_s = std::env::var(TEST_STALL_ENV).ok().and_then(|v| v.parse::<u64>().ok());
        let task = tokio::spawn(driver.run(rx, heartbeat.clone(), test_stall_s));
        // The task's end (a return or a panic) is seen by the health, whatever ended it.
        let hb = heartbeat.clone();
        tokio::spawn(async move {
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the dialer task panicked; no campaign is dialed until a restart");
            }
            hb.stopped.store(true, Ordering::Relaxed);
        });
        let recordings_dir = opts.sip.as_ref().and_then(|t| t.recordings_dir.clone());
        Ok(Dialer { recordings_dir, tx: Some(tx), notices, status, heartbeat, started: now })
    }

    /// The dialer's health now: whether its loop turns (see [`DialerHealth::at`]).
    pub fn health(&self) -> DialerHealth {
        if !self.is_running() {
            return DialerHealth::default();
        }
        let ms = self.heartbeat.last_loop_ms.load(Ordering::Relaxed);
        let last = (ms > 0).then(|| DateTime::from_timestamp_millis(ms)).flatten();
        let iterations = self.heartbeat.loop_iterations.load(Ordering::Relaxed);
        DialerHealth::at(Utc::now(), self.started, last, iterations, self.heartbeat.stopped.load(Ordering::Relaxed))
    }

    /// Where the recording of a call is (or would be) written, when SIP recordings are configured.
    pub fn recording_path(&self, call_id: i64) -> Option<std::path::PathBuf> {
        let dir = self.recordings_dir.as_deref()?;
        Some(campana_sip::recording::recording_path(dir, CallId(u64::try_from(call_id).ok()?)))
    }

    pub fn is_running(&self) -> bool {
        self.tx.is_some()
    }

    pub fn status(&self) -> LiveStatus {
        let mut s = self.status.read().expect("status lock").clone();
        s.health = self.health();
        s
    }

    /// Notices for agents' screens (each listener filters its own agent).
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Notice>> {
        self.notices.subscribe()
    }

    fn send(&self, c: Command) -> Result<(), DialerError> {
        let tx = self.tx.as_ref().ok_or(DialerError::NotRunning)?;
        tx.try_send(c).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => DialerError::Busy,
            mpsc::error::TrySendError::Closed(_) => DialerError::NotRunning,
        })
    }

    /// Campaigns changed (started, paused, edited): re-read them now.
    pub fn campaigns_changed(&self) {
        let _ = self.send(Command::Resync);
    }

    /// DNC entries of these numbers changed.
    pub fn dnc_changed(&self, phones: Vec<PhoneNumber>) {
        if !phones.is_empty() {
            let _ = self.send(Command::DncChanged(phones));
        }
    }

    /// Many DNC entries changed (a registry's full list): the dialer reads its lists again, and
    /// keeps the current ones until the new ones are built.
    pub fn dnc_reload(&self) {
        let _ = self.send(Command::DncReload);
    }

    /// An agent's action (login, ready, disposition, ...), applied by the engine.
    pub async fn agent(&self, input: Input) -> Result<(), DialerError> {
        self.check_responsive()?;
        let (reply, rx) = oneshot::channel();
        self.send(Command::Agent { input, reply })?;
        Self::reply(rx).await
    }

    /// The agent ends the customer call.
    pub async fn hang_up(&self, agent: UserId, call_id: CallId) -> Result<(), DialerError> {
        self.check_responsive()?;
        let (reply, rx) = oneshot::channel();
        self.send(Command::HangUp { agent, call_id, reply })?;
        Self::reply(rx).await
    }

    /// A stalled or stopped dialer refuses at once, saying why, rather than leave the caller
    /// waiting for an answer that will not come.
    fn check_responsive(&self) -> Result<(), DialerError> {
        let h = self.health();
        match h.reason {
            Some(reason) if !h.is_ok() => Err(DialerError::Unresponsive(format!("the dialer is not working: {reason}"))),
            _ => Ok(()),
        }
    }

    /// The driver's answer, waited for at most [`STALL_AFTER_S`].
    async fn reply(rx: oneshot::Receiver<Result<(), String>>) -> Result<(), DialerError> {
        match tokio::time::timeout(std::time::Duration::from_secs_f64(STALL_AFTER_S), rx).await {
            Ok(r) => r.map_err(|_| DialerError::NotRunning)?.map_err(DialerError::Refused),
            Err(_) => Err(DialerError::Unresponsive(format!(
                "the dialer did not answer within {STALL_AFTER_S:.0} s; it may be stalled (see /readyz); try again"
            ))),
        }
    }
}

/// The prompts the engine plays, and what happens on a call when one is missing.
const PROMPTS: [(&str, &str); 3] = [
    ("safe_harbor", "calls abandoned for want of a free agent are hung up without the safe-harbor message (US TSR and Ofcom require one)"),
    ("agentless_message", "answered calls of agentless campaigns hear silence"),
    ("machine_message", "no message is left on answering machines when a profile asks for one"),
];

/// A sentence for each prompt that is missing or unplayable.
async fn check_prompts(trunk: &campana_sip::TrunkConfig) -> Vec<String> {
    let mut out = Vec::new();
    for (name, effect) in PROMPTS {
        let problem = match campana_sip::audio::prompt_path(trunk.prompts_dir.as_deref(), name) {
            Err(e) => Some(e.to_string()),
            Ok(path) => campana_sip::audio::load_prompt(&path, campana_sip::sdp::PT_PCMU).await.err().map(|e| e.to_string()),
        };
        if let Some(p) = problem {
            out.push(format!("prompt {name}: {p}; {effect}"));
        }
    }
    out
}

/// Closes calls a previous run left open: result "system error" ("abandoned" when the engine had
/// abandoned it, so the abandon block holds), then its treatment ([`campana_dialer::close_open_call`],
/// the code the whole-dialer simulation runs).
pub async fn recover_open_calls(store: &Store, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let open = store.open_attempts().await?;
    for a in &open {
        let campaign = store.get_campaign(a.campaign_id).await?;
        let settings = store.effective_settings(&campaign).await?.settings;
        let cand = store.dialer_candidate(a.record_id).await?;
        let update = close_open_call(a.campaign_id, &cand, &settings, campaign.input.time_zone.0, a.started_at, a.abandoned, now);
        store.close_attempt(a.call_id, open_call_result(a.abandoned), now, &update).await?;
    }
    Ok(open.len())
}

/// The telephony the dialer drives.
// One value per process, never moved in a hot path: boxing the simulator would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Tel {
    Sim(SimTelephony),
    Sip {
        handle: campana_sip::SipTelephony,
        events: mpsc::Receiver<campana_core::telephony::TelephonyEvent>,
        /// The named trunks of the SIP configuration.
        trunks: HashSet<String>,
    },
}

impl Tel {
    fn name(&self) -> &'static str {
        match self {
            Tel::Sim(_) => "sim",
            Tel::Sip { .. } => "sip",
        }
    }
    fn next_event_at(&self) -> Option<DateTime<Utc>> {
        match self {
            Tel::Sim(t) => t.next_event_at(),
            Tel::Sip { .. } => None,
        }
    }
}

/// The next SIP event, or never with simulated telephony (whose events are polled by time).
async fn sip_event(tel: &mut Tel) -> Option<campana_core::telephony::TelephonyEvent> {
    match tel {
        Tel::Sip { events, .. } => events.recv().await,
        Tel::Sim(_) => std::future::pending().await,
    }
}

/// The IO shell around [`DriverCore`]: reads the clock, the command queue and the telephony's
/// events, feeds them to the core, and executes the operations the core hands out, in order.
struct Driver {
    store: Store,
    core: DriverCore,
    tel: Tel,
    agents: SimAgents,
    /// A DNC rebuild under way ([`Op::LoadDnc`]): the lists and the change it was started after.
    dnc_rebuild: Option<oneshot::Receiver<Result<(DncLists, u64), StoreError>>>,
    notices: broadcast::Sender<Arc<Notice>>,
    status: Arc<RwLock<LiveStatus>>,
    /// The simulated agents had no agent group to join when the dialer started (none existed):
    /// they are spread over the groups at the first resync that finds some.
    sim_regroup_pending: bool,
    next_status: DateTime<Utc>,
    telephony: String,
    /// Set-up problems found at start, shown in every status.
    warnings: Vec<String>,
}

fn agent_live(m: &AgentMirror, phone: Option<String>) -> AgentLive {
    AgentLive {
        state: m.state.clone(),
        pause_code: m.pause_code.clone(),
        campaign_id: m.campaign_id.map(|c| c.0),
        record_id: m.record_id.map(|r| r.0),
        call_id: m.call_id.map(|c| c.0),
        since: m.since,
        until: m.until,
        simulated: m.simulated,
        phone,
    }
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>, heartbeat: Arc<Heartbeat>, mut test_stall_s: Option<u64>) {
        loop {
            let now = Utc::now();
            heartbeat.beat(now);
            metrics::counter!("campana_dialer_loop_iterations_total").increment(1);
            if heartbeat.loop_iterations.load(Ordering::Relaxed) > 1 {
                if let Some(s) = test_stall_s.take() {
                    tracing::warn!(seconds = s, "{TEST_STALL_ENV}: the dialer's loop stops (test hook)");
                    tokio::time::sleep(std::time::Duration::from_secs(s)).await;
                    continue;
                }
            }
            let mut wake = now + Duration::milliseconds(MAX_SLEEP_MS);
            for t in [Some(self.core.next_deadline()), self.tel.next_event_at(), self.agents.next_action_at()].into_iter().flatten() {
                wake = wake.min(t);
            }
            let sleep_ms = (wake - now).num_milliseconds().clamp(0, MAX_SLEEP_MS) as u64;
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(c) => self.command(c).await,
                    None => return,
                },
                ev = sip_event(&mut self.tel) => match ev {
                    Some(ev) => {
                        if let Err(e) = self.input(Utc::now(), Input::Telephony(ev)).await {
                            tracing::error!(error = %e, "dialer step failed");
                        }
                    }
                    None => {
                        tracing::error!("SIP telephony stopped; the dialer stops");
                        return;
                    }
                },
                _ = tokio::time::sleep(std::time::Duration::from_millis(sleep_ms)) => {}
            }
            if let Err(e) = self.tick().await {
                tracing::error!(error = %e, "dialer step failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }

    /// Everything due now: resync, telephony events, simulated agents, engine timers.
    async fn tick(&mut self) -> Result<(), StoreError> {
        let now = Utc::now();
        self.poll_dnc_rebuild(now);
        if self.core.resync_due(now) {
            self.resync(now).await?;
        }
        while let Some(ev) = match &mut self.tel {
            Tel::Sim(t) => t.poll_event(now).map(|(_, ev)| ev),
            Tel::Sip { .. } => None,
        } {
            self.input(now, Input::Telephony(ev)).await?;
        }
        while let Some((_, i)) = self.agents.poll_action(now) {
            self.input(now, i).await?;
        }
        if let Err(e) = self.core.tick(now) {
            tracing::warn!(error = %e, "engine timeout");
        }
        self.run_ops(now).await?;
        if now >= self.next_status {
            self.next_status = now + Duration::milliseconds(MAX_SLEEP_MS / 2);
            self.publish(now);
        }
        Ok(())
    }

    async fn command(&mut self, c: Command) {
        let now = Utc::now();
        let r = match c {
            Command::Resync => self.resync(now).await,
            Command::DncChanged(phones) => match crate::dnc_lists::entries_of(&self.store, &phones, now).await {
                Ok(entries) => {
                    self.core.dnc_entries(now, entries, true);
                    self.run_ops(now).await
                }
                Err(e) => Err(e),
            },
            Command::DncReload => {
                self.core.rebuild_dnc();
                match self.run_ops(now).await {
                    Ok(()) => self.check_registries(now).await,
                    Err(e) => Err(e),
                }
            }
            Command::Agent { input, reply } => {
                // With SIP, calls reach an agent through their registered phone: no phone, no calls.
                if let (Tel::Sip { handle, .. }, Input::AgentReady { agent }) = (&self.tel, &input) {
                    if handle.agent_contact(*agent).is_none() {
                        let at = handle.local_sip_addr();
                        let _ = reply.send(Err(format!(
                            "your phone is not registered: register it with Campana at {at} (the SIP user name and password of the registrar's agent {}) before getting ready",
                            agent.0
                        )));
                        return;
                    }
                }
                let res = self.core.agent_command(now, input);
                // The agent's state is in the snapshot before the answer.
                let published = self.run_ops(now).await;
                let _ = reply.send(res);
                self.core.drain(now);
                match published {
                    Ok(()) => self.run_ops(now).await,
                    Err(e) => Err(e),
                }
            }
            Command::HangUp { agent, call_id, reply } => {
                let res = self.core.hang_up(agent, call_id);
                let r = self.run_ops(now).await;
                let _ = reply.send(res);
                r
            }
        };
        if let Err(e) = r {
            tracing::error!(error = %e, "dialer command failed");
        }
    }

    async fn input(&mut self, now: DateTime<Utc>, i: Input) -> Result<(), StoreError> {
        if let Err(e) = self.core.input(now, i) {
            tracing::debug!(error = %e, "engine refused an input");
        }
        self.run_ops(now).await
    }

    /// Executes the core's operations in order. A failed write or read stops there: the core
    /// drops what was queued after it (no dial leaves without its attempt row on disk).
    async fn run_ops(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        while let Some(op) = self.core.poll_op() {
            match op {
                Op::Persist(batch) => {
                    for p in &batch {
                        match p {
                            PersistCommand::AttemptStarted { .. } => metrics::counter!("campana_dials_total").increment(1),
                            PersistCommand::AbandonRecorded { .. } => metrics::counter!("campana_abandons_total").increment(1),
                            _ => {}
                        }
                    }
                    if let Err(e) = self.store.persist_dialer(&batch).await {
                        self.core.store_failed(now);
                        return Err(e);
                    }
                }
                Op::FetchRecords(q) => match self.fetch(now, &q).await {
                    Ok((records, entries)) => self.core.records_fetched(now, q.campaign_id, records, entries),
                    Err(e) => {
                        self.core.store_failed(now);
                        return Err(e);
                    }
                },
                Op::LoadDnc { as_of_seq } => {
                    let (tx, rx) = oneshot::channel();
                    let store = self.store.clone();
                    tokio::spawn(async move {
                        let r = crate::dnc_lists::load(&store, now).await.map(|l| (l, as_of_seq));
                        let _ = tx.send(r);
                    });
                    self.dnc_rebuild = Some(rx);
                }
                Op::Telephony(cmd) => self.telephony(now, cmd).await,
                Op::SimAgentNotice(n) => self.agents.on_notice(now, &n),
                Op::AgentChanged { agent, state, notice } => {
                    if let Some(AgentNotice::PhoneFailed { next: AfterWrapUp::NotReady, reason, call_id, .. }) = &notice {
                        tracing::warn!(%agent, %call_id, %reason, "agent phone failed: agent set not ready");
                    }
                    self.publish_agent(agent, state.as_ref());
                    if let Some(n) = notice {
                        let _ = self.notices.send(Arc::new(Notice { agent, notice: n }));
                    }
                }
            }
        }
        Ok(())
    }

    /// Up to `q.limit` records of a campaign, with the DNC entries of their numbers.
    async fn fetch(
        &mut self,
        now: DateTime<Utc>,
        q: &RecordQuery,
    ) -> Result<(Vec<Candidate>, Vec<(PhoneNumber, Vec<DncHit>)>), StoreError> {
        let Some(run) = self.core.campaigns().get(&q.campaign_id) else { return Ok((Vec::new(), Vec::new())) };
        let s = &run.cfg.settings;
        let records = self
            .store
            .dialable_records(&DialableQuery {
                lists: &q.lists,
                sort_order: &s.sort_order,
                filters: &s.record_filters,
                now,
                limit: q.limit,
                exclude: &q.exclude,
            })
            .await?;
        let phones: Vec<PhoneNumber> = records.iter().map(|c| c.record.phone.clone()).collect();
        let entries = crate::dnc_lists::entries_of(&self.store, &phones, now).await?;
        Ok((records, entries))
    }

    /// Swaps in the lists a finished rebuild made.
    fn poll_dnc_rebuild(&mut self, now: DateTime<Utc>) {
        let Some(rx) = self.dnc_rebuild.as_mut() else { return };
        let result = match rx.try_recv() {
            Err(oneshot::error::TryRecvError::Empty) => return,
            Err(oneshot::error::TryRecvError::Closed) => None,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "rebuilding the DNC lists failed; the current lists and changes stay");
                None
            }
            Ok(Ok((lists, as_of_seq))) => {
                tracing::info!(numbers = lists.len(), bytes = lists.memory_bytes(), "DNC lists rebuilt");
                Some((Arc::new(lists), as_of_seq))
            }
        };
        self.dnc_rebuild = None;
        self.core.dnc_loaded(now, result);
    }

    /// Tells the engine which registries are too old to trust (before any campaign starts, then
    /// at every resync: a registry becomes stale with the passing of time).
    async fn check_registries(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        let (stale, warnings) = crate::dnc_lists::stale_registries(&self.store.dnc_registries().await?, now);
        if stale != self.core.dnc().stale {
            for w in &warnings {
                tracing::warn!("{w}");
            }
        }
        self.core.dnc_stale(now, stale, warnings);
        Ok(())
    }

    /// Brings the engine's campaigns in line with the store's running campaigns.
    async fn resync(&mut self, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.check_registries(now).await?;
        if self.sim_regroup_pending {
            let groups: Vec<AgentGroupId> =
                self.store.list_all::<campana_core::stored::AgentGroup>().await?.into_iter().map(|g| g.id).collect();
            if !groups.is_empty() {
                self.sim_regroup_pending = false;
                tracing::info!(groups = groups.len(), "simulated agents join the agent groups created since the start");
                // Straight to the engine: a new login only changes the agent's groups there
                // (their state is kept), so the screen's copy of that state stays as it is.
                for login in self.agents.regroup(&groups) {
                    if let Err(e) = self.core.engine_input(now, login) {
                        tracing::warn!(error = %e, "a simulated agent could not join its group");
                    }
                }
                self.core.drain(now);
                self.run_ops(now).await?;
            }
        }
        let mut running: Vec<Campaign> = Vec::new();
        let mut page = PageParams { limit: Some(campana_store::MAX_PAGE), cursor: None };
        loop {
            let got =
                self.store.list_campaigns(&CampaignFilter { state: Some(CampaignState::Running), ..Default::default() }, page).await?;
            running.extend(got.items);
            match got.next_cursor {
                Some(c) => page.cursor = Some(PageParams::parse_cursor(&c)?),
                None => break,
            }
        }
        let ids: HashSet<CampaignId> = running.iter().map(|c| c.id).collect();
        for id in self.core.campaigns_gone(now, &ids) {
            tracing::info!(campaign = %id, "campaign left the dialer");
        }
        let mut history = None;
        for c in running {
            if self.core.campaign_current(c.id, c.updated_at) {
                continue;
            }
            let settings = self.store.effective_settings(&c).await?.settings;
            let cfg = campaign_config(&c, settings);
            let lists = c.input.contact_list_ids.clone();
            self.store.clear_deferrals(&lists).await?;
            let mut minutes = Vec::new();
            if self.core.campaign_fresh(c.id) {
                if history.is_none() {
                    history = Some(self.store.abandon_history(now - Duration::days(HISTORY_DAYS)).await?);
                }
                minutes = history
                    .iter()
                    .flatten()
                    .filter(|h| h.campaign_id == c.id)
                    .map(|h| HistoryMinute {
                        at: h.minute_start,
                        live_answers: h.live_answers,
                        abandons: h.abandons,
                        machine_verdicts: h.machine_verdicts,
                    })
                    .collect();
            }
            let mode = cfg.settings.dialing_mode;
            if let Err(e) = self.core.campaign_loaded(now, CampaignLoad { cfg, lists, updated_at: c.updated_at, history: minutes }) {
                tracing::warn!(error = %e, campaign = %c.id, "engine refused the campaign");
                continue;
            }
            tracing::info!(campaign = %c.id, %mode, "campaign in the dialer");
        }
        self.core.drain(now);
        self.run_ops(now).await
    }

    async fn telephony(&mut self, now: DateTime<Utc>, cmd: TelephonyCommand) {
        // A stable 2% of numbers are out of service in the simulation.
        let invalid = match &cmd {
            TelephonyCommand::Dial { to, .. } => to.digits().bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32)) % 50 == 0,
            _ => false,
        };
        match &mut self.tel {
            Tel::Sim(t) => {
                if let Err(e) = t.handle_command(now, &cmd, invalid) {
                    tracing::warn!(error = %e, "simulated telephony refused a command");
                }
            }
            // Waits when the SIP command queue is full (back-pressure on the dialer).
            Tel::Sip { handle, .. } => {
                if let Err(e) = handle.send(cmd).await {
                    tracing::error!(error = %e, "SIP telephony refused a command");
                }
            }
        }
    }

    /// Copies one agent's live state into the shared snapshot at once (the full snapshot is
    /// refreshed twice a second), so that a screen reading it after a notice or its own
    /// action sees that state.
    fn publish_agent(&self, agent: UserId, state: Option<&AgentMirror>) {
        let mut s = self.status.write().expect("status lock");
        match state {
            Some(live) => {
                let phone = s.agents.get(&agent.0).and_then(|a| a.phone.clone());
                s.agents.insert(agent.0, agent_live(live, phone));
            }
            None => {
                s.agents.remove(&agent.0);
            }
        }
    }

    fn publish(&self, now: DateTime<Utc>) {
        let dnc = self.core.dnc();
        let engine = self.core.engine();
        let mut s = LiveStatus {
            running: true,
            telephony: self.telephony.clone(),
            warnings: self.warnings.iter().chain(&dnc.warnings).cloned().collect(),
            dnc: Some(DncLive {
                numbers: dnc.lists.len(),
                bytes: dnc.lists.memory_bytes() as u64,
                built_at: dnc.built_at,
                changes_since_build: engine.dnc_changes_len() as u64,
                rebuilding: dnc.rebuilding,
                stale_registries: dnc.stale.iter().map(|s| s.list_id.0).collect(),
            }),
            updated_at: Some(now),
            ..Default::default()
        };
        for id in self.core.campaigns().keys() {
            let mut c = CampaignLive { answer_estimate: engine.answer_estimate(*id), ..Default::default() };
            if let Some((d, m)) = engine.abandon_windows(*id) {
                c.live_answers_24h = d.live_answers;
                c.abandons_24h = d.abandons;
                c.abandon_rate_24h = d.rate();
                c.abandon_rate_30d = m.rate();
            }
            s.campaigns.insert(id.0, c);
        }
        for l in self.core.live().values() {
            s.campaigns.entry(l.campaign_id.0).or_default().live_calls += 1;
        }
        s.agents = self.core.agents().iter().map(|(a, l)| (a.0, agent_live(l, None))).collect();
        s.sim_agent_groups = s.agents.keys().filter_map(|a| self.agents.group_of(UserId(*a)).map(|g| (*a, g.0))).collect();
        metrics::gauge!("campana_live_calls").set(self.core.live().len() as f64);
        if let Tel::Sip { handle, trunks, .. } = &self.tel {
            for (id, run) in self.core.campaigns() {
                if let Some(name) = run.cfg.settings.sip_trunk.as_ref().filter(|n| !trunks.contains(*n)) {
                    s.warnings.push(format!(
                        "campaign {id}: its settings name the SIP trunk {name:?}, which the SIP configuration does not have ([trunks.{name}]); its calls end as dial errors"
                    ));
                }
            }
            for (id, a) in s.agents.iter_mut() {
                a.phone = handle.agent_contact(UserId(*id));
            }
            let st = handle.stats();
            for (name, v) in [
                ("campana_sip_invites_sent_total", st.invites_sent),
                ("campana_sip_answered_total", st.answered),
                ("campana_sip_connected_total", st.connected),
                ("campana_sip_refused_requests_total", st.refused_requests),
                ("campana_sip_rtp_packets_sent_total", st.rtp_packets_sent),
                ("campana_sip_rtp_packets_received_total", st.rtp_packets_received),
                ("campana_sip_rtp_packets_relayed_total", st.rtp_packets_relayed),
                ("campana_sip_kernel_bridged_total", st.kernel_bridged),
            ] {
                metrics::counter!(name).absolute(v);
            }
            metrics::gauge!("campana_sip_active_calls").set(st.active_calls as f64);
            s.sip = Some(st);
        }
        *self.status.write().expect("status lock") = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_turns_stalled_after_stall_after_s_without_a_turn_and_says_why() {
        let start: DateTime<Utc> = "2026-12-03T10:00:00Z".parse().unwrap();
        let at = |s: f64| start + Duration::milliseconds((s * 1000.0) as i64);
        // Not turned yet: counted from the start.
        let h = DialerHealth::at(at(2.0), start, None, 0, false);
        assert_eq!((h.state.as_str(), h.last_loop_age_s), ("ok", Some(2.0)));
        assert!(h.is_ok() && h.reason.is_none());
        let h = DialerHealth::at(at(STALL_AFTER_S + 1.0), start, None, 0, false);
        assert_eq!(h.state, "stalled", "{h:?}");
        // Turning: healthy just below the limit, stalled at it, with the age in the reason.
        let last = Some(at(100.0));
        let h = DialerHealth::at(at(100.0 + STALL_AFTER_S - 0.1), start, last, 42, false);
        assert_eq!((h.state.as_str(), h.loop_iterations), ("ok", 42), "{h:?}");
        let h = DialerHealth::at(at(100.0 + STALL_AFTER_S + 5.0), start, last, 42, false);
        assert_eq!(h.state, "stalled");
        assert!(!h.is_ok());
        assert!(h.reason.as_deref().is_some_and(|r| r.contains("15 s")), "{h:?}");
        assert_eq!(h.last_loop_at, last);
        // A task that ended is stopped, however recent its last turn; a clock going back is age 0.
        let h = DialerHealth::at(at(100.5), start, last, 42, true);
        assert_eq!(h.state, "stopped");
        assert_eq!(DialerHealth::at(at(99.0), start, last, 42, false).last_loop_age_s, Some(0.0));
        // A dialer that is off is healthy (nothing to dial).
        assert!(DialerHealth::default().is_ok());
        assert!(Dialer::off().health().is_ok());
    }
}
