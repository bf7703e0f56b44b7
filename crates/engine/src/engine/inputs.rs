//! [`Input`]s: campaigns, records, agents, DNC changes, dispositions and previews.

use super::*;

impl Engine {
    pub(super) fn apply(&mut self, input: Input) -> Result<(), EngineError> {
        match input {
            Input::CampaignStarted(cfg) | Input::CampaignUpdated(cfg) => {
                let id = cfg.id;
                if let Some(c) = self.campaigns.get_mut(&id) {
                    c.cfg = *cfg;
                    c.stopped = false;
                    c.list_exhausted = false;
                    c.buffer.reset(self.now);
                } else {
                    if self.campaigns.len() >= self.cfg.max_campaigns {
                        return Err(EngineError::Limit { what: "campaigns", limit: self.cfg.max_campaigns });
                    }
                    let ring = cfg.settings.ring_timeout_s;
                    self.campaigns.insert(
                        id,
                        Camp {
                            cfg: *cfg,
                            buffer: Buffer::default(),
                            requested: false,
                            refill_after: None,
                            list_exhausted: false,
                            ledger: AbandonLedger::default(),
                            estimator: AnswerEstimator::default(),
                            ages: AgeProfile::new(ring),
                            outcomes: BTreeMap::new(),
                            offered: HashMap::default(),
                            stopped: false,
                            aggressiveness: 1.0,
                        },
                    );
                }
            }
            Input::CampaignStopped { campaign_id } => {
                let Some(c) = self.campaigns.remove(&campaign_id) else { return Err(EngineError::UnknownCampaign(campaign_id)) };
                for b in c.offered.values() {
                    self.live_records.remove(&b.cand.record.id);
                }
                let offers: Vec<UserId> = self
                    .agents
                    .iter()
                    .filter(|(_, a)| matches!(a.state, Activity::Preview { campaign, .. } if campaign == campaign_id))
                    .map(|(id, _)| *id)
                    .collect();
                for a in offers {
                    if let Some(Activity::Preview { record, .. }) = self.agents.get(&a).map(|x| x.state.clone()) {
                        self.push(Output::Agent(AgentNotice::PreviewWithdrawn { agent: a, record_id: record }));
                        self.live_records.remove(&record);
                    }
                    self.set_ready(a);
                }
                // Calls in flight finish under the campaign's settings; the entry goes with the last call.
                let has_calls = self.calls.counts(campaign_id).total > 0;
                if has_calls {
                    let mut c = c;
                    c.stopped = true;
                    c.buffer.clear();
                    c.offered.clear();
                    self.campaigns.insert(campaign_id, c);
                }
            }
            Input::ListExhausted { campaign_id } => {
                let Some(c) = self.campaigns.get_mut(&campaign_id) else { return Err(EngineError::UnknownCampaign(campaign_id)) };
                c.list_exhausted = true;
            }
            Input::RecordsAvailable { campaign_id, records } => {
                let max = self.cfg.max_buffer_per_campaign;
                let now = self.now;
                let backoff = self.cfg.refill_backoff_s;
                let Some(c) = self.campaigns.get_mut(&campaign_id) else { return Err(EngineError::UnknownCampaign(campaign_id)) };
                c.requested = false;
                c.list_exhausted = false;
                let mut overflow = Vec::new();
                let mut added = 0usize;
                for cand in records {
                    let id = cand.record.id;
                    // A record the engine already holds (buffered, offered or in a call) is not
                    // new: it stays where it is, and nothing about it goes back to the store.
                    if c.buffer.contains(id) || c.offered.contains_key(&id) || self.live_records.contains(&id) {
                        continue;
                    }
                    if c.buffer.len() >= max {
                        overflow.push(id);
                        continue;
                    }
                    let zones = eligibility::contact_zones(&cand);
                    c.buffer.push_back(Buffered { cand, zones, not_before: now });
                    added += 1;
                }
                // A refill that brought nothing new (an empty list, or only records already held)
                // waits before asking again: asking at once would get the same answer, forever.
                if added == 0 {
                    c.refill_after = Some(now + Duration::seconds(backoff));
                }
                for id in overflow {
                    let reason = Blocked {
                        code: ReasonCode::NotNeeded,
                        message: "the engine's buffer for this campaign is full".into(),
                        next_dialable_at: Some(now),
                    };
                    self.push(Output::Persist(PersistCommand::RecordDeferred { campaign_id, record_id: id, reason }));
                }
            }
            Input::AbandonHistory { campaign_id, at, live_answers, abandons, machine_verdicts } => {
                let c = self.campaigns.get_mut(&campaign_id).ok_or(EngineError::UnknownCampaign(campaign_id))?;
                let share = match c.cfg.settings.abandon_policy {
                    AbandonPolicy::UkOfcom24h => self.cfg.amd_false_positive_share * f64::from(machine_verdicts),
                    AbandonPolicy::UsFcc30d => 0.0,
                };
                c.ledger.add(at, f64::from(live_answers) + share, f64::from(abandons) + share);
            }
            Input::AgentLogin { agent, groups, campaigns } => {
                if !self.agents.contains_key(&agent) && self.agents.len() >= self.cfg.max_agents {
                    return Err(EngineError::Limit { what: "agents", limit: self.cfg.max_agents });
                }
                let now = self.now;
                let a = self.agents.entry(agent).or_insert(Agent {
                    groups: Vec::new(),
                    campaigns: CampaignsProfile::All,
                    state: Activity::NotReady,
                    since: now,
                    pause_code: None,
                    logout_pending: false,
                    pause_pending: false,
                    ready_since: now,
                });
                a.groups = groups;
                a.campaigns = campaigns;
                a.logout_pending = false;
            }
            Input::AgentReady { agent } => {
                let a = self.agents.get_mut(&agent).ok_or(EngineError::UnknownAgent(agent))?;
                a.pause_pending = false;
                a.pause_code = None;
                if a.state == Activity::NotReady {
                    self.set_ready(agent);
                }
            }
            Input::AgentNotReady { agent, pause_code } => {
                let a = self.agents.get_mut(&agent).ok_or(EngineError::UnknownAgent(agent))?;
                a.pause_code = Some(pause_code);
                match a.state.clone() {
                    Activity::Ready => {
                        self.ready_agents.remove(&(a.ready_since, agent));
                        a.set(Activity::NotReady, self.now);
                    }
                    Activity::Preview { record, campaign, expires } => {
                        a.set(Activity::NotReady, self.now);
                        self.timers.remove(&(expires, Timer::Preview(agent)));
                        self.push(Output::Agent(AgentNotice::PreviewWithdrawn { agent, record_id: record }));
                        self.return_offered(campaign, record, None);
                    }
                    Activity::NotReady => {}
                    // Busy agents go not-ready when their current call's wrap-up ends.
                    _ => a.pause_pending = true,
                }
            }
            Input::AgentLogout { agent } => {
                let a = self.agents.get_mut(&agent).ok_or(EngineError::UnknownAgent(agent))?;
                match a.state.clone() {
                    Activity::Ready | Activity::NotReady => {
                        self.ready_agents.remove(&(a.ready_since, agent));
                        self.agents.remove(&agent);
                    }
                    Activity::Preview { record, campaign, expires } => {
                        self.agents.remove(&agent);
                        self.timers.remove(&(expires, Timer::Preview(agent)));
                        self.push(Output::Agent(AgentNotice::PreviewWithdrawn { agent, record_id: record }));
                        self.return_offered(campaign, record, None);
                    }
                    // A call still ringing at the customer's for this agent: the agent leaves now
                    // and is never bridged to it; the call goes on as any other (another ready
                    // agent takes it when answered, or the safe-harbor message).
                    Activity::Reserved { call, .. } => {
                        self.agents.remove(&agent);
                        if let Some(mut c) = self.calls.get_mut(call) {
                            if c.agent == Some(agent) {
                                c.agent = None;
                            }
                        }
                        self.push(Output::Agent(AgentNotice::DialEnded { agent, next: AfterWrapUp::LoggedOut }));
                    }
                    // The agent's own phone still rings for a customer (`Connect` sent, no
                    // `Connected` yet): the agent leaves now and is never bridged. Telephony
                    // stops that leg (`Disconnect`), and the customer is handled as after a
                    // phone that failed (another ready agent within the connect deadline, or
                    // the safe-harbor message and an abandon).
                    Activity::Talking(call)
                        if self
                            .calls
                            .get(call)
                            .is_some_and(|c| c.state == CallState::Connected && c.agent == Some(agent) && !c.bridged) =>
                    {
                        self.agents.remove(&agent);
                        self.push(Output::Telephony(TelephonyCommand::Disconnect { call_id: call, agent }));
                        self.push(Output::Agent(AgentNotice::DialEnded { agent, next: AfterWrapUp::LoggedOut }));
                        self.connect_failed(call, agent, "the agent logged out while their phone rang".into());
                    }
                    _ => a.logout_pending = true,
                }
            }
            Input::Telephony(ev) => self.telephony(ev)?,
            Input::DncChanged { seq, numbers } => {
                for (n, hits) in numbers {
                    self.dnc_changes.insert(n, (seq, hits));
                }
            }
            Input::DncReplaced { lists, as_of_seq } => {
                let now = self.now;
                self.local_dnc.retain(|n| lists.lookup(n, &[], now).is_none());
                self.dnc_changes.retain(|_, (seq, _)| *seq > as_of_seq);
                self.dnc = Box::new(lists);
            }
            Input::DncStale(stale) => self.dnc_stale = stale,
            Input::Disposition { agent, call_id, result, callback } => {
                let a = self.agents.get(&agent).ok_or(EngineError::UnknownAgent(agent))?;
                match a.state {
                    Activity::WrapUp { call, until } if call == call_id => {
                        self.timers.remove(&(until, Timer::WrapEnd(agent)));
                        self.wrap_end(agent, self.now, Some((result, callback)));
                    }
                    Activity::Talking(call) if call == call_id => {
                        // Disposition before the customer hung up: hang up and finish.
                        if let Some(mut c) = self.calls.get_mut(call_id) {
                            c.digit_result = Some(result);
                        }
                        self.pending_dispositions.insert(call_id, (result, callback));
                        self.push(Output::Telephony(TelephonyCommand::HangUp { call_id }));
                    }
                    _ => return Err(EngineError::InvalidState(format!("agent {agent} has no call {call_id} to dispose"))),
                }
            }
            Input::PreviewAccept { agent, record_id } => {
                let a = self.agents.get(&agent).ok_or(EngineError::UnknownAgent(agent))?;
                match a.state {
                    Activity::Preview { campaign, record, expires } if record == record_id => {
                        self.timers.remove(&(expires, Timer::Preview(agent)));
                        self.dial_offered(agent, campaign, record);
                    }
                    _ => return Err(EngineError::InvalidState(format!("agent {agent} has no preview of record {record_id}"))),
                }
            }
            Input::PreviewSkip { agent, record_id } => {
                let a = self.agents.get(&agent).ok_or(EngineError::UnknownAgent(agent))?;
                match a.state {
                    Activity::Preview { campaign, record, expires } if record == record_id => {
                        self.timers.remove(&(expires, Timer::Preview(agent)));
                        self.skip_offered(agent, campaign, record);
                    }
                    _ => return Err(EngineError::InvalidState(format!("agent {agent} has no preview of record {record_id}"))),
                }
            }
        }
        Ok(())
    }
}
