//! The sans-IO dialing engine: feed [`Input`]s with the current time, poll [`Output`]s, and call
//! [`Engine::handle_timeout`] at [`Engine::next_deadline`]. No IO, no wall clock, no threads.

use crate::abandon::{AbandonLedger, WINDOW_24H_S, WINDOW_30D_S};
use crate::eligibility::{self, Blocked, CampaignConfig, Candidate, DncLookup, EligibilityContext, ReasonCode};
use crate::fxhash::{FxHashMap as HashMap, FxHashSet as HashSet};
use crate::pacing::{self, AgeProfile, AnswerEstimator, RingingAges};
use crate::rules::CallingRules;
use crate::types::*;
use crate::zones::ContactZones;
use campana_core::record::{CallResult, RecordType};
use campana_core::settings::{AbandonPolicy, DialingMode, MachineAction, PreviewTimeoutAction};
use campana_core::telephony::{AnsweredBy, CallId, PromptName, TelephonyCommand, TelephonyEvent};
use campana_core::user::CampaignsProfile;
use campana_core::{AgentGroupId, CampaignId, ChainId, ContactListId, PhoneNumber, RecordId, UserId};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Limits and prompts of an engine instance.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub rules: CallingRules,
    /// Candidates buffered per campaign (the engine asks for at most this many).
    pub max_buffer_per_campaign: usize,
    pub max_campaigns: usize,
    pub max_agents: usize,
    /// Live calls across all campaigns.
    pub max_calls: usize,
    /// Outputs waiting to be polled; beyond this, inputs are refused with `OutputBacklog`.
    pub max_pending_outputs: usize,
    /// Numbers added to the internal DNC list by this engine, kept until the driver's lookup has them.
    pub max_local_dnc: usize,
    /// Personal callbacks wait this long for their agent, then any agent may take them.
    pub callback_grace_s: i64,
    /// After an empty [`Input::RecordsAvailable`], wait this long before asking again.
    pub refill_backoff_s: i64,
    /// Under `uk_ofcom_24h`, share of AMD "machine" hang-ups counted as abandoned live calls.
    pub amd_false_positive_share: f64,
    /// Predictive: accepted probability that one pacing decision overshoots the abandon budget.
    pub predictive_risk: f64,
    /// Apply the abandon guard to power mode too (default true: the cap holds in every mode).
    /// Benchmarks turn it off to measure a plain fixed-ratio dialer.
    pub guard_power: bool,
    pub safe_harbor_prompt: PromptName,
    pub agentless_prompt: PromptName,
    pub machine_prompt: PromptName,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            rules: CallingRules::builtin().clone(),
            max_buffer_per_campaign: 500,
            max_campaigns: 1_000,
            max_agents: 10_000,
            max_calls: 20_000,
            max_pending_outputs: 200_000,
            max_local_dnc: 100_000,
            callback_grace_s: 600,
            refill_backoff_s: 30,
            amd_false_positive_share: 0.1,
            predictive_risk: 1e-3,
            guard_power: true,
            safe_harbor_prompt: PromptName("safe_harbor".into()),
            agentless_prompt: PromptName("agentless_message".into()),
            machine_prompt: PromptName("machine_message".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum AgentState {
    NotReady,
    Ready,
    /// Held for a call being dialed for this agent (progressive, preview, personal callback).
    Reserved(CallId),
    Preview {
        campaign: CampaignId,
        record: RecordId,
        expires: DateTime<Utc>,
    },
    Talking(CallId),
    WrapUp {
        call: CallId,
        until: DateTime<Utc>,
    },
}

impl Agent {
    /// Where the agent goes when their current call or dial ends.
    fn next(&self) -> AfterWrapUp {
        if self.logout_pending {
            AfterWrapUp::LoggedOut
        } else if self.pause_pending {
            AfterWrapUp::NotReady
        } else {
            AfterWrapUp::Ready
        }
    }
}

#[derive(Debug, Clone)]
struct Agent {
    groups: Vec<AgentGroupId>,
    campaigns: CampaignsProfile,
    state: AgentState,
    logout_pending: bool,
    /// Not-ready asked during a call: applied when the call's wrap-up ends.
    pause_pending: bool,
    /// Ready since (longest-idle agent takes the next call).
    ready_since: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Buffered {
    cand: Candidate,
    zones: Option<ContactZones>,
    not_before: DateTime<Utc>,
}

/// A campaign's candidates: dialable-now queue in dialing order, plus those deferred to a
/// known moment (ordered by it). Bounded by `max_buffer_per_campaign` together.
#[derive(Debug, Default)]
struct Buffer {
    ready: VecDeque<Buffered>,
    deferred: BTreeMap<(DateTime<Utc>, RecordId), Buffered>,
    ids: HashSet<RecordId>,
    /// Personal callbacks were added since the last scan found none.
    personal_hint: bool,
}

impl Buffer {
    fn len(&self) -> usize {
        self.ids.len()
    }
    fn contains(&self, id: RecordId) -> bool {
        self.ids.contains(&id)
    }
    fn note(&mut self, b: &Buffered) {
        self.ids.insert(b.cand.record.id);
        if b.cand.record.record_type == RecordType::PersonalCallback {
            self.personal_hint = true;
        }
    }
    fn push_back(&mut self, b: Buffered) {
        self.note(&b);
        self.ready.push_back(b);
    }
    fn push_front(&mut self, b: Buffered) {
        self.note(&b);
        self.ready.push_front(b);
    }
    fn defer(&mut self, b: Buffered) {
        self.note(&b);
        self.deferred.insert((b.not_before, b.cand.record.id), b);
    }
    fn take_ready(&mut self, i: usize) -> Option<Buffered> {
        let b = self.ready.remove(i)?;
        self.ids.remove(&b.cand.record.id);
        Some(b)
    }
    /// Moves deferred candidates that are due to the ready queue.
    fn promote(&mut self, now: DateTime<Utc>) {
        while let Some(e) = self.deferred.first_entry() {
            if e.key().0 > now {
                break;
            }
            let b = e.remove();
            self.ready.push_back(b);
        }
    }
    fn reset(&mut self, now: DateTime<Utc>) {
        let all = std::mem::take(&mut self.deferred);
        for (_, mut b) in all {
            b.not_before = now;
            self.ready.push_back(b);
        }
    }
    fn next_deferred(&self) -> Option<DateTime<Utc>> {
        self.deferred.keys().next().map(|k| k.0)
    }
    fn find(&self, id: RecordId) -> Option<&Buffered> {
        self.ready.iter().find(|b| b.cand.record.id == id).or_else(|| self.deferred.values().find(|b| b.cand.record.id == id))
    }
    /// Drops every candidate of the customer's chain; returns how many.
    fn remove_chain(&mut self, key: ChainKey) -> usize {
        let before = self.ready.len() + self.deferred.len();
        self.ready.retain(|b| chain_key(&b.cand) != key);
        self.deferred.retain(|_, b| chain_key(&b.cand) != key);
        self.ids = self.ready.iter().chain(self.deferred.values()).map(|b| b.cand.record.id).collect();
        before - self.ready.len() - self.deferred.len()
    }
    fn clear(&mut self) {
        self.ready.clear();
        self.deferred.clear();
        self.ids.clear();
    }
    fn has_due_personal(&mut self, agent: UserId, now: DateTime<Utc>) -> bool {
        if !self.personal_hint {
            return false;
        }
        let mut any = false;
        let mut mine = false;
        for b in self.ready.iter().chain(self.deferred.values()) {
            if b.cand.record.record_type == RecordType::PersonalCallback {
                any = true;
                if b.cand.callback_agent == Some(agent) && b.cand.record.callback_at.is_some_and(|t| t <= now) && b.not_before <= now {
                    mine = true;
                    break;
                }
            }
        }
        if !any {
            self.personal_hint = false;
        }
        mine
    }
}

#[derive(Debug)]
struct Camp {
    cfg: CampaignConfig,
    buffer: Buffer,
    requested: bool,
    refill_after: Option<DateTime<Utc>>,
    ledger: AbandonLedger,
    estimator: AnswerEstimator,
    /// When live answers and other outcomes come, by the call's age (predictive pacing).
    ages: AgeProfile,
    /// Live or not, by dial time: fed to the estimator in dial order once every earlier call
    /// is resolved, so a burst of quick answers or of ring timeouts does not bias it.
    outcomes: BTreeMap<(DateTime<Utc>, CallId), bool>,
    /// Preview records held while offered (not in the buffer).
    offered: HashMap<RecordId, Buffered>,
    /// Stopped, waiting for its last calls to finish.
    stopped: bool,
    /// Multiplier of `abandon_rate_target` the predictive pacer aims with, adapted to the
    /// realised rate ([`MIN_AGGRESSIVENESS`] to [`MAX_AGGRESSIVENESS`]); the hard guard, not
    /// the aim, keeps every window under the cap.
    aggressiveness: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    Dialing,
    AwaitingAmd,
    WaitingAgent {
        deadline: DateTime<Utc>,
    },
    Connected,
    /// Safe-harbor, machine message or agentless prompt.
    Playing,
    /// Telephony said the call ended; agent in wrap-up.
    Ended,
}

#[derive(Debug, Clone)]
struct Call {
    campaign: CampaignId,
    cand: Candidate,
    zones: Option<ContactZones>,
    state: CallState,
    dialed_at: DateTime<Utc>,
    answered_at: Option<DateTime<Utc>>,
    connected_at: Option<DateTime<Utc>>,
    /// Telephony ended the call (the agent's wrap-up started).
    ended_at: Option<DateTime<Utc>>,
    agent: Option<UserId>,
    live: bool,
    machine: bool,
    abandoned: bool,
    digit_result: Option<CallResult>,
    network_result: Option<CallResult>,
}

/// Live calls per campaign, kept current on every change (pacing reads them on every event).
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    /// Dialed, not answered, no agent reserved.
    unanswered: usize,
    /// Answered, waiting for an agent.
    waiting: usize,
    /// Connected to an agent (the agent is talking).
    talking: usize,
    /// Ended, the agent in wrap-up.
    wrapping: usize,
    total: usize,
}

type Class = (usize, usize, usize, usize);

fn class(c: &Call) -> Class {
    let un = matches!(c.state, CallState::Dialing | CallState::AwaitingAmd) && c.agent.is_none();
    let w = matches!(c.state, CallState::WaitingAgent { .. });
    let t = c.state == CallState::Connected && c.agent.is_some();
    let e = c.state == CallState::Ended && c.agent.is_some();
    (un as usize, w as usize, t as usize, e as usize)
}

impl Counts {
    fn apply(&mut self, before: Class, after: Class) {
        self.unanswered = self.unanswered + after.0 - before.0;
        self.waiting = self.waiting + after.1 - before.1;
        self.talking = self.talking + after.2 - before.2;
        self.wrapping = self.wrapping + after.3 - before.3;
    }
}

/// The live calls, with per-campaign [`Counts`] maintained through [`CallMut`].
#[derive(Debug, Default)]
struct CallTable {
    map: BTreeMap<CallId, Call>,
    counts: HashMap<CampaignId, Counts>,
    /// Unanswered calls per campaign by the second they were dialed.
    ringing: HashMap<CampaignId, RingingAges>,
    /// Answered calls waiting for an agent, by deadline.
    waiting: BTreeSet<(DateTime<Utc>, CallId)>,
}

struct CallMut<'a> {
    id: CallId,
    call: &'a mut Call,
    counts: &'a mut HashMap<CampaignId, Counts>,
    ringing: &'a mut HashMap<CampaignId, RingingAges>,
    waiting: &'a mut BTreeSet<(DateTime<Utc>, CallId)>,
    before: Class,
    before_state: CallState,
}

