//! Campana's dialer driver as a state machine ([`DriverCore`]), the same code in the live server
//! and in the simulator.
//!
//! The engine ([`campana_engine::Engine`]) decides what to dial; the driver around it keeps the
//! promises that make those decisions safe in production:
//!
//! - **flush before dial**: the engine's persistence commands are batched and handed out as one
//!   [`Op::Persist`] before any telephony command, so a dial is on disk before the telephony
//!   layer hears of it (the shell executes the ops in order and stops at a failed one);
//! - the **live map** (calls in progress, with their agent) and the **agent mirror** (what each
//!   agent is doing, for screens and the status);
//! - **records on demand**: the engine's [`Output::NeedRecords`] becomes [`Op::FetchRecords`];
//!   nothing else of the engine is drained until the shell answers
//!   ([`DriverCore::records_fetched`]), so the order of the engine's outputs is kept;
//! - **DNC as an input**: the store's entries of the numbers fetched are compared with what the
//!   engine holds, and the differences reach it as [`Input::DncChanged`]; too many changes ask
//!   for a rebuild of the lists ([`Op::LoadDnc`]);
//! - **resync decisions**: which campaigns are new, changed or gone ([`DriverCore::campaign_current`],
//!   [`DriverCore::campaign_loaded`], [`DriverCore::campaigns_gone`]), with the abandon history
//!   replayed for a campaign the engine does not know yet;
//! - **open-call recovery** at start ([`close_open_call`]): a call a crashed run left open is
//!   closed as "system error" (as "abandoned" when its abandon was written: the record keeps the
//!   abandon block) and follows that result's treatment.
//!
//! Every method takes `now`; the core reads no clock and does no IO. The shell (a tokio task in
//! the server, a loop in the simulator) feeds it events and executes [`DriverCore::poll_op`].

use campana_core::record::CallResult;
use campana_core::settings::Settings;
use campana_core::telephony::{CallId, TelephonyCommand};
use campana_core::{CampaignId, ContactListId, PhoneNumber, RecordId, UserId};
use campana_engine::dnc::{DncLists, StaleCoverage};
use campana_engine::eligibility::contact_zones;
use campana_engine::treatment::{after_call, FinishedCall};
use campana_engine::{
    AfterWrapUp, AgentNotice, CampaignConfig, Candidate, DncHit, Engine, Input, Output, PersistCommand, RecordUpdate, SharedDnc,
};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

/// Running campaigns are re-read from the store this often (changes by other nodes or tools).
pub const RESYNC_S: i64 = 30;
/// Abandon accounting replayed at start: the longest window (30 days).
pub const HISTORY_DAYS: i64 = 30;
/// DNC changes the engine holds one by one before the driver asks for fresh lists.
pub const CHANGES_BEFORE_REBUILD: usize = 100_000;
/// Operations waiting for the shell at most: the shell executes them after every call into
/// the core, so more than this means a shell that forgot to (a bug that would grow without end).
pub const MAX_PENDING_OPS: usize = 100_000;

/// What the shell must do, in order. A failed [`Op::Persist`] or [`Op::FetchRecords`] is told
/// back with [`DriverCore::store_failed`], which drops the operations queued after it (a
/// telephony command never leaves without the rows written before it).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Write these commands in one transaction, in order, and wait for the commit.
    Persist(Vec<PersistCommand>),
    /// Read up to `limit` dialable records and the DNC entries of their numbers; answer with
    /// [`DriverCore::records_fetched`].
    FetchRecords(RecordQuery),
    /// Build fresh DNC lists from the store (in the background), after change `as_of_seq`;
    /// answer with [`DriverCore::dnc_loaded`].
    LoadDnc { as_of_seq: u64 },
    /// Send to the telephony layer.
    Telephony(TelephonyCommand),
    /// A notice for a simulated agent (the simulated agents' model hears it).
    SimAgentNotice(AgentNotice),
    /// A human agent's state changed: copy `state` (`None`: logged out) to the shared snapshot,
    /// then send `notice` to the agent's screen.
    AgentChanged { agent: UserId, state: Option<AgentMirror>, notice: Option<AgentNotice> },
}

