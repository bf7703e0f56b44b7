//! Agents: their states, and the engine's moves of an agent between them.

use super::*;

/// What an agent is doing, as the engine sees it: the one agent state of Campana (the driver,
/// the API and the agent's screen use these names). The string form (`as_str`, `FromStr`,
/// serde) is stable; the table is in ARCHITECTURE.md ("Agent states"). A logged-out agent has
/// no state ([`Engine::agent_view`] is `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentState {
    /// Logged in, not taking calls (paused, or not ready since login).
    NotReady,
    /// Waiting for a call.
    Ready,
    /// Offered a record in preview, until it accepts, skips or the offer expires.
    Preview,
    /// A call is being dialed for this agent (an accepted preview, progressive, a personal
    /// callback); the agent is held for it.
    Dialing,
    /// As `Dialing`, with the agent's phone alerted first (progressive, agent first).
    Alerting,
    /// Talking to a customer.
    OnCall,
    /// The customer hung up; the agent is wrapping up (until the disposition or the time limit).
    WrapUp,
}

impl AgentState {
    /// Every state, in the order of the table.
    pub const ALL: [AgentState; 7] = [
        AgentState::NotReady,
        AgentState::Ready,
        AgentState::Preview,
        AgentState::Dialing,
        AgentState::Alerting,
        AgentState::OnCall,
        AgentState::WrapUp,
    ];

    /// The stable name (the same as serde's).
    pub const fn as_str(self) -> &'static str {
        match self {
            AgentState::NotReady => "not_ready",
            AgentState::Ready => "ready",
            AgentState::Preview => "preview",
            AgentState::Dialing => "dialing",
            AgentState::Alerting => "alerting",
            AgentState::OnCall => "on_call",
            AgentState::WrapUp => "wrap_up",
        }
    }

    /// The agent is held by a call (dialed for it, talking, or wrapping up): pause and logout
    /// asked now apply when it ends.
    pub const fn is_busy(self) -> bool {
        matches!(self, AgentState::Dialing | AgentState::Alerting | AgentState::OnCall | AgentState::WrapUp)
    }
}

impl std::fmt::Display for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an [`AgentState`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown agent state {0:?} (expected one of not_ready, ready, preview, dialing, alerting, on_call, wrap_up)")]
pub struct UnknownAgentState(pub String);

impl std::str::FromStr for AgentState {
    type Err = UnknownAgentState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AgentState::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| UnknownAgentState(s.to_string()))
    }
}

/// One agent as the engine sees it ([`Engine::agent_view`]): what a driver copies for screens
/// and status pages.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AgentView {
    pub state: AgentState,
    /// When the agent entered `state`.
    pub since: DateTime<Utc>,
    /// The campaign of the offer or call (`None` when not ready or ready).
    pub campaign: Option<CampaignId>,
    /// The record offered or called.
    pub record: Option<RecordId>,
    /// The call (dialing, alerting, on call, wrap-up).
    pub call: Option<CallId>,
    /// Until when: the preview offer's expiry, the end of wrap-up.
    pub until: Option<DateTime<Utc>>,
    /// Not ready: why (the pause code asked, or [`crate::PHONE_FAILED_PAUSE_CODE`]). Busy: the
    /// pause asked meanwhile, applied when the call ends.
    pub pause_code: Option<String>,
    /// Busy, with a pause asked: not ready when the call ends.
    pub pause_pending: bool,
    /// Busy, with a logout asked: logged out when the call ends.
    pub logout_pending: bool,
}

/// The engine's agent state with its data (the public [`AgentState`] is its kind).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Activity {
    NotReady,
    Ready,
    /// Held for a call being dialed for this agent (progressive, preview, personal callback);
    /// `alerting`: the agent's phone is alerted first (progressive, agent first).
    Reserved {
        call: CallId,
        alerting: bool,
    },
    Preview {
        campaign: CampaignId,
        record: RecordId,
        expires: DateTime<Utc>,
    },
    Talking(CallId),
    WrapUp {
        call: CallId,
        until: DateTime<Utc>,
    },
}

