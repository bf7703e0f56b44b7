//! Campana's seeded discrete-event simulator. It drives the very same [`campana_engine::Engine`]
//! the live server runs, with [`SimTelephony`] and [`SimAgents`] (both reusable by the server's
//! demo on the wall clock). Same scenario and seed give a bit-identical [`Summary`].

pub mod agents;
pub mod forecast;
pub mod model;
pub mod telephony;
pub mod zone_oracle;

pub use agents::{AgentTotals, SimAgents};
pub use forecast::{forecast, forecast_until, Forecast, ForecastInput};
pub use model::{AgentModel, Population, Scenario, ScenarioError, Shift};
pub use telephony::SimTelephony;

use campana_core::record::{Record, RecordStatus, RecordType};
use campana_core::settings::{DialingMode, Settings};
use campana_core::telephony::{TelephonyCommand, TelephonyEvent};
use campana_core::time::{DailyHours, LocalTime, Weekdays};
use campana_core::{AgentGroupId, CampaignId, ContactListId, PhoneNumber, RecordId};
use campana_engine::abandon::{AbandonLedger, WINDOW_24H_S, WINDOW_30D_S};
use campana_engine::fxhash::{FxHashMap as HashMap, FxHashSet as HashSet};
use campana_engine::{
    AgentNotice, CampaignConfig, Candidate, Engine, EngineConfig, InMemoryDnc, Input, Output, PersistCommand, ReasonCode,
};
use chrono::{DateTime, Duration, Timelike, Utc};
use chrono_tz::Tz;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// The simulator's answer (printed as JSON by `campana simulate`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub seed: u64,
    pub mode: String,
    pub records: u64,
    pub dials: u64,
    pub live_answers: u64,
    pub live_connects: u64,
    pub machine_answers: u64,
    pub abandons: u64,
    /// abandons / live answers over the whole day.
    pub abandon_rate_day: f64,
    /// Worst rolling-24 h window, measured at every minute with an abandon.
    pub abandon_rate_worst_24h: f64,
    /// Worst rolling-30 d window, measured at every minute with an abandon.
    pub abandon_rate_worst_30d: f64,
    /// Windows measured over the cap.
    pub windows_over_cap: u64,
    /// The rolling 24 h and 30 d windows ending at every hour of the day (and at its end).
    pub abandon_windows: Vec<AbandonWindow>,
    /// (talk + wrap) / logged-in.
    pub occupancy: f64,
    pub agent_logged_in_s: f64,
    pub agent_talk_s: f64,
    pub agent_wrap_s: f64,
    pub agent_idle_s: f64,
    /// Agent idle seconds per connected call.
    pub avg_agent_wait_s: f64,
    /// Seconds from a live answer to the agent connection (connected calls).
    pub avg_customer_wait_s: f64,
    pub records_completed: u64,
    pub records_dialed: u64,
    /// Records never dialed today, by reason code (`not_reached` = dialable but no capacity left).
    pub not_dialed_by_reason: BTreeMap<String, u64>,
    /// Broken invariants (empty in a correct run): dials outside the window, to DNC numbers,
    /// over attempt limits, two calls to one number, engine errors.
    pub violations: Vec<String>,
    pub engine_errors: u64,
}

/// The abandon rate of the two regulators' windows ending at one moment of the simulated day.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AbandonWindow {
    pub end: DateTime<Utc>,
    pub live_answers_24h: f64,
    pub abandons_24h: f64,
    pub rate_24h: f64,
    pub rate_30d: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("simulation failed: {0}")]
    Failed(String),
    /// The caller's stop flag was raised (e.g. the simulation ran over its time budget).
    #[error("the simulation was stopped before it finished")]
    Stopped,
}

struct StoreRec {
    cand: Candidate,
    in_engine: bool,
    not_before: Option<DateTime<Utc>>,
    never: bool,
    completed: bool,
    dials: u32,
    day_dials: HashMap<chrono::NaiveDate, u32>,
    last_reason: Option<ReasonCode>,
    invalid: bool,
    /// The contact's zones by the simulator's own oracle ([`zone_oracle`]); the engine resolves
    /// them with its own code.
    zones: Vec<Tz>,
    zone: Tz,
    /// The simulator's own memory for the independent checks: when the record was last dialed,
    /// when its last abandoned call was dialed, and its pending callback (time, personal owner).
    last_dial_at: Option<DateTime<Utc>>,
    abandoned_dial_at: Option<DateTime<Utc>>,
    callback: Option<(DateTime<Utc>, Option<campana_core::UserId>)>,
}