/// The store query behind [`Op::FetchRecords`] (the profile's dialing order and filters).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordQuery {
    pub campaign_id: CampaignId,
    pub lists: Vec<ContactListId>,
    pub limit: usize,
    /// Records the engine holds (buffered or in a call): never offered again.
    pub exclude: HashSet<RecordId>,
}

/// What an agent is doing, as the driver sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentMirror {
    /// `ready`, `not_ready`, `preview`, `dialing` (the previewed record is being called),
    /// `alerting`, `on_call`, `wrap_up`.
    pub state: String,
    pub pause_code: Option<String>,
    pub campaign_id: Option<CampaignId>,
    pub record_id: Option<RecordId>,
    pub call_id: Option<CallId>,
    pub since: DateTime<Utc>,
    /// Until when (preview offer, wrap-up).
    pub until: Option<DateTime<Utc>>,
    pub simulated: bool,
}

/// A call in progress.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveCall {
    pub campaign_id: CampaignId,
    pub record_id: RecordId,
    /// The agent it was connected to.
    pub agent: Option<UserId>,
}

/// A campaign in the dialer.
#[derive(Debug, Clone)]
pub struct Running {
    pub lists: Vec<ContactListId>,
    pub cfg: CampaignConfig,
    /// The store's version of the campaign the engine has.
    pub updated_at: DateTime<Utc>,
}

/// A campaign read from the store at a resync, for [`DriverCore::campaign_loaded`].
#[derive(Debug, Clone)]
pub struct CampaignLoad {
    pub cfg: CampaignConfig,
    pub lists: Vec<ContactListId>,
    pub updated_at: DateTime<Utc>,
    /// The campaign's abandon history of the last [`HISTORY_DAYS`] (read only when
    /// [`DriverCore::campaign_fresh`] says the engine does not know the campaign yet).
    pub history: Vec<HistoryMinute>,
}

/// Live answers, abandons and unconnected machine verdicts of a campaign in one minute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryMinute {
    pub at: DateTime<Utc>,
    pub live_answers: u32,
    pub abandons: u32,
    pub machine_verdicts: u32,
}

/// The dialer's DNC lists as the engine holds them.
pub struct DncState {
    /// The lists the engine was last given (it holds the same `Arc`).
    pub lists: Arc<DncLists>,
    /// The last change told to the engine ([`Input::DncChanged`]).
    pub seq: u64,
    /// A rebuild is under way ([`Op::LoadDnc`] not yet answered).
    pub rebuilding: bool,
    /// A reload was asked while a rebuild was under way: build again when it ends.
    rebuild_again: bool,
    pub built_at: DateTime<Utc>,
    /// Registries too old to trust, as last told to the engine, and why (status warnings).
    pub stale: Vec<StaleCoverage>,
    pub warnings: Vec<String>,
}

/// The dialer's state machine: see the crate's documentation.
pub struct DriverCore {
    engine: Engine,
    dnc: DncState,
    campaigns: HashMap<CampaignId, Running>,
    /// Persistence commands not yet handed out; handed out before any telephony command.
    batch: Vec<PersistCommand>,
    live: HashMap<CallId, LiveCall>,
    agents: BTreeMap<UserId, AgentMirror>,
    /// Agents logged in through the API (the others are simulated).
    human: HashSet<UserId>,
    next_resync: DateTime<Utc>,
    ops: VecDeque<Op>,
    /// An [`Op::FetchRecords`] not yet answered (the campaign, the records asked): the engine is
    /// not drained meanwhile.
    awaiting_records: Option<(CampaignId, usize)>,
}