impl std::ops::Deref for CallMut<'_> {
    type Target = Call;
    fn deref(&self) -> &Call {
        self.call
    }
}
impl std::ops::DerefMut for CallMut<'_> {
    fn deref_mut(&mut self) -> &mut Call {
        self.call
    }
}
impl Drop for CallMut<'_> {
    fn drop(&mut self) {
        let after = class(self.call);
        if self.call.state != self.before_state {
            if let CallState::WaitingAgent { deadline } = self.before_state {
                self.waiting.remove(&(deadline, self.id));
            }
            if let CallState::WaitingAgent { deadline } = self.call.state {
                self.waiting.insert((deadline, self.id));
            }
        }
        if after != self.before {
            self.counts.entry(self.call.campaign).or_default().apply(self.before, after);
            if after.0 != self.before.0 {
                let r = self.ringing.entry(self.call.campaign).or_default();
                if after.0 > 0 {
                    r.add(self.call.dialed_at.timestamp());
                } else {
                    r.remove(self.call.dialed_at.timestamp());
                }
            }
        }
    }
}

impl CallTable {
    fn get(&self, id: &CallId) -> Option<&Call> {
        self.map.get(id)
    }
    fn get_mut(&mut self, id: &CallId) -> Option<CallMut<'_>> {
        let call = self.map.get_mut(id)?;
        let before = class(call);
        let before_state = call.state;
        Some(CallMut {
            id: *id,
            call,
            counts: &mut self.counts,
            ringing: &mut self.ringing,
            waiting: &mut self.waiting,
            before,
            before_state,
        })
    }
    fn insert(&mut self, id: CallId, call: Call) {
        let k = class(&call);
        let c = self.counts.entry(call.campaign).or_default();
        c.apply((0, 0, 0, 0), k);
        c.total += 1;
        if k.0 > 0 {
            self.ringing.entry(call.campaign).or_default().add(call.dialed_at.timestamp());
        }
        self.map.insert(id, call);
    }
    fn remove(&mut self, id: &CallId) -> Option<Call> {
        let call = self.map.remove(id)?;
        if let CallState::WaitingAgent { deadline } = call.state {
            self.waiting.remove(&(deadline, *id));
        }
        let k = class(&call);
        let c = self.counts.entry(call.campaign).or_default();
        c.apply(k, (0, 0, 0, 0));
        c.total -= 1;
        if k.0 > 0 {
            if let Some(r) = self.ringing.get_mut(&call.campaign) {
                r.remove(call.dialed_at.timestamp());
            }
        }
        Some(call)
    }
    fn len(&self) -> usize {
        self.map.len()
    }
    fn counts(&self, campaign: CampaignId) -> Counts {
        self.counts.get(&campaign).copied().unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    ConnectDeadline(CallId),
    Preview(UserId),
    WrapEnd(UserId),
}

/// The engine. See the crate documentation for the driving loop.
pub struct Engine {
    cfg: EngineConfig,
    dnc: Box<dyn DncLookup + Send>,
    local_dnc: HashSet<PhoneNumber>,
    /// Numbers whose DNC entries changed since `dnc` was built: (change, entries in force),
    /// authoritative over `dnc` (bounded by the driver, which rebuilds `dnc` past its limit).
    dnc_changes: HashMap<PhoneNumber, (u64, Vec<eligibility::DncHit>)>,
    /// Registries too old to trust ([`Input::DncStale`]).
    dnc_stale: Vec<crate::dnc::StaleCoverage>,
    campaigns: BTreeMap<CampaignId, Camp>,
    agents: BTreeMap<UserId, Agent>,
    /// The agents in state `Ready`, longest idle first (`ready_since`, id): kept current on every
    /// change, so a pacing pass reads them without scanning every agent.
    ready_agents: BTreeSet<(DateTime<Utc>, UserId)>,
    /// Scratch list of the pacing pass (campaigns by priority), kept to avoid an allocation a pass.
    order_scratch: Vec<(i32, CampaignId)>,
    calls: CallTable,
    live_records: HashSet<RecordId>,
    live_numbers: HashSet<PhoneNumber>,
    /// Customers with a live call: one call per customer at a time (docs/dialing.md, chains).
    live_chains: HashSet<ChainKey>,
    timers: BTreeSet<(DateTime<Utc>, Timer)>,
    outputs: VecDeque<Output>,
    /// Dispositions given while the customer was still on the line (bounded by live calls).
    pending_dispositions: HashMap<CallId, (CallResult, Option<CallbackRequest>)>,
    next_call_id: u64,
    now: DateTime<Utc>,
}

/// A customer: the chain of numbers of one list.
type ChainKey = (ContactListId, ChainId);

fn chain_key(c: &Candidate) -> ChainKey {
    (c.record.list_id, c.record.chain_id)
}

fn ctx_in_call<'a>(
    records: &'a HashSet<RecordId>,
    numbers: &'a HashSet<PhoneNumber>,
    chains: &'a HashSet<ChainKey>,
) -> impl Fn(&Candidate) -> bool + 'a {
    move |c: &Candidate| records.contains(&c.record.id) || numbers.contains(&c.record.phone) || chains.contains(&chain_key(c))
}

impl Engine {
    /// A new engine. `first_call_id` lets a restarted server continue its call ids.
    pub fn new(cfg: EngineConfig, dnc: Box<dyn DncLookup + Send>, first_call_id: u64, now: DateTime<Utc>) -> Self {
        Engine {
            cfg,
            dnc,
            local_dnc: HashSet::default(),
            dnc_changes: HashMap::default(),
            dnc_stale: Vec::new(),
            campaigns: BTreeMap::new(),
            agents: BTreeMap::new(),
            ready_agents: BTreeSet::new(),
            order_scratch: Vec::new(),
            calls: CallTable::default(),
            live_records: HashSet::default(),
            live_numbers: HashSet::default(),
            live_chains: HashSet::default(),
            timers: BTreeSet::new(),
            outputs: VecDeque::new(),
            pending_dispositions: HashMap::default(),
            next_call_id: first_call_id,
            now,
        }
    }

    /// Replaces the DNC lookup (e.g. after the driver reloaded its lists). Numbers this engine
    /// put on the internal list stay refused until the new lookup has them.
    pub fn set_dnc(&mut self, dnc: Box<dyn DncLookup + Send>) {
        let now = self.now;
        self.local_dnc.retain(|n| dnc.lookup(n, &[], now).is_none());
        self.dnc = dnc;
        self.dnc_changes.clear();
    }

