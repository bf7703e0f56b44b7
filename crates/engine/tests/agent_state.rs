//! The one agent state type: its stable names (the same for `as_str`, `FromStr`, serde and the
//! table in ARCHITECTURE.md), and `Engine::agent_view` through an agent's day.

use campana_core::record::{CallResult, Record};
use campana_core::settings::{DialingMode, Settings};
use campana_core::telephony::{AnsweredBy, CallId, TelephonyCommand, TelephonyEvent};
use campana_core::time::{DailyHours, LocalTime, Weekdays};
use campana_core::user::CampaignsProfile;
use campana_core::{AgentGroupId, CampaignId, ContactListId, PhoneNumber, RecordId, UserId};
use campana_engine::*;
use chrono::{DateTime, Duration, Utc};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("RFC 3339")
}

#[test]
fn every_state_has_one_stable_name_for_as_str_from_str_serde_and_the_documented_table() {
    let doc = include_str!("../../../ARCHITECTURE.md");
    let expected = ["not_ready", "ready", "preview", "dialing", "alerting", "on_call", "wrap_up"];
    assert_eq!(AgentState::ALL.map(AgentState::as_str), expected);
    for s in AgentState::ALL {
        let name = s.as_str();
        assert_eq!(name.parse::<AgentState>(), Ok(s));
        assert_eq!(s.to_string(), name);
        assert_eq!(serde_json::to_string(&s).expect("serialize"), format!("\"{name}\""));
        assert_eq!(serde_json::from_str::<AgentState>(&format!("\"{name}\"")).expect("deserialize"), s);
        assert!(doc.contains(&format!("| `{name}` |")), "ARCHITECTURE.md's agent state table lacks `{name}`");
    }
    let err = "talking".parse::<AgentState>().expect_err("not a state");
    assert!(err.to_string().contains("talking"), "{err}");
    assert!(serde_json::from_str::<AgentState>("\"Ready\"").is_err(), "names are case-sensitive");
}

fn campaign(mode: DialingMode, agent_first: bool) -> CampaignConfig {
    CampaignConfig {
        id: CampaignId(1),
        settings: Settings { dialing_mode: mode, agent_first, wrap_up_s: 30, ..Settings::default() },
        daily_hours: DailyHours::new(LocalTime::hm(0, 0), LocalTime::hm(23, 59)).expect("hours"),
        weekdays: Weekdays::ALL,
        time_zone: chrono_tz::America::New_York,
        start_date: None,
        end_date: None,
        priority: 0,
        agent_group: Some(AgentGroupId(1)),
        agentless_lines: 5,
    }
}

struct Day {
    e: Engine,
    now: DateTime<Utc>,
    out: Vec<Output>,
}

const AGENT: UserId = UserId(7);

impl Day {
    fn new(mode: DialingMode, agent_first: bool) -> Day {
        let now = t("2026-03-03T15:00:00Z");
        let mut d = Day { e: Engine::new(EngineConfig::default(), Box::new(InMemoryDnc::default()), 1, now), now, out: Vec::new() };
        d.input(Input::CampaignStarted(Box::new(campaign(mode, agent_first))));
        d
    }
    fn record(&mut self) {
        let phone = PhoneNumber::from_e164_unchecked_store("+12125550101".to_string());
        let record = Record::fresh(RecordId(1), ContactListId(1), phone, t("2026-01-01T00:00:00Z"));
        self.input(Input::RecordsAvailable { campaign_id: CampaignId(1), records: vec![Candidate::new(record)] });
    }
    fn input(&mut self, i: Input) {
        self.e.handle_input(self.now, i).expect("input accepted");
        while let Some(o) = self.e.poll_output() {
            self.out.push(o);
        }
    }
    fn later(&mut self, s: i64) {
        self.now += Duration::seconds(s);
    }
    fn view(&self) -> AgentView {
        self.e.agent_view(AGENT).expect("logged in")
    }
    fn the_call(&self) -> CallId {
        self.out
            .iter()
            .find_map(|o| match o {
                Output::Telephony(TelephonyCommand::Dial { call_id, .. }) => Some(*call_id),
                _ => None,
            })
            .expect("a call was dialed")
    }
}

