//! The engine's inputs and outputs.

use crate::eligibility::{Blocked, CampaignConfig, Candidate, DncHit, DncLookup};
use campana_core::record::{CallResult, RecordStatus, RecordType};
use campana_core::telephony::{CallId, TelephonyCommand, TelephonyEvent};
use campana_core::user::CampaignsProfile;
use campana_core::{AgentGroupId, CampaignId, ChainId, PhoneNumber, RecordId, UserId};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::sync::Arc;

/// A callback an agent asked for in a disposition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallbackRequest {
    pub at: DateTime<Utc>,
    /// Personal (the same agent) or campaign-wide (any agent).
    pub personal: bool,
}

/// What the driver tells the engine.
#[derive(Debug, Clone)]
pub enum Input {
    CampaignStarted(Box<CampaignConfig>),
    /// New effective settings, hours, priority or group; buffered records are re-checked.
    CampaignUpdated(Box<CampaignConfig>),
    CampaignStopped {
        campaign_id: CampaignId,
    },
    /// A batch of candidates, in dialing order (answer to [`Output::NeedRecords`]; an empty
    /// batch means "none for now").
    RecordsAvailable {
        campaign_id: CampaignId,
        records: Vec<Candidate>,
    },
    /// The answer to the campaign's last [`Output::NeedRecords`] held fewer records than asked:
    /// the store has no more to offer for now (the list is running out). Until a refill brings
    /// as many as asked, predictive pacing keeps no more calls in flight than free agents:
    /// over-dialing past the end of a list buys nothing and risks abandons.
    ListExhausted {
        campaign_id: CampaignId,
    },
    /// Abandon-accounting history replayed at start-up: one entry per minute of the last 30
    /// days with calls (the ledger's own bucket width, so nothing leaves a window early).
    AbandonHistory {
        campaign_id: CampaignId,
        at: DateTime<Utc>,
        live_answers: u32,
        abandons: u32,
        /// Calls the AMD classified as machines and that were not given to an agent: under
        /// `uk_ofcom_24h` each adds `amd_false_positive_share` to both counts, as it did live.
        machine_verdicts: u32,
    },
    AgentLogin {
        agent: UserId,
        groups: Vec<AgentGroupId>,
        /// The user's campaigns profile: the agent takes calls only of these campaigns, even
        /// when another campaign dials for one of the agent's groups.
        campaigns: CampaignsProfile,
    },
    AgentReady {
        agent: UserId,
    },
    AgentNotReady {
        agent: UserId,
        pause_code: String,
    },
    AgentLogout {
        agent: UserId,
    },
    Telephony(TelephonyEvent),
    /// The agent's outcome for a call; ends wrap-up.
    Disposition {
        agent: UserId,
        call_id: CallId,
        result: CallResult,
        callback: Option<CallbackRequest>,
    },
    PreviewAccept {
        agent: UserId,
        record_id: RecordId,
    },
    PreviewSkip {
        agent: UserId,
        record_id: RecordId,
    },
    /// The DNC entries of these numbers changed (added, removed, expiry moved): each number's
    /// entries in force (over all lists) replace what the engine knew of it, until a
    /// [`Input::DncReplaced`] built after change `seq` arrives.
    DncChanged {
        seq: u64,
        numbers: Vec<(PhoneNumber, Vec<DncHit>)>,
    },
    /// A fresh copy of every DNC list, read from the store after change `as_of_seq`: it replaces
    /// the engine's lists; changes after `as_of_seq` stay on top of it.
    DncReplaced {
        lists: SharedDnc,
        as_of_seq: u64,
    },
    /// The registries whose copy is older than their limit (replaces the previous set): every
    /// number they cover is refused for the campaigns that use them.
    DncStale(Vec<crate::dnc::StaleCoverage>),
}

/// DNC lists shared between the driver and the engine (immutable; replaced whole).
#[derive(Clone)]
pub struct SharedDnc(pub Arc<dyn DncLookup + Send + Sync>);

impl std::fmt::Debug for SharedDnc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedDnc")
    }
}

impl DncLookup for SharedDnc {
    fn lookup(&self, number: &PhoneNumber, lists: &[campana_core::DncListId], now: DateTime<Utc>) -> Option<DncHit> {
        self.0.lookup(number, lists, now)
    }
    fn blocked(&self, number: &PhoneNumber, lists: &[campana_core::DncListId]) -> Option<DncHit> {
        self.0.blocked(number, lists)
    }
}

/// What the store must write about a record after a call (the treatment's outcome).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordUpdate {
    pub campaign_id: CampaignId,
    pub record_id: RecordId,
    pub chain_id: ChainId,
    pub record_type: RecordType,
    pub record_status: RecordStatus,
    pub attempts_total: i32,
    pub attempts_today: i32,
    pub attempts_day: Option<NaiveDate>,
    /// Attempts on the customer's chain after this call.
    pub chain_attempts: u32,
    pub last_result: CallResult,
    pub last_call_at: DateTime<Utc>,
    /// Not before this moment (treatment's retry interval).
    pub retry_at: Option<DateTime<Utc>>,
    pub callback_at: Option<DateTime<Utc>>,
    pub callback_agent: Option<UserId>,
    /// Consecutive attempts that ended with `last_result` (drives `max_retries`).
    pub result_streak: u32,
    /// What the call does to the customer's chain ([`crate::treatment::chain_step`]).
    pub chain: ChainStep,
}