impl DriverCore {
    /// A driver around `engine`, which holds `dnc_lists`; the first resync is due at once.
    pub fn new(engine: Engine, dnc_lists: Arc<DncLists>, now: DateTime<Utc>) -> DriverCore {
        DriverCore {
            engine,
            dnc: DncState {
                lists: dnc_lists,
                seq: 0,
                rebuilding: false,
                rebuild_again: false,
                built_at: now,
                stale: Vec::new(),
                warnings: Vec::new(),
            },
            campaigns: HashMap::new(),
            batch: Vec::new(),
            live: HashMap::new(),
            agents: BTreeMap::new(),
            human: HashSet::new(),
            next_resync: now,
            ops: VecDeque::new(),
            awaiting_records: None,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }
    pub fn dnc(&self) -> &DncState {
        &self.dnc
    }
    pub fn campaigns(&self) -> &HashMap<CampaignId, Running> {
        &self.campaigns
    }
    pub fn live(&self) -> &HashMap<CallId, LiveCall> {
        &self.live
    }
    pub fn agents(&self) -> &BTreeMap<UserId, AgentMirror> {
        &self.agents
    }
    /// When the next resync is due (the shell wakes up for it).
    pub fn next_resync(&self) -> DateTime<Utc> {
        self.next_resync
    }
    /// The earliest moment the core has something to do: the engine's next timer or the resync.
    pub fn next_deadline(&self) -> DateTime<Utc> {
        self.engine.next_deadline().map_or(self.next_resync, |t| t.min(self.next_resync))
    }

    /// The next operation for the shell.
    pub fn poll_op(&mut self) -> Option<Op> {
        self.ops.pop_front()
    }

    fn push(&mut self, op: Op) {
        assert!(self.ops.len() < MAX_PENDING_OPS, "{MAX_PENDING_OPS} driver operations pending: the shell does not poll them");
        self.ops.push_back(op);
    }

    /// The last [`Op::Persist`] or [`Op::FetchRecords`] failed: every operation queued after it
    /// is dropped (a dial never leaves without its attempt row). A fetch that failed is
    /// answered to the engine with no records ("none for now"; it asks again after its back-off).
    pub fn store_failed(&mut self, now: DateTime<Utc>) {
        self.ops.clear();
        if let Some((campaign_id, _)) = self.awaiting_records.take() {
            let _ = self.engine.handle_input(now, Input::RecordsAvailable { campaign_id, records: Vec::new() });
        }
    }

    /// Is a resync due? When it is, the next one is scheduled [`RESYNC_S`] later and the shell
    /// resyncs now.
    pub fn resync_due(&mut self, now: DateTime<Utc>) -> bool {
        if now < self.next_resync {
            return false;
        }
        self.next_resync = now + Duration::seconds(RESYNC_S);
        true
    }

    /// The engine's timers at `now`, then its outputs.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Result<(), campana_engine::EngineError> {
        let r = self.engine.handle_timeout(now);
        self.drain(now);
        r
    }

    /// An input from the world (telephony, a simulated agent): the agent mirror follows it,
    /// the engine applies it, its outputs are drained.
    pub fn input(&mut self, now: DateTime<Utc>, i: Input) -> Result<(), campana_engine::EngineError> {
        self.track_agent_input(now, &i);
        let r = self.engine.handle_input(now, i);
        self.drain(now);
        r
    }

    /// An input straight to the engine: the agent mirror does not follow it, nothing is drained.
    pub fn engine_input(&mut self, now: DateTime<Utc>, i: Input) -> Result<(), campana_engine::EngineError> {
        self.engine.handle_input(now, i)
    }

    /// A person's action through the API (login, ready, disposition, ...): the agent counts as
    /// human from its login. Not drained: the shell answers the person, then calls [`Self::drain`].
    pub fn agent_command(&mut self, now: DateTime<Utc>, input: Input) -> Result<(), String> {
        let agent = agent_of(&input);
        if let (Some(a), Input::AgentLogin { .. }) = (agent, &input) {
            self.human.insert(a);
        }
        let res = self.engine.handle_input(now, input.clone()).map_err(|e| e.to_string());
        if res.is_ok() {
            self.track_agent_input(now, &input);
        }
        res
    }