    /// The entries the engine holds for `number` from a [`Input::DncChanged`] since the lists
    /// were last replaced (`None`: the lists' own answer stands).
    pub fn dnc_change(&self, number: &PhoneNumber) -> Option<&[eligibility::DncHit]> {
        self.dnc_changes.get(number).map(|(_, h)| h.as_slice())
    }

    /// Numbers whose DNC entries changed since the lists were last replaced.
    pub fn dnc_changes_len(&self) -> usize {
        self.dnc_changes.len()
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The next moment [`Engine::handle_timeout`] must be called.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        let mut d = self.timers.iter().next().map(|(t, _)| *t);
        for c in self.campaigns.values() {
            let nb = c.buffer.next_deferred();
            for t in [nb, c.refill_after].into_iter().flatten() {
                d = Some(d.map_or(t, |x| x.min(t)));
            }
        }
        d
    }

    /// Abandon counts of a campaign over 24 h and 30 d ending `now`.
    pub fn abandon_windows(&self, campaign: CampaignId) -> Option<(crate::abandon::WindowCounts, crate::abandon::WindowCounts)> {
        let c = self.campaigns.get(&campaign)?;
        Some((c.ledger.window(self.now, WINDOW_24H_S), c.ledger.window(self.now, WINDOW_30D_S)))
    }

    /// The live answer probability the predictive pacer currently assumes for a campaign.
    pub fn answer_estimate(&self, campaign: CampaignId) -> Option<f64> {
        self.campaigns.get(&campaign).map(|c| c.estimator.mean())
    }

    /// Live calls now.
    pub fn live_calls(&self) -> usize {
        self.calls.len()
    }

    /// The records a campaign holds: buffered, offered in preview, or in a call (of any
    /// campaign). A driver never offers these again ([`Input::RecordsAvailable`] ignores them):
    /// the engine, not a copy kept beside it, says what is held.
    pub fn held_records(&self, campaign: CampaignId) -> std::collections::HashSet<RecordId> {
        let mut out = std::collections::HashSet::new();
        if let Some(c) = self.campaigns.get(&campaign) {
            out.extend(c.buffer.ids.iter().copied());
            out.extend(c.offered.keys().copied());
        }
        out.extend(self.live_records.iter().copied());
        out.extend(self.calls.map.values().filter(|call| call.campaign == campaign).map(|call| call.cand.record.id));
        out
    }

    /// Why is this buffered record not being dialed now? (None: not buffered, or dialable.)
    pub fn explain(&self, campaign: CampaignId, record: RecordId) -> Option<Blocked> {
        let c = self.campaigns.get(&campaign)?;
        let b = c.buffer.find(record)?;
        self.check(c, b).err()
    }

    fn check(&self, camp: &Camp, b: &Buffered) -> Result<(), Blocked> {
        let in_call = ctx_in_call(&self.live_records, &self.live_numbers, &self.live_chains);
        let present = |a: UserId| self.agents.contains_key(&a);
        let dnc = DncWithLocal { inner: self.dnc.as_ref(), local: &self.local_dnc, changes: &self.dnc_changes, stale: &self.dnc_stale };
        let ctx = EligibilityContext {
            campaign: &camp.cfg,
            rules: &self.cfg.rules,
            dnc: &dnc,
            in_call: &in_call,
            agent_present: &present,
            callback_grace_s: self.cfg.callback_grace_s,
        };
        eligibility::check(&ctx, &b.cand, b.zones.as_ref(), self.now)
    }

    fn push(&mut self, o: Output) {
        self.outputs.push_back(o);
    }

    fn advance(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        if self.outputs.len() >= self.cfg.max_pending_outputs {
            return Err(EngineError::OutputBacklog(self.outputs.len()));
        }
        if now > self.now {
            self.now = now;
        }
        Ok(())
    }

    /// Fires due timers and paces every campaign.
    pub fn handle_timeout(&mut self, now: DateTime<Utc>) -> Result<(), EngineError> {
        self.advance(now)?;
        while let Some(&(t, timer)) = self.timers.iter().next() {
            if t > self.now {
                break;
            }
            self.timers.remove(&(t, timer));
            match timer {
                Timer::ConnectDeadline(id) => self.connect_deadline(id),
                Timer::Preview(agent) => self.preview_expired(agent, t),
                Timer::WrapEnd(agent) => self.wrap_end(agent, t, None),
            }
        }
        for c in self.campaigns.values_mut() {
            if c.refill_after.is_some_and(|t| t <= self.now) {
                c.refill_after = None;
            }
        }
        self.pace();
        Ok(())
    }

    /// Applies one input at `now`, then paces.
    pub fn handle_input(&mut self, now: DateTime<Utc>, input: Input) -> Result<(), EngineError> {
        self.advance(now)?;
        // Progress events that change nothing the pacer reads skip the pacing pass.
        let quiet = matches!(
            input,
            Input::Telephony(TelephonyEvent::Ringing { .. } | TelephonyEvent::Connected { .. } | TelephonyEvent::PromptDone { .. })
        );
        let r = self.apply(input);
        if !quiet {
            self.pace();
        }
        r
    }

