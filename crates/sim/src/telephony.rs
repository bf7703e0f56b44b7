//! Simulated telephony: turns [`TelephonyCommand`]s into scheduled [`TelephonyEvent`]s with a
//! seeded RNG. Sans-IO like the engine: the simulator drives it on simulated time, the live
//! demo server on the wall clock (`handle_command`, then `poll_event(now)` at `next_event_at`).

use crate::model::Population;
use campana_core::record::CallResult;
use campana_core::telephony::{AnsweredBy, CallId, TelephonyCommand, TelephonyEvent};
use campana_engine::fxhash::FxHashMap as HashMap;
use chrono::{DateTime, Duration, Timelike, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Seconds a prompt plays before the call hangs up.
pub const PROMPT_S: f64 = 6.0;
/// Seconds from `Connect` to `Connected`.
pub const CONNECT_S: f64 = 0.2;
/// Calls the simulator tracks at once.
pub const MAX_SIM_CALLS: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Leg {
    Ringing,
    /// Answered by a person who hangs up at `patience_end` unless connected.
    Waiting {
        patience_end: DateTime<Utc>,
    },
    Connected,
    Machine,
    Playing,
    Ending,
}

#[derive(Debug, Clone)]
struct SimCall {
    leg: Leg,
    /// Pre-drawn conversation length.
    talk_s: f64,
    detect_machine: bool,
    invalid: bool,
    /// Queue keys of this call's pending `Ended`, `PromptDone` and `Digit` events.
    ends: Vec<(DateTime<Utc>, u64)>,
}

/// Per-number facts the driver may set (invalid numbers answer SIT).
pub trait NumberFacts {
    fn is_invalid(&self, call: &TelephonyCommand) -> bool;
}

/// Seeded simulated telephony.
pub struct SimTelephony {
    rng: ChaCha8Rng,
    pop: Population,
    talk_mean_s: f64,
    talk_cv: f64,
    day_start: DateTime<Utc>,
    calls: HashMap<CallId, SimCall>,
    queue: BTreeMap<(DateTime<Utc>, u64), TelephonyEvent>,
    seq: u64,
    /// Keypress to send in agentless calls ('9' opts out), with its probability.
    pub agentless_digit: Option<(char, f64)>,
    seed: u64,
    /// Attempts so far per record (one entry per record dialed: bounded by the list).
    attempts: HashMap<campana_core::RecordId, u32>,
}

/// SplitMix64's finaliser: a well-mixed 64-bit value from (seed, record, attempt).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimTelephonyError {
    #[error("too many simulated calls (max {0})")]
    TooManyCalls(usize),
}

fn secs(s: f64) -> Duration {
    crate::model::sim_duration(s)
}