    /// The agent ends the customer call: only a call of theirs.
    pub fn hang_up(&mut self, agent: UserId, call_id: CallId) -> Result<(), String> {
        match self.live.get(&call_id) {
            Some(l) if l.agent == Some(agent) => {
                self.push(Op::Telephony(TelephonyCommand::HangUp { call_id }));
                Ok(())
            }
            _ => Err(format!("{call_id} is not a call of agent {agent}")),
        }
    }

    /// Polls every engine output: persistence batched, handed out before telephony commands
    /// and record fetches, and at the end. Stops at a record fetch until it is answered.
    pub fn drain(&mut self, now: DateTime<Utc>) {
        if self.awaiting_records.is_some() {
            return;
        }
        while let Some(o) = self.engine.poll_output() {
            match o {
                Output::Persist(p) => {
                    self.note_persist(&p);
                    self.batch.push(p);
                }
                Output::Telephony(cmd) => {
                    self.flush();
                    match &cmd {
                        TelephonyCommand::Connect { call_id, agent } => {
                            if let Some(l) = self.live.get_mut(call_id) {
                                l.agent = Some(*agent);
                            }
                        }
                        // The agent left while their phone rang: no longer this call's agent.
                        TelephonyCommand::Disconnect { call_id, agent } => {
                            if let Some(l) = self.live.get_mut(call_id).filter(|l| l.agent == Some(*agent)) {
                                l.agent = None;
                            }
                        }
                        _ => {}
                    }
                    self.push(Op::Telephony(cmd));
                }
                Output::Agent(n) => self.notice(now, n),
                Output::NeedRecords { campaign_id, max } => {
                    self.flush();
                    let Some(run) = self.campaigns.get(&campaign_id) else { continue };
                    let query = RecordQuery {
                        campaign_id,
                        lists: run.lists.clone(),
                        limit: max,
                        // What the engine holds is never offered again: the engine says what
                        // that is, so the driver keeps no copy that could disagree with it.
                        exclude: self.engine.held_records(campaign_id),
                    };
                    self.push(Op::FetchRecords(query));
                    self.awaiting_records = Some((campaign_id, max));
                    return;
                }
            }
        }
        self.flush();
    }

