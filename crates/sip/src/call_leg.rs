//! One outbound call (the customer leg) as a sans-IO state machine.
//!
//! [`CallLeg`] holds where a call is in its life (waiting for its pacing slot, INVITE sent,
//! answered, ended) and everything that decides what happens next: the CANCEL and why it was
//! sent, the ring and maximum-duration deadlines, the prompt playing, a message waiting for an
//! answering machine's beep, the agent leg, the call analysis (SIT and fax tones, machine
//! detection). Each transition is [`CallLeg::handle`]: a pure function of an [`Event`] and
//! `now` that returns the [`Action`]s to carry out (send a CANCEL, start media, play audio,
//! report a [`TelephonyEvent`], end with a [`CallResult`], ...). It owns no socket, task or
//! timer: the call task in `lib.rs` moves bytes, sleeps until [`CallLeg::next_deadline`] and
//! feeds what happened, so the same code runs live and in the unit tests below.

use crate::analysis::{self, Amd, AmdParams, BeepDetector, ToneDetector};
use crate::results::{map_final_status, map_no_response, CancelReason};
use campana_core::ids::UserId;
use campana_core::record::CallResult;
use campana_core::telephony::{AnsweredBy, CallId, TelephonyEvent};
use std::time::{Duration, Instant};

/// What a call is set up with.
#[derive(Debug, Clone)]
pub struct LegConfig {
    pub call_id: CallId,
    /// The pacing slot: the INVITE goes out at this moment, not before.
    pub send_at: Instant,
    /// A CANCEL goes out when no final response came this long after the INVITE.
    pub ring_timeout_s: u32,
    /// A BYE goes out when the call is answered this long after the INVITE.
    pub max_call_duration_s: u32,
    /// SIT detection (early media and after answer) is on for this call.
    pub sit: bool,
    /// Fax detection after answer is on for this call.
    pub fax: bool,
    /// Machine detection after answer, with these parameters; `None`: off.
    pub amd: Option<AmdParams>,
    /// The dial asked for a recording.
    pub record: bool,
}

/// Where a call is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the pacing slot; no INVITE yet.
    Waiting,
    /// The INVITE is out (or going out): no final response yet. `cancelled` tells whether
    /// Campana sent a CANCEL and why.
    Setup,
    /// The far end answered (2xx).
    Answered,
    /// Over with this result.
    Ended(CallResult),
}

/// Something that happened to the call, fed to [`CallLeg::handle`].
#[derive(Debug)]
pub enum Event<'a> {
    /// Time passed: deadlines at or before `now` fire (pacing slot, ring timeout, maximum
    /// duration, the wait for a beep).
    Tick,
    /// The INVITE is out (after [`Action::SendInvite`]).
    InviteSent,
    /// The INVITE could not be sent (no RTP port, a bad request): the call ends with this.
    InviteNotSent(CallResult),
    /// A provisional response without dialog (100 Trying).
    Trying,
    /// An early dialog (180, 183) with its SDP body, maybe empty.
    Early { sdp: &'a [u8] },
    /// The dialog is confirmed by a 2xx, with its SDP answer.
    Confirmed { sdp: &'a [u8] },
    /// The dialog ended (BYE from the far end, or after ours).
    Terminated,
    /// The dialog's state channel closed.
    StatesClosed,
    /// A re-INVITE or UPDATE from the far end (answered per [`Action::AnswerOffer`]).
    Reoffer,
    /// The INVITE transaction's final response.
    Final {
        code: u16,
        sdp: &'a [u8],
        /// A 408 made by the stack itself when Timer B fired: nothing came back.
        local_timeout: bool,
    },
    /// The INVITE transaction ended without a final response (transport error).
    NoFinal,
    /// The engine's `HangUp` (or its control queue closed).
    HangUp,
    /// The engine's `Connect`, with the agent phone's registered contact when there is one.
    Connect { agent: UserId, contact: Option<String> },
    /// The engine's `Disconnect`: stop this agent's leg (the agent left); no `ConnectFailed`.
    Disconnect { agent: UserId },
    /// The engine's `Play`, with the prompt's audio (G.711 of the call's payload type) or why
    /// it cannot be played.
    Play { prompt: String, audio: Result<Vec<u8>, String>, then_hang_up: bool, after_beep: bool },
    /// The prompt playing now finished.
    PromptDone,
    /// One 20 ms frame of the customer's audio (linear samples), while analysing.
    CustomerAudio(&'a [f32]),
    /// A digit the customer pressed (RFC 4733).
    Digit(char),
    /// The agent's phone answered.
    AgentAnswered,
    /// The agent's phone failed (refused, did not answer, unreachable).
    AgentFailed(String),
    /// The agent hung up (or its leg is gone).
    AgentEnded,
    /// The telephony is shutting down.
    Shutdown,
}

/// What the call task carries out, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Bind the RTP port and send the INVITE, then feed [`Event::InviteSent`] (or
    /// [`Event::InviteNotSent`]).
    SendInvite,
    /// CANCEL the INVITE.
    Cancel,
    /// BYE (the dialog's hang-up).
    Bye,
    /// Send media towards the address of this SDP (answer or early media); empty: nothing.
    StartMedia { sdp: Vec<u8> },
    /// Record the call (when a recordings directory is configured).
    StartRecording,
    /// Copy the customer's frames to the analysis ([`Event::CustomerAudio`]).
    AnalyseCustomer,
    /// Stop copying them.
    StopAnalysing,
    /// Play this audio to the customer and report [`Event::PromptDone`] at its end; `None`:
    /// nothing to play, report it done at once.
    Play { audio: Option<Vec<u8>> },
    /// Forget the prompt playing (no [`Event::PromptDone`] for it).
    StopPrompt,
    /// Call the agent's phone at this contact (its leg reports [`Event::AgentAnswered`], ...).
    CallAgent { agent: UserId, contact: String },
    /// End the agent leg (CANCEL before answer, BYE after).
    StopAgentLeg,
    /// Undo the bridge: the customer's media is the customer leg's own again (prompts can
    /// play), nothing is relayed to the agent leg.
    Unbridge,
    /// Bridge the customer's media to the agent's; `kernel`: the kernel may forward it (no
    /// machine detection still listening).
    Bridge { kernel: bool },
    /// Answer the far end's re-INVITE / UPDATE: 200 with our SDP, the new media address
    /// followed (`bridged`: by the relay towards the agent) or 488 when unreadable.
    AnswerOffer { bridged: bool },
    /// Report this to the engine.
    Emit(TelephonyEvent),
    /// The call is over with this result (the last action).
    End(CallResult),
}

/// The agent leg of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentLeg {
    /// The agent's phone is being called.
    Calling(UserId),
    /// Answered and bridged to the customer.
    Bridged(UserId),
}