impl SimTelephony {
    pub fn new(seed: u64, pop: Population, talk_mean_s: f64, talk_cv: f64, day_start: DateTime<Utc>) -> Self {
        SimTelephony {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x7e1e_f0e5),
            pop,
            talk_mean_s,
            talk_cv,
            day_start,
            calls: HashMap::default(),
            queue: BTreeMap::new(),
            seq: 0,
            agentless_digit: None,
            seed,
            attempts: HashMap::default(),
        }
    }

    fn at(&mut self, t: DateTime<Utc>, ev: TelephonyEvent) {
        self.seq += 1;
        let key = (t, self.seq);
        if let TelephonyEvent::Ended { call_id, .. } | TelephonyEvent::PromptDone { call_id } | TelephonyEvent::Digit { call_id, .. } = &ev
        {
            if let Some(c) = self.calls.get_mut(call_id) {
                c.ends.push(key);
            }
        }
        self.queue.insert(key, ev);
    }

    fn exp(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
        let u: f64 = rng.gen_range(1e-12..1.0);
        -mean * u.ln()
    }

    fn lognormal(rng: &mut ChaCha8Rng, mean: f64, cv: f64) -> f64 {
        let s2 = (1.0 + cv * cv).ln();
        let mu = mean.ln() - s2 / 2.0;
        // Box-Muller
        let u1: f64 = rng.gen_range(1e-12..1.0);
        let u2: f64 = rng.gen();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (mu + s2.sqrt() * z).exp()
    }

    /// The live-answer probability at `now` (hourly multipliers).
    pub fn answer_prob(&self, now: DateTime<Utc>) -> f64 {
        let h = ((now - self.day_start).num_seconds().max(0) / 3600) as usize;
        let m = self.pop.answer_by_hour.get(h).copied().unwrap_or(1.0);
        (self.pop.answer_prob * m).clamp(0.0, 1.0)
    }

    /// Reacts to a command of the engine; `invalid` says the number is not in service.
    pub fn handle_command(&mut self, now: DateTime<Utc>, cmd: &TelephonyCommand, invalid: bool) -> Result<(), SimTelephonyError> {
        match cmd {
            TelephonyCommand::Dial { call_id, ring_timeout_s, analysis, record_id, .. } => {
                let detect_machine = &analysis.machine.is_some();
                if self.calls.len() >= MAX_SIM_CALLS {
                    return Err(SimTelephonyError::TooManyCalls(MAX_SIM_CALLS));
                }
                let id = *call_id;
                // Common random numbers: the customer's answer (or not), the machine, the answer
                // delay, the patience and the talk time of an attempt are drawn from the record's
                // own stream (seed, record, attempt), whatever was dialed before it, so every
                // pacing method run on the same seed meets the same customers.
                let attempt = self.attempts.entry(*record_id).or_insert(0);
                *attempt += 1;
                let stream = mix(self.seed ^ mix((record_id.0 as u64) << 16 ^ u64::from(*attempt)));
                let mut rr = ChaCha8Rng::seed_from_u64(stream);
                let talk_s = Self::lognormal(&mut rr, self.talk_mean_s, self.talk_cv).max(5.0);
                self.calls.insert(id, SimCall { leg: Leg::Ringing, talk_s, detect_machine: *detect_machine, invalid, ends: Vec::new() });
                if invalid {
                    self.at(now + secs(1.5), TelephonyEvent::Ended { call_id: id, result: CallResult::SitInvalid });
                    return Ok(());
                }
                let u: f64 = rr.gen();
                let p_ans = self.answer_prob(now);
                let ring = f64::from(*ring_timeout_s);
                self.at(now + secs(1.0), TelephonyEvent::Ringing { call_id: id });
                if u < self.pop.busy_share {
                    self.at(now + secs(2.0), TelephonyEvent::Ended { call_id: id, result: CallResult::Busy });
                } else if u < self.pop.busy_share + p_ans + self.pop.machine_share {
                    let t = (1.0 + Self::exp(&mut rr, self.pop.time_to_answer_s)).min(ring - 0.5);
                    let human = u < self.pop.busy_share + p_ans;
                    let by = if human {
                        AnsweredBy::Human
                    } else if *detect_machine {
                        AnsweredBy::Machine
                    } else {
                        AnsweredBy::Unknown
                    };
                    let t_ans = now + secs(t);
                    if human {
                        let patience = Self::exp(&mut rr, self.pop.patience_s);
                        self.at(t_ans, TelephonyEvent::Answered { call_id: id, answered_by: by });
                        // The patience clock starts at answer.
                        if let Some(c) = self.calls.get_mut(&id) {
                            c.leg = Leg::Waiting { patience_end: t_ans + secs(patience) };
                        }
                        self.at(t_ans + secs(patience), TelephonyEvent::Ended { call_id: id, result: CallResult::Answered });
                    } else {
                        self.at(t_ans, TelephonyEvent::Answered { call_id: id, answered_by: by });
                        if let Some(c) = self.calls.get_mut(&id) {
                            c.leg = Leg::Machine;
                        }
                        // Without detection the machine greeting ends and the call drops after 20 s.
                        self.at(t_ans + secs(20.0), TelephonyEvent::Ended { call_id: id, result: CallResult::AnsweringMachine });
                    }
                } else {
                    self.at(now + secs(ring), TelephonyEvent::Ended { call_id: id, result: CallResult::NoAnswer });
                }
            }
            TelephonyCommand::Connect { call_id, agent } => {
                let id = *call_id;
                let Some(c) = self.calls.get_mut(&id) else { return Ok(()) };
                if let Leg::Waiting { patience_end } = c.leg {
                    if patience_end > now {
                        c.leg = Leg::Connected;
                        let talk = c.talk_s;
                        self.drop_pending_end(id);
                        self.at(now + secs(CONNECT_S), TelephonyEvent::Connected { call_id: id, agent: *agent });
                        self.at(now + secs(CONNECT_S + talk), TelephonyEvent::Ended { call_id: id, result: CallResult::Answered });
                    }
                } else if c.leg == Leg::Playing {
                    // An agentless customer who pressed 1: the message stops, the agent talks.
                    c.leg = Leg::Connected;
                    let talk = c.talk_s;
                    self.drop_pending_end(id);
                    self.at(now + secs(CONNECT_S), TelephonyEvent::Connected { call_id: id, agent: *agent });
                    self.at(now + secs(CONNECT_S + talk), TelephonyEvent::Ended { call_id: id, result: CallResult::Answered });
                } else if c.leg == Leg::Machine {
                    c.leg = Leg::Connected;
                    self.drop_pending_end(id);
                    self.at(now + secs(CONNECT_S), TelephonyEvent::Connected { call_id: id, agent: *agent });
                    self.at(now + secs(CONNECT_S + 15.0), TelephonyEvent::Ended { call_id: id, result: CallResult::Answered });
                }
            }
            TelephonyCommand::Play { call_id, then_hang_up, .. } => {
                let id = *call_id;
                let Some(c) = self.calls.get_mut(&id) else { return Ok(()) };
                if matches!(c.leg, Leg::Ending) {
                    return Ok(());
                }
                c.leg = Leg::Playing;
                self.drop_pending_end(id);
                self.at(now + secs(PROMPT_S), TelephonyEvent::PromptDone { call_id: id });
                if let Some((d, p)) = self.agentless_digit {
                    if self.rng.gen::<f64>() < p {
                        self.at(now + secs(PROMPT_S - 1.0), TelephonyEvent::Digit { call_id: id, digit: d });
                    }
                }
                if *then_hang_up {
                    self.at(now + secs(PROMPT_S + 0.1), TelephonyEvent::Ended { call_id: id, result: CallResult::Answered });
                }
            }
            TelephonyCommand::Disconnect { call_id, .. } => {
                // The agent left before talking: the customer waits again, and hangs up unless
                // the engine connects someone else within the connect time.
                let id = *call_id;
                let Some(c) = self.calls.get_mut(&id) else { return Ok(()) };
                if c.leg == Leg::Connected {
                    let patience_end = now + secs(CONNECT_S);
                    c.leg = Leg::Waiting { patience_end };
                    self.drop_pending_end(id);
                    self.queue.retain(|_, ev| !matches!(ev, TelephonyEvent::Connected { call_id, .. } if *call_id == id));
                    self.at(patience_end, TelephonyEvent::Ended { call_id: id, result: CallResult::Answered });
                }
            }
            TelephonyCommand::HangUp { call_id } => {
                let id = *call_id;
                let Some(c) = self.calls.get_mut(&id) else { return Ok(()) };
                let result = match c.leg {
                    Leg::Ringing => CallResult::Cancelled,
                    Leg::Machine => CallResult::AnsweringMachine,
                    _ => CallResult::Answered,
                };
                c.leg = Leg::Ending;
                self.drop_pending_end(id);
                self.at(now + secs(0.1), TelephonyEvent::Ended { call_id: id, result });
            }
        }
        let _ = now.hour();
        Ok(())
    }

    /// Removes the call's pending `Ended`, `PromptDone` and `Digit` events.
    fn drop_pending_end(&mut self, id: CallId) {
        let Some(c) = self.calls.get_mut(&id) else { return };
        for key in std::mem::take(&mut c.ends) {
            self.queue.remove(&key);
        }
    }

    /// When the next event is due.
    pub fn next_event_at(&self) -> Option<DateTime<Utc>> {
        self.queue.keys().next().map(|(t, _)| *t)
    }

    /// The next event due at or before `now`, if any.
    pub fn poll_event(&mut self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, TelephonyEvent)> {
        let (&(t, seq), _) = self.queue.iter().next()?;
        if t > now {
            return None;
        }
        let ev = self.queue.remove(&(t, seq)).expect("key just seen");
        if let TelephonyEvent::Ended { call_id, .. } = &ev {
            self.calls.remove(call_id);
        }
        Some((t, ev))
    }

    pub fn live_calls(&self) -> usize {
        self.calls.len()
    }

    /// Whether a call was answered by a machine and detection is on (for statistics).
    pub fn detects(&self, id: CallId) -> bool {
        self.calls.get(&id).is_some_and(|c| c.detect_machine && !c.invalid)
    }
}
