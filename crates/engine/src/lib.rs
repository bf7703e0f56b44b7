//! Campana's dialing engine: a pure state machine (sans-IO, like quinn-proto or str0m).
//!
//! The driver (simulator or live server) owns every clock, socket and database:
//!
//! ```text
//! loop {
//!     engine.handle_input(now, input)?;           // or engine.handle_timeout(now) at next_deadline()
//!     while let Some(out) = engine.poll_output() { /* persist, dial, notify, fetch records */ }
//! }
//! ```
//!
//! Limits (all in [`EngineConfig`]): buffered candidates per campaign, campaigns, agents, live
//! calls, pending outputs, locally held DNC additions. Eligibility ([`eligibility`]) is the same
//! code the engine, [`check_number`] and [`compliance_preview`] use.

pub mod abandon;
pub mod dnc;
pub mod dnc_set;
pub mod eligibility;
pub mod engine;
pub mod fxhash;
pub mod pacing;
pub mod rules;
pub mod treatment;
pub mod types;
pub mod zones;

pub use eligibility::{
    agent_mismatches, check_number, check_number_with, compliance_preview, AgentMismatch, Blocked, CampaignConfig, Candidate,
    CheckNumberReport, CompliancePreview, DncHit, DncLookup, InMemoryDnc, NoDnc, ReasonCode, StoreHold,
};
pub use engine::{AgentState, AgentView, Engine, EngineConfig, UnknownAgentState, ABANDON_RESERVE};
pub use rules::{CallingRules, RulesError};
pub use types::*;

/// The live server moves the engine between tasks: it must stay `Send`.
const _: () = {
    const fn is_send<T: Send>() {}
    is_send::<Engine>();
    is_send::<Output>();
    is_send::<Input>();
};
