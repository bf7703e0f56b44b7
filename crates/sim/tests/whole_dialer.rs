//! The whole dialer, simulated and killed (VOPR-style): the live server's [`DriverCore`] and
//! engine run against an in-memory store that implements the store operations the core hands
//! out, with the simulator's telephony and agents. At random operations the dialer is killed:
//! the core, the engine, the telephony's calls and the agents' sessions are dropped, only what
//! the store had committed stays; it restarts as the live server does (open calls closed as
//! "system error", call ids after the highest, abandon accounting replayed from the attempts)
//! and goes on.
//!
//! Checked over every run, from the store's rows and the telephony's view (never from the
//! engine's own memory):
//! - no lost attempt: a dial reaches the telephony only after its attempt row is committed; at
//!   the end every attempt row is closed, and every record's `attempts_total` equals its rows;
//! - no early re-dial: never two calls to one record at once, never before the record's recall
//!   delay after its last dial, its `retry_at`, or the abandon block after an abandoned call;
//! - an ended chain (a result that ends the customer's chain) is never dialed again;
//! - DNC numbers (listed, or added by an agent's "do not call") are never dialed;
//! - the abandon count is counted once: a call is marked abandoned at most once, and after
//!   every restart the engine's 24-hour window holds exactly the store's abandons.
//!
//! `cargo test -p campana-sim --test whole_dialer` runs [`CI_SEEDS`] seeds;
//! `CAMPANA_VOPR_SEEDS=5000` runs more, `CAMPANA_VOPR_SEED=123` one (docs/simulation.md).

use campana_core::record::{CallResult, Record, RecordStatus, RecordType};
use campana_core::telephony::{CallId, TelephonyCommand, TelephonyEvent};
use campana_core::{AgentGroupId, CampaignId, ChainId, ContactListId, DncListId, PhoneNumber, RecordId};
use campana_dialer::{close_open_call, open_call_result, CampaignLoad, DriverCore, HistoryMinute, Op, RecordQuery};
use campana_engine::dnc::{DncLists, DncListsBuilder};
use campana_engine::{CampaignConfig, Candidate, ChainStep, DncHit, Engine, EngineConfig, PersistCommand, RecordUpdate, SharedDnc};
use campana_sim::{AgentModel, Population, Scenario, SimAgents, SimTelephony};
use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Seeds of the default `cargo test` run.
const CI_SEEDS: u64 = 200;
/// Hours of dialing per seed.
const HOURS: f64 = 2.0;
/// A store operation kills the dialer with this probability (a few kills per run).
const KILL_P: f64 = 0.004;
/// Violations kept per run (the first ones say what went wrong).
const MAX_VIOLATIONS: usize = 20;
const CAMPAIGN: CampaignId = CampaignId(1);
const LIST: ContactListId = ContactListId(1);
const INTERNAL_DNC: DncListId = DncListId(1);

/// `records.available_at` of a record given back "never".
fn never() -> DateTime<Utc> {
    DateTime::<Utc>::MAX_UTC
}

struct Row {
    record: RecordId,
    started_at: DateTime<Utc>,
    ended_at: Option<DateTime<Utc>>,
    result: Option<CallResult>,
    live_answer: bool,
    abandoned: bool,
}

struct StoredRecord {
    cand: Candidate,
    available_at: Option<DateTime<Utc>>,
    ends_chain: bool,
    invalid: bool,
}

/// The store: what a committed transaction wrote, and nothing else.
#[derive(Default)]
struct MemStore {
    records: Vec<StoredRecord>,
    attempts: BTreeMap<u64, Row>,
    dnc: HashSet<PhoneNumber>,
    violations: Vec<String>,
}