#[test]
fn agent_view_follows_an_agent_through_pause_a_progressive_call_a_pause_asked_on_the_call_and_logout() {
    let mut d = Day::new(DialingMode::Progressive, false);
    assert_eq!(d.e.agent_view(AGENT), None, "not logged in");
    let login = d.now;
    d.input(Input::AgentLogin { agent: AGENT, groups: vec![AgentGroupId(1)], campaigns: CampaignsProfile::All });
    let v = d.view();
    assert_eq!((v.state, v.since, v.campaign, v.call, v.pause_code.clone()), (AgentState::NotReady, login, None, None, None));
    assert_eq!(d.e.agent_ids().collect::<Vec<_>>(), vec![AGENT]);

    d.later(5);
    d.input(Input::AgentNotReady { agent: AGENT, pause_code: "coffee".into() });
    assert_eq!(d.view().pause_code.as_deref(), Some("coffee"));
    assert_eq!(d.view().since, login, "still not ready: the state did not change");

    d.later(5);
    let ready_at = d.now;
    d.input(Input::AgentReady { agent: AGENT });
    let v = d.view();
    assert_eq!((v.state, v.since, v.pause_code.clone()), (AgentState::Ready, ready_at, None));

    d.later(5);
    let dial_at = d.now;
    d.record();
    let call = d.the_call();
    let v = d.view();
    assert_eq!(
        (v.state, v.since, v.campaign, v.record, v.call, v.until),
        (AgentState::Dialing, dial_at, Some(CampaignId(1)), Some(RecordId(1)), Some(call), None)
    );
    assert!(v.state.is_busy());

    d.later(8);
    d.input(Input::Telephony(TelephonyEvent::Answered { call_id: call, answered_by: AnsweredBy::Human }));
    let v = d.view();
    assert_eq!((v.state, v.since, v.call, v.record), (AgentState::OnCall, d.now, Some(call), Some(RecordId(1))));

    d.later(60);
    d.input(Input::AgentNotReady { agent: AGENT, pause_code: "lunch".into() });
    let v = d.view();
    assert_eq!((v.state, v.pause_pending, v.pause_code.as_deref()), (AgentState::OnCall, true, Some("lunch")));

    d.later(60);
    d.input(Input::Telephony(TelephonyEvent::Ended { call_id: call, result: CallResult::Answered }));
    let v = d.view();
    assert_eq!(
        (v.state, v.since, v.call, v.until, v.pause_pending),
        (AgentState::WrapUp, d.now, Some(call), Some(d.now + Duration::seconds(30)), true)
    );

    d.later(10);
    d.input(Input::Disposition { agent: AGENT, call_id: call, result: CallResult::RightParty, callback: None });
    let v = d.view();
    assert_eq!(
        (v.state, v.since, v.call, v.pause_pending, v.pause_code.as_deref()),
        (AgentState::NotReady, d.now, None, false, Some("lunch")),
        "the pause asked on the call applies when it ends, with its code"
    );

    d.input(Input::AgentLogout { agent: AGENT });
    assert_eq!(d.e.agent_view(AGENT), None);
}

#[test]
fn agent_view_says_alerting_for_agent_first_and_preview_with_the_offer_and_its_expiry() {
    let mut d = Day::new(DialingMode::Progressive, true);
    d.input(Input::AgentLogin { agent: AGENT, groups: vec![AgentGroupId(1)], campaigns: CampaignsProfile::All });
    d.input(Input::AgentReady { agent: AGENT });
    d.record();
    assert_eq!(d.view().state, AgentState::Alerting);
    assert_eq!(d.view().call, Some(d.the_call()));

    let mut d = Day::new(DialingMode::Preview, false);
    d.input(Input::AgentLogin { agent: AGENT, groups: vec![AgentGroupId(1)], campaigns: CampaignsProfile::All });
    d.input(Input::AgentReady { agent: AGENT });
    d.record();
    let v = d.view();
    assert_eq!(
        (v.state, v.campaign, v.record, v.call, v.until),
        (AgentState::Preview, Some(CampaignId(1)), Some(RecordId(1)), None, Some(d.now + Duration::seconds(30)))
    );
    d.later(3);
    d.input(Input::PreviewAccept { agent: AGENT, record_id: RecordId(1) });
    let v = d.view();
    assert_eq!((v.state, v.since, v.record, v.call), (AgentState::Dialing, d.now, Some(RecordId(1)), Some(d.the_call())));
}
