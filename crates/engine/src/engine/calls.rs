//! The call table: live calls, with per-campaign [`Counts`] kept current on every change.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CallState {
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
pub(super) struct Call {
    pub(super) campaign: CampaignId,
    pub(super) cand: Candidate,
    pub(super) zones: Option<ContactZones>,
    pub(super) state: CallState,
    pub(super) dialed_at: DateTime<Utc>,
    pub(super) answered_at: Option<DateTime<Utc>>,
    pub(super) connected_at: Option<DateTime<Utc>>,
    /// Telephony ended the call (the agent's wrap-up started).
    pub(super) ended_at: Option<DateTime<Utc>>,
    pub(super) agent: Option<UserId>,
    /// Telephony reported the agent leg of the last `Connect` up (`Connected`): the agent is
    /// talking, not only being called.
    pub(super) bridged: bool,
    pub(super) live: bool,
    pub(super) machine: bool,
    pub(super) abandoned: bool,
    pub(super) digit_result: Option<CallResult>,
    pub(super) network_result: Option<CallResult>,
}

/// Live calls per campaign, kept current on every change (pacing reads them on every event).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Counts {
    /// Dialed, not answered, no agent reserved.
    pub(super) unanswered: usize,
    /// Answered, waiting for an agent.
    pub(super) waiting: usize,
    /// Connected to an agent (the agent is talking).
    pub(super) talking: usize,
    /// Ended, the agent in wrap-up.
    pub(super) wrapping: usize,
    pub(super) total: usize,
}

pub(super) type Class = (usize, usize, usize, usize);

pub(super) fn class(c: &Call) -> Class {
    let un = matches!(c.state, CallState::Dialing | CallState::AwaitingAmd) && c.agent.is_none();
    let w = matches!(c.state, CallState::WaitingAgent { .. });
    let t = c.state == CallState::Connected && c.agent.is_some();
    let e = c.state == CallState::Ended && c.agent.is_some();
    (usize::from(un), usize::from(w), usize::from(t), usize::from(e))
}

impl Counts {
    /// Moves one call from class `before` to class `after`. A call is in at most one class, and
    /// the classes never hold more calls than the campaign has: a count that would go below
    /// zero (or past the total) means the table lost track of a call, and pacing would go on
    /// reading a wrong number of calls in flight, so it panics instead.
    pub(super) fn apply(&mut self, before: Class, after: Class) {
        let step = |n: usize, b: usize, a: usize, what: &str| -> usize {
            assert!(n + a >= b, "call counts: {what} would go below zero ({n} + {a} - {b})");
            n + a - b
        };
        self.unanswered = step(self.unanswered, before.0, after.0, "unanswered");
        self.waiting = step(self.waiting, before.1, after.1, "waiting");
        self.talking = step(self.talking, before.2, after.2, "talking");
        self.wrapping = step(self.wrapping, before.3, after.3, "wrapping");
        self.assert_consistent();
    }

    /// The classes hold at most `total` calls between them.
    pub(super) fn assert_consistent(&self) {
        assert!(
            self.unanswered + self.waiting + self.talking + self.wrapping <= self.total,
            "call counts: {self:?} hold more calls than the campaign's total"
        );
    }
}

/// The live calls, with per-campaign [`Counts`] maintained through [`CallMut`].
#[derive(Debug, Default)]
pub(super) struct CallTable {
    pub(super) map: BTreeMap<CallId, Call>,
    pub(super) counts: HashMap<CampaignId, Counts>,
    /// Unanswered calls per campaign by the second they were dialed.
    pub(super) ringing: HashMap<CampaignId, RingingAges>,
    /// Answered calls waiting for an agent, by deadline.
    pub(super) waiting: BTreeSet<(DateTime<Utc>, CallId)>,
}

pub(super) struct CallMut<'a> {
    pub(super) id: CallId,
    pub(super) call: &'a mut Call,
    pub(super) counts: &'a mut HashMap<CampaignId, Counts>,
    pub(super) ringing: &'a mut HashMap<CampaignId, RingingAges>,
    pub(super) waiting: &'a mut BTreeSet<(DateTime<Utc>, CallId)>,
    pub(super) before: Class,
    pub(super) before_state: CallState,
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
    pub(super) fn get(&self, id: CallId) -> Option<&Call> {
        self.map.get(&id)
    }
    pub(super) fn get_mut(&mut self, id: CallId) -> Option<CallMut<'_>> {
        let call = self.map.get_mut(&id)?;
        let before = class(call);
        let before_state = call.state;
        Some(CallMut { id, call, counts: &mut self.counts, ringing: &mut self.ringing, waiting: &mut self.waiting, before, before_state })
    }
    pub(super) fn insert(&mut self, id: CallId, call: Call) {
        let k = class(&call);
        let c = self.counts.entry(call.campaign).or_default();
        c.total += 1;
        c.apply((0, 0, 0, 0), k);
        if k.0 > 0 {
            self.ringing.entry(call.campaign).or_default().add(call.dialed_at.timestamp());
        }
        self.map.insert(id, call);
    }
    pub(super) fn remove(&mut self, id: CallId) -> Option<Call> {
        let call = self.map.remove(&id)?;
        if let CallState::WaitingAgent { deadline } = call.state {
            self.waiting.remove(&(deadline, id));
        }
        let k = class(&call);
        let c = self.counts.entry(call.campaign).or_default();
        c.apply(k, (0, 0, 0, 0));
        assert!(c.total > 0, "call counts: removing a call of campaign {} that counts none", call.campaign);
        c.total -= 1;
        c.assert_consistent();
        if k.0 > 0 {
            if let Some(r) = self.ringing.get_mut(&call.campaign) {
                r.remove(call.dialed_at.timestamp());
            }
        }
        Some(call)
    }
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
    pub(super) fn counts(&self, campaign: CampaignId) -> Counts {
        self.counts.get(&campaign).copied().unwrap_or_default()
    }
}