impl MemStore {
    fn violation(&mut self, v: String) {
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(v);
        }
    }

    fn rec(&self, id: RecordId) -> &StoredRecord {
        &self.records[(id.0 - 1) as usize]
    }

    fn chain_of(&self, id: RecordId) -> ChainId {
        self.rec(id).cand.record.chain_id
    }

    fn chain(&self, chain: ChainId) -> impl Iterator<Item = &StoredRecord> {
        self.records.iter().filter(move |r| r.cand.record.chain_id == chain)
    }

    fn open(r: &StoredRecord) -> bool {
        let rec = &r.cand.record;
        !matches!(rec.record_status, RecordStatus::Completed | RecordStatus::Cancelled)
            && !matches!(rec.record_type, RecordType::NoCall | RecordType::Unknown)
    }

    /// `Store::dialable_records`: due callbacks first, then id; only the first open number of
    /// a chain; never a number of an ended chain.
    fn dialable(&self, q: &RecordQuery, now: DateTime<Utc>) -> Vec<Candidate> {
        let mut out: Vec<&StoredRecord> = self
            .records
            .iter()
            .filter(|r| {
                let rec = &r.cand.record;
                Self::open(r)
                    && q.lists.contains(&rec.list_id)
                    && !q.exclude.contains(&rec.id)
                    && r.available_at.is_none_or(|t| t <= now)
                    && r.cand.retry_at.is_none_or(|t| t <= now)
                    && !self
                        .chain(rec.chain_id)
                        .any(|p| p.cand.record.chain_position < rec.chain_position && Self::open(p) && p.available_at != Some(never()))
                    && !self.chain(rec.chain_id).any(|e| e.ends_chain && e.cand.record.id != rec.id)
            })
            .collect();
        out.sort_by_key(|r| {
            let cb = r.cand.record.callback_at.filter(|t| *t <= now);
            (cb.is_none(), cb, r.cand.record.id)
        });
        out.into_iter()
            .take(q.limit)
            .map(|r| {
                let mut c = r.cand.clone();
                c.chain_attempts = self.chain(c.record.chain_id).map(|x| x.cand.record.attempts_total as u32).sum();
                c
            })
            .collect()
    }

    fn write_record_update(&mut self, u: &RecordUpdate) {
        let r = &mut self.records[(u.record_id.0 - 1) as usize];
        let rec = &mut r.cand.record;
        rec.record_type = u.record_type;
        rec.record_status = u.record_status;
        rec.attempts_total = u.attempts_total;
        rec.attempts_today = u.attempts_today;
        rec.attempts_day = u.attempts_day;
        rec.last_result = Some(u.last_result);
        rec.last_call_at = Some(u.last_call_at);
        rec.callback_at = u.callback_at;
        r.cand.retry_at = u.retry_at;
        r.cand.callback_agent = u.callback_agent;
        r.cand.result_streak = u.result_streak;
        r.available_at = None;
        r.ends_chain = u.chain == ChainStep::End;
        if u.chain == ChainStep::NextNumber {
            let (chain, pos) = (r.cand.record.chain_id, r.cand.record.chain_position);
            if let Some(n) = self
                .records
                .iter_mut()
                .filter(|n| {
                    n.cand.record.chain_id == chain
                        && n.cand.record.chain_position > pos
                        && !matches!(n.cand.record.record_status, RecordStatus::Completed | RecordStatus::Cancelled)
                })
                .min_by_key(|n| n.cand.record.chain_position)
            {
                n.cand.record.record_status = RecordStatus::ChainReady;
            }
        }
    }

    /// `Store::persist_dialer`: one transaction.
    fn persist(&mut self, batch: &[PersistCommand]) {
        for c in batch {
            match c {
                PersistCommand::AttemptStarted { call_id, record_id, at, .. } => {
                    let row =
                        Row { record: *record_id, started_at: *at, ended_at: None, result: None, live_answer: false, abandoned: false };
                    if self.attempts.insert(call_id.0, row).is_some() {
                        self.violation(format!("{at}: call id {call_id} used twice"));
                    }
                }
                PersistCommand::CallResult { call_id, result, ended_at, live_answer, .. } => match self.attempts.get_mut(&call_id.0) {
                    Some(row) if row.ended_at.is_none() => {
                        row.ended_at = Some(*ended_at);
                        row.result = Some(*result);
                        row.live_answer = *live_answer;
                    }
                    _ => self.violation(format!("{ended_at}: result of {call_id}, which has no open attempt row")),
                },
                PersistCommand::AbandonRecorded { call_id, at, .. } => match self.attempts.get_mut(&call_id.0) {
                    Some(row) if !row.abandoned => row.abandoned = true,
                    Some(_) => self.violation(format!("{at}: abandon of {call_id} recorded twice")),
                    None => self.violation(format!("{at}: abandon of {call_id}, which has no attempt row")),
                },
                PersistCommand::RecordUpdate(u) => self.write_record_update(u),
                PersistCommand::RecordDeferred { record_id, reason, .. } => {
                    self.records[(record_id.0 - 1) as usize].available_at = Some(reason.next_dialable_at.unwrap_or_else(never));
                }
                PersistCommand::DncAdd { number, .. } => {
                    self.dnc.insert(number.clone());
                }
            }
        }
    }

    fn dnc_lists(&self) -> DncLists {
        let mut b = DncListsBuilder::default();
        b.list(INTERNAL_DNC, true);
        for p in &self.dnc {
            b.add(INTERNAL_DNC, p.as_u64(), None);
        }
        b.build()
    }

    fn dnc_entries(&self, phones: &[PhoneNumber]) -> Vec<(PhoneNumber, Vec<DncHit>)> {
        phones
            .iter()
            .map(|p| (p.clone(), if self.dnc.contains(p) { vec![DncHit { list_id: None, expires_at: None }] } else { vec![] }))
            .collect()
    }

    /// `Store::abandon_history`: per minute of the dial.
    fn abandon_history(&self) -> Vec<HistoryMinute> {
        let mut by: BTreeMap<i64, HistoryMinute> = BTreeMap::new();
        for row in self.attempts.values() {
            let machine = row.result == Some(CallResult::AnsweringMachine) && !row.live_answer;
            if !(row.live_answer || row.abandoned || machine) {
                continue;
            }
            let minute = row.started_at.timestamp_millis().div_euclid(60_000);
            let at = DateTime::from_timestamp_millis(minute * 60_000).expect("in range");
            let h = by.entry(minute).or_insert(HistoryMinute { at, live_answers: 0, abandons: 0, machine_verdicts: 0 });
            h.live_answers += u32::from(row.live_answer);
            h.abandons += u32::from(row.abandoned);
            h.machine_verdicts += u32::from(machine);
        }
        by.into_values().collect()
    }

    fn abandons(&self) -> usize {
        self.attempts.values().filter(|r| r.abandoned).count()
    }
}

