//! Simulated agents: log in and out by shift, take breaks, wrap up and dispose calls, act on
//! previews. Sans-IO like the engine: feed it the engine's [`AgentNotice`]s, poll [`Input`]s.

use crate::model::AgentModel;
use campana_core::record::CallResult;
use campana_core::telephony::CallId;
use campana_core::user::CampaignsProfile;
use campana_core::{AgentGroupId, RecordId, UserId};
use campana_engine::{AgentNotice, CallbackRequest, Input};
use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq)]
enum St {
    Out,
    Idle,
    Talking { since: DateTime<Utc> },
    Wrap { since: DateTime<Utc> },
    Break { since: DateTime<Utc> },
    Previewing,
}

#[derive(Debug, Clone)]
struct SimAgent {
    st: St,
    login_at: Option<DateTime<Utc>>,
    logout_at: DateTime<Utc>,
    next_break_at: Option<DateTime<Utc>>,
    logout_due: bool,
    call: Option<CallId>,
}

/// Time accounting of all agents.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct AgentTotals {
    pub logged_in_s: f64,
    pub talk_s: f64,
    pub wrap_s: f64,
    pub break_s: f64,
    pub connects: u64,
}

/// Seeded simulated agents.
pub struct SimAgents {
    rng: ChaCha8Rng,
    model: AgentModel,
    /// The agent group of each agent (round robin over the groups given).
    groups: BTreeMap<UserId, AgentGroupId>,
    agents: BTreeMap<UserId, SimAgent>,
    queue: BTreeMap<(DateTime<Utc>, u64), Input>,
    seq: u64,
    pub totals: AgentTotals,
}

fn secs(s: f64) -> Duration {
    crate::model::sim_duration(s)
}

/// Hard limit on simulated agents.
pub const MAX_SIM_AGENTS: usize = 20_000;

impl SimAgents {
    /// Agents per the model's shifts over the day starting at `start` and lasting `hours`, in
    /// `group` (none: they take calls only of campaigns without an agent group).
    pub fn new(seed: u64, model: AgentModel, group: Option<AgentGroupId>, start: DateTime<Utc>, hours: f64) -> Self {
        Self::in_groups(seed, model, &group.into_iter().collect::<Vec<_>>(), start, hours)
    }

