//! The boundary between the dialing engine and whatever places calls (simulated telephony in
//! the demo and tests, SIP in production). The engine emits [`TelephonyCommand`]s and is fed
//! [`TelephonyEvent`]s; it never knows which implementation runs.

use crate::ids::{CampaignId, RecordId, UserId};
use crate::phone::PhoneNumber;
use crate::record::CallResult;
use serde::{Deserialize, Serialize};

/// Identifies one customer call leg for its whole life (unique per server run and persisted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub u64);

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// A named audio prompt (safe-harbor message, agentless message, ...), resolved to a file by the
/// telephony implementation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PromptName(pub String);

/// What the engine asks telephony to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum TelephonyCommand {
    /// Place a call to a customer. The engine has already persisted the attempt.
    Dial {
        call_id: CallId,
        campaign_id: CampaignId,
        record_id: RecordId,
        to: PhoneNumber,
        caller_id: Option<PhoneNumber>,
        /// The named SIP trunk (the profile's `sip_trunk`); `None`: the default trunk.
        trunk: Option<String>,
        ring_timeout_s: u32,
        /// What to listen for on the call (the profile's call-analysis settings).
        analysis: DialAnalysis,
        record_audio: bool,
    },
    /// Bridge an answered customer call to an agent's phone.
    Connect { call_id: CallId, agent: UserId },
    /// Play a prompt on an answered call; `then_hang_up` ends the call when it finishes.
    /// `after_beep` (a message for an answering machine) starts it when the machine's beep
    /// ends, or after the silence that follows a greeting with no beep, never over the greeting.
    Play { call_id: CallId, prompt: PromptName, then_hang_up: bool, after_beep: bool },
    /// End the call (CANCEL before answer, BYE after).
    HangUp { call_id: CallId },
    /// Stop the agent leg of a `Connect` to `agent` (CANCEL while the phone rings, BYE once
    /// bridged): the agent has left. The customer stays on the line, answered and not bridged,
    /// and no `ConnectFailed` follows; the engine connects another agent or plays the
    /// safe-harbor message. Nothing happens when that agent's leg is gone already.
    Disconnect { call_id: CallId, agent: UserId },
}

/// What telephony listens for on one call, from the profile's call-analysis settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialAnalysis {
    /// Answering-machine detection after answer, with the profile's tuning; `None`: off.
    pub machine: Option<MachineTuning>,
    /// Fax tones after answer end the call as `fax`.
    pub fax: bool,
    /// SIT tones (early media or after answer) end the call with the SIT's result.
    pub sit: bool,
}

impl Default for DialAnalysis {
    fn default() -> Self {
        DialAnalysis { machine: None, fax: true, sit: true }
    }
}

/// The answering-machine heuristic's main knobs, as a profile sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineTuning {
    /// Silence after answer longer than this: machine.
    pub initial_silence_ms: u32,
    /// A greeting longer than this: machine.
    pub greeting_ms: u32,
    /// More words than this in the greeting: machine.
    pub max_words: u32,
}

/// What machine detection concluded about an answered call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredBy {
    Human,
    Machine,
    /// Detection was off or undecided.
    Unknown,
}

/// What telephony reports back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TelephonyEvent {
    Ringing {
        call_id: CallId,
    },
    /// The far end answered; `answered_by` comes when detection has decided (or at once when off).
    Answered {
        call_id: CallId,
        answered_by: AnsweredBy,
    },
    /// Machine detection finished after the answer was reported.
    MachineDetected {
        call_id: CallId,
        answered_by: AnsweredBy,
    },
    /// The agent leg is up and media flows between customer and agent.
    Connected {
        call_id: CallId,
        agent: UserId,
    },
    /// The agent leg of a `Connect` failed (the phone refused, did not answer in time, is not
    /// registered, or could not be reached): the customer is still on the line, answered and
    /// not bridged. The engine connects another agent within the connect deadline, or plays the
    /// safe-harbor message and counts the call as abandoned.
    ConnectFailed {
        call_id: CallId,
        agent: UserId,
        reason: String,
    },
    /// A prompt finished playing.
    PromptDone {
        call_id: CallId,
    },
    /// A digit pressed by the customer (RFC 4733), e.g. in agentless IVR.
    Digit {
        call_id: CallId,
        digit: char,
    },
    /// The call is over; `result` is the network's outcome (busy, no answer, SIT, ...), or
    /// `answered` when it was answered and later hung up.
    Ended {
        call_id: CallId,
        result: CallResult,
    },
}

impl TelephonyEvent {
    pub fn call_id(&self) -> CallId {
        match self {
            TelephonyEvent::Ringing { call_id }
            | TelephonyEvent::Answered { call_id, .. }
            | TelephonyEvent::MachineDetected { call_id, .. }
            | TelephonyEvent::Connected { call_id, .. }
            | TelephonyEvent::ConnectFailed { call_id, .. }
            | TelephonyEvent::PromptDone { call_id }
            | TelephonyEvent::Digit { call_id, .. }
            | TelephonyEvent::Ended { call_id, .. } => *call_id,
        }
    }
}