    fn apply(&mut self, input: Input) -> Result<(), EngineError> {
        match input {
            Input::CampaignStarted(cfg) | Input::CampaignUpdated(cfg) => {
                let id = cfg.id;
                if let Some(c) = self.campaigns.get_mut(&id) {
                    c.cfg = *cfg;
                    c.stopped = false;
                    c.buffer.reset(self.now);
                } else {
                    if self.campaigns.len() >= self.cfg.max_campaigns {
                        return Err(EngineError::Limit { what: "campaigns", limit: self.cfg.max_campaigns });
                    }
                    let ring = cfg.settings.ring_timeout_s;
                    self.campaigns.insert(
                        id,
                        Camp {
                            cfg: *cfg,
                            buffer: Buffer::default(),
                            requested: false,
                            refill_after: None,
                            ledger: AbandonLedger::default(),
                            estimator: AnswerEstimator::default(),
                            ages: AgeProfile::new(ring),
                            outcomes: BTreeMap::new(),
                            offered: HashMap::default(),
                            stopped: false,
                            aggressiveness: 1.0,
                        },
                    );
                }
            }
            Input::CampaignStopped { campaign_id } => {
                let Some(c) = self.campaigns.remove(&campaign_id) else { return Err(EngineError::UnknownCampaign(campaign_id)) };
                for b in c.offered.values() {
                    self.live_records.remove(&b.cand.record.id);
                }
                let offers: Vec<UserId> = self
                    .agents
                    .iter()
                    .filter(|(_, a)| matches!(a.state, AgentState::Preview { campaign, .. } if campaign == campaign_id))
                    .map(|(id, _)| *id)
                    .collect();
                for a in offers {
                    if let Some(AgentState::Preview { record, .. }) = self.agents.get(&a).map(|x| x.state.clone()) {
                        self.push(Output::Agent(AgentNotice::PreviewWithdrawn { agent: a, record_id: record }));
                        self.live_records.remove(&record);
                    }
                    self.set_ready(a);
                }
                // Calls in flight finish under the campaign's settings; the entry goes with the last call.
                let has_calls = self.calls.counts(campaign_id).total > 0;
                if has_calls {
                    let mut c = c;
                    c.stopped = true;
                    c.buffer.clear();
                    c.offered.clear();
                    self.campaigns.insert(campaign_id, c);
                }
            }
            Input::RecordsAvailable { campaign_id, records } => {
                let max = self.cfg.max_buffer_per_campaign;
                let now = self.now;
                let backoff = self.cfg.refill_backoff_s;
                let Some(c) = self.campaigns.get_mut(&campaign_id) else { return Err(EngineError::UnknownCampaign(campaign_id)) };
                c.requested = false;
                let mut overflow = Vec::new();
                let mut added = 0usize;
                for cand in records {
                    let id = cand.record.id;
                    // A record the engine already holds (buffered, offered or in a call) is not
                    // new: it stays where it is, and nothing about it goes back to the store.
                    if c.buffer.contains(id) || c.offered.contains_key(&id) || self.live_records.contains(&id) {
                        continue;
                    }
                    if c.buffer.len() >= max {
                        overflow.push(id);
                        continue;
                    }
                    let zones = eligibility::contact_zones(&cand);
                    c.buffer.push_back(Buffered { cand, zones, not_before: now });
                    added += 1;
                }
                // A refill that brought nothing new (an empty list, or only records already held)
                // waits before asking again: asking at once would get the same answer, forever.
                if added == 0 {
                    c.refill_after = Some(now + Duration::seconds(backoff));
                }
                for id in overflow {
                    let reason = Blocked {
                        code: ReasonCode::NotNeeded,
                        message: "the engine's buffer for this campaign is full".into(),
                        next_dialable_at: Some(now),
                    };
                    self.push(Output::Persist(PersistCommand::RecordDeferred { campaign_id, record_id: id, reason }));
                }
            }
            Input::AbandonHistory { campaign_id, at, live_answers, abandons, machine_verdicts } => {
                let c = self.campaigns.get_mut(&campaign_id).ok_or(EngineError::UnknownCampaign(campaign_id))?;
                let share = match c.cfg.settings.abandon_policy {
                    AbandonPolicy::UkOfcom24h => self.cfg.amd_false_positive_share * machine_verdicts as f64,
                    AbandonPolicy::UsFcc30d => 0.0,
                };
                c.ledger.add(at, live_answers as f64 + share, abandons as f64 + share);
            }
            Input::AgentLogin { agent, groups, campaigns } => {
                if !self.agents.contains_key(&agent) && self.agents.len() >= self.cfg.max_agents {
                    return Err(EngineError::Limit { what: "agents", limit: self.cfg.max_agents });
                }
                let now = self.now;
                let a = self.agents.entry(agent).or_insert(Agent {
                    groups: Vec::new(),
                    campaigns: CampaignsProfile::All,
                    state: AgentState::NotReady,
                    logout_pending: false,
                    pause_pending: false,
                    ready_since: now,
                });
                a.groups = groups;
                a.campaigns = campaigns;
                a.logout_pending = false;
            }
            Input::AgentReady { agent } => {
                let a = self.agents.get_mut(&agent).ok_or(EngineError::UnknownAgent(agent))?;
                a.pause_pending = false;
                if a.state == AgentState::NotReady {
                    self.set_ready(agent);
                }
            }
            Input::AgentNotReady { agent, .. } => {
                let a = self.agents.get_mut(&agent).ok_or(EngineError::UnknownAgent(agent))?;
                match a.state.clone() {
                    AgentState::Ready => {
                        self.ready_agents.remove(&(a.ready_since, agent));
                        a.state = AgentState::NotReady;
                    }
                    AgentState::Preview { record, campaign, expires } => {
                        a.state = AgentState::NotReady;
                        self.timers.remove(&(expires, Timer::Preview(agent)));
                        self.push(Output::Agent(AgentNotice::PreviewWithdrawn { agent, record_id: record }));
                        self.return_offered(campaign, record, None);
                    }
                    AgentState::NotReady => {}
                    // Busy agents go not-ready when their current call's wrap-up ends.
                    _ => a.pause_pending = true,
                }
            }
            Input::AgentLogout { agent } => {
                let a = self.agents.get_mut(&agent).ok_or(EngineError::UnknownAgent(agent))?;
                match a.state.clone() {
                    AgentState::Ready | AgentState::NotReady => {
                        self.ready_agents.remove(&(a.ready_since, agent));
                        self.agents.remove(&agent);
                    }
                    AgentState::Preview { record, campaign, expires } => {
                        self.agents.remove(&agent);
                        self.timers.remove(&(expires, Timer::Preview(agent)));
                        self.push(Output::Agent(AgentNotice::PreviewWithdrawn { agent, record_id: record }));
                        self.return_offered(campaign, record, None);
                    }
                    // A call still ringing at the customer's for this agent: the agent leaves now
                    // and is never bridged to it; the call goes on as any other (another ready
                    // agent takes it when answered, or the safe-harbor message).
                    AgentState::Reserved(call) => {
                        self.agents.remove(&agent);
                        if let Some(mut c) = self.calls.get_mut(&call) {
                            if c.agent == Some(agent) {
                                c.agent = None;
                            }
                        }
                        self.push(Output::Agent(AgentNotice::DialEnded { agent, next: AfterWrapUp::LoggedOut }));
                    }
                    _ => a.logout_pending = true,
                }
            }
            Input::Telephony(ev) => self.telephony(ev)?,
            Input::DncChanged { seq, numbers } => {
                for (n, hits) in numbers {
                    self.dnc_changes.insert(n, (seq, hits));
                }
            }
            Input::DncReplaced { lists, as_of_seq } => {
                let now = self.now;
                self.local_dnc.retain(|n| lists.lookup(n, &[], now).is_none());
                self.dnc_changes.retain(|_, (seq, _)| *seq > as_of_seq);
                self.dnc = Box::new(lists);
            }
            Input::DncStale(stale) => self.dnc_stale = stale,
            Input::Disposition { agent, call_id, result, callback } => {
                let a = self.agents.get(&agent).ok_or(EngineError::UnknownAgent(agent))?;
                match a.state {
                    AgentState::WrapUp { call, until } if call == call_id => {
                        self.timers.remove(&(until, Timer::WrapEnd(agent)));
                        self.wrap_end(agent, self.now, Some((result, callback)));
                    }
                    AgentState::Talking(call) if call == call_id => {
                        // Disposition before the customer hung up: hang up and finish.
                        if let Some(mut c) = self.calls.get_mut(&call_id) {
                            c.digit_result = Some(result);
                        }
                        self.pending_dispositions.insert(call_id, (result, callback));
                        self.push(Output::Telephony(TelephonyCommand::HangUp { call_id }));
                    }
                    _ => return Err(EngineError::InvalidState(format!("agent {agent} has no call {call_id} to dispose"))),
                }
            }
            Input::PreviewAccept { agent, record_id } => {
                let a = self.agents.get(&agent).ok_or(EngineError::UnknownAgent(agent))?;
                match a.state {
                    AgentState::Preview { campaign, record, expires } if record == record_id => {
                        self.timers.remove(&(expires, Timer::Preview(agent)));
                        self.dial_offered(agent, campaign, record);
                    }
                    _ => return Err(EngineError::InvalidState(format!("agent {agent} has no preview of record {record_id}"))),
                }
            }
            Input::PreviewSkip { agent, record_id } => {
                let a = self.agents.get(&agent).ok_or(EngineError::UnknownAgent(agent))?;
                match a.state {
                    AgentState::Preview { campaign, record, expires } if record == record_id => {
                        self.timers.remove(&(expires, Timer::Preview(agent)));
                        self.skip_offered(agent, campaign, record);
                    }
                    _ => return Err(EngineError::InvalidState(format!("agent {agent} has no preview of record {record_id}"))),
                }
            }
        }
        Ok(())
    }
}

/// The driver's DNC lookup, the changes told since it was built, and numbers this engine added
/// and has not seen in a rebuilt lookup yet.
struct DncWithLocal<'a> {
    inner: &'a (dyn DncLookup + Send),
    local: &'a HashSet<PhoneNumber>,
    changes: &'a HashMap<PhoneNumber, (u64, Vec<eligibility::DncHit>)>,
    stale: &'a [crate::dnc::StaleCoverage],
}

impl DncLookup for DncWithLocal<'_> {
    fn blocked(&self, number: &PhoneNumber, lists: &[campana_core::DncListId]) -> Option<eligibility::DncHit> {
        crate::dnc::stale_hit(self.stale, number, lists).or_else(|| self.inner.blocked(number, lists))
    }
    fn lookup(&self, number: &PhoneNumber, lists: &[campana_core::DncListId], now: DateTime<Utc>) -> Option<eligibility::DncHit> {
        if self.local.contains(number) {
            return Some(eligibility::DncHit { list_id: None, expires_at: None });
        }
        if let Some(h) = self.blocked(number, lists) {
            return Some(h);
        }
        if let Some((_, hits)) = self.changes.get(number) {
            return hits.iter().find(|h| h.expires_at.is_none_or(|e| e > now) && h.list_id.is_none_or(|l| lists.contains(&l))).cloned();
        }
        self.inner.lookup(number, lists, now)
    }
}

/// Re-check a deferred record no later than this far ahead; beyond it the record goes back to
/// the store with its reason.
const KEEP_DEFERRED_S: i64 = 120;
/// Predictive: accepted chance that the next call's answer finds no agent, per unit of
/// `abandon_rate_target` (before the adaptation to the realised rate).
const THETA_PER_TARGET: f64 = 1.0;
/// Abandons the guard keeps in reserve: it plans with `B - ABANDON_RESERVE` (see
/// `pacing::guard_max`). A plan at the guard's risk overshoots by one or two abandons now and
/// then (calls answering in a cluster, an answer rate above its upper bound for a while, a free
/// agent logging out); without the reserve that broke the cap on a few days in a hundred, early
/// in the day when the budget is a single abandon.
pub const ABANDON_RESERVE: f64 = 2.0;
/// Predictive: the guard's upper bound of the answer probability is the estimate plus this
/// many standard errors (the estimator sees outcomes in dial order, so it is unbiased).
const P_HIGH_Z: f64 = 2.0;
/// Outcomes held for the estimator per campaign (beyond this, the oldest are fed at once).
const MAX_PENDING_OUTCOMES: usize = 10_000;
/// Predictive: the recent window the aim's adaptation also reads (see `human`).
const RECENT_WINDOW_S: i64 = 3600;
/// Predictive: bounds of the multiplier of `abandon_rate_target` (θ never exceeds 0.5).
const MIN_AGGRESSIVENESS: f64 = 0.5;
const MAX_AGGRESSIVENESS: f64 = 20.0;
/// Horizon the abandon budget looks ahead (answers expiring sooner are not counted).
const BUDGET_HORIZON_S: i64 = 600;