/// One run of the dialer process: everything a kill loses.
struct Node {
    core: DriverCore,
    tel: SimTelephony,
    agents: SimAgents,
    /// Calls the telephony has placed and not yet ended, by record.
    calls: HashMap<CallId, RecordId>,
}

struct World {
    seed: u64,
    rng: ChaCha8Rng,
    cfg: CampaignConfig,
    /// Power mode runs without the abandon guard: abandons to count (the promise under test is
    /// that they are counted once, whatever their number).
    engine_cfg: EngineConfig,
    pop: Population,
    agents: AgentModel,
    end: DateTime<Utc>,
    store: MemStore,
    /// Chains ended, by the store's committed record updates, and when.
    ended: HashMap<ChainId, DateTime<Utc>>,
    /// When each record was last dialed, and its last abandoned call's dial.
    last_dial: HashMap<RecordId, DateTime<Utc>>,
    /// Predictive pacing (the list-running-out promise is about it).
    predictive: bool,
    /// The store's last answer to a refill was short: the list is running out.
    exhausted: bool,
    /// Calls dialed while the list was running out.
    dialed_exhausted: HashSet<u64>,
    kills: u32,
    dials: u64,
    recovered: usize,
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mode = ["predictive", "progressive", "power"][rng.gen_range(0..3)];
        let sc: Scenario = Scenario::parse(&format!(
            "start = \"2026-03-03T17:00:00Z\"\nhours = {HOURS}\nmode = \"{mode}\"\nlines_per_agent = 3.0\n[agents]\ncount = {}\ntalk_mean_s = 60\nwrap_mean_s = 5\ncallback_share = 0.1\ndnc_share = 0.1\n[population]\nrecords = 1\nanswer_prob = 0.5\nmachine_share = 0.1\nbusy_share = 0.1\npatience_s = 3\n",
            rng.gen_range(2..6),
        ))
        .expect("scenario");
        let mut cfg = campana_sim::campaign_config(&sc).expect("campaign");
        cfg.settings.min_recall_delay_s = 300;
        cfg.settings.max_attempts_per_day = 10;
        let start = sc.start;
        let mut store = MemStore::default();
        let customers = rng.gen_range(40..120);
        let area = ["212", "312", "213", "214"];
        for c in 0..customers {
            let numbers = rng.gen_range(1..=3);
            for pos in 1..=numbers {
                let id = RecordId(store.records.len() as i64 + 1);
                let phone = PhoneNumber::from_e164_unchecked_store(format!(
                    "+1{}{:03}{:04}",
                    area[rng.gen_range(0..area.len())],
                    200 + c % 700,
                    id.0
                ));
                if rng.gen::<f64>() < 0.03 {
                    store.dnc.insert(phone.clone());
                }
                let record = Record { chain_id: ChainId(i64::from(c) + 1), chain_position: pos, ..Record::fresh(id, LIST, phone, start) };
                store.records.push(StoredRecord {
                    cand: Candidate::new(record),
                    available_at: None,
                    ends_chain: false,
                    invalid: rng.gen::<f64>() < 0.03,
                });
            }
        }
        World {
            seed,
            rng,
            engine_cfg: EngineConfig { guard_power: mode != "power", ..EngineConfig::default() },
            cfg,
            pop: sc.population.clone(),
            agents: sc.agents.clone(),
            end: start + Duration::minutes((HOURS * 60.0) as i64),
            store,
            ended: HashMap::new(),
            predictive: mode == "predictive",
            exhausted: false,
            dialed_exhausted: HashSet::new(),
            last_dial: HashMap::new(),
            kills: 0,
            dials: 0,
            recovered: 0,
        }
    }

    fn violation(&mut self, v: String) {
        self.store.violation(v);
    }

    /// The process starts: calls left open are closed, then the dialer starts with fresh lists.
    fn boot(&mut self, now: DateTime<Utc>) -> Node {
        self.recover(now);
        let first_call_id = self.store.attempts.keys().next_back().copied().unwrap_or(0) + 1;
        let lists = Arc::new(self.store.dnc_lists());
        self.exhausted = false;
        let engine = Engine::new(self.engine_cfg.clone(), Box::new(SharedDnc(lists.clone())), first_call_id, now);
        let epoch = u64::from(self.kills);
        let hours = (self.end - now).num_seconds() as f64 / 3600.0;
        Node {
            core: DriverCore::new(engine, lists, now),
            tel: SimTelephony::new(self.seed ^ (epoch << 32), self.pop.clone(), 60.0, 0.6, now),
            agents: SimAgents::new(self.seed ^ (epoch << 40), self.agents.clone(), Some(AgentGroupId(1)), now, hours.max(0.0)),
            calls: HashMap::new(),
        }
    }

    /// `recover_open_calls`.
    fn recover(&mut self, now: DateTime<Utc>) {
        let open: Vec<(u64, RecordId, DateTime<Utc>, bool)> = self
            .store
            .attempts
            .iter()
            .filter(|(_, r)| r.ended_at.is_none())
            .map(|(id, r)| (*id, r.record, r.started_at, r.abandoned))
            .collect();
        for (call_id, record, started_at, abandoned) in open {
            let cand = self.store.rec(record).cand.clone();
            let update = close_open_call(CAMPAIGN, &cand, &self.cfg.settings, self.cfg.time_zone, started_at, abandoned, now);
            let row = self.store.attempts.get_mut(&call_id).expect("open row");
            row.ended_at = Some(now);
            row.result = Some(open_call_result(abandoned));
            self.store.write_record_update(&update);
            self.note_update(&update, now);
            self.recovered += 1;
        }
    }

    fn note_update(&mut self, u: &RecordUpdate, now: DateTime<Utc>) {
        if u.chain == ChainStep::End {
            let chain = self.store.chain_of(u.record_id);
            self.ended.entry(chain).or_insert(now);
        }
    }

    /// What the live server's resync does, against the in-memory store.
    fn resync(&mut self, node: &mut Node, now: DateTime<Utc>) {
        node.core.dnc_stale(now, Vec::new(), Vec::new());
        node.core.campaigns_gone(now, &HashSet::from([CAMPAIGN]));
        let updated_at = self.cfg.settings_updated_at();
        if !node.core.campaign_current(CAMPAIGN, updated_at) {
            for r in &mut self.store.records {
                r.available_at = None;
            }
            let fresh = node.core.campaign_fresh(CAMPAIGN);
            let history = if fresh { self.store.abandon_history() } else { Vec::new() };
            node.core
                .campaign_loaded(now, CampaignLoad { cfg: self.cfg.clone(), lists: vec![LIST], updated_at, history })
                .expect("campaign starts");
            if fresh {
                // Counted once: the engine's window holds the store's abandons, no more, no less.
                let held = node.core.engine().abandon_windows(CAMPAIGN).map_or(0.0, |(d, _)| d.abandons);
                let stored = self.store.abandons();
                if held.round() as usize != stored {
                    self.violation(format!("{now}: after a restart the engine counts {held} abandons, the store {stored}"));
                }
            }
        }
        node.core.drain(now);
    }

    /// A dial reaches the telephony: every promise is checked against the store.
    fn check_dial(&mut self, node: &Node, now: DateTime<Utc>, call_id: CallId, record: RecordId, to: &PhoneNumber) {
        self.dials += 1;
        let mut bad = Vec::new();
        match self.store.attempts.get(&call_id.0) {
            Some(row) if row.ended_at.is_none() && row.record == record => {}
            _ => bad.push(format!("{now}: {call_id} to record {record} dialed without its open attempt row on disk")),
        }
        if node.calls.values().any(|r| *r == record) {
            bad.push(format!("{now}: record {record} dialed while a call to it is live"));
        }
        if let Some((id, _)) =
            self.store.attempts.iter().find(|(id, row)| **id != call_id.0 && row.record == record && row.ended_at.is_none())
        {
            bad.push(format!("{now}: record {record} dialed while its attempt {id} is open"));
        }
        let recall = Duration::seconds(i64::from(self.cfg.settings.min_recall_delay_s));
        if let Some(last) = self.last_dial.get(&record).filter(|l| now < **l + recall) {
            bad.push(format!("{now}: record {record} dialed {} s after its last dial", (now - *last).num_seconds()));
        }
        let block = Duration::seconds(i64::from(self.cfg.settings.abandon_recall_block_s));
        for row in self.store.attempts.values().filter(|r| r.record == record && r.abandoned) {
            if now < row.started_at + block {
                bad.push(format!(
                    "{now}: record {record} dialed within the abandon block of its call of {} (closed {:?} as {:?})",
                    row.started_at, row.ended_at, row.result
                ));
            }
        }
        let r = self.store.rec(record);
        if let Some(t) = r.cand.retry_at.filter(|t| now < *t) {
            bad.push(format!("{now}: record {record} dialed before its retry time {t}"));
        }
        let chain = r.cand.record.chain_id;
        if let Some(t) = self.ended.get(&chain) {
            bad.push(format!("{now}: record {record} of chain {chain} dialed, the chain ended at {t}"));
        }
        if self.store.dnc.contains(to) {
            bad.push(format!("{now}: DNC number {to} dialed"));
        }
        for v in bad {
            self.violation(v);
        }
        self.last_dial.insert(record, now);
    }

    /// Executes the core's operations in order. Returns `false` when the dialer was killed.
    fn run_ops(&mut self, node: &mut Node, now: DateTime<Utc>) -> bool {
        while let Some(op) = node.core.poll_op() {
            if self.rng.gen::<f64>() < KILL_P {
                return false;
            }
            match op {
                Op::Persist(batch) => {
                    self.store.persist(&batch);
                    for p in &batch {
                        match p {
                            PersistCommand::RecordUpdate(u) => self.note_update(u, now),
                            PersistCommand::AbandonRecorded { call_id, .. } if self.dialed_exhausted.contains(&call_id.0) => {
                                self.violation(format!("{now}: {call_id}, dialed while the list was running out, abandoned"))
                            }
                            _ => {}
                        }
                    }
                }
                Op::FetchRecords(q) => {
                    let records = self.store.dialable(&q, now);
                    self.exhausted = records.len() < q.limit;
                    let phones: Vec<PhoneNumber> = records.iter().map(|c| c.record.phone.clone()).collect();
                    let entries = self.store.dnc_entries(&phones);
                    node.core.records_fetched(now, q.campaign_id, records, entries);
                }
                Op::LoadDnc { as_of_seq } => {
                    let lists = Arc::new(self.store.dnc_lists());
                    node.core.dnc_loaded(now, Some((lists, as_of_seq)));
                }
                Op::Telephony(cmd) => {
                    let mut invalid = false;
                    if let TelephonyCommand::Dial { call_id, record_id, to, .. } = &cmd {
                        self.check_dial(node, now, *call_id, *record_id, to);
                        node.calls.insert(*call_id, *record_id);
                        if self.exhausted && self.predictive {
                            self.dialed_exhausted.insert(call_id.0);
                        }
                        invalid = self.store.rec(*record_id).invalid;
                    }
                    if let Err(e) = node.tel.handle_command(now, &cmd, invalid) {
                        self.violation(format!("{now}: telephony refused {cmd:?}: {e}"));
                    }
                }
                Op::SimAgentNotice(n) => node.agents.on_notice(now, &n),
                Op::AgentChanged { .. } => self.violation(format!("{now}: a human agent's notice in a run without people")),
            }
        }
        true
    }

    /// One step of the shell at the earliest due moment; `None` at the end of the run.
    fn step(&mut self, node: &mut Node, now: &mut DateTime<Utc>) -> Option<bool> {
        let t = [Some(node.core.next_deadline()), node.tel.next_event_at(), node.agents.next_action_at()].into_iter().flatten().min()?;
        if t > self.end {
            return None;
        }
        *now = (*now).max(t);
        let now = *now;
        if node.core.resync_due(now) {
            self.resync(node, now);
        } else if node.tel.next_event_at().is_some_and(|x| x <= now) {
            let (_, ev) = node.tel.poll_event(now)?;
            if let TelephonyEvent::Ended { call_id, .. } = &ev {
                node.calls.remove(call_id);
            }
            let _ = node.core.input(now, campana_engine::Input::Telephony(ev));
        } else if node.agents.next_action_at().is_some_and(|x| x <= now) {
            let (_, a) = node.agents.poll_action(now)?;
            let _ = node.core.input(now, a);
        } else {
            let _ = node.core.tick(now);
        }
        Some(self.run_ops(node, now))
    }

    fn run(mut self) -> (Vec<String>, String) {
        let mut now = self.cfg_start();
        let mut node = self.boot(now);
        let mut steps = 0u64;
        loop {
            steps += 1;
            assert!(steps < 5_000_000, "seed {}: too many steps", self.seed);
            match self.step(&mut node, &mut now) {
                None => break,
                Some(true) => {}
                Some(false) => {
                    // Killed: nothing but the store survives. The restart takes a moment.
                    self.kills += 1;
                    now += Duration::seconds(self.rng.gen_range(1..60));
                    node = self.boot(now);
                }
            }
        }
        // The end of the day is a kill too: every call still open is closed by the recovery.
        drop(node);
        self.recover(now);
        if let Some((id, _)) = self.store.attempts.iter().find(|(_, r)| r.ended_at.is_none()) {
            self.violation(format!("attempt {id} still open after the recovery"));
        }
        let mut rows: HashMap<RecordId, i32> = HashMap::new();
        for r in self.store.attempts.values() {
            *rows.entry(r.record).or_default() += 1;
        }
        for i in 0..self.store.records.len() {
            let r = &self.store.records[i].cand.record;
            let (id, total) = (r.id, r.attempts_total);
            let n = rows.get(&id).copied().unwrap_or(0);
            if total != n {
                self.violation(format!("record {id}: attempts_total {total}, attempt rows {n} (a lost or twice-counted attempt)"));
            }
        }
        let summary = format!(
            "seed {}: {} dials, {} kills, {} calls recovered, {} abandons, {} chains ended",
            self.seed,
            self.dials,
            self.kills,
            self.recovered,
            self.store.abandons(),
            self.ended.len()
        );
        (self.store.violations, summary)
    }

    fn cfg_start(&self) -> DateTime<Utc> {
        self.end - Duration::minutes((HOURS * 60.0) as i64)
    }
}