    fn flush(&mut self) {
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            self.push(Op::Persist(batch));
        }
    }

    /// The answer to [`Op::FetchRecords`]: the records, and the store's DNC entries in force of
    /// their numbers. Differences with what the engine holds reach it first, then the records;
    /// fewer records than asked tell the engine the list is running out
    /// ([`Input::ListExhausted`]; the store must return `limit` records when it has that many);
    /// then the engine is drained again.
    pub fn records_fetched(
        &mut self,
        now: DateTime<Utc>,
        campaign_id: CampaignId,
        records: Vec<Candidate>,
        dnc_entries: Vec<(PhoneNumber, Vec<DncHit>)>,
    ) {
        let asked = match self.awaiting_records.take() {
            Some((c, asked)) if c == campaign_id => asked,
            other => panic!("records of campaign {campaign_id} while waiting for {other:?}"),
        };
        self.dnc_entries(now, dnc_entries, false);
        let short = records.len() < asked;
        // An error: the campaign left the engine meanwhile.
        if self.engine.handle_input(now, Input::RecordsAvailable { campaign_id, records }).is_ok() && short {
            let _ = self.engine.handle_input(now, Input::ListExhausted { campaign_id });
        }
        self.drain(now);
    }

    /// The store's DNC entries in force of some numbers: those that differ from what the
    /// engine holds (all of them when `changed`: the API says they changed) reach the engine.
    /// Too many changes held one by one ask for fresh lists.
    pub fn dnc_entries(&mut self, now: DateTime<Utc>, entries: Vec<(PhoneNumber, Vec<DncHit>)>, changed: bool) {
        let numbers: Vec<_> = entries
            .into_iter()
            .filter(|(p, hits)| {
                changed || {
                    let held = match self.engine.dnc_change(p) {
                        Some(h) => normalize_hits(&mut h.to_vec()),
                        None => normalize_hits(&mut self.dnc.lists.hits(p, now)),
                    };
                    let in_force: Vec<_> = held.into_iter().filter(|h| h.expires_at.is_none_or(|e| e > now)).collect();
                    &in_force != hits
                }
            })
            .collect();
        if !numbers.is_empty() {
            self.dnc.seq += 1;
            let _ = self.engine.handle_input(now, Input::DncChanged { seq: self.dnc.seq, numbers });
        }
        if self.engine.dnc_changes_len() > CHANGES_BEFORE_REBUILD {
            self.rebuild_dnc();
        }
    }

    /// Asks for fresh lists from the store (unless a build is under way: then once more after it).
    pub fn rebuild_dnc(&mut self) {
        if self.dnc.rebuilding {
            self.dnc.rebuild_again = true;
            return;
        }
        self.dnc.rebuilding = true;
        let as_of_seq = self.dnc.seq;
        self.push(Op::LoadDnc { as_of_seq });
    }

    /// The answer to [`Op::LoadDnc`]: fresh lists replace the engine's (changes after
    /// `as_of_seq` stay on top), or the build failed and the current lists and changes stay.
    pub fn dnc_loaded(&mut self, now: DateTime<Utc>, result: Option<(Arc<DncLists>, u64)>) {
        self.dnc.rebuilding = false;
        let Some((lists, as_of_seq)) = result else { return };
        self.dnc.lists = lists.clone();
        self.dnc.built_at = now;
        let _ = self.engine.handle_input(now, Input::DncReplaced { lists: SharedDnc(lists), as_of_seq });
        if std::mem::take(&mut self.dnc.rebuild_again) {
            self.rebuild_dnc();
        }
    }

    /// The registries too old to trust now, and why: the engine hears of a change. Returns
    /// whether the set changed.
    pub fn dnc_stale(&mut self, now: DateTime<Utc>, stale: Vec<StaleCoverage>, warnings: Vec<String>) -> bool {
        let changed = stale != self.dnc.stale;
        if changed {
            self.dnc.stale = stale.clone();
            let _ = self.engine.handle_input(now, Input::DncStale(stale));
        }
        self.dnc.warnings = warnings;
        changed
    }

    /// Campaigns the dialer runs that are not among the store's running ones leave the engine.
    pub fn campaigns_gone(&mut self, now: DateTime<Utc>, running: &HashSet<CampaignId>) -> Vec<CampaignId> {
        let gone: Vec<CampaignId> = self.campaigns.keys().filter(|id| !running.contains(id)).copied().collect();
        for id in &gone {
            self.campaigns.remove(id);
            let _ = self.engine.handle_input(now, Input::CampaignStopped { campaign_id: *id });
        }
        gone
    }

    /// Does the engine run this version of the campaign (nothing to load)?
    pub fn campaign_current(&self, id: CampaignId, updated_at: DateTime<Utc>) -> bool {
        self.campaigns.get(&id).is_some_and(|r| r.updated_at == updated_at)
    }

    /// The engine does not know the campaign yet: it starts with the abandon history replayed.
    pub fn campaign_fresh(&self, id: CampaignId) -> bool {
        self.engine.abandon_windows(id).is_none()
    }

    /// A campaign read at a resync: started in the engine (with its history) or updated there.
    pub fn campaign_loaded(&mut self, now: DateTime<Utc>, load: CampaignLoad) -> Result<(), campana_engine::EngineError> {
        let id = load.cfg.id;
        let fresh = self.campaign_fresh(id);
        let input = if self.campaigns.contains_key(&id) || !fresh {
            Input::CampaignUpdated(Box::new(load.cfg.clone()))
        } else {
            Input::CampaignStarted(Box::new(load.cfg.clone()))
        };
        self.engine.handle_input(now, input)?;
        if fresh {
            for h in &load.history {
                let _ = self.engine.handle_input(
                    now,
                    Input::AbandonHistory {
                        campaign_id: id,
                        at: h.at,
                        live_answers: h.live_answers,
                        abandons: h.abandons,
                        machine_verdicts: h.machine_verdicts,
                    },
                );
            }
        }
        self.campaigns.insert(id, Running { lists: load.lists, cfg: load.cfg, updated_at: load.updated_at });
        Ok(())
    }

    fn note_persist(&mut self, p: &PersistCommand) {
        match p {
            PersistCommand::AttemptStarted { call_id, campaign_id, record_id, .. } => {
                self.live.insert(*call_id, LiveCall { campaign_id: *campaign_id, record_id: *record_id, agent: None });
            }
            PersistCommand::CallResult { call_id, .. } => {
                self.live.remove(call_id);
            }
            _ => {}
        }
    }

    fn notice(&mut self, now: DateTime<Utc>, n: AgentNotice) {
        let agent = match &n {
            AgentNotice::PreviewOffer { agent, .. }
            | AgentNotice::PreviewWithdrawn { agent, .. }
            | AgentNotice::AgentAlert { agent, .. }
            | AgentNotice::CallConnected { agent, .. }
            | AgentNotice::WrapUp { agent, .. }
            | AgentNotice::WrapUpEnded { agent, .. }
            | AgentNotice::PhoneFailed { agent, .. }
            | AgentNotice::DialEnded { agent, .. } => *agent,
        };
        let st = |state: &str, campaign: Option<CampaignId>, record: Option<RecordId>, call: Option<CallId>, until| AgentMirror {
            state: state.into(),
            pause_code: None,
            campaign_id: campaign,
            record_id: record,
            call_id: call,
            since: now,
            until,
            simulated: false,
        };
        let live = match &n {
            AgentNotice::PreviewOffer { campaign_id, record_id, expires_at, .. } => {
                st("preview", Some(*campaign_id), Some(*record_id), None, Some(*expires_at))
            }
            AgentNotice::PreviewWithdrawn { .. } => st("ready", None, None, None, None),
            AgentNotice::AgentAlert { campaign_id, call_id, record_id, .. } => {
                st("alerting", Some(*campaign_id), Some(*record_id), Some(*call_id), None)
            }
            AgentNotice::CallConnected { campaign_id, call_id, record_id, .. } => {
                st("on_call", Some(*campaign_id), Some(*record_id), Some(*call_id), None)
            }
            AgentNotice::WrapUp { call_id, until, .. } => {
                let prev = self.agents.get(&agent);
                AgentMirror {
                    state: "wrap_up".into(),
                    until: Some(*until),
                    call_id: Some(*call_id),
                    ..prev.cloned().unwrap_or_else(|| st("wrap_up", None, None, None, None))
                }
            }
            // The agent's phone failed on a call: not ready, with the reason as pause code.
            AgentNotice::PhoneFailed { next: AfterWrapUp::NotReady, .. } => {
                AgentMirror { pause_code: Some(campana_engine::PHONE_FAILED_PAUSE_CODE.into()), ..st("not_ready", None, None, None, None) }
            }
            AgentNotice::WrapUpEnded { next, .. } | AgentNotice::DialEnded { next, .. } | AgentNotice::PhoneFailed { next, .. } => {
                match next {
                    AfterWrapUp::Ready => st("ready", None, None, None, None),
                    // The pause code asked during the call was kept on the live state.
                    AfterWrapUp::NotReady => AgentMirror {
                        pause_code: self.agents.get(&agent).and_then(|a| a.pause_code.clone()),
                        ..st("not_ready", None, None, None, None)
                    },
                    AfterWrapUp::LoggedOut => {
                        self.agents.remove(&agent);
                        if self.human.remove(&agent) {
                            self.push(Op::AgentChanged { agent, state: None, notice: Some(n) });
                        }
                        return;
                    }
                }
            }
        };
        let simulated = !self.human.contains(&agent);
        let live = AgentMirror { simulated, ..live };
        self.agents.insert(agent, live.clone());
        if simulated {
            self.push(Op::SimAgentNotice(n));
        } else {
            // The screen refetches the state on the notice: the snapshot has it first.
            self.push(Op::AgentChanged { agent, state: Some(live), notice: Some(n) });
        }
    }

    fn publish_agent(&mut self, agent: UserId) {
        let state = self.agents.get(&agent).cloned();
        self.push(Op::AgentChanged { agent, state, notice: None });
    }

    fn track_agent_input(&mut self, now: DateTime<Utc>, i: &Input) {
        let Some(agent) = agent_of(i) else { return };
        let simulated = !self.human.contains(&agent);
        let ready = |pause: Option<String>, state: &str| AgentMirror {
            state: state.into(),
            pause_code: pause,
            campaign_id: None,
            record_id: None,
            call_id: None,
            since: now,
            until: None,
            simulated,
        };
        // During a call the engine applies not-ready and logout when wrap-up ends
        // (`AgentNotice::WrapUpEnded` says which); a disposition's return to ready comes the same way.
        let busy = self.agents.get(&agent).is_some_and(|a| matches!(a.state.as_str(), "dialing" | "alerting" | "on_call" | "wrap_up"));
        match i {
            Input::AgentLogin { .. } if !busy => {
                self.agents.insert(agent, ready(None, "not_ready"));
            }
            Input::AgentReady { .. } | Input::PreviewSkip { .. } if !busy => {
                self.agents.insert(agent, ready(None, "ready"));
            }
            Input::AgentReady { .. } => {
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.pause_code = None;
                }
            }
            Input::AgentNotReady { pause_code, .. } if !busy => {
                self.agents.insert(agent, ready(Some(pause_code.clone()), "not_ready"));
            }
            Input::AgentNotReady { pause_code, .. } => {
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.pause_code = Some(pause_code.clone());
                }
            }
            Input::AgentLogout { .. } if !busy => {
                self.agents.remove(&agent);
                self.human.remove(&agent);
            }
            // The previewed record is being dialed for the agent (its screen keeps the record).
            Input::PreviewAccept { .. } => {
                if let Some(a) = self.agents.get_mut(&agent) {
                    a.state = "dialing".into();
                    a.until = None;
                    a.since = now;
                }
            }
            _ => {}
        }
        if !simulated {
            self.publish_agent(agent);
        }
    }
}