    /// As [`SimAgents::new`], the agents spread round robin over `groups`, one group each.
    pub fn in_groups(seed: u64, model: AgentModel, groups: &[AgentGroupId], start: DateTime<Utc>, hours: f64) -> Self {
        let mut s = SimAgents {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xa6e7_5eed),
            model,
            groups: BTreeMap::new(),
            agents: BTreeMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            totals: AgentTotals::default(),
        };
        let shifts: Vec<(f64, f64, u32)> = if s.model.shifts.is_empty() {
            vec![(0.0, hours, s.model.count)]
        } else {
            s.model.shifts.iter().map(|x| (x.from_h, x.to_h.min(hours), x.count)).collect()
        };
        let mut next_id = 1000i64;
        for (from, to, count) in shifts {
            for _ in 0..count {
                if s.agents.len() >= MAX_SIM_AGENTS {
                    break;
                }
                let id = UserId(next_id);
                next_id += 1;
                // Logins spread over the first minute of the shift.
                let login = start + secs(from * 3600.0 + s.rng.gen_range(0.0..60.0));
                let logout = start + secs(to * 3600.0);
                let group = (!groups.is_empty()).then(|| groups[s.agents.len() % groups.len()]);
                if let Some(g) = group {
                    s.groups.insert(id, g);
                }
                s.agents.insert(
                    id,
                    SimAgent { st: St::Out, login_at: None, logout_at: logout, next_break_at: None, logout_due: false, call: None },
                );
                s.push(login, Input::AgentLogin { agent: id, groups: group.into_iter().collect(), campaigns: CampaignsProfile::All });
                s.push(login, Input::AgentReady { agent: id });
                s.push(logout, Input::AgentLogout { agent: id });
            }
        }
        s
    }

    fn push(&mut self, t: DateTime<Utc>, i: Input) {
        self.seq += 1;
        self.queue.insert((t, self.seq), i);
    }

    pub fn next_action_at(&self) -> Option<DateTime<Utc>> {
        self.queue.keys().next().map(|(t, _)| *t)
    }

    /// The next agent action due at or before `now`. Logouts and breaks wait for the end of a
    /// call; the state is updated as the action is handed out.
    pub fn poll_action(&mut self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, Input)> {
        loop {
            let (&(t, seq), _) = self.queue.iter().next()?;
            if t > now {
                return None;
            }
            let input = self.queue.remove(&(t, seq)).expect("key just seen");
            match &input {
                Input::AgentLogin { agent, .. } => {
                    let a = self.agents.get_mut(agent).expect("scheduled agent");
                    a.login_at = Some(t);
                    a.st = St::Idle;
                    if self.model.break_every_min > 0.0 {
                        a.next_break_at = Some(t + secs(self.model.break_every_min * 60.0));
                    }
                }
                Input::AgentLogout { agent } => {
                    let a = self.agents.get_mut(agent).expect("scheduled agent");
                    match a.st {
                        // A previewing agent's offer is withdrawn by the engine (the notice
                        // comes back and finds the agent out).
                        St::Idle | St::Break { .. } | St::Previewing => {
                            if let St::Break { since } = a.st {
                                self.totals.break_s += (t - since).num_milliseconds() as f64 / 1000.0;
                            }
                            a.st = St::Out;
                            if let Some(l) = a.login_at.take() {
                                self.totals.logged_in_s += (t - l).num_milliseconds() as f64 / 1000.0;
                            }
                        }
                        St::Out => continue,
                        // On a call or in wrap-up: the engine is told now and logs the agent out
                        // when the wrap-up ends (it gives the agent no further call meanwhile).
                        St::Talking { .. } | St::Wrap { .. } => a.logout_due = true,
                    }
                }
                Input::AgentReady { agent } => {
                    let a = self.agents.get_mut(agent).expect("scheduled agent");
                    if let St::Break { since } = a.st {
                        self.totals.break_s += (t - since).num_milliseconds() as f64 / 1000.0;
                        a.st = St::Idle;
                        a.next_break_at = Some(t + secs(self.model.break_every_min * 60.0));
                    }
                    if a.st == St::Out {
                        continue;
                    }
                }
                Input::Disposition { agent, .. } => {
                    let a = self.agents.get_mut(agent).expect("scheduled agent");
                    if let St::Wrap { since } = a.st {
                        self.totals.wrap_s += (t - since).num_milliseconds() as f64 / 1000.0;
                    }
                    a.call = None;
                    if let St::Wrap { .. } = a.st {
                        a.st = St::Idle;
                    }
                    if a.logout_due {
                        a.logout_due = false;
                        a.st = St::Out;
                        if let Some(l) = a.login_at.take() {
                            self.totals.logged_in_s += (t - l).num_milliseconds() as f64 / 1000.0;
                        }
                    }
                }
                Input::AgentNotReady { agent, .. } => {
                    let a = self.agents.get_mut(agent).expect("scheduled agent");
                    match a.st {
                        St::Out => continue,
                        // A logout crossed the break: the agent leaves when the wrap-up ends.
                        _ if a.logout_due => continue,
                        St::Wrap { since } => {
                            self.totals.wrap_s += (t - since).num_milliseconds() as f64 / 1000.0;
                            a.st = St::Break { since: t };
                        }
                        _ => a.st = St::Break { since: t },
                    }
                }
                Input::PreviewAccept { agent, .. } | Input::PreviewSkip { agent, .. } => {
                    let a = self.agents.get_mut(agent).expect("scheduled agent");
                    if a.st != St::Previewing {
                        continue;
                    }
                    a.st = St::Idle;
                }
                _ => {}
            }
            return Some((t, input));
        }
    }

    /// Reacts to an engine notice at `now`.
    pub fn on_notice(&mut self, now: DateTime<Utc>, n: &AgentNotice) {
        match n {
            AgentNotice::CallConnected { agent, call_id, .. } => {
                if let Some(a) = self.agents.get_mut(agent) {
                    if a.st == St::Out {
                        // The logout crossed a call the engine had already given the agent:
                        // the agent is logged in until that call's wrap-up ends.
                        a.login_at = Some(now);
                        a.logout_due = true;
                    }
                    a.st = St::Talking { since: now };
                    a.call = Some(*call_id);
                    self.totals.connects += 1;
                }
            }
            AgentNotice::WrapUp { agent, call_id, until } => {
                let wrap = {
                    let u: f64 = self.rng.gen_range(1e-12..1.0);
                    -self.model.wrap_mean_s * u.ln()
                };
                let Some(a) = self.agents.get_mut(agent) else { return };
                if let St::Talking { since } = a.st {
                    self.totals.talk_s += (now - since).num_milliseconds() as f64 / 1000.0;
                }
                a.st = St::Wrap { since: now };
                let at = (now + secs(wrap)).min(*until - Duration::milliseconds(1)).max(now);
                // "Dispose and pause": a break is due, so the agent asks for not-ready while still
                // in wrap-up (the engine applies it when the wrap-up ends) and comes back ready
                // after `break_len_s`. Logouts win over breaks.
                let on_break = self.model.break_every_min > 0.0 && !a.logout_due && a.next_break_at.is_some_and(|b| b <= now);
                if on_break {
                    a.next_break_at = None;
                }
                let r: f64 = self.rng.gen();
                let (result, callback) = if r < self.model.dnc_share {
                    (CallResult::DoNotCall, None)
                } else if r < self.model.dnc_share + self.model.callback_share {
                    (CallResult::AgentCallback, Some(CallbackRequest { at: now + Duration::hours(1), personal: self.rng.gen::<bool>() }))
                } else {
                    (CallResult::RightParty, None)
                };
                if on_break {
                    self.push(at, Input::AgentNotReady { agent: *agent, pause_code: "break".into() });
                }
                self.push(at, Input::Disposition { agent: *agent, call_id: *call_id, result, callback });
                if on_break {
                    self.push(at + secs(self.model.break_len_s.max(0.0)), Input::AgentReady { agent: *agent });
                }
            }
            AgentNotice::PreviewOffer { agent, record_id, .. } => {
                let think = self.model.preview_think_s.unwrap_or(5.0);
                let skip = self.rng.gen::<f64>() < self.model.preview_skip_share;
                let Some(a) = self.agents.get_mut(agent) else { return };
                a.st = St::Previewing;
                let t = now + secs(think);
                let (agent, record_id) = (*agent, *record_id);
                self.push(t, if skip { Input::PreviewSkip { agent, record_id } } else { Input::PreviewAccept { agent, record_id } });
            }
            AgentNotice::PreviewWithdrawn { agent, record_id } => {
                let (agent, record_id): (UserId, RecordId) = (*agent, *record_id);
                if let Some(a) = self.agents.get_mut(&agent) {
                    if a.st == St::Previewing {
                        a.st = St::Idle;
                    }
                }
                self.queue.retain(|_, i| !matches!(i, Input::PreviewAccept { agent: g, record_id: r } | Input::PreviewSkip { agent: g, record_id: r } if *g == agent && *r == record_id));
            }
            // Simulated telephony never fails an agent's phone (`PhoneFailed` comes from SIP).
            AgentNotice::AgentAlert { .. }
            | AgentNotice::WrapUpEnded { .. }
            | AgentNotice::DialEnded { .. }
            | AgentNotice::PhoneFailed { .. } => {}
        }
    }

    /// Ends the day: every agent still logged in is counted until `end`.
    pub fn close(&mut self, end: DateTime<Utc>) {
        for a in self.agents.values_mut() {
            match a.st {
                St::Talking { since } => self.totals.talk_s += (end - since).num_milliseconds() as f64 / 1000.0,
                St::Wrap { since } => self.totals.wrap_s += (end - since).num_milliseconds() as f64 / 1000.0,
                St::Break { since } => self.totals.break_s += (end - since).num_milliseconds() as f64 / 1000.0,
                _ => {}
            }
            if let Some(l) = a.login_at.take() {
                self.totals.logged_in_s += (end.min(a.logout_at.max(l)) - l).num_milliseconds().max(0) as f64 / 1000.0;
                if a.logout_at < end && a.st != St::Out {
                    // Logged out late after a call: count until the logout moment reached.
                }
            }
        }
    }

    /// Agents idle now (logged in, not on a call, not on break).
    pub fn idle_count(&self) -> usize {
        self.agents.values().filter(|a| a.st == St::Idle).count()
    }

    /// Spreads the agents over `groups` anew (round robin, in the order they were made): the
    /// logins still to come carry the new group, and the agents logged in already get a new
    /// `AgentLogin` (returned, for the driver to hand to the engine; their state is kept).
    pub fn regroup(&mut self, groups: &[AgentGroupId]) -> Vec<Input> {
        if groups.is_empty() {
            return Vec::new();
        }
        self.groups = self.agents.keys().enumerate().map(|(k, id)| (*id, groups[k % groups.len()])).collect();
        for input in self.queue.values_mut() {
            if let Input::AgentLogin { agent, groups: g, .. } = input {
                *g = self.groups.get(agent).copied().into_iter().collect();
            }
        }
        self.agents
            .iter()
            .filter(|(_, a)| a.st != St::Out)
            .map(|(id, _)| Input::AgentLogin {
                agent: *id,
                groups: self.groups.get(id).copied().into_iter().collect(),
                campaigns: CampaignsProfile::All,
            })
            .collect()
    }

    /// The agent group of a simulated agent.
    pub fn group_of(&self, agent: UserId) -> Option<AgentGroupId> {
        self.groups.get(&agent).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use campana_core::{CampaignId, RecordId};

    /// An agent on a call when the shift ends is logged out by the engine: the logout is handed
    /// out at the shift's end (the engine then gives the agent no further call), not dropped.
    #[test]
    fn logout_during_a_call_reaches_the_engine() {
        let start: DateTime<Utc> = "2026-03-03T14:00:00Z".parse().expect("valid");
        let model =
            AgentModel { count: 0, shifts: vec![crate::model::Shift { from_h: 0.0, to_h: 0.5, count: 1 }], ..AgentModel::default() };
        let mut a = SimAgents::new(1, model, None, start, 1.0);
        let mut agent = None;
        while let Some((_, i)) = a.poll_action(start + Duration::minutes(10)) {
            if let Input::AgentLogin { agent: id, .. } = i {
                agent = Some(id);
            }
        }
        let agent = agent.expect("logged in");
        let call_id = CallId(7);
        a.on_notice(
            start + Duration::minutes(20),
            &AgentNotice::CallConnected { agent, campaign_id: CampaignId(1), call_id, record_id: RecordId(1) },
        );
        let mut got = Vec::new();
        while let Some((t, i)) = a.poll_action(start + Duration::minutes(31)) {
            got.push((t, i));
        }
        assert!(
            got.iter().any(|(t, i)| matches!(i, Input::AgentLogout { agent: g } if *g == agent) && *t == start + Duration::minutes(30)),
            "the logout at the shift's end reaches the engine: {got:?}"
        );
        // The call ends, the wrap-up is disposed: the agent is out and stays out.
        a.on_notice(start + Duration::minutes(32), &AgentNotice::WrapUp { agent, call_id, until: start + Duration::minutes(40) });
        while a.poll_action(start + Duration::minutes(41)).is_some() {}
        assert_eq!(a.idle_count(), 0);
    }
}