/// Whether the agent may take calls of the campaign: a member of its agent group (when it has
/// one) and the campaign within the agent's campaigns profile.
fn eligible(agent: &Agent, cfg: &CampaignConfig) -> bool {
    crate::eligibility::agent_mismatches(&agent.groups, &agent.campaigns, cfg.id, cfg.agent_group).next().is_none()
}

impl Engine {
    fn set_ready(&mut self, agent: UserId) {
        let now = self.now;
        let Some(a) = self.agents.get_mut(&agent) else { return };
        if a.state == AgentState::Ready {
            self.ready_agents.remove(&(a.ready_since, agent));
        }
        if a.logout_pending {
            self.agents.remove(&agent);
            return;
        }
        if a.pause_pending {
            a.pause_pending = false;
            a.state = AgentState::NotReady;
            return;
        }
        a.state = AgentState::Ready;
        a.ready_since = now;
        self.ready_agents.insert((now, agent));
        // A waiting answered call takes the agent at once (highest priority, then oldest).
        let mut best: Option<(i32, DateTime<Utc>, CallId)> = None;
        for (deadline, id) in self.calls.waiting.iter() {
            let (deadline, id) = (*deadline, id);
            if let Some(c) = self.calls.get(id) {
                let Some(camp) = self.campaigns.get(&c.campaign) else { continue };
                if !eligible(a, &camp.cfg) {
                    continue;
                }
                let key = (camp.cfg.priority, deadline, *id);
                if best.is_none_or(|b| key.0 > b.0 || (key.0 == b.0 && key.1 < b.1)) {
                    best = Some(key);
                }
            }
        }
        if let Some((_, deadline, call)) = best {
            self.timers.remove(&(deadline, Timer::ConnectDeadline(call)));
            self.connect(call, agent);
        }
    }

    fn connect(&mut self, call_id: CallId, agent: UserId) {
        let now = self.now;
        let (campaign_id, record_id) = {
            let Some(mut c) = self.calls.get_mut(&call_id) else { return };
            c.state = CallState::Connected;
            c.connected_at = Some(now);
            c.agent = Some(agent);
            (c.campaign, c.cand.record.id)
        };
        if let Some(a) = self.agents.get_mut(&agent) {
            if a.state == AgentState::Ready {
                self.ready_agents.remove(&(a.ready_since, agent));
            }
            a.state = AgentState::Talking(call_id);
        }
        self.push(Output::Telephony(TelephonyCommand::Connect { call_id, agent }));
        self.push(Output::Agent(AgentNotice::CallConnected { agent, campaign_id, call_id, record_id }));
    }

    fn return_offered(&mut self, campaign: CampaignId, record: RecordId, defer: Option<Blocked>) {
        self.live_records.remove(&record);
        let now = self.now;
        let Some(c) = self.campaigns.get_mut(&campaign) else { return };
        let Some(mut b) = c.offered.remove(&record) else { return };
        match defer {
            None => {
                b.not_before = now;
                c.buffer.push_front(b);
            }
            Some(reason) => self.push(Output::Persist(PersistCommand::RecordDeferred { campaign_id: campaign, record_id: record, reason })),
        }
    }

    fn skip_offered(&mut self, agent: UserId, campaign: CampaignId, record: RecordId) {
        let delay = self.campaigns.get(&campaign).map_or(600, |c| c.cfg.settings.min_recall_delay_s as i64);
        let next = self.now + Duration::seconds(delay);
        let reason = Blocked {
            code: ReasonCode::PreviewSkipped,
            message: format!("agent {agent} skipped the record in preview"),
            next_dialable_at: Some(next),
        };
        self.return_offered(campaign, record, Some(reason));
        self.set_ready(agent);
    }

    fn dial_offered(&mut self, agent: UserId, campaign: CampaignId, record: RecordId) {
        self.live_records.remove(&record);
        let Some(b) = self.campaigns.get_mut(&campaign).and_then(|c| c.offered.remove(&record)) else {
            self.dial_ended(agent);
            return;
        };
        // Rules may have changed during the preview: check again.
        let ok = self.campaigns.get(&campaign).map(|c| self.check(c, &b));
        match ok {
            Some(Ok(())) => {
                if !self.dial(campaign, b, Some(agent)) {
                    self.dial_ended(agent);
                }
            }
            Some(Err(reason)) => {
                self.push(Output::Persist(PersistCommand::RecordDeferred { campaign_id: campaign, record_id: record, reason }));
                self.dial_ended(agent);
            }
            None => self.dial_ended(agent),
        }
    }

    fn preview_expired(&mut self, agent: UserId, t: DateTime<Utc>) {
        let Some(a) = self.agents.get(&agent) else { return };
        let AgentState::Preview { campaign, record, expires } = a.state else { return };
        if expires > t {
            return;
        }
        let action = self.campaigns.get(&campaign).map_or(PreviewTimeoutAction::Skip, |c| c.cfg.settings.preview_timeout_action);
        match action {
            PreviewTimeoutAction::Dial => self.dial_offered(agent, campaign, record),
            PreviewTimeoutAction::Skip => {
                self.push(Output::Agent(AgentNotice::PreviewWithdrawn { agent, record_id: record }));
                self.skip_offered(agent, campaign, record)
            }
        }
    }

    fn wrap_end(&mut self, agent: UserId, t: DateTime<Utc>, disp: Option<(CallResult, Option<CallbackRequest>)>) {
        let Some(a) = self.agents.get(&agent) else { return };
        let AgentState::WrapUp { call, until } = a.state else { return };
        if disp.is_none() && until > t {
            return;
        }
        let (result, cb) = match disp {
            Some((r, cb)) => (r, cb),
            None => (CallResult::Answered, None),
        };
        let next = a.next();
        self.finalize(call, result, cb);
        // Before `set_ready`, which may connect a waiting call at once (its notice comes after).
        self.push(Output::Agent(AgentNotice::WrapUpEnded { agent, call_id: call, next }));
        self.set_ready(agent);
    }

    fn connect_deadline(&mut self, id: CallId) {
        let now = self.now;
        let campaign = {
            let Some(mut c) = self.calls.get_mut(&id) else { return };
            let CallState::WaitingAgent { deadline } = c.state else { return };
            if deadline > now {
                return;
            }
            c.state = CallState::Playing;
            c.abandoned = true;
            c.campaign
        };
        if let Some(camp) = self.campaigns.get_mut(&campaign) {
            camp.ledger.add(now, 0.0, 1.0);
        }
        self.push(Output::Persist(PersistCommand::AbandonRecorded { call_id: id, campaign_id: campaign, at: now }));
        let prompt = self.cfg.safe_harbor_prompt.clone();
        self.push(Output::Telephony(TelephonyCommand::Play { call_id: id, prompt, then_hang_up: true, after_beep: false }));
    }

    /// The agent leg of a connected call failed: the agent goes not ready (or out, when they
    /// asked for it meanwhile) with the reason; the customer, still answered, goes to another
    /// ready agent while the connect deadline (from the answer) lasts, waits for one until it,
    /// or hears the safe-harbor message and is counted abandoned once it has passed.
    fn connect_failed(&mut self, id: CallId, agent: UserId, reason: String) {
        let now = self.now;
        let (campaign, deadline) = {
            let Some(mut c) = self.calls.get_mut(&id) else { return };
            if c.state != CallState::Connected || c.agent != Some(agent) {
                return;
            }
            let deadline_ms = self.campaigns.get(&c.campaign).map_or(2000, |x| x.cfg.settings.connect_deadline_ms as i64);
            let answered = c.answered_at.unwrap_or(now);
            c.agent = None;
            c.connected_at = None;
            c.state = CallState::WaitingAgent { deadline: answered + Duration::milliseconds(deadline_ms) };
            (c.campaign, answered + Duration::milliseconds(deadline_ms))
        };
        if let Some(a) = self.agents.get_mut(&agent) {
            if a.state == AgentState::Talking(id) {
                let next = if a.logout_pending { AfterWrapUp::LoggedOut } else { AfterWrapUp::NotReady };
                a.pause_pending = false;
                a.state = AgentState::NotReady;
                if a.logout_pending {
                    self.agents.remove(&agent);
                }
                self.push(Output::Agent(AgentNotice::PhoneFailed { agent, call_id: id, reason, next }));
            }
        }
        if deadline > now {
            if let Some(other) = self.longest_ready_agent(campaign) {
                self.connect(id, other);
                return;
            }
            self.timers.insert((deadline, Timer::ConnectDeadline(id)));
            return;
        }
        // The deadline has passed: abandoned, as when no agent was free in time.
        self.connect_deadline(id);
    }

    fn release_reserved(&mut self, call_id: CallId) {
        let agent = self.calls.get(&call_id).and_then(|c| c.agent);
        if let Some(agent) = agent {
            if self.agents.get(&agent).is_some_and(|a| a.state == AgentState::Reserved(call_id)) {
                if let Some(mut c) = self.calls.get_mut(&call_id) {
                    c.agent = None;
                }
                self.dial_ended(agent);
            }
        }
    }