/// The agent an input is about.
pub fn agent_of(i: &Input) -> Option<UserId> {
    match i {
        Input::AgentLogin { agent, .. }
        | Input::AgentReady { agent }
        | Input::AgentNotReady { agent, .. }
        | Input::AgentLogout { agent }
        | Input::Disposition { agent, .. }
        | Input::PreviewAccept { agent, .. }
        | Input::PreviewSkip { agent, .. } => Some(*agent),
        _ => None,
    }
}

/// DNC hits in one order (list, then expiry), to compare two sets of them.
pub fn normalize_hits(h: &mut Vec<DncHit>) -> Vec<DncHit> {
    h.sort_by_key(|x| (x.list_id.map(|l| l.0), x.expires_at));
    std::mem::take(h)
}

/// The result a call a previous run left open is closed with: "abandoned" when the engine had
/// abandoned it (its abandon was written; the record keeps the abandon block), else "system error".
pub fn open_call_result(abandoned: bool) -> CallResult {
    if abandoned {
        CallResult::Abandoned
    } else {
        CallResult::SystemError
    }
}

/// What closing a call a previous run left open writes: the result [`open_call_result`] and that
/// result's treatment of the record (`cand` as the store holds it now), at `now`. The zone that
/// decides the attempts' local day is the contact's first, or the campaign's.
pub fn close_open_call(
    campaign_id: CampaignId,
    cand: &Candidate,
    settings: &Settings,
    campaign_zone: Tz,
    dialed_at: DateTime<Utc>,
    abandoned: bool,
    now: DateTime<Utc>,
) -> RecordUpdate {
    let zone = contact_zones(cand).and_then(|z| z.zones.first().copied()).unwrap_or(campaign_zone);
    let (update, _) = after_call(&FinishedCall {
        campaign_id,
        cand,
        settings,
        zone,
        result: open_call_result(abandoned),
        callback: None,
        agent: None,
        dialed_at,
        now,
    });
    update
}
