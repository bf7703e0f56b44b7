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

mod agents;
mod buffer;
mod call_events;
mod calls;
mod inputs;
mod pacing_pass;

use agents::*;
pub use agents::{AgentState, AgentView, UnknownAgentState};
use buffer::*;
use calls::*;
pub use pacing_pass::ABANDON_RESERVE;
use pacing_pass::*;

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

#[derive(Debug)]
struct Camp {
    cfg: CampaignConfig,
    buffer: Buffer,
    requested: bool,
    refill_after: Option<DateTime<Utc>>,
    /// The last refill brought fewer records than asked ([`Input::ListExhausted`]).
    list_exhausted: bool,
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

    /// What an agent is doing (`None`: not logged in). The driver copies this; it keeps no
    /// agent state of its own.
    pub fn agent_view(&self, agent: UserId) -> Option<AgentView> {
        let a = self.agents.get(&agent)?;
        let of_call = |call: CallId| {
            let c = self.calls.get(call);
            (c.map(|c| c.campaign), c.map(|c| c.cand.record.id), Some(call))
        };
        let ((campaign, record, call), until) = match a.state {
            Activity::NotReady | Activity::Ready => ((None, None, None), None),
            Activity::Preview { campaign, record, expires } => ((Some(campaign), Some(record), None), Some(expires)),
            Activity::Reserved { call, .. } | Activity::Talking(call) => (of_call(call), None),
            Activity::WrapUp { call, until } => (of_call(call), Some(until)),
        };
        Some(AgentView {
            state: a.state.kind(),
            since: a.since,
            campaign,
            record,
            call,
            until,
            pause_code: a.pause_code.clone(),
            pause_pending: a.pause_pending,
            logout_pending: a.logout_pending,
        })
    }

    /// The logged-in agents, by id.
    pub fn agent_ids(&self) -> impl Iterator<Item = UserId> + '_ {
        self.agents.keys().copied()
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