impl Activity {
    pub(super) fn kind(&self) -> AgentState {
        match self {
            Activity::NotReady => AgentState::NotReady,
            Activity::Ready => AgentState::Ready,
            Activity::Reserved { alerting: false, .. } => AgentState::Dialing,
            Activity::Reserved { alerting: true, .. } => AgentState::Alerting,
            Activity::Preview { .. } => AgentState::Preview,
            Activity::Talking(_) => AgentState::OnCall,
            Activity::WrapUp { .. } => AgentState::WrapUp,
        }
    }
}

impl Agent {
    /// Where the agent goes when their current call or dial ends.
    pub(super) fn next(&self) -> AfterWrapUp {
        if self.logout_pending {
            AfterWrapUp::LoggedOut
        } else if self.pause_pending {
            AfterWrapUp::NotReady
        } else {
            AfterWrapUp::Ready
        }
    }

    /// Moves the agent to `state` (`since` changes with the state's kind or data).
    pub(super) fn set(&mut self, state: Activity, now: DateTime<Utc>) {
        if self.state != state {
            self.since = now;
        }
        if state == Activity::Ready {
            self.pause_code = None;
        }
        self.state = state;
    }
}

#[derive(Debug, Clone)]
pub(super) struct Agent {
    pub(super) groups: Vec<AgentGroupId>,
    pub(super) campaigns: CampaignsProfile,
    pub(super) state: Activity,
    /// When `state` was entered.
    pub(super) since: DateTime<Utc>,
    /// See [`AgentView::pause_code`].
    pub(super) pause_code: Option<String>,
    pub(super) logout_pending: bool,
    /// Not-ready asked during a call: applied when the call's wrap-up ends.
    pub(super) pause_pending: bool,
    /// Ready since (longest-idle agent takes the next call).
    pub(super) ready_since: DateTime<Utc>,
}

/// Whether the agent may take calls of the campaign: a member of its agent group (when it has
/// one) and the campaign within the agent's campaigns profile.
pub(super) fn eligible(agent: &Agent, cfg: &CampaignConfig) -> bool {
    crate::eligibility::agent_mismatches(&agent.groups, &agent.campaigns, cfg.id, cfg.agent_group).next().is_none()
}

impl Engine {
    pub(super) fn set_ready(&mut self, agent: UserId) {
        let now = self.now;
        let Some(a) = self.agents.get_mut(&agent) else { return };
        if a.state == Activity::Ready {
            self.ready_agents.remove(&(a.ready_since, agent));
        }
        if a.logout_pending {
            self.agents.remove(&agent);
            return;
        }
        if a.pause_pending {
            a.pause_pending = false;
            a.set(Activity::NotReady, self.now);
            return;
        }
        a.set(Activity::Ready, self.now);
        a.ready_since = now;
        self.ready_agents.insert((now, agent));
        // A waiting answered call takes the agent at once (highest priority, then oldest).
        let mut best: Option<(i32, DateTime<Utc>, CallId)> = None;
        for (deadline, id) in self.calls.waiting.iter() {
            let (deadline, id) = (*deadline, *id);
            if let Some(c) = self.calls.get(id) {
                let Some(camp) = self.campaigns.get(&c.campaign) else { continue };
                if !eligible(a, &camp.cfg) {
                    continue;
                }
                let key = (camp.cfg.priority, deadline, id);
                if best.is_none_or(|b| key.0 > b.0 || (key.0 == b.0 && key.1 < b.1)) {
                    best = Some(key);
                }
            }
        }
        if let Some((_, deadline, call)) = best {
            self.timers.remove(&(deadline, Timer::ConnectDeadline(call)));
            self.connect(call, agent);
        }
    }