    /// Back to ready (or the pause or logout asked meanwhile) after a dial for the agent that
    /// did not reach them, with the notice that says so.
    fn dial_ended(&mut self, agent: UserId) {
        let Some(next) = self.agents.get(&agent).map(Agent::next) else { return };
        self.push(Output::Agent(AgentNotice::DialEnded { agent, next }));
        self.set_ready(agent);
    }

    fn human(&mut self, id: CallId) {
        let now = self.now;
        let (campaign, reserved, dialed_at) = {
            let Some(mut c) = self.calls.get_mut(&id) else { return };
            c.live = true;
            (c.campaign, c.agent, c.dialed_at)
        };
        let Some(camp) = self.campaigns.get_mut(&campaign) else { return };
        camp.outcomes.insert((dialed_at, id), true);
        let age = (now - dialed_at).num_milliseconds() as f64 / 1000.0;
        camp.estimator.observe_answer_delay(age);
        camp.ages.observe_live(age);
        if camp.cfg.settings.dialing_mode == DialingMode::Agentless {
            if let Some(mut c) = self.calls.get_mut(&id) {
                c.state = CallState::Playing;
            }
            let prompt = self.cfg.agentless_prompt.clone();
            self.push(Output::Telephony(TelephonyCommand::Play { call_id: id, prompt, then_hang_up: true, after_beep: false }));
            return;
        }
        camp.ledger.add(now, 1.0, 0.0);
        {
            // Adapt the aim to the realised rate: the 24-hour window says whether there is room,
            // the last hour whether the present aim is what fills it. Without the second, a
            // campaign whose day rate crossed the target kept lowering its aim for hundreds of
            // answers after its calls were already back under it (the day rate moves slowly),
            // and one far under it kept raising it after the present aim was too high.
            let w = camp.ledger.window(now, WINDOW_24H_S);
            let cap = camp.cfg.settings.abandon_rate_max;
            let target = camp.cfg.settings.abandon_rate_target.min(cap);
            if w.live_answers >= 30.0 {
                let (rate, recent) = (w.rate(), camp.ledger.window(now, RECENT_WINDOW_S).rate());
                if rate < 0.8 * target && recent < target {
                    camp.aggressiveness = (camp.aggressiveness * 1.005).min(MAX_AGGRESSIVENESS);
                } else if rate > target && recent > target {
                    camp.aggressiveness = (camp.aggressiveness * 0.98).max(MIN_AGGRESSIVENESS);
                }
            }
        }
        let deadline = now + Duration::milliseconds(camp.cfg.settings.connect_deadline_ms as i64);
        if let Some(agent) = reserved.filter(|a| self.agents.get(a).is_some_and(|x| x.state == AgentState::Reserved(id))) {
            self.connect(id, agent);
            return;
        }
        match self.longest_ready_agent(campaign) {
            Some(agent) => self.connect(id, agent),
            None => {
                if let Some(mut c) = self.calls.get_mut(&id) {
                    c.state = CallState::WaitingAgent { deadline };
                }
                self.timers.insert((deadline, Timer::ConnectDeadline(id)));
            }
        }
    }

    /// The ready agent who may take the campaign's calls and has waited longest.
    fn longest_ready_agent(&self, campaign: CampaignId) -> Option<UserId> {
        let cfg = &self.campaigns.get(&campaign)?.cfg;
        // The ready set is ordered by (ready_since, id): the first eligible agent is the longest idle.
        self.ready_agents.iter().map(|(_, uid)| *uid).find(|uid| self.agents.get(uid).is_some_and(|a| eligible(a, cfg)))
    }

    fn machine(&mut self, id: CallId) {
        let (campaign, dialed_at) = {
            let Some(mut c) = self.calls.get_mut(&id) else { return };
            c.machine = true;
            (c.campaign, c.dialed_at)
        };
        let now = self.now;
        let Some(camp) = self.campaigns.get_mut(&campaign) else { return };
        camp.outcomes.insert((dialed_at, id), false);
        camp.ages.observe_other((now - dialed_at).num_milliseconds() as f64 / 1000.0);
        let action = camp.cfg.settings.call_analysis.amd_action;
        if action == MachineAction::ConnectAgent {
            self.human(id);
            return;
        }
        if camp.cfg.settings.abandon_policy == AbandonPolicy::UkOfcom24h {
            let s = self.cfg.amd_false_positive_share;
            camp.ledger.add(self.now, s, s);
        }
        if let Some(mut c) = self.calls.get_mut(&id) {
            c.state = CallState::Playing;
        }
        match action {
            MachineAction::LeaveMessage => {
                let prompt = self.cfg.machine_prompt.clone();
                self.push(Output::Telephony(TelephonyCommand::Play { call_id: id, prompt, then_hang_up: true, after_beep: true }));
            }
            _ => self.push(Output::Telephony(TelephonyCommand::HangUp { call_id: id })),
        }
        self.release_reserved(id);
    }

    fn telephony(&mut self, ev: TelephonyEvent) -> Result<(), EngineError> {
        let id = ev.call_id();
        let Some(c) = self.calls.get(&id) else { return Err(EngineError::UnknownCall(id)) };
        let amd = self.campaigns.get(&c.campaign).is_some_and(|x| x.cfg.settings.call_analysis.amd_enabled);
        match ev {
            TelephonyEvent::Ringing { .. } | TelephonyEvent::Connected { .. } | TelephonyEvent::PromptDone { .. } => {}
            TelephonyEvent::ConnectFailed { agent, reason, .. } => self.connect_failed(id, agent, reason),
            TelephonyEvent::Answered { answered_by, .. } => {
                if c.state != CallState::Dialing {
                    return Ok(());
                }
                let now = self.now;
                if let Some(mut c) = self.calls.get_mut(&id) {
                    c.answered_at = Some(now);
                }
                match answered_by {
                    AnsweredBy::Machine => self.machine(id),
                    AnsweredBy::Human => self.human(id),
                    AnsweredBy::Unknown if amd => {
                        if let Some(mut c) = self.calls.get_mut(&id) {
                            c.state = CallState::AwaitingAmd;
                        }
                    }
                    AnsweredBy::Unknown => self.human(id),
                }
            }
            TelephonyEvent::MachineDetected { answered_by, .. } => {
                if c.state != CallState::AwaitingAmd {
                    return Ok(());
                }
                match answered_by {
                    AnsweredBy::Machine => self.machine(id),
                    _ => self.human(id),
                }
            }
            TelephonyEvent::Digit { digit, .. } => {
                let number = c.cand.record.phone.clone();
                let agentless = self.campaigns.get(&c.campaign).is_some_and(|x| x.cfg.settings.dialing_mode == DialingMode::Agentless);
                if !agentless {
                    return Ok(());
                }
                let r = match digit {
                    '9' => {
                        if self.local_dnc.len() < self.cfg.max_local_dnc {
                            self.local_dnc.insert(number.clone());
                        }
                        self.push(Output::Persist(PersistCommand::DncAdd { number, reason: "pressed 9 in agentless message".into() }));
                        CallResult::DoNotCall
                    }
                    '1' => {
                        // "Press 1 for an agent": a ready agent of the campaign's group takes the
                        // call; without one (or without a group) the interest is recorded.
                        let group = self.campaigns.get(&c.campaign).and_then(|x| x.cfg.agent_group);
                        let campaign = c.campaign;
                        if c.state == CallState::Playing && group.is_some() {
                            if let Some(agent) = self.longest_ready_agent(campaign) {
                                self.connect(id, agent);
                                return Ok(());
                            }
                        }
                        CallResult::RightParty
                    }
                    _ => return Ok(()),
                };
                if let Some(mut c) = self.calls.get_mut(&id) {
                    c.digit_result = Some(r);
                }
            }
            TelephonyEvent::Ended { result, .. } => {
                let c = self.calls.get(&id).expect("checked above");
                if c.state == CallState::Ended {
                    return Ok(());
                }
                if let (CallState::Connected, Some(agent)) = (c.state, c.agent) {
                    let wrap = self.campaigns.get(&c.campaign).map_or(30, |x| x.cfg.settings.wrap_up_s as i64);
                    let until = self.now + Duration::seconds(wrap);
                    let now = self.now;
                    if let Some(mut c) = self.calls.get_mut(&id) {
                        c.state = CallState::Ended;
                        c.network_result = Some(result);
                        c.ended_at = Some(now);
                        let talk = c.connected_at.map(|at| (now - at).num_milliseconds() as f64 / 1000.0);
                        let campaign = c.campaign;
                        drop(c);
                        if let (Some(talk), Some(camp)) = (talk, self.campaigns.get_mut(&campaign)) {
                            camp.estimator.observe_talk(talk);
                        }
                    }
                    if let Some(a) = self.agents.get_mut(&agent) {
                        a.state = AgentState::WrapUp { call: id, until };
                    }
                    self.push(Output::Agent(AgentNotice::WrapUp { agent, call_id: id, until }));
                    if let Some(d) = self.pending_dispositions.remove(&id) {
                        self.wrap_end(agent, self.now, Some(d));
                    } else {
                        self.timers.insert((until, Timer::WrapEnd(agent)));
                    }
                    return Ok(());
                }
                struct Brief {
                    state: CallState,
                    campaign: CampaignId,
                    abandoned: bool,
                    machine: bool,
                    live: bool,
                    digit_result: Option<CallResult>,
                    dialed_at: DateTime<Utc>,
                }
                let mut c = Brief {
                    dialed_at: c.dialed_at,
                    state: c.state,
                    campaign: c.campaign,
                    abandoned: c.abandoned,
                    machine: c.machine,
                    live: c.live,
                    digit_result: c.digit_result,
                };
                if let CallState::WaitingAgent { deadline } = c.state {
                    // Hung up while waiting for an agent: counted as abandoned (conservative).
                    self.timers.remove(&(deadline, Timer::ConnectDeadline(id)));
                    c.abandoned = true;
                    if let Some(camp) = self.campaigns.get_mut(&c.campaign) {
                        camp.ledger.add(self.now, 0.0, 1.0);
                    }
                    self.push(Output::Persist(PersistCommand::AbandonRecorded { call_id: id, campaign_id: c.campaign, at: self.now }));
                }
                if !c.live && !c.machine {
                    if let Some(camp) = self.campaigns.get_mut(&c.campaign) {
                        camp.outcomes.insert((c.dialed_at, id), false);
                        camp.ages.observe_other((self.now - c.dialed_at).num_milliseconds() as f64 / 1000.0);
                    }
                }
                self.release_reserved(id);
                let r = if c.abandoned {
                    CallResult::Abandoned
                } else if c.machine {
                    CallResult::AnsweringMachine
                } else if c.live {
                    c.digit_result.unwrap_or(CallResult::Answered)
                } else if c.state == CallState::AwaitingAmd {
                    CallResult::Answered
                } else {
                    result
                };
                self.finalize(id, r, None);
            }
        }
        Ok(())
    }