/// What the simulator remembers of a live call: the number, the record, when it was dialed and
/// the record's pending callback at the dial.
type LiveCall = (PhoneNumber, RecordId, DateTime<Utc>, Option<(DateTime<Utc>, Option<campana_core::UserId>)>);

const ZIPS: [&str; 5] = ["10001", "60601", "75201", "85004", "90012"];

fn make_record(i: u32, area: &str, zip: Option<&str>, now: DateTime<Utc>) -> Record {
    let exchange = 200 + (i / 10_000) % 700;
    let line = i % 10_000;
    let phone = PhoneNumber::from_e164_unchecked_store(format!("+1{area}{exchange:03}{line:04}"));
    Record { postal_code: zip.map(str::to_string), ..Record::fresh(RecordId(i64::from(i) + 1), ContactListId(1), phone, now) }
}

/// The campaign the simulator runs: the scenario's settings on top of Campana's defaults.
pub fn campaign_config(s: &Scenario) -> Result<CampaignConfig, SimError> {
    let tz: Tz = s.campaign_zone.parse().map_err(|_| SimError::Failed("campaign_zone".into()))?;
    let local_start = s.start.with_timezone(&tz);
    let local_end = (s.start + Duration::milliseconds((s.hours * 3.6e6) as i64)).with_timezone(&tz);
    let start_t = LocalTime::hm(local_start.hour(), local_start.minute());
    let end_t = if local_end.date_naive() != local_start.date_naive() {
        LocalTime::hm(23, 59)
    } else {
        LocalTime::hm(local_end.hour(), local_end.minute())
    };
    let daily_hours = DailyHours::new(start_t, end_t).map_err(|e| SimError::Failed(e.reason))?;
    let mode: DialingMode = s.mode.parse().map_err(|e: campana_core::FieldError| SimError::Failed(e.reason))?;
    let mut st = Settings { dialing_mode: mode, ..Settings::default() };
    st.lines_per_agent = s.lines_per_agent;
    st.abandon_rate_max = s.abandon_rate_max;
    st.abandon_rate_target = s.abandon_rate_target.unwrap_or(st.abandon_rate_target).min(s.abandon_rate_max);
    st.calling_hours_rules.clone_from(&s.calling_hours_rules);
    st.agent_first = s.agent_first;
    st.wrap_up_s = s.agents.wrap_up_max_s;
    st.call_analysis.amd_enabled = s.population.machine_share > 0.0;
    st.agent_group_id = Some(AgentGroupId(1));
    Ok(CampaignConfig {
        id: CampaignId(1),
        settings: st,
        daily_hours,
        weekdays: Weekdays::ALL,
        time_zone: tz,
        start_date: None,
        end_date: None,
        priority: 0,
        agent_group: Some(AgentGroupId(1)),
        agentless_lines: s.agentless_lines.unwrap_or(20),
    })
}

/// The realised rolling windows, measured exactly (not on the engine's one-minute ledger): at
/// the moment of every abandon, abandons / live answers over `(t - window_s, t]`. Returns the
/// worst rate and how many abandons left their window over `cap`. `events` are (time, live
/// answers, abandons), sorted by time with answers before abandons at the same instant (an
/// abandoned call was answered before its abandon).
pub fn exact_windows(events: &[(DateTime<Utc>, f64, f64)], window_s: i64, cap: f64) -> (f64, u64) {
    let (mut answers, mut abandons) = (0.0, 0.0);
    let (mut worst, mut over) = (0.0f64, 0u64);
    let mut tail = 0;
    for &(t, a, b) in events {
        answers += a;
        abandons += b;
        while tail < events.len() && events[tail].0 <= t - Duration::seconds(window_s) {
            answers -= events[tail].1;
            abandons -= events[tail].2;
            tail += 1;
        }
        if b > 0.0 {
            let rate = if answers > 0.0 { abandons / answers } else { f64::INFINITY };
            worst = worst.max(rate);
            if abandons > cap * answers + 1e-9 {
                over += 1;
            }
        }
    }
    (worst, over)
}