/// What a finished call does to the customer's chain of numbers (docs/dialing.md, "What ends a
/// chain").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainStep {
    /// This number stays the customer's current one (a retry or a callback is scheduled).
    Stay,
    /// This number is done; the customer's next open number is dialed next.
    NextNumber,
    /// The customer is done: no number of the chain is dialed again.
    End,
}

/// Persistence commands. `AttemptStarted` always precedes the matching `Dial`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "persist", rename_all = "snake_case")]
pub enum PersistCommand {
    AttemptStarted {
        call_id: CallId,
        campaign_id: CampaignId,
        record_id: RecordId,
        chain_id: ChainId,
        number: PhoneNumber,
        at: DateTime<Utc>,
    },
    CallResult {
        call_id: CallId,
        campaign_id: CampaignId,
        record_id: RecordId,
        result: CallResult,
        dialed_at: DateTime<Utc>,
        answered_at: Option<DateTime<Utc>>,
        connected_at: Option<DateTime<Utc>>,
        ended_at: DateTime<Utc>,
        agent: Option<UserId>,
        live_answer: bool,
    },
    RecordUpdate(RecordUpdate),
    AbandonRecorded {
        call_id: CallId,
        campaign_id: CampaignId,
        at: DateTime<Utc>,
    },
    /// The engine gives a record back without dialing it: the store must not offer it again
    /// before `reason.next_dialable_at` (never when `None`, until something changes).
    RecordDeferred {
        campaign_id: CampaignId,
        record_id: RecordId,
        reason: Blocked,
    },
    /// Add a number to the internal do-not-call list.
    DncAdd {
        number: PhoneNumber,
        reason: String,
    },
}

/// What agents' screens should show.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum AgentNotice {
    PreviewOffer {
        agent: UserId,
        campaign_id: CampaignId,
        record_id: RecordId,
        expires_at: DateTime<Utc>,
    },
    PreviewWithdrawn {
        agent: UserId,
        record_id: RecordId,
    },
    /// Agent-first progressive: the agent is alerted and connected before the customer answers.
    AgentAlert {
        agent: UserId,
        campaign_id: CampaignId,
        call_id: CallId,
        record_id: RecordId,
    },
    CallConnected {
        agent: UserId,
        campaign_id: CampaignId,
        call_id: CallId,
        record_id: RecordId,
    },
    WrapUp {
        agent: UserId,
        call_id: CallId,
        until: DateTime<Utc>,
    },
    /// Wrap-up ended (the agent's disposition, or the profile's `wrap_up_s` ran out): the agent
    /// is ready again, or not ready / logged out when that was asked during the call.
    WrapUpEnded {
        agent: UserId,
        call_id: CallId,
        next: AfterWrapUp,
    },
    /// The agent's phone failed on a call given to them (refused, not answered, not registered):
    /// the agent is put not ready (`pause_code` [`PHONE_FAILED_PAUSE_CODE`]), or logged out when
    /// that was asked meanwhile, and the call went to another agent or was abandoned.
    PhoneFailed {
        agent: UserId,
        call_id: CallId,
        reason: String,
        next: AfterWrapUp,
    },
    /// The call dialed for this agent (progressive, preview, personal callback) ended without
    /// reaching them, or the previewed record could not be dialed after all: the agent is ready
    /// again, or not ready / logged out when that was asked meanwhile.
    DialEnded {
        agent: UserId,
        next: AfterWrapUp,
    },
}

/// The pause code of an agent put not ready because their phone failed on a call.
pub const PHONE_FAILED_PAUSE_CODE: &str = "phone_failed";

/// Where an agent goes when wrap-up (or a dial for them) ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterWrapUp {
    Ready,
    NotReady,
    LoggedOut,
}

/// What the driver polls out.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "output", rename_all = "snake_case")]
pub enum Output {
    Telephony(TelephonyCommand),
    Persist(PersistCommand),
    Agent(AgentNotice),
    /// Send up to `max` more candidates with [`Input::RecordsAvailable`].
    NeedRecords {
        campaign_id: CampaignId,
        max: usize,
    },
}

/// Typed errors of the engine.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("campaign {0} is not running in the engine")]
    UnknownCampaign(CampaignId),
    #[error("agent {0} is not logged in")]
    UnknownAgent(UserId),
    #[error("{0} is not a call the engine knows")]
    UnknownCall(CallId),
    #[error("limit reached: {what} (max {limit})")]
    Limit { what: &'static str, limit: usize },
    #[error("{0} outputs are waiting; poll them before sending more input")]
    OutputBacklog(usize),
    #[error("{0}")]
    InvalidState(String),
}