    fn finalize(&mut self, id: CallId, result: CallResult, callback: Option<CallbackRequest>) {
        let Some(call) = self.calls.remove(&id) else { return };
        self.live_records.remove(&call.cand.record.id);
        self.live_numbers.remove(&call.cand.record.phone);
        self.live_chains.remove(&chain_key(&call.cand));
        self.pending_dispositions.remove(&id);
        let now = self.now;
        if let (Some(at), Some(camp)) = (call.connected_at, self.campaigns.get_mut(&call.campaign)) {
            camp.estimator.observe_handle((now - at).num_milliseconds() as f64 / 1000.0);
            if let Some(end) = call.ended_at {
                camp.estimator.observe_wrap((now - end).num_milliseconds() as f64 / 1000.0);
            }
        }
        let Some(camp) = self.campaigns.get(&call.campaign) else { return };
        let s = &camp.cfg.settings;
        self.outputs.push_back(Output::Persist(PersistCommand::CallResult {
            call_id: id,
            campaign_id: call.campaign,
            record_id: call.cand.record.id,
            result,
            dialed_at: call.dialed_at,
            answered_at: call.answered_at,
            connected_at: call.connected_at,
            ended_at: now,
            agent: call.agent,
            live_answer: call.live,
        }));
        let r = &call.cand.record;
        let zone = call.zones.as_ref().and_then(|z| z.zones.first().copied()).unwrap_or(camp.cfg.time_zone);
        let (u, dnc) = crate::treatment::after_call(&crate::treatment::FinishedCall {
            campaign_id: call.campaign,
            cand: &call.cand,
            settings: s,
            zone,
            result,
            callback,
            agent: call.agent,
            dialed_at: call.dialed_at,
            now,
        });
        let stopped_done = camp.stopped && self.calls.counts(call.campaign).total == 0;
        let chain_ended = u.chain == ChainStep::End;
        self.outputs.push_back(Output::Persist(PersistCommand::RecordUpdate(u)));
        if chain_ended {
            self.drop_chain(chain_key(&call.cand));
        }
        if dnc && !self.local_dnc.contains(&r.phone) {
            if self.local_dnc.len() < self.cfg.max_local_dnc {
                self.local_dnc.insert(r.phone.clone());
            }
            self.outputs.push_back(Output::Persist(PersistCommand::DncAdd {
                number: r.phone.clone(),
                reason: "agent disposition: do not call".into(),
            }));
        }
        if stopped_done {
            self.campaigns.remove(&call.campaign);
        }
    }

    /// The customer's chain ended: its other numbers buffered in any campaign are dropped (the
    /// store no longer offers them) and a preview of one of them is withdrawn. No other call to
    /// the customer can be in flight: one call per customer at a time (`live_chains`).
    fn drop_chain(&mut self, key: ChainKey) {
        assert!(!self.live_chains.contains(&key), "a chain ends with its only live call");
        for c in self.campaigns.values_mut() {
            c.buffer.remove_chain(key);
        }
        let previews: Vec<(UserId, CampaignId, RecordId, DateTime<Utc>)> = self
            .agents
            .iter()
            .filter_map(|(id, a)| match a.state {
                AgentState::Preview { campaign, record, expires } => Some((*id, campaign, record, expires)),
                _ => None,
            })
            .filter(|(_, campaign, record, _)| {
                self.campaigns.get(campaign).and_then(|c| c.offered.get(record)).is_some_and(|b| chain_key(&b.cand) == key)
            })
            .collect();
        for (agent, campaign, record, expires) in previews {
            self.timers.remove(&(expires, Timer::Preview(agent)));
            self.push(Output::Agent(AgentNotice::PreviewWithdrawn { agent, record_id: record }));
            self.live_records.remove(&record);
            if let Some(c) = self.campaigns.get_mut(&campaign) {
                c.offered.remove(&record);
            }
            self.set_ready(agent);
        }
    }

    /// Places a call: persist first, then dial. Returns false when the last-moment checks refuse.
    fn dial(&mut self, campaign: CampaignId, b: Buffered, agent: Option<UserId>) -> bool {
        let Some(camp) = self.campaigns.get(&campaign) else { return false };
        let s = &camp.cfg.settings;
        let number = b.cand.record.phone.clone();
        let dnc = DncWithLocal { inner: self.dnc.as_ref(), local: &self.local_dnc, changes: &self.dnc_changes, stale: &self.dnc_stale };
        if let Some(h) = dnc.lookup(&number, &s.dnc_list_ids, self.now) {
            let reason = Blocked {
                code: ReasonCode::Dnc,
                message: format!("{number} is on a do-not-call list (checked before dialing)"),
                next_dialable_at: h.expires_at,
            };
            self.push(Output::Persist(PersistCommand::RecordDeferred { campaign_id: campaign, record_id: b.cand.record.id, reason }));
            return false;
        }
        if self.live_numbers.contains(&number)
            || self.live_records.contains(&b.cand.record.id)
            || self.live_chains.contains(&chain_key(&b.cand))
            || self.calls.len() >= self.cfg.max_calls
        {
            if let Some(c) = self.campaigns.get_mut(&campaign) {
                let mut b = b;
                b.not_before = self.now + Duration::seconds(5);
                c.buffer.defer(b);
            }
            return false;
        }
        let call_id = CallId(self.next_call_id);
        self.next_call_id += 1;
        let r = &b.cand.record;
        let dial = TelephonyCommand::Dial {
            call_id,
            campaign_id: campaign,
            record_id: r.id,
            to: number.clone(),
            caller_id: s.caller_id.clone(),
            trunk: s.sip_trunk.clone(),
            ring_timeout_s: s.ring_timeout_s,
            analysis: s.call_analysis.dial_analysis(),
            record_audio: s.recording,
        };
        let agent_first = s.agent_first && s.dialing_mode == DialingMode::Progressive;
        self.push(Output::Persist(PersistCommand::AttemptStarted {
            call_id,
            campaign_id: campaign,
            record_id: r.id,
            chain_id: r.chain_id,
            number: number.clone(),
            at: self.now,
        }));
        if let (true, Some(a)) = (agent_first, agent) {
            self.push(Output::Agent(AgentNotice::AgentAlert { agent: a, campaign_id: campaign, call_id, record_id: r.id }));
        }
        self.push(Output::Telephony(dial));
        self.live_records.insert(r.id);
        self.live_numbers.insert(number);
        self.live_chains.insert(chain_key(&b.cand));
        if let Some((id, a)) = agent.and_then(|id| self.agents.get_mut(&id).map(|a| (id, a))) {
            if a.state == AgentState::Ready {
                self.ready_agents.remove(&(a.ready_since, id));
            }
            a.state = AgentState::Reserved(call_id);
        }
        self.calls.insert(
            call_id,
            Call {
                campaign,
                cand: b.cand,
                zones: b.zones,
                state: CallState::Dialing,
                dialed_at: self.now,
                answered_at: None,
                connected_at: None,
                ended_at: None,
                agent,
                live: false,
                machine: false,
                abandoned: false,
                digit_result: None,
                network_result: None,
            },
        );
        true
    }

