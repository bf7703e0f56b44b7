//! The pacing pass: which records to dial now, for which agents, in every campaign.

use super::*;

/// Re-check a deferred record no later than this far ahead; beyond it the record goes back to
/// the store with its reason.
pub(super) const KEEP_DEFERRED_S: i64 = 120;
/// Predictive: accepted chance that the next call's answer finds no agent, per unit of
/// `abandon_rate_target` (before the adaptation to the realised rate).
pub(super) const THETA_PER_TARGET: f64 = 1.0;
/// Abandons the guard keeps in reserve: it plans with `B - ABANDON_RESERVE` (see
/// `pacing::guard_max`). A plan at the guard's risk overshoots by one or two abandons now and
/// then (calls answering in a cluster, an answer rate above its upper bound for a while, a free
/// agent logging out); without the reserve that broke the cap on a few days in a hundred, early
/// in the day when the budget is a single abandon.
pub const ABANDON_RESERVE: f64 = 2.0;
/// Predictive: the guard's upper bound of the answer probability is the estimate plus this
/// many standard errors (the estimator sees outcomes in dial order, so it is unbiased).
pub(super) const P_HIGH_Z: f64 = 2.0;
/// Outcomes held for the estimator per campaign (beyond this, the oldest are fed at once).
pub(super) const MAX_PENDING_OUTCOMES: usize = 10_000;
/// Predictive: the recent window the aim's adaptation also reads (see `human`).
pub(super) const RECENT_WINDOW_S: i64 = 3600;
/// Predictive: bounds of the multiplier of `abandon_rate_target` (θ never exceeds 0.5).
pub(super) const MIN_AGGRESSIVENESS: f64 = 0.5;
pub(super) const MAX_AGGRESSIVENESS: f64 = 20.0;
/// Horizon the abandon budget looks ahead (answers expiring sooner are not counted).
pub(super) const BUDGET_HORIZON_S: i64 = 600;

impl Engine {
    /// Places a call: persist first, then dial. Returns false when the last-moment checks refuse.
    pub(super) fn dial(&mut self, campaign: CampaignId, b: Buffered, agent: Option<UserId>) -> bool {
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
            if a.state == Activity::Ready {
                self.ready_agents.remove(&(a.ready_since, id));
            }
            a.set(Activity::Reserved { call: call_id, alerting: agent_first }, self.now);
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
                bridged: false,
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
    pub(super) fn select(&mut self, campaign: CampaignId, agent: Option<UserId>) -> Option<Buffered> {
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

    pub(super) fn campaign_has_work(&mut self, cid: CampaignId) -> bool {
        let now = self.now;
        self.campaigns.get_mut(&cid).is_some_and(|c| {
            c.buffer.promote(now);
            !c.buffer.ready.is_empty()
        })
    }
    /// Decides dials for every campaign, highest priority first.
    pub(super) fn pace(&mut self) {
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
                    self.agents.iter().filter(|(_, a)| a.state == Activity::Ready).map(|(id, a)| (a.ready_since, *id)).collect();
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
                        let expires = now + Duration::seconds(i64::from(c.cfg.settings.preview_timeout_s));
                        let record = b.cand.record.id;
                        c.offered.insert(record, b);
                        self.live_records.insert(record);
                        if let Some(a) = self.agents.get_mut(&agent) {
                            if a.state == Activity::Ready {
                                self.ready_agents.remove(&(a.ready_since, agent));
                            }
                            a.set(Activity::Preview { campaign: cid, record, expires }, self.now);
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

    pub(super) fn target_in_flight(&self, cid: CampaignId, mode: DialingMode, free: usize) -> usize {
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
        let target = counts.unanswered + pacing::predictive_dials(&look);
        if c.list_exhausted {
            // The list is running out: every call in flight has a free agent to go to.
            target.min(free.saturating_sub(waiting))
        } else {
            target
        }
    }
}