    pub(super) fn connect(&mut self, call_id: CallId, agent: UserId) {
        let now = self.now;
        let (campaign_id, record_id) = {
            let Some(mut c) = self.calls.get_mut(call_id) else { return };
            c.state = CallState::Connected;
            c.connected_at = Some(now);
            c.agent = Some(agent);
            c.bridged = false;
            (c.campaign, c.cand.record.id)
        };
        if let Some(a) = self.agents.get_mut(&agent) {
            if a.state == Activity::Ready {
                self.ready_agents.remove(&(a.ready_since, agent));
            }
            a.set(Activity::Talking(call_id), self.now);
        }
        self.push(Output::Telephony(TelephonyCommand::Connect { call_id, agent }));
        self.push(Output::Agent(AgentNotice::CallConnected { agent, campaign_id, call_id, record_id }));
    }

    pub(super) fn return_offered(&mut self, campaign: CampaignId, record: RecordId, defer: Option<Blocked>) {
        self.live_records.remove(&record);
        let now = self.now;
        let Some(c) = self.campaigns.get_mut(&campaign) else { return };
        let Some(mut b) = c.offered.remove(&record) else { return };
        match defer {
            None => {
                b.not_before = now;
                c.buffer.push_front(b);
            }
            Some(reason) => self.push(Output::Persist(PersistCommand::RecordDeferred { campaign_id: campaign, record_id: record, reason })),
        }
    }

    pub(super) fn skip_offered(&mut self, agent: UserId, campaign: CampaignId, record: RecordId) {
        let delay = self.campaigns.get(&campaign).map_or(600, |c| i64::from(c.cfg.settings.min_recall_delay_s));
        let next = self.now + Duration::seconds(delay);
        let reason = Blocked {
            code: ReasonCode::PreviewSkipped,
            message: format!("agent {agent} skipped the record in preview"),
            next_dialable_at: Some(next),
        };
        self.return_offered(campaign, record, Some(reason));
        self.set_ready(agent);
    }

    pub(super) fn dial_offered(&mut self, agent: UserId, campaign: CampaignId, record: RecordId) {
        self.live_records.remove(&record);
        let Some(b) = self.campaigns.get_mut(&campaign).and_then(|c| c.offered.remove(&record)) else {
            self.dial_ended(agent);
            return;
        };
        // Rules may have changed during the preview: check again.
        let ok = self.campaigns.get(&campaign).map(|c| self.check(c, &b));
        match ok {
            Some(Ok(())) => {
                if !self.dial(campaign, b, Some(agent)) {
                    self.dial_ended(agent);
                }
            }
            Some(Err(reason)) => {
                self.push(Output::Persist(PersistCommand::RecordDeferred { campaign_id: campaign, record_id: record, reason }));
                self.dial_ended(agent);
            }
            None => self.dial_ended(agent),
        }
    }

    pub(super) fn preview_expired(&mut self, agent: UserId, t: DateTime<Utc>) {
        let Some(a) = self.agents.get(&agent) else { return };
        let Activity::Preview { campaign, record, expires } = a.state else { return };
        if expires > t {
            return;
        }
        let action = self.campaigns.get(&campaign).map_or(PreviewTimeoutAction::Skip, |c| c.cfg.settings.preview_timeout_action);
        match action {
            PreviewTimeoutAction::Dial => self.dial_offered(agent, campaign, record),
            PreviewTimeoutAction::Skip => {
                self.push(Output::Agent(AgentNotice::PreviewWithdrawn { agent, record_id: record }));
                self.skip_offered(agent, campaign, record)
            }
        }
    }

    pub(super) fn wrap_end(&mut self, agent: UserId, t: DateTime<Utc>, disp: Option<(CallResult, Option<CallbackRequest>)>) {
        let Some(a) = self.agents.get(&agent) else { return };
        let Activity::WrapUp { call, until } = a.state else { return };
        if disp.is_none() && until > t {
            return;
        }
        let (result, cb) = match disp {
            Some((r, cb)) => (r, cb),
            None => (CallResult::Answered, None),
        };
        let next = a.next();
        self.finalize(call, result, cb);
        // Before `set_ready`, which may connect a waiting call at once (its notice comes after).
        self.push(Output::Agent(AgentNotice::WrapUpEnded { agent, call_id: call, next }));
        self.set_ready(agent);
    }
}