/// Runs one simulated day. Deterministic: the same scenario and seed give the same summary.
pub fn run(scenario: &Scenario, seed: u64) -> Result<Summary, SimError> {
    run_until(scenario, seed, &std::sync::atomic::AtomicBool::new(false))
}

/// [`run`] that gives up with [`SimError::Stopped`] soon after `stop` is raised (checked every
/// few thousand steps): a caller with a time budget raises it when the budget is spent.
pub fn run_until(scenario: &Scenario, seed: u64, stop: &std::sync::atomic::AtomicBool) -> Result<Summary, SimError> {
    scenario.validate()?;
    let mut sim = Sim::new(scenario, seed)?;
    sim.stop = Some(stop);
    sim.run()
}

struct Sim<'a> {
    sc: &'a Scenario,
    /// Raised by the caller to stop the run early ([`run_until`]).
    stop: Option<&'a std::sync::atomic::AtomicBool>,
    seed: u64,
    cfg: CampaignConfig,
    engine: Engine,
    tel: SimTelephony,
    agents: SimAgents,
    store: Vec<StoreRec>,
    dnc: HashSet<PhoneNumber>,
    live_numbers: HashSet<PhoneNumber>,
    call_numbers: HashMap<campana_core::telephony::CallId, LiveCall>,
    pending: VecDeque<Input>,
    ledger_events: Vec<(DateTime<Utc>, f64, f64)>,
    sum: Summary,
    cust_wait_ms: i64,
    level: f64,
    /// The store's "due" index: (available from, record index).
    avail: std::collections::BTreeSet<(DateTime<Utc>, usize)>,
}

impl<'a> Sim<'a> {
    fn new(sc: &'a Scenario, seed: u64) -> Result<Self, SimError> {
        let cfg = campaign_config(sc)?;
        let n_records = sc.population.records as usize;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut dnc_lookup = InMemoryDnc::default();
        let mut dnc = HashSet::default();
        let pop = &sc.population;
        let mut store = Vec::with_capacity(pop.records as usize);
        for i in 0..pop.records {
            let area = &pop.area_codes[rng.gen_range(0..pop.area_codes.len())];
            let zip = if rng.gen::<f64>() < pop.zip_share { Some(ZIPS[rng.gen_range(0..ZIPS.len())]) } else { None };
            let rec = make_record(i, area, zip, sc.start);
            if rng.gen::<f64>() < pop.dnc_share {
                dnc_lookup.add(rec.phone.clone(), None, None);
                dnc.insert(rec.phone.clone());
            }
            let invalid = rng.gen::<f64>() < pop.invalid_share;
            // The simulator's own zone oracle, not the engine's resolver (zone_oracle.rs).
            let zones = zone_oracle::zones(rec.phone.as_str(), rec.postal_code.as_deref()).unwrap_or_default();
            let zone = zones.first().copied().unwrap_or(chrono_tz::UTC);
            debug_assert_eq!(rec.id.0 as usize, store.len() + 1, "record ids are index + 1");
            store.push(StoreRec {
                cand: Candidate::new(rec),
                in_engine: false,
                not_before: None,
                never: false,
                completed: false,
                dials: 0,
                day_dials: HashMap::default(),
                last_reason: None,
                invalid,
                zones,
                zone,
                last_dial_at: None,
                abandoned_dial_at: None,
                callback: None,
            });
        }
        let engine =
            Engine::new(EngineConfig { guard_power: !sc.unguarded_power, ..EngineConfig::default() }, Box::new(dnc_lookup), 1, sc.start);
        let talk_cv = sc.agents.talk_cv.unwrap_or(0.6);
        let mut tel = SimTelephony::new(seed, pop.clone(), sc.agents.talk_mean_s, talk_cv, sc.start);
        if cfg.settings.dialing_mode == DialingMode::Agentless {
            tel.agentless_digit = Some(('9', 0.05));
        }
        let agents = if cfg.settings.dialing_mode == DialingMode::Agentless {
            SimAgents::new(seed, AgentModel { count: 0, shifts: vec![], ..sc.agents.clone() }, Some(AgentGroupId(1)), sc.start, sc.hours)
        } else {
            SimAgents::new(seed, sc.agents.clone(), Some(AgentGroupId(1)), sc.start, sc.hours)
        };
        let sum = Summary {
            scenario: sc.name.clone(),
            seed,
            mode: sc.mode.clone(),
            records: u64::from(pop.records),
            dials: 0,
            live_answers: 0,
            live_connects: 0,
            machine_answers: 0,
            abandons: 0,
            abandon_rate_day: 0.0,
            abandon_rate_worst_24h: 0.0,
            abandon_rate_worst_30d: 0.0,
            windows_over_cap: 0,
            abandon_windows: Vec::new(),
            occupancy: 0.0,
            agent_logged_in_s: 0.0,
            agent_talk_s: 0.0,
            agent_wrap_s: 0.0,
            agent_idle_s: 0.0,
            avg_agent_wait_s: 0.0,
            avg_customer_wait_s: 0.0,
            records_completed: 0,
            records_dialed: 0,
            not_dialed_by_reason: BTreeMap::new(),
            violations: Vec::new(),
            engine_errors: 0,
        };
        let level = if sc.vicidial_adaptive { 1.0 } else { sc.lines_per_agent };
        Ok(Sim {
            sc,
            stop: None,
            seed,
            cfg,
            engine,
            tel,
            agents,
            store,
            dnc,
            live_numbers: HashSet::default(),
            call_numbers: HashMap::default(),
            pending: VecDeque::new(),
            ledger_events: Vec::new(),
            sum,
            cust_wait_ms: 0,
            level,
            avail: (0..n_records).map(|i| (sc.start, i)).collect(),
        })
    }