impl AgentLeg {
    pub fn agent(self) -> UserId {
        match self {
            AgentLeg::Calling(a) | AgentLeg::Bridged(a) => a,
        }
    }
}

/// A message for an answering machine, played once the beep is over.
#[derive(Debug)]
struct MessageAfterBeep {
    beep: BeepDetector,
    audio: Vec<u8>,
    then_hang_up: bool,
    /// Played then whatever was heard.
    deadline: Instant,
}

/// One call's state; see the module documentation.
#[derive(Debug)]
pub struct CallLeg {
    config: LegConfig,
    phase: Phase,
    /// The INVITE's ring deadline and the maximum duration's end (set when it went out).
    ring_at: Option<Instant>,
    max_at: Option<Instant>,
    /// Any response (100 Trying included) came from the trunk.
    responded: bool,
    rang: bool,
    /// The INVITE transaction's outcome came ([`Event::Final`], [`Event::NoFinal`]).
    final_seen: bool,
    cancelled: Option<CancelReason>,
    agent: Option<AgentLeg>,
    /// The prompt playing now: whether to hang up at its end.
    prompt: Option<bool>,
    message: Option<MessageAfterBeep>,
    analysing: bool,
    tones: ToneDetector,
    amd: Option<Amd>,
    tone_result: Option<CallResult>,
}

impl CallLeg {
    pub fn new(config: LegConfig) -> CallLeg {
        CallLeg {
            config,
            phase: Phase::Waiting,
            ring_at: None,
            max_at: None,
            responded: false,
            rang: false,
            final_seen: false,
            cancelled: None,
            agent: None,
            prompt: None,
            message: None,
            analysing: false,
            tones: ToneDetector::default(),
            amd: None,
            tone_result: None,
        }
    }