trait UpdatedAt {
    fn settings_updated_at(&self) -> DateTime<Utc>;
}
impl UpdatedAt for CampaignConfig {
    /// The campaign is never edited in these runs: one version.
    fn settings_updated_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("valid")
    }
}

fn seeds() -> Vec<u64> {
    if let Some(s) = std::env::var("CAMPANA_VOPR_SEED").ok().and_then(|v| v.parse().ok()) {
        return vec![s];
    }
    let n = std::env::var("CAMPANA_VOPR_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(CI_SEEDS);
    (1..=n).collect()
}

#[test]
fn whole_dialer_killed_at_random_steps_loses_no_attempt_and_redials_nothing_early() {
    let verbose = std::env::var_os("CAMPANA_VOPR_VERBOSE").is_some();
    let (mut dials, mut kills, mut failed) = (0u64, 0u32, Vec::new());
    for seed in seeds() {
        let w = World::new(seed);
        let (violations, summary) = w.run();
        if verbose {
            eprintln!("{summary}");
        }
        let n: Vec<u64> = summary.split(' ').filter_map(|w| w.parse().ok()).collect();
        dials += n.first().copied().unwrap_or(0);
        kills += n.get(1).copied().unwrap_or(0) as u32;
        if !violations.is_empty() {
            failed.push(format!("{summary}\n  {}", violations.join("\n  ")));
        }
    }
    eprintln!("whole dialer: {dials} dials, {kills} kills");
    assert!(failed.is_empty(), "{} seeds broke a promise:\n{}", failed.len(), failed.join("\n"));
    assert!(kills > 0 && dials > 0, "the runs dial and get killed");
}