    fn violation(&mut self, v: String) {
        if self.sum.violations.len() < 50 {
            self.sum.violations.push(v);
        }
    }

    fn input(&mut self, now: DateTime<Utc>, i: Input) {
        if let Err(e) = self.engine.handle_input(now, i) {
            self.sum.engine_errors += 1;
            self.violation(format!("{now}: engine error {e}"));
        }
        self.drain(now);
    }

    fn drain(&mut self, now: DateTime<Utc>) {
        loop {
            while let Some(o) = self.engine.poll_output() {
                self.output(now, o);
            }
            let Some(i) = self.pending.pop_front() else { break };
            if let Err(e) = self.engine.handle_input(now, i) {
                self.sum.engine_errors += 1;
                self.violation(format!("{now}: engine error {e}"));
            }
        }
    }

    fn check_dial(&mut self, now: DateTime<Utc>, to: &PhoneNumber, record: RecordId) {
        let idx = (record.0 - 1) as usize;
        let r = &self.store[idx];
        // Independent check of the contact window under the scenario's rule set (any shipped
        // set: the base rule and every region rule, in every zone of the contact), by the
        // simulator's own reading of the rules (zone_oracle.rs), not the engine's.
        if r.zones.is_empty() {
            self.violation(format!("{now}: dial to {to}, for which the zone oracle knows no zone"));
        } else if let Some(why) =
            zone_oracle::forbids(&self.sc.calling_hours_rules, to.as_str(), r.cand.record.postal_code.as_deref(), &r.zones, now)
        {
            self.violation(format!("{now}: dial to {to}: {why}"));
        }
        if self.dnc.contains(to) {
            self.violation(format!("{now}: dial to DNC number {to}"));
        }
        if !self.live_numbers.insert(to.clone()) {
            self.violation(format!("{now}: second live call to {to}"));
        }
        let s = &self.cfg.settings;
        let (max_n, max_d) = (s.max_attempts_per_number, s.max_attempts_per_day);
        let (recall, block) = (Duration::seconds(i64::from(s.min_recall_delay_s)), Duration::seconds(i64::from(s.abandon_recall_block_s)));
        let r = &self.store[idx];
        let mut bad = Vec::new();
        if let Some(last) = r.last_dial_at.filter(|l| now < *l + recall) {
            bad.push(format!(
                "{now}: record {record} dialed again {} s after its last dial (recall delay {} s)",
                (now - last).num_seconds(),
                recall.num_seconds()
            ));
        }
        if let Some(ab) = r.abandoned_dial_at.filter(|a| now < *a + block) {
            bad.push(format!("{now}: record {record} dialed within the abandon block after its abandoned call of {ab}"));
        }
        if let Some((due, _)) = r.callback.filter(|(due, _)| now < *due) {
            bad.push(format!("{now}: record {record} dialed before its callback at {due}"));
        }
        for v in bad {
            self.violation(v);
        }
        let r = &mut self.store[idx];
        r.last_dial_at = Some(now);
        r.dials += 1;
        let day = now.with_timezone(&r.zone).date_naive();
        let d = r.day_dials.entry(day).or_insert(0);
        *d += 1;
        let (dials, dd) = (r.dials, *d);
        if dials > max_n {
            self.violation(format!("{now}: record {record} dialed {dials} times (max {max_n})"));
        }
        if dd > max_d {
            self.violation(format!("{now}: record {record} dialed {dd} times today (max {max_d})"));
        }
    }