    /// Takes the first dialable candidate (for `agent` when given: its personal callbacks first
    /// and none of another present agent's). Records blocked for long go back to the store with
    /// their reason.
    fn select(&mut self, campaign: CampaignId, agent: Option<UserId>) -> Option<Buffered> {
        let now = self.now;
        self.campaigns.get_mut(&campaign)?.buffer.promote(now);
        loop {
            let idx = {
                let camp = self.campaigns.get(&campaign)?;
                camp.buffer.ready.iter().position(|b| match b.cand.callback_agent {
                    Some(owner) if b.cand.record.record_type == RecordType::PersonalCallback => {
                        Some(owner) == agent || !self.agents.contains_key(&owner)
                    }
                    _ => true,
                })?
            };
            let b = self.campaigns.get_mut(&campaign)?.buffer.take_ready(idx)?;
            let res = self.check(&self.campaigns[&campaign], &b);
            match res {
                Ok(()) => return Some(b),
                Err(bl) => {
                    let camp = self.campaigns.get_mut(&campaign)?;
                    let mut b = b;
                    match bl.next_dialable_at {
                        _ if bl.code == ReasonCode::CallInProgress => {
                            b.not_before = now + Duration::seconds(30);
                            camp.buffer.defer(b);
                        }
                        Some(n) if n <= now + Duration::seconds(KEEP_DEFERRED_S) => {
                            b.not_before = n.max(now + Duration::seconds(1));
                            camp.buffer.defer(b);
                        }
                        _ => self.outputs.push_back(Output::Persist(PersistCommand::RecordDeferred {
                            campaign_id: campaign,
                            record_id: b.cand.record.id,
                            reason: bl,
                        })),
                    }
                }
            }
        }
    }

    fn campaign_has_work(&mut self, cid: CampaignId) -> bool {
        let now = self.now;
        self.campaigns.get_mut(&cid).is_some_and(|c| {
            c.buffer.promote(now);
            !c.buffer.ready.is_empty()
        })
    }
    /// Decides dials for every campaign, highest priority first.
    fn pace(&mut self) {
        let now = self.now;
        let max_buf = self.cfg.max_buffer_per_campaign;
        for (id, c) in self.campaigns.iter_mut() {
            // Outcomes of calls dialed before the oldest call still ringing are complete.
            let oldest = self.calls.ringing.get(id).and_then(|r| r.oldest_dial_s());
            loop {
                let full = c.outcomes.len() > MAX_PENDING_OUTCOMES;
                let Some(e) = c.outcomes.first_entry() else { break };
                if oldest.is_some_and(|o| e.key().0.timestamp() >= o) && !full {
                    break;
                }
                let live = e.remove();
                c.estimator.observe_at(live, now.timestamp_millis() as f64 / 1000.0);
            }
        }
        for (id, c) in self.campaigns.iter_mut() {
            c.buffer.promote(now);
            let ready = c.buffer.ready.len();
            if !c.stopped && !c.requested && c.refill_after.is_none() && ready < max_buf / 2 && c.buffer.len() < max_buf {
                c.requested = true;
                self.outputs.push_back(Output::NeedRecords { campaign_id: *id, max: max_buf - c.buffer.len() });
            }
        }
        let mut order = std::mem::take(&mut self.order_scratch);
        order.clear();
        order.extend(self.campaigns.iter().filter(|(_, c)| !c.stopped).map(|(id, c)| (-c.cfg.priority, *id)));
        order.sort_unstable();
        // Ready agents, longest idle first, each assigned to the best campaign with work.
        debug_assert!(
            self.ready_agents.iter().copied().eq({
                let mut v: Vec<(DateTime<Utc>, UserId)> =
                    self.agents.iter().filter(|(_, a)| a.state == AgentState::Ready).map(|(id, a)| (a.ready_since, *id)).collect();
                v.sort_unstable();
                v
            }),
            "the ready set matches the agents' states"
        );
        let ready: Vec<(DateTime<Utc>, UserId)> = self.ready_agents.iter().copied().collect();
        // Per position in `order`: has a dialable candidate; the agents assigned to it.
        let has_work: Vec<bool> =
            if ready.is_empty() { Vec::new() } else { order.iter().map(|(_, cid)| self.campaign_has_work(*cid)).collect() };
        let mut assigned: Vec<Vec<UserId>> = vec![Vec::new(); if ready.is_empty() { 0 } else { order.len() }];
        for (_, agent) in &ready {
            let a = &self.agents[agent];
            for (k, (_, cid)) in order.iter().enumerate() {
                let c = &self.campaigns[cid];
                if has_work[k] && c.cfg.settings.dialing_mode != DialingMode::Agentless && eligible(a, &c.cfg) {
                    assigned[k].push(*agent);
                    break;
                }
            }
        }
        for (k, &(_, cid)) in order.iter().enumerate() {
            let agents = assigned.get_mut(k).map(std::mem::take).unwrap_or_default();
            let (mode, agent_first) = {
                let c = &self.campaigns[&cid];
                (c.cfg.settings.dialing_mode, c.cfg.settings.agent_first)
            };
            let _ = agent_first;
            match mode {
                DialingMode::Preview => {
                    for agent in agents {
                        let Some(b) = self.select(cid, Some(agent)) else { break };
                        let c = self.campaigns.get_mut(&cid).expect("in order");
                        let expires = now + Duration::seconds(c.cfg.settings.preview_timeout_s as i64);
                        let record = b.cand.record.id;
                        c.offered.insert(record, b);
                        self.live_records.insert(record);
                        if let Some(a) = self.agents.get_mut(&agent) {
                            if a.state == AgentState::Ready {
                                self.ready_agents.remove(&(a.ready_since, agent));
                            }
                            a.state = AgentState::Preview { campaign: cid, record, expires };
                        }
                        self.timers.insert((expires, Timer::Preview(agent)));
                        self.push(Output::Agent(AgentNotice::PreviewOffer {
                            agent,
                            campaign_id: cid,
                            record_id: record,
                            expires_at: expires,
                        }));
                    }
                }
                DialingMode::Progressive => {
                    for agent in agents {
                        let Some(b) = self.select(cid, Some(agent)) else { break };
                        self.dial(cid, b, Some(agent));
                    }
                }
                DialingMode::Power | DialingMode::Predictive => {
                    // Personal callbacks go to their own agent with a reserved line.
                    let mut free = Vec::new();
                    for agent in agents {
                        let has_cb = self.campaigns.get_mut(&cid).expect("in order").buffer.has_due_personal(agent, now);
                        if has_cb {
                            if let Some(b) = self.select(cid, Some(agent)) {
                                if b.cand.callback_agent == Some(agent) {
                                    self.dial(cid, b, Some(agent));
                                    continue;
                                }
                                self.campaigns.get_mut(&cid).expect("in order").buffer.push_front(b);
                            }
                        }
                        free.push(agent);
                    }
                    let target = self.target_in_flight(cid, mode, free.len());
                    let in_flight = self.calls.counts(cid).unanswered;
                    for _ in in_flight..target {
                        let Some(b) = self.select(cid, None) else { break };
                        self.dial(cid, b, None);
                    }
                }
                DialingMode::Agentless => {
                    let lines = self.campaigns[&cid].cfg.agentless_lines as usize;
                    let live = self.calls.counts(cid).total;
                    for _ in live..lines {
                        let Some(b) = self.select(cid, None) else { break };
                        self.dial(cid, b, None);
                    }
                }
            }
        }
        self.order_scratch = order;
    }

    fn target_in_flight(&self, cid: CampaignId, mode: DialingMode, free: usize) -> usize {
        let c = &self.campaigns[&cid];
        let s = &c.cfg.settings;
        let waiting = self.calls.counts(cid).waiting;
        let cap = s.abandon_rate_max;
        let budget = c.ledger.budget_cached(self.now, WINDOW_24H_S, BUDGET_HORIZON_S, cap).min(c.ledger.budget_cached(
            self.now,
            WINDOW_30D_S,
            BUDGET_HORIZON_S,
            cap,
        )) - ABANDON_RESERVE;
        let in_flight = self.calls.counts(cid).unanswered;
        let input = pacing::PaceInput {
            free_agents: free,
            waiting,
            in_flight,
            p_mean: c.estimator.mean(),
            p_high: c.estimator.upper(),
            budget,
            risk: self.cfg.predictive_risk,
            max_in_flight: self.cfg.max_calls,
        };
        if mode == DialingMode::Power {
            let want = ((free as f64 * s.lines_per_agent).floor() as usize).saturating_sub(waiting);
            return if self.cfg.guard_power { pacing::guard_max(&input, want) } else { want };
        }
        let counts = self.calls.counts(cid);
        let (p, p_high) = (c.estimator.slow_mean(), c.estimator.slow_upper(P_HIGH_Z));
        let ringing = self.calls.ringing.get(&cid).map(|r| r.outlook(self.now.timestamp(), &c.ages, p, p_high)).unwrap_or_default();
        let look = pacing::Lookahead {
            free_agents: free,
            waiting,
            ringing,
            p_mean: p,
            p_high,
            theta: (s.abandon_rate_target * c.aggressiveness * THETA_PER_TARGET).clamp(0.001, 0.5),
            budget,
            risk: self.cfg.predictive_risk,
            max_in_flight: self.cfg.max_calls,
        };
        let _ = in_flight;
        counts.unanswered + pacing::predictive_dials(&look)
    }
}