    pub fn call_id(&self) -> CallId {
        self.config.call_id
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Why Campana cancelled the INVITE, if it did.
    pub fn cancelled(&self) -> Option<CancelReason> {
        self.cancelled
    }

    pub fn agent_leg(&self) -> Option<AgentLeg> {
        self.agent
    }

    /// The customer's frames are wanted ([`Event::CustomerAudio`]).
    pub fn analysing(&self) -> bool {
        self.analysing
    }

    /// A prompt is playing (its end is awaited).
    pub fn prompt_playing(&self) -> bool {
        self.prompt.is_some()
    }

    /// A message waits for an answering machine's beep.
    pub fn waiting_for_beep(&self) -> bool {
        self.message.is_some()
    }

    fn bridged(&self) -> bool {
        matches!(self.agent, Some(AgentLeg::Bridged(_)))
    }

    /// The next moment [`Event::Tick`] has something to do, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Waiting => Some(self.config.send_at),
            Phase::Setup if self.cancelled.is_none() => self.ring_at,
            Phase::Setup => None,
            Phase::Answered => [self.max_at, self.message.as_ref().map(|m| m.deadline)].into_iter().flatten().min(),
            Phase::Ended(_) => None,
        }
    }

    /// Handles one event at `now` and returns what to do. Nothing once ended.
    pub fn handle(&mut self, event: Event<'_>, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if matches!(self.phase, Phase::Ended(_)) {
            return out;
        }
        let call_id = self.config.call_id;
        match self.phase {
            Phase::Waiting => match event {
                Event::Tick if now >= self.config.send_at => {
                    self.phase = Phase::Setup;
                    out.push(Action::SendInvite);
                }
                Event::HangUp => self.end(CallResult::Cancelled, &mut out),
                Event::Shutdown => self.end(CallResult::SystemError, &mut out),
                Event::Connect { agent, .. } => tracing::warn!(%call_id, %agent, "connect before answer ignored"),
                Event::Play { .. } => {
                    tracing::warn!(%call_id, "play before answer: nothing played");
                    out.push(Action::Emit(TelephonyEvent::PromptDone { call_id }));
                }
                _ => {}
            },
            Phase::Setup | Phase::Answered => self.on_event(event, now, &mut out),
            Phase::Ended(_) => unreachable!("handled above"),
        }
        out
    }

    fn on_event(&mut self, event: Event<'_>, now: Instant, out: &mut Vec<Action>) {
        let call_id = self.config.call_id;
        match event {
            Event::Tick => self.on_tick(now, out),
            Event::InviteSent => {
                self.ring_at = Some(now + Duration::from_secs(u64::from(self.config.ring_timeout_s)));
                self.max_at = Some(now + Duration::from_secs(u64::from(self.config.max_call_duration_s)));
            }
            Event::InviteNotSent(result) => self.end(result, out),
            Event::Digit(digit) => out.push(Action::Emit(TelephonyEvent::Digit { call_id, digit })),
            Event::CustomerAudio(samples) => self.on_audio(samples, out),
            Event::PromptDone => {
                let then_hang_up = self.prompt.take().unwrap_or(false);
                out.push(Action::Emit(TelephonyEvent::PromptDone { call_id }));
                if then_hang_up {
                    out.push(Action::Bye);
                    self.end(CallResult::Answered, out);
                }
            }
            Event::AgentAnswered => {
                let Some(AgentLeg::Calling(agent)) = self.agent else {
                    tracing::debug!(%call_id, "agent answer without an agent leg calling: ignored");
                    return;
                };
                self.agent = Some(AgentLeg::Bridged(agent));
                out.push(Action::Bridge { kernel: self.amd.is_none() });
                // Tone detection ends at the bridge; with no machine detection pending nothing
                // reads the customer's frames any more.
                if self.analysing && self.amd.is_none() {
                    self.analysing = false;
                    out.push(Action::StopAnalysing);
                }
                out.push(Action::Emit(TelephonyEvent::Connected { call_id, agent }));
            }
            Event::AgentFailed(reason) => {
                // The customer stays on the line: the engine connects another agent or plays
                // the safe-harbor message (and counts the abandon).
                let Some(leg) = self.agent.take() else { return };
                let agent = leg.agent();
                tracing::warn!(%call_id, %agent, %reason, "agent leg failed");
                out.push(Action::StopAgentLeg);
                out.push(Action::Emit(TelephonyEvent::ConnectFailed { call_id, agent, reason }));
            }
            Event::AgentEnded => {
                if self.agent.is_none() {
                    return;
                }
                tracing::debug!(%call_id, "agent hung up: BYE to the customer");
                out.push(Action::Bye);
                self.end(CallResult::Answered, out);
            }
            Event::Trying => self.responded = true,
            Event::Early { sdp } => {
                self.responded = true;
                if !self.rang && self.phase == Phase::Setup {
                    self.rang = true;
                    out.push(Action::Emit(TelephonyEvent::Ringing { call_id }));
                }
                // 183 Session Progress with SDP: early media (ring-back, SIT, announcements).
                out.push(Action::StartMedia { sdp: sdp.to_vec() });
                if !sdp.is_empty() && self.config.sit && !self.analysing {
                    self.analysing = true;
                    out.push(Action::AnalyseCustomer);
                }
            }
            Event::Confirmed { sdp } => {
                if self.phase == Phase::Setup && self.cancelled.is_none() {
                    self.answer(sdp, out);
                }
            }
            Event::Terminated => {
                if self.phase == Phase::Answered {
                    self.end(CallResult::Answered, out);
                }
            }
            Event::StatesClosed => {
                // The dialog is gone; before the INVITE's outcome, that outcome decides.
                if self.final_seen {
                    let result = if self.phase == Phase::Answered { CallResult::Answered } else { CallResult::NetworkFailure };
                    self.end(result, out);
                }
            }
            Event::Reoffer => out.push(Action::AnswerOffer { bridged: self.bridged() }),
            Event::Final { code, sdp, local_timeout } => {
                self.final_seen = true;
                if (200..300).contains(&code) {
                    if self.cancelled.is_some() {
                        // The stack ACKs and BYEs a 2xx that crossed our CANCEL.
                        self.end(map_final_status(487, self.cancelled), out);
                    } else if self.phase == Phase::Setup {
                        self.answer(sdp, out);
                    }
                } else if code == 408 && local_timeout {
                    // Nothing came back from the trunk (Timer B): not the called party's
                    // "no answer".
                    tracing::warn!(%call_id, "no response to the INVITE from the trunk");
                    self.end(map_no_response(self.cancelled), out);
                } else {
                    self.end(map_final_status(code, self.cancelled), out);
                }
            }
            Event::NoFinal => {
                self.final_seen = true;
                tracing::warn!(%call_id, "INVITE failed without a final response");
                self.end(map_no_response(self.cancelled), out);
            }
            Event::HangUp => match self.phase {
                Phase::Answered => {
                    out.push(Action::Bye);
                    self.end(CallResult::Answered, out);
                }
                _ => self.cancel(CancelReason::HangUp, out),
            },
            Event::Connect { agent, contact } => {
                if self.phase != Phase::Answered || self.agent.is_some() {
                    tracing::warn!(%call_id, %agent, "connect ignored: the call is not answered or already has an agent");
                    return;
                }
                let Some(contact) = contact else {
                    tracing::warn!(%call_id, %agent, "agent phone not registered");
                    out.push(Action::Emit(TelephonyEvent::ConnectFailed { call_id, agent, reason: "agent phone not registered".into() }));
                    return;
                };
                // A prompt still playing (an agentless customer who pressed 1) no longer ends
                // the call; the bridge replaces its audio.
                if self.prompt.take().is_some() {
                    out.push(Action::StopPrompt);
                }
                self.agent = Some(AgentLeg::Calling(agent));
                out.push(Action::CallAgent { agent, contact });
            }
            Event::Disconnect { agent } => {
                let Some(leg) = self.agent.filter(|leg| leg.agent() == agent) else {
                    tracing::debug!(%call_id, %agent, "disconnect of an agent not on the call: nothing to do");
                    return;
                };
                tracing::info!(%call_id, %agent, "the agent left: agent leg stopped, the customer waits");
                self.agent = None;
                if matches!(leg, AgentLeg::Bridged(_)) {
                    out.push(Action::Unbridge);
                }
                out.push(Action::StopAgentLeg);
            }
            Event::Play { prompt, audio, then_hang_up, after_beep } => {
                // A new prompt replaces a message still waiting for its beep.
                self.message = None;
                let playable = self.phase == Phase::Answered && !self.bridged();
                let audio = match audio {
                    Ok(audio) if playable && after_beep => {
                        // The customer's frames go to the beep detector until the beep.
                        if !self.analysing {
                            self.analysing = true;
                            out.push(Action::AnalyseCustomer);
                        }
                        let deadline = now + Duration::from_millis(u64::from(analysis::BEEP_WAIT_MAX_MS));
                        self.message = Some(MessageAfterBeep { beep: BeepDetector::default(), audio, then_hang_up, deadline });
                        if self.prompt.take().is_some() {
                            out.push(Action::StopPrompt);
                        }
                        return;
                    }
                    Ok(audio) if playable => Some(audio),
                    Ok(_) => {
                        tracing::warn!(%call_id, %prompt, "prompt not played: the call is not answered or is bridged");
                        None
                    }
                    Err(e) => {
                        tracing::error!(%call_id, %prompt, error = %e, "prompt cannot be played");
                        None
                    }
                };
                // A prompt replaced by a new one reports PromptDone once, for the new one.
                self.prompt = Some(then_hang_up);
                out.push(Action::Play { audio });
            }
            Event::Shutdown => self.end(CallResult::SystemError, out),
        }
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        let call_id = self.config.call_id;
        match self.phase {
            Phase::Setup => {
                if self.cancelled.is_none() && self.ring_at.is_some_and(|at| now >= at) {
                    tracing::debug!(%call_id, ring_timeout_s = self.config.ring_timeout_s, responded = self.responded, "ring timeout: CANCEL");
                    let why = if self.responded { CancelReason::RingTimeout } else { CancelReason::RingTimeoutNoResponse };
                    self.cancel(why, out);
                }
            }
            Phase::Answered => {
                if self.message.as_ref().is_some_and(|m| now >= m.deadline) {
                    // No audio from the far end at all: leave the message anyway.
                    tracing::debug!(%call_id, "no beep heard (no audio): leaving the message");
                    self.leave_message(out);
                }
                if self.max_at.is_some_and(|at| now >= at) {
                    tracing::warn!(%call_id, max_call_duration_s = self.config.max_call_duration_s, "call too long: BYE");
                    out.push(Action::Bye);
                    self.end(CallResult::Answered, out);
                }
            }
            Phase::Waiting | Phase::Ended(_) => {}
        }
    }

    fn on_audio(&mut self, samples: &[f32], out: &mut Vec<Action>) {
        let call_id = self.config.call_id;
        if let Some(why) = self.message.as_mut().and_then(|m| m.beep.push(samples)) {
            tracing::debug!(%call_id, ?why, "leaving the message");
            self.leave_message(out);
        }
        if let Some(amd) = self.amd.as_mut() {
            if let Some(answered_by) = amd.push(samples) {
                tracing::debug!(%call_id, ?answered_by, "machine detection decided");
                self.amd = None;
                out.push(Action::Emit(TelephonyEvent::MachineDetected { call_id, answered_by }));
                if self.bridged() {
                    self.analysing = false;
                    out.push(Action::StopAnalysing);
                }
            }
        }
        if self.tone_result.is_none() && !self.bridged() {
            let answered = self.phase == Phase::Answered;
            let found = self.tones.push(samples).filter(|r| match r {
                CallResult::Fax => answered && self.config.fax,
                _ => self.config.sit,
            });
            if let Some(r) = found {
                tracing::info!(%call_id, result = %r.as_str(), "tone detected");
                self.tone_result = Some(r);
                if answered {
                    out.push(Action::Bye);
                    self.end(r, out);
                } else {
                    // The final response (487 to our CANCEL) ends the call; the SIT decides
                    // the result.
                    self.cancel(CancelReason::RingTimeout, out);
                }
            }
        }
    }

    /// Everything that starts when the far end answers.
    fn answer(&mut self, sdp: &[u8], out: &mut Vec<Action>) {
        self.phase = Phase::Answered;
        out.push(Action::StartMedia { sdp: sdp.to_vec() });
        if self.config.record {
            out.push(Action::StartRecording);
        }
        if let Some(p) = self.config.amd {
            self.amd = Some(Amd::new(p));
        }
        if !self.analysing && (self.config.amd.is_some() || self.config.sit || self.config.fax) {
            self.analysing = true;
            out.push(Action::AnalyseCustomer);
        }
        out.push(Action::Emit(TelephonyEvent::Answered { call_id: self.config.call_id, answered_by: AnsweredBy::Unknown }));
    }

    fn leave_message(&mut self, out: &mut Vec<Action>) {
        if let Some(m) = self.message.take() {
            self.prompt = Some(m.then_hang_up);
            out.push(Action::Play { audio: Some(m.audio) });
        }
    }

    /// CANCELs the INVITE once, for the first reason.
    fn cancel(&mut self, why: CancelReason, out: &mut Vec<Action>) {
        if self.cancelled.is_none() {
            self.cancelled = Some(why);
            out.push(Action::Cancel);
        }
    }

    /// Ends the call: a detected tone decides the result over the signalling (a shutdown
    /// excepted), the agent leg stops.
    fn end(&mut self, result: CallResult, out: &mut Vec<Action>) {
        let result = match self.tone_result {
            Some(r) if result != CallResult::SystemError => r,
            _ => result,
        };
        if self.agent.take().is_some() {
            out.push(Action::StopAgentLeg);
        }
        self.phase = Phase::Ended(result);
        out.push(Action::End(result));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::FRAME_SAMPLES;

    const CALL: CallId = CallId(7);
    const AGENT: UserId = UserId(3);

    fn config(t0: Instant) -> LegConfig {
        LegConfig {
            call_id: CALL,
            send_at: t0 + Duration::from_millis(100),
            ring_timeout_s: 30,
            max_call_duration_s: 3600,
            sit: true,
            fax: true,
            amd: None,
            record: false,
        }
    }

    fn emitted(actions: &[Action]) -> Vec<TelephonyEvent> {
        actions.iter().filter_map(|a| if let Action::Emit(e) = a { Some(e.clone()) } else { None }).collect()
    }

    fn ended(actions: &[Action]) -> Option<CallResult> {
        actions.iter().find_map(|a| if let Action::End(r) = a { Some(*r) } else { None })
    }

    /// A leg whose INVITE went out at `t0 + 100 ms`.
    fn sent(config: LegConfig, t0: Instant) -> CallLeg {
        let mut leg = CallLeg::new(config);
        assert_eq!(leg.handle(Event::Tick, t0), vec![], "nothing before the pacing slot");
        let at = t0 + Duration::from_millis(100);
        assert_eq!(leg.next_deadline(), Some(at));
        assert_eq!(leg.handle(Event::Tick, at), vec![Action::SendInvite]);
        assert_eq!(leg.handle(Event::InviteSent, at), vec![]);
        assert_eq!(leg.phase(), Phase::Setup);
        leg
    }

    fn answered(config: LegConfig, t0: Instant) -> CallLeg {
        let mut leg = sent(config, t0);
        leg.handle(Event::Early { sdp: b"" }, t0);
        let a = leg.handle(Event::Confirmed { sdp: b"v=0" }, t0);
        assert_eq!(emitted(&a), vec![TelephonyEvent::Answered { call_id: CALL, answered_by: AnsweredBy::Unknown }]);
        assert_eq!(leg.phase(), Phase::Answered);
        leg
    }

    fn bridged(config: LegConfig, t0: Instant) -> CallLeg {
        let mut leg = answered(config, t0);
        let a = leg.handle(Event::Connect { agent: AGENT, contact: Some("sip:a@10.0.0.2".into()) }, t0);
        assert_eq!(a, vec![Action::CallAgent { agent: AGENT, contact: "sip:a@10.0.0.2".into() }]);
        let a = leg.handle(Event::AgentAnswered, t0);
        assert!(a.contains(&Action::Bridge { kernel: true }), "{a:?}");
        assert_eq!(emitted(&a), vec![TelephonyEvent::Connected { call_id: CALL, agent: AGENT }]);
        assert_eq!(leg.agent_leg(), Some(AgentLeg::Bridged(AGENT)));
        leg
    }

    fn frames(value: f32, ms: u32) -> Vec<Vec<f32>> {
        (0..ms / 20).map(|_| vec![value; FRAME_SAMPLES]).collect()
    }

    fn tone(freq: f32, ms: u32, out: &mut Vec<f32>) {
        let start = out.len();
        for i in 0..(ms as usize * 8) {
            out.push(6000.0 * (2.0 * std::f32::consts::PI * freq * (start + i) as f32 / analysis::RATE_HZ).sin());
        }
    }

    /// Feeds audio frame by frame until an action ends the call; all actions.
    fn feed(leg: &mut CallLeg, audio: &[f32], now: Instant) -> Vec<Action> {
        let mut all = Vec::new();
        for f in audio.chunks_exact(FRAME_SAMPLES) {
            all.extend(leg.handle(Event::CustomerAudio(f), now));
        }
        all
    }

    #[test]
    fn hang_up_before_the_invite_is_cancelled_and_sends_nothing() {
        let t0 = Instant::now();
        let mut leg = CallLeg::new(config(t0));
        assert_eq!(leg.handle(Event::HangUp, t0), vec![Action::End(CallResult::Cancelled)]);
        assert_eq!(leg.handle(Event::Tick, t0 + Duration::from_secs(1)), vec![], "nothing after the end");
        assert_eq!(leg.next_deadline(), None);
    }

    #[test]
    fn before_the_invite_connect_is_ignored_play_is_done_at_once_and_shutdown_is_system_error() {
        let t0 = Instant::now();
        let mut leg = CallLeg::new(config(t0));
        assert_eq!(leg.handle(Event::Connect { agent: AGENT, contact: Some("sip:a@h".into()) }, t0), vec![]);
        let a = leg.handle(Event::Play { prompt: "p".into(), audio: Ok(vec![0; 160]), then_hang_up: true, after_beep: false }, t0);
        assert_eq!(a, vec![Action::Emit(TelephonyEvent::PromptDone { call_id: CALL })]);
        assert_eq!(leg.phase(), Phase::Waiting);
        assert_eq!(leg.handle(Event::Shutdown, t0), vec![Action::End(CallResult::SystemError)]);
    }

    #[test]
    fn an_invite_that_cannot_be_sent_ends_with_its_result() {
        let t0 = Instant::now();
        let mut leg = CallLeg::new(config(t0));
        assert_eq!(leg.handle(Event::Tick, t0 + Duration::from_secs(1)), vec![Action::SendInvite]);
        assert_eq!(leg.handle(Event::InviteNotSent(CallResult::DialError), t0), vec![Action::End(CallResult::DialError)]);
    }

    #[test]
    fn ringing_is_reported_once_and_early_media_is_analysed_for_sit() {
        let t0 = Instant::now();
        let mut leg = sent(config(t0), t0);
        assert_eq!(leg.handle(Event::Trying, t0), vec![]);
        let a = leg.handle(Event::Early { sdp: b"" }, t0);
        assert_eq!(a, vec![Action::Emit(TelephonyEvent::Ringing { call_id: CALL }), Action::StartMedia { sdp: vec![] }]);
        let a = leg.handle(Event::Early { sdp: b"v=0" }, t0);
        assert_eq!(a, vec![Action::StartMedia { sdp: b"v=0".to_vec() }, Action::AnalyseCustomer], "183 with SDP: no second Ringing");
        assert!(leg.analysing());
    }

    #[test]
    fn ring_timeout_cancels_once_and_the_487_is_no_answer() {
        let t0 = Instant::now();
        let mut leg = sent(config(t0), t0);
        leg.handle(Event::Trying, t0);
        let ring_at = t0 + Duration::from_millis(100) + Duration::from_secs(30);
        assert_eq!(leg.next_deadline(), Some(ring_at));
        assert_eq!(leg.handle(Event::Tick, ring_at - Duration::from_millis(1)), vec![]);
        assert_eq!(leg.handle(Event::Tick, ring_at), vec![Action::Cancel]);
        assert_eq!(leg.cancelled(), Some(CancelReason::RingTimeout));
        assert_eq!(leg.next_deadline(), None, "no second CANCEL");
        assert_eq!(leg.handle(Event::HangUp, ring_at), vec![], "the first CANCEL's reason stays");
        let a = leg.handle(Event::Final { code: 487, sdp: b"", local_timeout: false }, ring_at);
        assert_eq!(a, vec![Action::End(CallResult::NoAnswer)]);
    }

    #[test]
    fn ring_timeout_without_any_response_is_network_failure() {
        let t0 = Instant::now();
        let mut leg = sent(config(t0), t0);
        let ring_at = t0 + Duration::from_secs(31);
        assert_eq!(leg.handle(Event::Tick, ring_at), vec![Action::Cancel]);
        assert_eq!(leg.cancelled(), Some(CancelReason::RingTimeoutNoResponse));
        assert_eq!(leg.handle(Event::NoFinal, ring_at), vec![Action::End(CallResult::NetworkFailure)]);
    }

    #[test]
    fn timer_b_is_network_failure_but_a_trunks_408_is_no_answer() {
        let t0 = Instant::now();
        let mut leg = sent(config(t0), t0);
        assert_eq!(
            leg.handle(Event::Final { code: 408, sdp: b"", local_timeout: true }, t0),
            vec![Action::End(CallResult::NetworkFailure)]
        );
        let mut leg = sent(config(t0), t0);
        assert_eq!(leg.handle(Event::Final { code: 408, sdp: b"", local_timeout: false }, t0), vec![Action::End(CallResult::NoAnswer)]);
    }

    #[test]
    fn final_responses_map_to_results() {
        let t0 = Instant::now();
        for (code, want) in
            [(486, CallResult::Busy), (404, CallResult::SitInvalid), (503, CallResult::NetworkFailure), (488, CallResult::DialError)]
        {
            let mut leg = sent(config(t0), t0);
            assert_eq!(leg.handle(Event::Final { code, sdp: b"", local_timeout: false }, t0), vec![Action::End(want)], "{code}");
        }
    }

    #[test]
    fn hang_up_while_ringing_cancels_and_the_487_is_cancelled() {
        let t0 = Instant::now();
        let mut leg = sent(config(t0), t0);
        leg.handle(Event::Early { sdp: b"" }, t0);
        assert_eq!(leg.handle(Event::HangUp, t0), vec![Action::Cancel]);
        assert_eq!(leg.handle(Event::HangUp, t0), vec![], "one CANCEL");
        assert_eq!(leg.handle(Event::Final { code: 487, sdp: b"", local_timeout: false }, t0), vec![Action::End(CallResult::Cancelled)]);
    }

    #[test]
    fn a_200_after_our_cancel_is_not_an_answer() {
        let t0 = Instant::now();
        let mut leg = sent(config(t0), t0);
        leg.handle(Event::Early { sdp: b"" }, t0);
        leg.handle(Event::HangUp, t0);
        assert_eq!(leg.handle(Event::Confirmed { sdp: b"v=0" }, t0), vec![], "the dialog's 2xx after CANCEL is not an answer");
        assert_eq!(leg.handle(Event::Final { code: 200, sdp: b"v=0", local_timeout: false }, t0), vec![Action::End(CallResult::Cancelled)]);
        // After a ring-timeout CANCEL the crossing 200 is no answer.
        let mut leg = sent(config(t0), t0);
        leg.handle(Event::Trying, t0);
        leg.handle(Event::Tick, t0 + Duration::from_secs(60));
        assert_eq!(leg.handle(Event::Final { code: 200, sdp: b"", local_timeout: false }, t0), vec![Action::End(CallResult::NoAnswer)]);
    }

    #[test]
    fn answer_starts_media_recording_analysis_and_reports_once_even_with_a_retransmitted_200() {
        let t0 = Instant::now();
        let mut leg = sent(LegConfig { record: true, ..config(t0) }, t0);
        let a = leg.handle(Event::Confirmed { sdp: b"v=0" }, t0);
        assert_eq!(
            a,
            vec![
                Action::StartMedia { sdp: b"v=0".to_vec() },
                Action::StartRecording,
                Action::AnalyseCustomer,
                Action::Emit(TelephonyEvent::Answered { call_id: CALL, answered_by: AnsweredBy::Unknown }),
            ]
        );
        // The INVITE's own final response, and a retransmitted 200, change nothing.
        assert_eq!(leg.handle(Event::Final { code: 200, sdp: b"v=0", local_timeout: false }, t0), vec![]);
        assert_eq!(leg.handle(Event::Confirmed { sdp: b"v=0" }, t0), vec![]);
        assert_eq!(leg.phase(), Phase::Answered);
        assert_eq!(leg.handle(Event::StatesClosed, t0), vec![Action::End(CallResult::Answered)], "the dialog gone after the answer");
    }

    #[test]
    fn a_200_without_a_dialog_state_answers_too() {
        let t0 = Instant::now();
        let mut leg = sent(LegConfig { sit: false, fax: false, ..config(t0) }, t0);
        let a = leg.handle(Event::Final { code: 200, sdp: b"v=0", local_timeout: false }, t0);
        assert_eq!(
            a,
            vec![
                Action::StartMedia { sdp: b"v=0".to_vec() },
                Action::Emit(TelephonyEvent::Answered { call_id: CALL, answered_by: AnsweredBy::Unknown })
            ],
            "no analysis asked for: no frames copied"
        );
    }

    #[test]
    fn bye_from_either_side_ends_an_answered_call_as_answered() {
        let t0 = Instant::now();
        let mut leg = answered(config(t0), t0);
        assert_eq!(leg.handle(Event::Terminated, t0), vec![Action::End(CallResult::Answered)], "the far end's BYE");
        let mut leg = answered(config(t0), t0);
        assert_eq!(leg.handle(Event::HangUp, t0), vec![Action::Bye, Action::End(CallResult::Answered)], "the engine's hang-up");
        let mut leg = sent(config(t0), t0);
        assert_eq!(leg.handle(Event::Terminated, t0), vec![], "a dialog ending before the answer: the final response decides");
        assert_eq!(leg.handle(Event::StatesClosed, t0), vec![]);
    }

    #[test]
    fn the_maximum_duration_counts_from_the_invite_and_ends_with_a_bye() {
        let t0 = Instant::now();
        let mut leg = answered(LegConfig { max_call_duration_s: 60, ..config(t0) }, t0);
        let end = t0 + Duration::from_millis(100) + Duration::from_secs(60);
        assert_eq!(leg.next_deadline(), Some(end));
        assert_eq!(leg.handle(Event::Tick, end - Duration::from_millis(1)), vec![]);
        assert_eq!(leg.handle(Event::Tick, end), vec![Action::Bye, Action::End(CallResult::Answered)]);
    }

    #[test]
    fn a_prompt_plays_and_may_end_the_call() {
        let t0 = Instant::now();
        let mut leg = answered(config(t0), t0);
        let a = leg.handle(Event::Play { prompt: "p".into(), audio: Ok(vec![1, 2]), then_hang_up: false, after_beep: false }, t0);
        assert_eq!(a, vec![Action::Play { audio: Some(vec![1, 2]) }]);
        assert!(leg.prompt_playing());
        assert_eq!(leg.handle(Event::PromptDone, t0), vec![Action::Emit(TelephonyEvent::PromptDone { call_id: CALL })]);
        leg.handle(Event::Play { prompt: "p".into(), audio: Ok(vec![3]), then_hang_up: true, after_beep: false }, t0);
        let a = leg.handle(Event::PromptDone, t0);
        assert_eq!(a, vec![Action::Emit(TelephonyEvent::PromptDone { call_id: CALL }), Action::Bye, Action::End(CallResult::Answered)]);
    }

    #[test]
    fn a_prompt_that_cannot_be_played_is_reported_done() {
        let t0 = Instant::now();
        let mut leg = answered(config(t0), t0);
        let a =
            leg.handle(Event::Play { prompt: "missing".into(), audio: Err("no file".into()), then_hang_up: false, after_beep: false }, t0);
        assert_eq!(a, vec![Action::Play { audio: None }]);
        let mut leg = sent(config(t0), t0);
        let a = leg.handle(Event::Play { prompt: "p".into(), audio: Ok(vec![1]), then_hang_up: false, after_beep: false }, t0);
        assert_eq!(a, vec![Action::Play { audio: None }], "not answered: nothing played, done at once");
    }

    #[test]
    fn connect_during_a_prompt_stops_it_and_calls_the_agent() {
        let t0 = Instant::now();
        let mut leg = answered(config(t0), t0);
        leg.handle(Event::Play { prompt: "p".into(), audio: Ok(vec![1]), then_hang_up: true, after_beep: false }, t0);
        let a = leg.handle(Event::Connect { agent: AGENT, contact: Some("sip:a@h".into()) }, t0);
        assert_eq!(a, vec![Action::StopPrompt, Action::CallAgent { agent: AGENT, contact: "sip:a@h".into() }]);
        assert!(!leg.prompt_playing(), "the prompt no longer ends the call");
        assert_eq!(leg.handle(Event::Connect { agent: UserId(4), contact: Some("sip:b@h".into()) }, t0), vec![], "one agent at a time");
    }

    #[test]
    fn connect_before_answer_or_to_an_unregistered_phone() {
        let t0 = Instant::now();
        let mut leg = sent(config(t0), t0);
        assert_eq!(leg.handle(Event::Connect { agent: AGENT, contact: Some("sip:a@h".into()) }, t0), vec![]);
        let mut leg = answered(config(t0), t0);
        let a = leg.handle(Event::Connect { agent: AGENT, contact: None }, t0);
        assert_eq!(
            emitted(&a),
            vec![TelephonyEvent::ConnectFailed { call_id: CALL, agent: AGENT, reason: "agent phone not registered".into() }]
        );
        assert_eq!(leg.agent_leg(), None);
    }

    #[test]
    fn a_failed_agent_leg_keeps_the_customer_and_another_agent_may_be_connected() {
        let t0 = Instant::now();
        let mut leg = answered(config(t0), t0);
        leg.handle(Event::Connect { agent: AGENT, contact: Some("sip:a@h".into()) }, t0);
        let a = leg.handle(Event::AgentFailed("agent phone answered 486".into()), t0);
        assert_eq!(
            a,
            vec![
                Action::StopAgentLeg,
                Action::Emit(TelephonyEvent::ConnectFailed { call_id: CALL, agent: AGENT, reason: "agent phone answered 486".into() })
            ]
        );
        assert_eq!(leg.phase(), Phase::Answered);
        let a = leg.handle(Event::Connect { agent: UserId(4), contact: Some("sip:b@h".into()) }, t0);
        assert_eq!(a, vec![Action::CallAgent { agent: UserId(4), contact: "sip:b@h".into() }]);
    }

    #[test]
    fn an_agent_who_left_while_the_phone_rings_is_never_bridged_and_another_may_be_connected() {
        let t0 = Instant::now();
        let mut leg = answered(config(t0), t0);
        leg.handle(Event::Connect { agent: AGENT, contact: Some("sip:a@h".into()) }, t0);
        assert_eq!(leg.handle(Event::Disconnect { agent: UserId(4) }, t0), vec![], "not this call's agent");
        assert_eq!(leg.handle(Event::Disconnect { agent: AGENT }, t0), vec![Action::StopAgentLeg]);
        assert_eq!(leg.agent_leg(), None);
        assert_eq!(leg.handle(Event::AgentAnswered, t0), vec![], "a late answer of the stopped leg bridges nothing");
        assert_eq!(leg.handle(Event::AgentFailed("cancelled".into()), t0), vec![], "no ConnectFailed for a leg the engine stopped");
        let a = leg.handle(Event::Connect { agent: UserId(4), contact: Some("sip:b@h".into()) }, t0);
        assert_eq!(a, vec![Action::CallAgent { agent: UserId(4), contact: "sip:b@h".into() }]);
    }

    #[test]
    fn an_agent_who_left_once_bridged_is_unbridged_and_the_customer_can_hear_a_prompt() {
        let t0 = Instant::now();
        let mut leg = bridged(config(t0), t0);
        assert_eq!(leg.handle(Event::Disconnect { agent: AGENT }, t0), vec![Action::Unbridge, Action::StopAgentLeg]);
        assert_eq!(leg.handle(Event::AgentEnded, t0), vec![], "the stopped leg's end does not end the customer's call");
        let a = leg.handle(Event::Play { prompt: "p".into(), audio: Ok(vec![1]), then_hang_up: true, after_beep: false }, t0);
        assert_eq!(a, vec![Action::Play { audio: Some(vec![1]) }]);
        assert_eq!(leg.phase(), Phase::Answered);
    }

    #[test]
    fn bridge_stops_tone_analysis_and_a_prompt_is_not_played_over_it() {
        let t0 = Instant::now();
        let mut leg = answered(config(t0), t0);
        assert!(leg.analysing());
        leg.handle(Event::Connect { agent: AGENT, contact: Some("sip:a@h".into()) }, t0);
        let a = leg.handle(Event::AgentAnswered, t0);
        assert_eq!(
            a,
            vec![
                Action::Bridge { kernel: true },
                Action::StopAnalysing,
                Action::Emit(TelephonyEvent::Connected { call_id: CALL, agent: AGENT })
            ]
        );
        assert!(!leg.analysing());
        let a = leg.handle(Event::Play { prompt: "p".into(), audio: Ok(vec![1]), then_hang_up: false, after_beep: false }, t0);
        assert_eq!(a, vec![Action::Play { audio: None }]);
    }

    #[test]
    fn re_invites_are_answered_free_before_the_bridge_and_followed_through_the_relay_after() {
        let t0 = Instant::now();
        let mut leg = sent(config(t0), t0);
        assert_eq!(leg.handle(Event::Reoffer, t0), vec![Action::AnswerOffer { bridged: false }]);
        let mut leg = answered(config(t0), t0);
        assert_eq!(leg.handle(Event::Reoffer, t0), vec![Action::AnswerOffer { bridged: false }]);
        let mut leg = bridged(config(t0), t0);
        assert_eq!(leg.handle(Event::Reoffer, t0), vec![Action::AnswerOffer { bridged: true }]);
        assert_eq!(leg.phase(), Phase::Answered, "a re-INVITE changes no phase");
    }

    #[test]
    fn the_agent_hanging_up_ends_the_customer_call_and_the_customer_hanging_up_ends_the_agent_leg() {
        let t0 = Instant::now();
        let mut leg = bridged(config(t0), t0);
        assert_eq!(leg.handle(Event::AgentEnded, t0), vec![Action::Bye, Action::StopAgentLeg, Action::End(CallResult::Answered)]);
        let mut leg = bridged(config(t0), t0);
        assert_eq!(leg.handle(Event::Terminated, t0), vec![Action::StopAgentLeg, Action::End(CallResult::Answered)]);
        let mut leg = bridged(config(t0), t0);
        assert_eq!(leg.handle(Event::HangUp, t0), vec![Action::Bye, Action::StopAgentLeg, Action::End(CallResult::Answered)]);
    }

    #[test]
    fn machine_detection_reports_its_verdict_once() {
        let t0 = Instant::now();
        let amd = Some(AmdParams::default());
        // A greeting longer than 2 s: a machine.
        let mut leg = answered(LegConfig { amd, sit: false, fax: false, ..config(t0) }, t0);
        assert!(leg.analysing());
        let audio: Vec<f32> = frames(3000.0, 2500).concat();
        let a = feed(&mut leg, &audio, t0);
        assert_eq!(emitted(&a), vec![TelephonyEvent::MachineDetected { call_id: CALL, answered_by: AnsweredBy::Machine }]);
        // A short hello then silence: a person.
        let mut leg = answered(LegConfig { amd, sit: false, fax: false, ..config(t0) }, t0);
        let audio: Vec<f32> = [frames(3000.0, 500), frames(0.0, 1000)].concat().concat();
        let a = feed(&mut leg, &audio, t0);
        assert_eq!(emitted(&a), vec![TelephonyEvent::MachineDetected { call_id: CALL, answered_by: AnsweredBy::Human }]);
        assert_eq!(ended(&a), None);
    }

    #[test]
    fn machine_detection_still_pending_at_the_bridge_keeps_the_frames_and_the_kernel_out_until_it_decides() {
        let t0 = Instant::now();
        let mut leg = answered(LegConfig { amd: Some(AmdParams::default()), ..config(t0) }, t0);
        leg.handle(Event::Connect { agent: AGENT, contact: Some("sip:a@h".into()) }, t0);
        let a = leg.handle(Event::AgentAnswered, t0);
        assert_eq!(a[0], Action::Bridge { kernel: false });
        assert!(leg.analysing());
        let a = feed(&mut leg, &frames(0.0, 3000).concat(), t0);
        assert_eq!(
            a,
            vec![Action::Emit(TelephonyEvent::MachineDetected { call_id: CALL, answered_by: AnsweredBy::Machine }), Action::StopAnalysing]
        );
        assert!(!leg.analysing());
    }

    fn sit_tones() -> Vec<f32> {
        let mut v = Vec::new();
        tone(913.8, 280, &mut v);
        tone(1370.6, 280, &mut v);
        tone(1776.7, 380, &mut v);
        v.extend(vec![0.0; 1600]);
        v
    }

    #[test]
    fn sit_in_early_media_cancels_and_decides_the_result() {
        let t0 = Instant::now();
        let mut leg = sent(config(t0), t0);
        leg.handle(Event::Early { sdp: b"v=0" }, t0);
        let a = feed(&mut leg, &sit_tones(), t0);
        assert_eq!(a, vec![Action::Cancel]);
        assert_eq!(leg.handle(Event::Final { code: 487, sdp: b"", local_timeout: false }, t0), vec![Action::End(CallResult::SitIntercept)]);
    }

    #[test]
    fn sit_after_answer_ends_the_call_with_a_bye_but_a_shutdown_is_a_system_error() {
        let t0 = Instant::now();
        let mut leg = answered(config(t0), t0);
        let a = feed(&mut leg, &sit_tones(), t0);
        assert_eq!(a, vec![Action::Bye, Action::End(CallResult::SitIntercept)]);
        let mut leg = sent(config(t0), t0);
        leg.handle(Event::Early { sdp: b"v=0" }, t0);
        feed(&mut leg, &sit_tones(), t0);
        assert_eq!(leg.handle(Event::Shutdown, t0), vec![Action::End(CallResult::SystemError)]);
    }

    #[test]
    fn fax_counts_only_after_answer_and_only_when_on() {
        let t0 = Instant::now();
        let mut cng = Vec::new();
        for _ in 0..3 {
            tone(1100.0, 500, &mut cng);
            cng.extend(vec![0.0; 8 * 3000]);
        }
        let mut leg = answered(config(t0), t0);
        assert_eq!(ended(&feed(&mut leg, &cng, t0)), Some(CallResult::Fax));
        let mut leg = answered(LegConfig { fax: false, ..config(t0) }, t0);
        assert_eq!(ended(&feed(&mut leg, &cng, t0)), None);
        let mut leg = sent(config(t0), t0);
        leg.handle(Event::Early { sdp: b"v=0" }, t0);
        assert_eq!(feed(&mut leg, &cng, t0), vec![], "fax tones in early media decide nothing");
    }

    #[test]
    fn a_message_after_the_beep_waits_for_it_or_for_the_deadline() {
        let t0 = Instant::now();
        let mut leg = answered(LegConfig { sit: false, fax: false, ..config(t0) }, t0);
        let a = leg.handle(Event::Play { prompt: "vm".into(), audio: Ok(vec![9]), then_hang_up: true, after_beep: true }, t0);
        assert_eq!(a, vec![Action::AnalyseCustomer], "no analysis was on: the beep detector needs the frames");
        assert!(leg.waiting_for_beep());
        let mut beep = Vec::new();
        tone(1000.0, 400, &mut beep);
        beep.extend(vec![0.0; 320]);
        let a = feed(&mut leg, &beep, t0);
        assert_eq!(a, vec![Action::Play { audio: Some(vec![9]) }]);
        assert!(!leg.waiting_for_beep());
        let a = leg.handle(Event::PromptDone, t0);
        assert_eq!(ended(&a), Some(CallResult::Answered), "then_hang_up");
        // No audio at all: the message starts at the deadline.
        let mut leg = answered(LegConfig { sit: false, fax: false, ..config(t0) }, t0);
        leg.handle(Event::Play { prompt: "vm".into(), audio: Ok(vec![9]), then_hang_up: false, after_beep: true }, t0);
        let deadline = t0 + Duration::from_millis(u64::from(analysis::BEEP_WAIT_MAX_MS));
        assert_eq!(leg.next_deadline(), Some(deadline));
        assert_eq!(leg.handle(Event::Tick, deadline), vec![Action::Play { audio: Some(vec![9]) }]);
        // A new prompt replaces a message still waiting.
        let mut leg = answered(LegConfig { sit: false, fax: false, ..config(t0) }, t0);
        leg.handle(Event::Play { prompt: "vm".into(), audio: Ok(vec![9]), then_hang_up: false, after_beep: true }, t0);
        leg.handle(Event::Play { prompt: "p".into(), audio: Ok(vec![1]), then_hang_up: false, after_beep: false }, t0);
        assert!(!leg.waiting_for_beep());
    }

    #[test]
    fn digits_are_reported() {
        let t0 = Instant::now();
        let mut leg = answered(config(t0), t0);
        assert_eq!(leg.handle(Event::Digit('1'), t0), vec![Action::Emit(TelephonyEvent::Digit { call_id: CALL, digit: '1' })]);
    }
}