    fn output(&mut self, now: DateTime<Utc>, o: Output) {
        match o {
            Output::Telephony(cmd) => {
                let mut invalid = false;
                if let TelephonyCommand::Dial { call_id, to, record_id, .. } = &cmd {
                    self.check_dial(now, to, *record_id);
                    let r = &self.store[(record_id.0 - 1) as usize];
                    let cb = r.callback;
                    self.call_numbers.insert(*call_id, (to.clone(), *record_id, now, cb));
                    invalid = self.store[(record_id.0 - 1) as usize].invalid;
                }
                if let Err(e) = self.tel.handle_command(now, &cmd, invalid) {
                    self.violation(format!("{now}: telephony {e}"));
                }
            }
            Output::Agent(n) => {
                if let AgentNotice::CallConnected { agent, call_id, .. } = &n {
                    // A personal callback goes to its owner; another agent only once the grace
                    // period after it was due has passed.
                    if let Some((_, record, dialed, Some((due, Some(owner))))) = self.call_numbers.get(call_id) {
                        let grace = Duration::seconds(EngineConfig::default().callback_grace_s);
                        if owner != agent && *dialed < *due + grace {
                            let v = format!(
                                "{now}: personal callback of record {record} (agent {owner}) went to agent {agent} before the grace ended"
                            );
                            self.violation(v);
                        }
                    }
                }
                self.agents.on_notice(now, &n)
            }
            Output::NeedRecords { campaign_id, max } => {
                // What a store query does: records not in the engine, not done, due now, oldest first.
                let mut batch = Vec::new();
                while batch.len() < max {
                    let Some(&(t, idx)) = self.avail.first() else { break };
                    if t > now {
                        break;
                    }
                    self.avail.pop_first();
                    let r = &mut self.store[idx];
                    if r.in_engine || r.completed || r.never {
                        continue;
                    }
                    r.in_engine = true;
                    batch.push(r.cand.clone());
                }
                let short = batch.len() < max;
                self.pending.push_back(Input::RecordsAvailable { campaign_id, records: batch });
                // As the live driver does: fewer than asked, the list is running out.
                if short {
                    self.pending.push_back(Input::ListExhausted { campaign_id });
                }
            }
            Output::Persist(p) => match p {
                PersistCommand::AttemptStarted { .. } => self.sum.dials += 1,
                PersistCommand::CallResult { live_answer, answered_at, connected_at, result, .. } => {
                    if live_answer && self.cfg.settings.dialing_mode != DialingMode::Agentless {
                        self.sum.live_answers += 1;
                        if let Some(a) = answered_at {
                            self.ledger_events.push((a, 1.0, 0.0));
                        }
                    }
                    if result == campana_core::record::CallResult::AnsweringMachine {
                        self.sum.machine_answers += 1;
                    }
                    if let (Some(a), Some(c)) = (answered_at, connected_at) {
                        self.sum.live_connects += 1;
                        self.cust_wait_ms += (c - a).num_milliseconds();
                    }
                }
                PersistCommand::AbandonRecorded { at, call_id, .. } => {
                    if let Some((_, record, dialed, _)) = self.call_numbers.get(&call_id) {
                        let idx = (record.0 - 1) as usize;
                        self.store[idx].abandoned_dial_at = Some(*dialed);
                    }
                    self.sum.abandons += 1;
                    self.ledger_events.push((at, 0.0, 1.0));
                }
                PersistCommand::RecordUpdate(u) => {
                    let idx = (u.record_id.0 - 1) as usize;
                    let r = &mut self.store[idx];
                    r.in_engine = false;
                    let rec = &mut r.cand.record;
                    rec.record_type = u.record_type;
                    rec.record_status = u.record_status;
                    rec.attempts_total = u.attempts_total;
                    rec.attempts_today = u.attempts_today;
                    rec.attempts_day = u.attempts_day;
                    rec.last_result = Some(u.last_result);
                    rec.last_call_at = Some(u.last_call_at);
                    rec.callback_at = u.callback_at;
                    r.cand.chain_attempts = u.chain_attempts;
                    r.cand.retry_at = u.retry_at;
                    r.cand.callback_agent = u.callback_agent;
                    r.cand.result_streak = u.result_streak;
                    r.callback = match u.record_type {
                        RecordType::PersonalCallback | RecordType::CampaignCallback => u.callback_at.map(|at| (at, u.callback_agent)),
                        _ => None,
                    };
                    r.completed = u.record_status == RecordStatus::Completed || u.record_type == RecordType::NoCall;
                    r.not_before = None;
                    if !r.completed {
                        let at = u.retry_at.unwrap_or(now).max(u.callback_at.unwrap_or(now)).max(now);
                        self.avail.insert((at, idx));
                    }
                }
                PersistCommand::RecordDeferred { record_id, reason, .. } => {
                    let idx = (record_id.0 - 1) as usize;
                    let r = &mut self.store[idx];
                    r.in_engine = false;
                    r.last_reason = Some(reason.code);
                    match reason.next_dialable_at {
                        Some(t) => {
                            r.not_before = Some(t);
                            self.avail.insert((t.max(now), idx));
                        }
                        None => r.never = true,
                    }
                }
                PersistCommand::DncAdd { number, .. } => {
                    self.dnc.insert(number);
                }
            },
        }
    }

