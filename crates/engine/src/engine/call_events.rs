//! Telephony events on live calls: answers, machines, connect deadlines (abandons), ends and
//! the finalisation of a call (its result, the record's treatment, the end of a chain).

use super::*;

impl Engine {
    pub(super) fn connect_deadline(&mut self, id: CallId) {
        let now = self.now;
        let campaign = {
            let Some(mut c) = self.calls.get_mut(id) else { return };
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
    pub(super) fn connect_failed(&mut self, id: CallId, agent: UserId, reason: String) {
        let now = self.now;
        let (campaign, deadline) = {
            let Some(mut c) = self.calls.get_mut(id) else { return };
            if c.state != CallState::Connected || c.agent != Some(agent) {
                return;
            }
            let deadline_ms = self.campaigns.get(&c.campaign).map_or(2000, |x| i64::from(x.cfg.settings.connect_deadline_ms));
            let answered = c.answered_at.unwrap_or(now);
            c.agent = None;
            c.connected_at = None;
            c.state = CallState::WaitingAgent { deadline: answered + Duration::milliseconds(deadline_ms) };
            (c.campaign, answered + Duration::milliseconds(deadline_ms))
        };
        if let Some(a) = self.agents.get_mut(&agent) {
            if a.state == Activity::Talking(id) {
                let next = if a.logout_pending { AfterWrapUp::LoggedOut } else { AfterWrapUp::NotReady };
                a.pause_pending = false;
                a.set(Activity::NotReady, self.now);
                a.pause_code = Some(crate::PHONE_FAILED_PAUSE_CODE.to_string());
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

    pub(super) fn release_reserved(&mut self, call_id: CallId) {
        let agent = self.calls.get(call_id).and_then(|c| c.agent);
        if let Some(agent) = agent {
            if self.agents.get(&agent).is_some_and(|a| matches!(a.state, Activity::Reserved { call, .. } if call == call_id)) {
                if let Some(mut c) = self.calls.get_mut(call_id) {
                    c.agent = None;
                }
                self.dial_ended(agent);
            }
        }
    }

    /// Back to ready (or the pause or logout asked meanwhile) after a dial for the agent that
    /// did not reach them, with the notice that says so.
    pub(super) fn dial_ended(&mut self, agent: UserId) {
        let Some(next) = self.agents.get(&agent).map(Agent::next) else { return };
        self.push(Output::Agent(AgentNotice::DialEnded { agent, next }));
        self.set_ready(agent);
    }

    pub(super) fn human(&mut self, id: CallId) {
        let now = self.now;
        let (campaign, reserved, dialed_at) = {
            let Some(mut c) = self.calls.get_mut(id) else { return };
            c.live = true;
            (c.campaign, c.agent, c.dialed_at)
        };
        let Some(camp) = self.campaigns.get_mut(&campaign) else { return };
        camp.outcomes.insert((dialed_at, id), true);
        let age = (now - dialed_at).num_milliseconds() as f64 / 1000.0;
        camp.estimator.observe_answer_delay(age);
        camp.ages.observe_live(age);
        if camp.cfg.settings.dialing_mode == DialingMode::Agentless {
            if let Some(mut c) = self.calls.get_mut(id) {
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
        let deadline = now + Duration::milliseconds(i64::from(camp.cfg.settings.connect_deadline_ms));
        if let Some(agent) =
            reserved.filter(|a| self.agents.get(a).is_some_and(|x| matches!(x.state, Activity::Reserved { call, .. } if call == id)))
        {
            self.connect(id, agent);
            return;
        }
        match self.longest_ready_agent(campaign) {
            Some(agent) => self.connect(id, agent),
            None => {
                if let Some(mut c) = self.calls.get_mut(id) {
                    c.state = CallState::WaitingAgent { deadline };
                }
                self.timers.insert((deadline, Timer::ConnectDeadline(id)));
            }
        }
    }

    /// The ready agent who may take the campaign's calls and has waited longest.
    pub(super) fn longest_ready_agent(&self, campaign: CampaignId) -> Option<UserId> {
        let cfg = &self.campaigns.get(&campaign)?.cfg;
        // The ready set is ordered by (ready_since, id): the first eligible agent is the longest idle.
        self.ready_agents.iter().map(|(_, uid)| *uid).find(|uid| self.agents.get(uid).is_some_and(|a| eligible(a, cfg)))
    }

    pub(super) fn machine(&mut self, id: CallId) {
        let (campaign, dialed_at) = {
            let Some(mut c) = self.calls.get_mut(id) else { return };
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
        if let Some(mut c) = self.calls.get_mut(id) {
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

    pub(super) fn telephony(&mut self, ev: TelephonyEvent) -> Result<(), EngineError> {
        let id = ev.call_id();
        let Some(c) = self.calls.get(id) else { return Err(EngineError::UnknownCall(id)) };
        let amd = self.campaigns.get(&c.campaign).is_some_and(|x| x.cfg.settings.call_analysis.amd_enabled);
        match ev {
            TelephonyEvent::Connected { agent, .. } => {
                if c.state == CallState::Connected && c.agent == Some(agent) {
                    if let Some(mut c) = self.calls.get_mut(id) {
                        c.bridged = true;
                    }
                }
            }
            TelephonyEvent::Ringing { .. } | TelephonyEvent::PromptDone { .. } => {}
            TelephonyEvent::ConnectFailed { agent, reason, .. } => self.connect_failed(id, agent, reason),
            TelephonyEvent::Answered { answered_by, .. } => {
                if c.state != CallState::Dialing {
                    return Ok(());
                }
                let now = self.now;
                if let Some(mut c) = self.calls.get_mut(id) {
                    c.answered_at = Some(now);
                }
                match answered_by {
                    AnsweredBy::Machine => self.machine(id),
                    AnsweredBy::Unknown if amd => {
                        if let Some(mut c) = self.calls.get_mut(id) {
                            c.state = CallState::AwaitingAmd;
                        }
                    }
                    AnsweredBy::Human | AnsweredBy::Unknown => self.human(id),
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
                if let Some(mut c) = self.calls.get_mut(id) {
                    c.digit_result = Some(r);
                }
            }
            TelephonyEvent::Ended { result, .. } => {
                let c = self.calls.get(id).expect("checked above");
                if c.state == CallState::Ended {
                    return Ok(());
                }
                if let (CallState::Connected, Some(agent)) = (c.state, c.agent) {
                    let wrap = self.campaigns.get(&c.campaign).map_or(30, |x| i64::from(x.cfg.settings.wrap_up_s));
                    let until = self.now + Duration::seconds(wrap);
                    let now = self.now;
                    if let Some(mut c) = self.calls.get_mut(id) {
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
                        a.set(Activity::WrapUp { call: id, until }, self.now);
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

    pub(super) fn finalize(&mut self, id: CallId, result: CallResult, callback: Option<CallbackRequest>) {
        let Some(call) = self.calls.remove(id) else { return };
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
    pub(super) fn drop_chain(&mut self, key: ChainKey) {
        assert!(!self.live_chains.contains(&key), "a chain ends with its only live call");
        for c in self.campaigns.values_mut() {
            c.buffer.remove_chain(key);
        }
        let previews: Vec<(UserId, CampaignId, RecordId, DateTime<Utc>)> = self
            .agents
            .iter()
            .filter_map(|(id, a)| match a.state {
                Activity::Preview { campaign, record, expires } => Some((*id, campaign, record, expires)),
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
}