    fn run(mut self) -> Result<Summary, SimError> {
        let start = self.sc.start;
        let end = start + Duration::milliseconds((self.sc.hours * 3.6e6) as i64);
        let mut now = start;
        self.input(now, Input::CampaignStarted(Box::new(self.cfg.clone())));
        let tick = Duration::seconds(15);
        let mut next_tick = start + tick;
        let mut steps: u64 = 0;
        let mut kinds = [0u64; 4];
        let debug = std::env::var_os("CAMPANA_SIM_DEBUG").is_some();
        loop {
            steps += 1;
            if steps > 50_000_000 {
                return Err(SimError::Failed("too many steps".into()));
            }
            if steps.is_multiple_of(1024) && self.stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
                return Err(SimError::Stopped);
            }
            let te = self.tel.next_event_at();
            let ae = self.agents.next_action_at();
            let ee = self.engine.next_deadline();
            let ve = if self.sc.vicidial_adaptive { Some(next_tick) } else { None };
            let Some(t) = [te, ae, ee, ve].into_iter().flatten().min() else { break };
            if t > end {
                break;
            }
            now = now.max(t);
            if debug && steps.is_multiple_of(20000) {
                eprintln!(
                    "{now} calls={} tel={} idle={} dials={} connects={}",
                    self.engine.live_calls(),
                    self.tel.live_calls(),
                    self.agents.idle_count(),
                    self.sum.dials,
                    self.sum.live_connects
                );
            }
            if te.is_some_and(|x| x <= now) {
                kinds[0] += 1;
                if let Some((_, ev)) = self.tel.poll_event(now) {
                    if let TelephonyEvent::Ended { call_id, .. } = &ev {
                        if let Some((n, ..)) = self.call_numbers.remove(call_id) {
                            self.live_numbers.remove(&n);
                        }
                    }
                    // The engine takes no decision on `Ringing`; skipping it saves a third of the steps.
                    if !matches!(ev, TelephonyEvent::Ringing { .. }) {
                        self.input(now, Input::Telephony(ev));
                    }
                }
            } else if ae.is_some_and(|x| x <= now) {
                kinds[1] += 1;
                if let Some((_, a)) = self.agents.poll_action(now) {
                    self.input(now, a);
                }
            } else if ve.is_some_and(|x| x <= now) {
                kinds[2] += 1;
                next_tick = now + tick;
                self.vicidial_step(now);
            } else {
                kinds[3] += 1;
                if let Err(e) = self.engine.handle_timeout(now) {
                    self.sum.engine_errors += 1;
                    self.violation(format!("{now}: engine error {e}"));
                }
                self.drain(now);
            }
        }
        if debug {
            eprintln!("steps {steps} kinds {kinds:?} (telephony, agents, vicidial, engine timeouts)");
        }
        Ok(self.finish(end))
    }

    /// VICIdial-style adaptive dial level: every 15 s, step down when the day's drop percentage
    /// is over the target, step up while agents wait.
    fn vicidial_step(&mut self, now: DateTime<Utc>) {
        let drop = if self.sum.live_answers > 0 { self.sum.abandons as f64 / self.sum.live_answers as f64 } else { 0.0 };
        let target = self.sc.abandon_rate_max;
        let idle = self.agents.idle_count();
        if drop >= target * 0.9 {
            self.level = (self.level - 0.2).max(1.0);
        } else if idle > 0 {
            self.level = (self.level + 0.1).min(4.0);
        }
        let mut c = self.cfg.clone();
        c.settings.dialing_mode = DialingMode::Power;
        c.settings.lines_per_agent = self.level;
        self.cfg = c.clone();
        self.input(now, Input::CampaignUpdated(Box::new(c)));
    }

    fn finish(mut self, end: DateTime<Utc>) -> Summary {
        self.agents.close(end);
        let t = self.agents.totals;
        let s = &mut self.sum;
        s.agent_logged_in_s = t.logged_in_s;
        s.agent_talk_s = t.talk_s;
        s.agent_wrap_s = t.wrap_s;
        s.agent_idle_s = (t.logged_in_s - t.talk_s - t.wrap_s - t.break_s).max(0.0);
        s.occupancy = if t.logged_in_s > 0.0 { (t.talk_s + t.wrap_s) / t.logged_in_s } else { 0.0 };
        s.avg_agent_wait_s = if t.connects > 0 { s.agent_idle_s / t.connects as f64 } else { 0.0 };
        s.avg_customer_wait_s = if s.live_connects > 0 { self.cust_wait_ms as f64 / 1000.0 / s.live_connects as f64 } else { 0.0 };
        s.abandon_rate_day = if s.live_answers > 0 { s.abandons as f64 / s.live_answers as f64 } else { 0.0 };
        self.ledger_events.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)));
        let mut ledger = AbandonLedger::default();
        for (at, a, b) in &self.ledger_events {
            ledger.add(*at, *a, *b);
        }
        let cap = self.sc.abandon_rate_max;
        let (w24, over24) = exact_windows(&self.ledger_events, WINDOW_24H_S, cap);
        let (w30, over30) = exact_windows(&self.ledger_events, WINDOW_30D_S, cap);
        s.abandon_rate_worst_24h = w24;
        s.abandon_rate_worst_30d = w30;
        s.windows_over_cap = over24 + over30;
        let mut at = self.sc.start;
        while at < end {
            at = (at + Duration::hours(1)).min(end);
            let (d, m) = (ledger.window(at, WINDOW_24H_S), ledger.window(at, WINDOW_30D_S));
            s.abandon_windows.push(AbandonWindow {
                end: at,
                live_answers_24h: d.live_answers,
                abandons_24h: d.abandons,
                rate_24h: d.rate(),
                rate_30d: m.rate(),
            });
        }
        for r in &self.store {
            if r.completed {
                s.records_completed += 1;
            }
            if r.dials > 0 {
                s.records_dialed += 1;
            } else {
                let reason = r.last_reason.map_or("not_reached", |c| c.as_str());
                *s.not_dialed_by_reason.entry(reason.to_string()).or_default() += 1;
            }
        }
        let _ = self.seed;
        self.sum
    }
}
