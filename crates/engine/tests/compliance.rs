//! Zones, calling hours, reason codes and the engine's call flow.

use campana_core::record::{CallResult, Record, RecordType};
use campana_core::settings::{DialingMode, Settings};
use campana_core::telephony::{AnsweredBy, CallId, TelephonyCommand, TelephonyEvent};
use campana_core::time::{DailyHours, LocalTime, TimeZone, Weekdays};
use campana_core::user::CampaignsProfile;
use campana_core::{AgentGroupId, CampaignId, ContactListId, PhoneNumber, RecordId, UserId};
use campana_engine::zones::ZoneSource;
use campana_engine::*;
use chrono::{DateTime, Duration, Utc};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("RFC 3339")
}
fn num(s: &str) -> PhoneNumber {
    PhoneNumber::from_e164_unchecked_store(s.to_string())
}

fn record(id: i64, phone: &str) -> Record {
    Record::fresh(RecordId(id), ContactListId(1), num(phone), t("2026-01-01T00:00:00Z"))
}

fn campaign(id: i64, mode: DialingMode) -> CampaignConfig {
    CampaignConfig {
        id: CampaignId(id),
        settings: Settings { dialing_mode: mode, ..Settings::default() },
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

#[test]
fn shipped_rules_parse_and_bad_files_are_refused() {
    let r = CallingRules::builtin();
    assert!(r.get("default").is_some() && r.get("us_states").is_some() && r.get("europe").is_some());
    assert!(CallingRules::parse("[sets.x]\nhours=[[\"08:00\",\"21:00\"]]").is_err(), "no default set");
    assert!(CallingRules::parse("[sets.default]\nhours=[[\"21:00\",\"08:00\"]]").is_err());
    assert!(CallingRules::parse("[sets.default]\nhours=[[\"08:00\",\"21:00\"]]\nholidays=[\"13-45\"]").is_err());
}

#[test]
fn dst_spring_forward_and_fall_back() {
    // New York springs forward on 2026-03-08 (02:00 EST -> 03:00 EDT).
    let r = check_number(&num("+12125550143"), None, t("2026-03-08T02:30:00Z"), "default");
    assert!(!r.allowed);
    assert_eq!(r.next_allowed_at, Some(t("2026-03-08T12:00:00Z")), "08:00 EDT is 12:00Z");
    let r = check_number(&num("+12125550143"), None, t("2026-03-08T12:00:00Z"), "default");
    assert!(r.allowed, "{r:?}");
    let r = check_number(&num("+12125550143"), None, t("2026-03-08T11:59:00Z"), "default");
    assert!(!r.allowed, "07:59 EDT");
    // Falls back on 2026-11-01: 08:00 EST is 13:00Z.
    let r = check_number(&num("+12125550143"), None, t("2026-11-01T12:30:00Z"), "default");
    assert!(!r.allowed, "07:30 EST");
    assert_eq!(r.next_allowed_at, Some(t("2026-11-01T13:00:00Z")));
    // The end of the day moves with DST too: 21:00 EDT = 01:00Z next day.
    let r = check_number(&num("+12125550143"), None, t("2026-07-01T00:59:00Z"), "default");
    assert!(r.allowed);
    let r = check_number(&num("+12125550143"), None, t("2026-07-01T01:00:00Z"), "default");
    assert!(!r.allowed);
}

#[test]
fn half_hour_offset_zones() {
    // India, UTC+05:30: 08:00 IST = 02:30Z.
    let r = check_number(&num("+919876543210"), None, t("2026-03-03T02:29:00Z"), "default");
    assert_eq!(r.zones.len(), 1);
    assert_eq!(r.zones[0].zone, "Asia/Calcutta");
    assert!(!r.allowed);
    assert_eq!(r.next_allowed_at, Some(t("2026-03-03T02:30:00Z")));
    // Newfoundland (UTC-03:30 in winter) as an explicit zone: 08:00 NST = 11:30Z.
    let rules = CallingRules::builtin();
    let r = check_number_with(
        rules,
        &num("+17095550143"),
        Some(chrono_tz::America::St_Johns),
        None,
        t("2026-01-15T11:00:00Z"),
        "default",
        true,
    );
    assert!(!r.allowed);
    assert_eq!(r.next_allowed_at, Some(t("2026-01-15T11:30:00Z")));
}

#[test]
fn number_spanning_several_zones_uses_the_intersection() {
    // +1 907 maps to America/Adak and America/Anchorage (Adak is one hour behind).
    let at = t("2026-01-15T18:30:00Z"); // 09:30 Anchorage (AKST -9), 08:30 Adak (HST -10)
    let r = check_number(&num("+19075550100"), None, at, "default");
    assert_eq!(r.zones.len(), 2, "{r:?}");
    assert!(r.allowed);
    let early = t("2026-01-15T17:30:00Z"); // 08:30 Anchorage, 07:30 Adak
    let r = check_number(&num("+19075550100"), None, early, "default");
    assert!(!r.allowed);
    assert!(r.zones.iter().any(|z| z.zone == "America/Anchorage" && z.allowed));
    assert_eq!(r.next_allowed_at, Some(t("2026-01-15T18:00:00Z")), "08:00 in Adak");
    // Evening: 21:00 Anchorage closes first (= 06:00Z), though Adak is at 20:00.
    let r = check_number(&num("+19075550100"), None, t("2026-01-16T06:00:00Z"), "default");
    assert!(!r.allowed);
    // +1 is ambiguous across dozens of zones: the intersection of the whole NANP is empty
    // on many days, and the report says so instead of guessing.
    let r = check_number(&num("+15555550143"), None, at, "default");
    assert!(r.zones.len() > 1 || r.reason.is_some());
}

#[test]
fn explicit_zone_joins_the_number_unless_configured_to_win() {
    let rules = CallingRules::builtin();
    let at = t("2026-03-03T14:30:00Z"); // 09:30 New York, 06:30 Los Angeles
    let sources = |r: &CheckNumberReport| r.zone_sources.iter().map(|s| s.source).collect::<Vec<_>>();
    // Default: every source counts, both zones must allow the call.
    let r = check_number_with(rules, &num("+12125550143"), Some(chrono_tz::America::Los_Angeles), None, at, "default", false);
    assert_eq!(sources(&r), vec![ZoneSource::Record, ZoneSource::NumberPrefix]);
    let zones: Vec<&str> = r.zones.iter().map(|z| z.zone.as_str()).collect();
    assert_eq!(zones, vec!["America/Los_Angeles", "America/New_York"]);
    assert!(!r.allowed);
    assert_eq!(r.next_allowed_at, Some(t("2026-03-03T16:00:00Z")), "08:00 in Los Angeles");
    // 20:30 New York = 17:30 Los Angeles: New York closes it, unless the explicit zone wins.
    let late = t("2026-03-04T01:30:00Z");
    let ny = check_number_with(rules, &num("+12125550143"), Some(chrono_tz::America::Los_Angeles), None, late, "us_states", false);
    assert!(ny.allowed, "20:30 is inside 08:00-21:00 in New York");
    let late = t("2026-03-04T02:30:00Z"); // 21:30 New York, 18:30 Los Angeles
    let r = check_number_with(rules, &num("+12125550143"), Some(chrono_tz::America::Los_Angeles), None, late, "default", false);
    assert!(!r.allowed);
    let r = check_number_with(rules, &num("+12125550143"), Some(chrono_tz::America::Los_Angeles), None, late, "default", true);
    assert!(r.allowed, "{}", r.message);
    assert_eq!(r.zones.len(), 1);
    assert!(r.zones_from.contains("explicit zone wins"), "{}", r.zones_from);
    assert_eq!(r.number_zones, vec!["America/New_York".to_string()]);
    // The ZIP no longer replaces the number: a 212 number with a Chicago ZIP needs both.
    let r = check_number(&num("+12125550143"), Some("60601"), t("2026-03-03T13:30:00Z"), "default");
    assert_eq!(sources(&r), vec![ZoneSource::PostalCode, ZoneSource::NumberPrefix]);
    assert!(!r.allowed, "07:30 in Chicago");
    let r = check_number(&num("+12125550143"), Some("60601"), t("2026-03-04T01:30:00Z"), "default");
    assert!(r.allowed, "20:30 New York, 19:30 Chicago");
    let r = check_number(&num("+12125550143"), Some("60601"), t("2026-03-04T02:30:00Z"), "default");
    assert!(!r.allowed, "21:30 in New York, though 20:30 in Chicago");
}

#[test]
fn florida_number_with_new_york_zip_needs_both_states() {
    // Area code 305 (Florida, America/New_York) and ZIP 10001 (New York): Florida's 08:00-20:00
    // applies though the ZIP is New York's, and New York's zone too.
    let at = t("2026-03-04T01:30:00Z"); // 20:30 EST
    let r = check_number(&num("+13055550143"), Some("10001"), at, "us_states");
    assert_eq!(r.us_states, vec!["US-NY".to_string(), "US-FL".to_string()]);
    assert!(!r.allowed, "20:30 is after Florida's 20:00");
    assert_eq!(r.region_rule.as_deref(), Some("US-FL"));
    assert!(r.zones_from.contains("ZIP 10001 (US-NY)") && r.zones_from.contains("+1305"), "{}", r.zones_from);
    // The same ZIP with a New York number: only the federal window.
    assert!(check_number(&num("+12125550143"), Some("10001"), at, "us_states").allowed);
    // A Florida number with a Chicago ZIP: Florida's rule in both zones. 19:30 Chicago = 20:30 New York.
    let r = check_number(&num("+13055550143"), Some("60601"), at, "us_states");
    assert!(!r.allowed);
    let ok = t("2026-03-03T14:30:00Z"); // 09:30 New York, 08:30 Chicago
    assert!(check_number(&num("+13055550143"), Some("60601"), ok, "us_states").allowed);
    assert!(!check_number(&num("+13055550143"), Some("60601"), t("2026-03-03T13:30:00Z"), "us_states").allowed, "07:30 Chicago");
}

#[test]
fn state_and_country_rules() {
    // Florida (ZIP 33101) under us_states: 20:00 local is closed, open under default.
    let at = t("2026-03-04T01:30:00Z"); // 20:30 EST on 2026-03-03
    assert!(check_number(&num("+13055550143"), Some("33101"), at, "default").allowed);
    let r = check_number(&num("+13055550143"), Some("33101"), at, "us_states");
    assert!(!r.allowed);
    assert_eq!(r.region_rule.as_deref(), Some("US-FL"));
    // Texas Sunday: noon local.
    let sunday_10 = t("2026-03-01T16:00:00Z"); // 10:00 CST Sunday
    let r = check_number(&num("+12145550143"), Some("75201"), sunday_10, "us_states");
    assert!(!r.allowed);
    assert_eq!(r.next_allowed_at, Some(t("2026-03-01T18:00:00Z")));
    // France: lunch break and no weekends.
    let r = check_number(&num("+33612345678"), None, t("2026-03-03T12:30:00Z"), "europe"); // 13:30 Paris
    assert!(!r.allowed);
    assert_eq!(r.next_allowed_at, Some(t("2026-03-03T13:00:00Z")));
    let r = check_number(&num("+33612345678"), None, t("2026-03-07T10:00:00Z"), "europe"); // Saturday
    assert!(!r.allowed);
    assert_eq!(r.next_allowed_at, Some(t("2026-03-09T09:00:00Z")), "Monday 10:00 Paris");
    // Bastille Day (a Tuesday in 2026) is a holiday.
    let r = check_number(&num("+33612345678"), None, t("2026-07-14T10:00:00Z"), "europe");
    assert!(!r.allowed);
    let r = check_number(&num("+12125550143"), None, t("2026-03-03T15:00:00Z"), "nope");
    assert_eq!(r.reason, Some(ReasonCode::RulesUnknown));
}

#[test]
fn compliance_preview_counts_by_reason() {
    let now = t("2026-03-03T15:00:00Z"); // 10:00 New York, 09:00 Chicago, 05:00 Honolulu
    let mut cands = vec![
        Candidate::new(record(1, "+12125550101")),
        Candidate::new(record(2, "+12125550102")),
        Candidate::new(record(3, "+12125550103")),
        Candidate::new(record(4, "+18085550104")),
        Candidate::new(record(5, "+12125550105")),
        Candidate::new(record(6, "+12125550106")),
    ];
    cands[1].record.record_type = RecordType::NoCall;
    cands[2].record.attempts_total = 5;
    cands[4].record.last_result = Some(CallResult::Abandoned);
    cands[4].record.last_call_at = Some(now - Duration::hours(1));
    cands[5].retry_at = Some(now + Duration::minutes(30));
    let mut dnc = InMemoryDnc::default();
    dnc.add(num("+12125550101"), None, Some(now + Duration::days(1)));
    let p = compliance_preview(&cands, &campaign(1, DialingMode::Progressive), CallingRules::builtin(), &dnc, now);
    assert_eq!(p.total, 6);
    assert_eq!(p.dialable_now, 0);
    assert_eq!(p.by_reason[&ReasonCode::Dnc], 1);
    assert_eq!(p.by_reason[&ReasonCode::NoCall], 1);
    assert_eq!(p.by_reason[&ReasonCode::MaxAttemptsNumber], 1);
    assert_eq!(p.by_reason[&ReasonCode::ContactOutsideHours], 1);
    assert_eq!(p.by_reason[&ReasonCode::AbandonBlock], 1);
    assert_eq!(p.by_reason[&ReasonCode::RetryScheduled], 1);
    assert_eq!(p.earliest_by_reason[&ReasonCode::Dnc], now + Duration::days(1), "DNC entry expires");
    assert_eq!(p.earliest_by_reason[&ReasonCode::ContactOutsideHours], t("2026-03-03T18:00:00Z"), "08:00 HST");
    assert_eq!(p.earliest_by_reason[&ReasonCode::AbandonBlock], now + Duration::hours(71));
    // An expired DNC entry does not block.
    let later = now + Duration::days(2);
    let p = compliance_preview(&cands[..1], &campaign(1, DialingMode::Progressive), CallingRules::builtin(), &dnc, later);
    assert_eq!(p.dialable_now, 1);
}

struct Driver {
    e: Engine,
    now: DateTime<Utc>,
    out: Vec<Output>,
}

impl Driver {
    fn new(now: DateTime<Utc>, dnc: InMemoryDnc) -> Self {
        Driver { e: Engine::new(EngineConfig::default(), Box::new(dnc), 1, now), now, out: Vec::new() }
    }
    fn input(&mut self, i: Input) {
        self.e.handle_input(self.now, i).expect("input accepted");
        while let Some(o) = self.e.poll_output() {
            self.out.push(o);
        }
    }
    fn at(&mut self, s: i64) {
        self.now += Duration::seconds(s);
        self.e.handle_timeout(self.now).expect("timeout");
        while let Some(o) = self.e.poll_output() {
            self.out.push(o);
        }
    }
    fn dials(&self) -> Vec<(CallId, RecordId)> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Output::Telephony(TelephonyCommand::Dial { call_id, record_id, .. }) => Some((*call_id, *record_id)),
                _ => None,
            })
            .collect()
    }
    fn updates(&self) -> Vec<RecordUpdate> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Output::Persist(PersistCommand::RecordUpdate(u)) => Some(u.clone()),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn progressive_flow_persists_before_dialing_and_applies_treatments() {
    let now = t("2026-03-03T15:00:00Z");
    let mut dnc = InMemoryDnc::default();
    dnc.add(num("+12125550109"), None, None);
    let mut d = Driver::new(now, dnc);
    d.input(Input::CampaignStarted(Box::new(campaign(1, DialingMode::Progressive))));
    assert!(d.out.iter().any(|o| matches!(o, Output::NeedRecords { max: 500, .. })));
    let recs = vec![
        Candidate::new(record(9, "+12125550109")),
        Candidate::new(record(1, "+12125550101")),
        Candidate::new(record(2, "+12125550102")),
    ];
    d.input(Input::RecordsAvailable { campaign_id: CampaignId(1), records: recs });
    assert!(d.dials().is_empty(), "no agent yet");
    d.input(Input::AgentLogin { agent: UserId(7), groups: vec![AgentGroupId(1)], campaigns: CampaignsProfile::All });
    d.input(Input::AgentReady { agent: UserId(7) });
    let dials = d.dials();
    assert_eq!(dials.len(), 1, "one call per free agent");
    assert_eq!(dials[0].1, RecordId(1), "the DNC record is skipped");
    let pos_attempt = d.out.iter().position(|o| matches!(o, Output::Persist(PersistCommand::AttemptStarted { .. }))).expect("attempt");
    let pos_dial = d.out.iter().position(|o| matches!(o, Output::Telephony(TelephonyCommand::Dial { .. }))).expect("dial");
    assert!(pos_attempt < pos_dial, "persist before dial");
    assert!(d.out.iter().any(|o| matches!(o, Output::Persist(PersistCommand::RecordDeferred { record_id: RecordId(9), reason, .. }) if reason.code == ReasonCode::Dnc)));
    // Busy: retry in 5 minutes (default treatment).
    let (call, _) = dials[0];
    d.at(3);
    d.input(Input::Telephony(TelephonyEvent::Ended { call_id: call, result: CallResult::Busy }));
    let u = d.updates();
    assert_eq!(u[0].last_result, CallResult::Busy);
    assert_eq!(u[0].retry_at, Some(d.now + Duration::seconds(300)));
    assert_eq!(u[0].attempts_total, 1);
    // The agent is free again: the next record is dialed; SIT invalid disables it.
    let dials = d.dials();
    assert_eq!(dials.len(), 2);
    d.at(2);
    d.input(Input::Telephony(TelephonyEvent::Ended { call_id: dials[1].0, result: CallResult::SitInvalid }));
    let u = d.updates();
    assert_eq!(u[1].record_type, RecordType::NoCall);
    assert_eq!(u[1].chain, ChainStep::NextNumber);
}

/// The one rule of what ends a chain and what moves to the next number, for every call result
/// under the shipped treatments, with a final disposition and a callback.
#[test]
fn what_ends_a_chain_and_what_moves_on() {
    use campana_core::record::RecordStatus;
    use campana_core::settings::{AfterRetries, Treatment};
    use campana_engine::treatment::{after_call, FinishedCall};
    let now = t("2026-03-03T15:00:00Z");
    let settings = Settings::default();
    let step = |settings: &Settings, cand: &Candidate, result: CallResult, callback: Option<CallbackRequest>| {
        let (u, _) = after_call(&FinishedCall {
            campaign_id: CampaignId(1),
            cand,
            settings,
            zone: chrono_tz::America::New_York,
            result,
            callback,
            agent: Some(UserId(7)),
            dialed_at: now,
            now,
        });
        (u.chain, u.record_status)
    };
    let fresh = Candidate::new(record(1, "+12125550101"));
    // Success, do-not-call and results without a treatment (answered, a final disposition) end it.
    for r in [CallResult::RightParty, CallResult::DoNotCall, CallResult::Answered, CallResult::Cancelled] {
        assert_eq!(step(&settings, &fresh, r, None), (ChainStep::End, RecordStatus::Completed), "{r}");
    }
    // Wrong party and invalid numbers move on at once (treatments next_in_chain / no_call).
    for r in [CallResult::WrongParty, CallResult::SitInvalid, CallResult::SitVacant, CallResult::SitIntercept, CallResult::Fax] {
        assert_eq!(step(&settings, &fresh, r, None), (ChainStep::NextNumber, RecordStatus::Completed), "{r}");
    }
    // A retry pending stays on the number; retries used up move on.
    assert_eq!(step(&settings, &fresh, CallResult::Busy, None).0, ChainStep::Stay);
    let mut tired = fresh.clone();
    tired.record.last_result = Some(CallResult::Busy);
    tired.result_streak = 3;
    assert_eq!(step(&settings, &tired, CallResult::Busy, None), (ChainStep::NextNumber, RecordStatus::Completed));
    // A treatment that says final ends the chain when its retries are used up.
    let mut final_busy = settings.clone();
    final_busy.retry_treatments =
        vec![Treatment { call_result: CallResult::Busy, retry_after_s: 60, max_retries: 0, then: AfterRetries::Final }];
    assert_eq!(step(&final_busy, &fresh, CallResult::Busy, None), (ChainStep::End, RecordStatus::Completed));
    // A right party ends the chain even when a profile gives right_party a retry treatment.
    let mut odd = settings.clone();
    odd.retry_treatments =
        vec![Treatment { call_result: CallResult::RightParty, retry_after_s: 60, max_retries: 3, then: AfterRetries::NextInChain }];
    assert_eq!(step(&odd, &fresh, CallResult::RightParty, None), (ChainStep::End, RecordStatus::Completed));
    // A callback keeps the customer on this number.
    let cb = CallbackRequest { at: now + Duration::hours(1), personal: true };
    assert_eq!(step(&settings, &fresh, CallResult::AgentCallback, Some(cb)).0, ChainStep::Stay);
}

fn chain_record(id: i64, chain: i64, position: i32, phone: &str) -> Candidate {
    let mut r = record(id, phone);
    r.chain_id = campana_core::ChainId(chain);
    r.chain_position = position;
    Candidate::new(r)
}

/// A customer is in at most one call at a time, and once one number of the chain succeeds its
/// other numbers buffered in the engine (in any campaign) are never dialed.
#[test]
fn a_success_drops_the_chains_other_numbers_and_one_call_per_customer() {
    let now = t("2026-03-03T15:00:00Z");
    let mut d = Driver::new(now, InMemoryDnc::default());
    let mut power = campaign(1, DialingMode::Power);
    power.settings.lines_per_agent = 3.0;
    power.settings.abandon_rate_max = 0.5;
    power.settings.abandon_rate_target = 0.5;
    d.input(Input::CampaignStarted(Box::new(power)));
    d.input(Input::CampaignStarted(Box::new(campaign(2, DialingMode::Progressive))));
    d.input(Input::AbandonHistory { campaign_id: CampaignId(1), at: now, live_answers: 1000, abandons: 0, machine_verdicts: 0 });
    // Chain 100 has three numbers; campaign 2 (same list) holds its second number too.
    let recs =
        vec![chain_record(1, 100, 1, "+12125550101"), chain_record(2, 100, 2, "+12125550102"), chain_record(3, 100, 3, "+12125550103")];
    d.input(Input::RecordsAvailable { campaign_id: CampaignId(1), records: recs });
    d.input(Input::RecordsAvailable { campaign_id: CampaignId(2), records: vec![chain_record(2, 100, 2, "+12125550102")] });
    for a in [7, 8] {
        d.input(Input::AgentLogin { agent: UserId(a), groups: vec![AgentGroupId(1)], campaigns: CampaignsProfile::All });
        d.input(Input::AgentReady { agent: UserId(a) });
    }
    let dials = d.dials();
    assert_eq!(dials.len(), 1, "one call to the customer at a time, whatever the lines: {dials:?}");
    d.input(Input::Telephony(TelephonyEvent::Answered { call_id: dials[0].0, answered_by: AnsweredBy::Human }));
    d.at(5);
    d.input(Input::Telephony(TelephonyEvent::Ended { call_id: dials[0].0, result: CallResult::Answered }));
    let agent = d
        .out
        .iter()
        .find_map(|o| match o {
            Output::Telephony(TelephonyCommand::Connect { agent, .. }) => Some(*agent),
            _ => None,
        })
        .expect("connected");
    d.input(Input::Disposition { agent, call_id: dials[0].0, result: CallResult::RightParty, callback: None });
    assert_eq!(d.updates().last().map(|u| u.chain), Some(ChainStep::End));
    for _ in 0..20 {
        d.at(60);
    }
    assert_eq!(d.dials().len(), 1, "no other number of the customer is dialed after the success: {:?}", d.dials());
}

#[test]
fn predictive_abandons_after_two_seconds_with_safe_harbor() {
    let now = t("2026-03-03T15:00:00Z");
    let mut d = Driver::new(now, InMemoryDnc::default());
    d.input(Input::CampaignStarted(Box::new(campaign(1, DialingMode::Power))));
    let recs: Vec<Candidate> = (1..=20).map(|i| Candidate::new(record(i, &format!("+121255501{i:02}")))).collect();
    d.input(Input::RecordsAvailable { campaign_id: CampaignId(1), records: recs });
    d.input(Input::AgentLogin { agent: UserId(7), groups: vec![AgentGroupId(1)], campaigns: CampaignsProfile::All });
    d.input(Input::AgentReady { agent: UserId(7) });
    let dials = d.dials();
    assert_eq!(dials.len(), 1, "no abandon budget yet: power dials 1:1");
    d.input(Input::Telephony(TelephonyEvent::Answered { call_id: dials[0].0, answered_by: AnsweredBy::Human }));
    assert!(d.out.iter().any(|o| matches!(o, Output::Telephony(TelephonyCommand::Connect { agent: UserId(7), .. }))));
    // Give the campaign a budget (history), then a second answer finds no agent.
    d.input(Input::AbandonHistory {
        campaign_id: CampaignId(1),
        at: now - Duration::hours(1),
        live_answers: 1000,
        abandons: 0,
        machine_verdicts: 0,
    });
    let mut c = campaign(1, DialingMode::Power);
    c.settings.lines_per_agent = 3.0;
    d.input(Input::CampaignUpdated(Box::new(c)));
    d.input(Input::AgentLogin { agent: UserId(8), groups: vec![AgentGroupId(1)], campaigns: CampaignsProfile::All });
    d.input(Input::AgentReady { agent: UserId(8) });
    let dials = d.dials();
    assert_eq!(dials.len(), 4, "3 lines for the free agent");
    d.input(Input::Telephony(TelephonyEvent::Answered { call_id: dials[1].0, answered_by: AnsweredBy::Human }));
    d.input(Input::Telephony(TelephonyEvent::Answered { call_id: dials[2].0, answered_by: AnsweredBy::Human }));
    assert_eq!(d.e.next_deadline(), Some(d.now + Duration::seconds(2)));
    d.at(2);
    assert!(d.out.iter().any(|o| matches!(o, Output::Persist(PersistCommand::AbandonRecorded { call_id, .. }) if *call_id == dials[2].0)));
    assert!(d
        .out
        .iter()
        .any(|o| matches!(o, Output::Telephony(TelephonyCommand::Play { call_id, then_hang_up: true, .. }) if *call_id == dials[2].0)));
    d.input(Input::Telephony(TelephonyEvent::Ended { call_id: dials[2].0, result: CallResult::Answered }));
    let u = d.updates();
    assert_eq!(u.last().expect("update").last_result, CallResult::Abandoned);
    let (w24, _) = d.e.abandon_windows(CampaignId(1)).expect("campaign");
    assert_eq!(w24.abandons, 1.0);
}

#[test]
fn one_number_never_in_two_calls_across_campaigns() {
    let now = t("2026-03-03T15:00:00Z");
    let mut d = Driver::new(now, InMemoryDnc::default());
    d.input(Input::CampaignStarted(Box::new(campaign(1, DialingMode::Progressive))));
    d.input(Input::CampaignStarted(Box::new(campaign(2, DialingMode::Progressive))));
    d.input(Input::RecordsAvailable { campaign_id: CampaignId(1), records: vec![Candidate::new(record(1, "+12125550101"))] });
    d.input(Input::RecordsAvailable { campaign_id: CampaignId(2), records: vec![Candidate::new(record(2, "+12125550101"))] });
    for a in [7, 8] {
        d.input(Input::AgentLogin { agent: UserId(a), groups: vec![AgentGroupId(1)], campaigns: CampaignsProfile::All });
        d.input(Input::AgentReady { agent: UserId(a) });
    }
    assert_eq!(d.dials().len(), 1);
    let b = d.e.explain(CampaignId(2), RecordId(2)).expect("blocked");
    assert_eq!(b.code, ReasonCode::CallInProgress);
}

#[test]
fn priority_decides_who_gets_the_free_agent() {
    let now = t("2026-03-03T15:00:00Z");
    let mut d = Driver::new(now, InMemoryDnc::default());
    let mut low = campaign(1, DialingMode::Progressive);
    low.priority = 1;
    let mut high = campaign(2, DialingMode::Progressive);
    high.priority = 5;
    d.input(Input::CampaignStarted(Box::new(low)));
    d.input(Input::CampaignStarted(Box::new(high)));
    d.input(Input::RecordsAvailable { campaign_id: CampaignId(1), records: vec![Candidate::new(record(1, "+12125550101"))] });
    d.input(Input::RecordsAvailable { campaign_id: CampaignId(2), records: vec![Candidate::new(record(2, "+12125550102"))] });
    d.input(Input::AgentLogin { agent: UserId(7), groups: vec![AgentGroupId(1)], campaigns: CampaignsProfile::All });
    d.input(Input::AgentReady { agent: UserId(7) });
    assert_eq!(d.dials(), vec![(CallId(1), RecordId(2))]);
}

#[test]
fn preview_offer_timeout_and_personal_callback() {
    let now = t("2026-03-03T15:00:00Z");
    let mut d = Driver::new(now, InMemoryDnc::default());
    let mut c = campaign(1, DialingMode::Preview);
    c.settings.preview_timeout_action = campana_core::settings::PreviewTimeoutAction::Dial;
    d.input(Input::CampaignStarted(Box::new(c)));
    let mut cb = Candidate::new(record(2, "+12125550102"));
    cb.record.record_type = RecordType::PersonalCallback;
    cb.record.callback_at = Some(now - Duration::minutes(1));
    cb.callback_agent = Some(UserId(8));
    d.input(Input::RecordsAvailable { campaign_id: CampaignId(1), records: vec![cb, Candidate::new(record(1, "+12125550101"))] });
    d.input(Input::AgentLogin { agent: UserId(8), groups: vec![AgentGroupId(1)], campaigns: CampaignsProfile::All });
    d.input(Input::AgentLogin { agent: UserId(7), groups: vec![AgentGroupId(1)], campaigns: CampaignsProfile::All });
    d.input(Input::AgentReady { agent: UserId(7) });
    // Agent 7 must not get agent 8's callback.
    assert!(d.out.iter().any(|o| matches!(o, Output::Agent(AgentNotice::PreviewOffer { agent: UserId(7), record_id: RecordId(1), .. }))));
    d.input(Input::AgentReady { agent: UserId(8) });
    assert!(d.out.iter().any(|o| matches!(o, Output::Agent(AgentNotice::PreviewOffer { agent: UserId(8), record_id: RecordId(2), .. }))));
    assert!(d.dials().is_empty());
    d.at(30);
    assert_eq!(d.dials().len(), 2, "timeout action dial");
    let tz = TimeZone::parse("America/New_York").expect("zone");
    let _ = tz;
}

#[test]
fn an_agent_takes_calls_only_of_the_campaigns_in_their_profile() {
    let now = t("2026-03-03T15:00:00Z");
    let mut d = Driver::new(now, InMemoryDnc::default());
    // Two campaigns on the same agent group; the one outside the agent's profile has priority.
    let mut hot = campaign(2, DialingMode::Progressive);
    hot.priority = 10;
    d.input(Input::CampaignStarted(Box::new(hot)));
    d.input(Input::CampaignStarted(Box::new(campaign(1, DialingMode::Progressive))));
    d.input(Input::RecordsAvailable { campaign_id: CampaignId(2), records: vec![Candidate::new(record(21, "+12125550121"))] });
    d.input(Input::RecordsAvailable { campaign_id: CampaignId(1), records: vec![Candidate::new(record(11, "+12125550111"))] });
    let only_one = CampaignsProfile::Only { campaign_ids: vec![CampaignId(1)] };
    d.input(Input::AgentLogin { agent: UserId(7), groups: vec![AgentGroupId(1)], campaigns: only_one });
    d.input(Input::AgentReady { agent: UserId(7) });
    assert_eq!(d.dials().iter().map(|(_, r)| *r).collect::<Vec<_>>(), vec![RecordId(11)], "campaign 2 is not in the profile");
    // An agent of every campaign takes the higher-priority one.
    d.input(Input::AgentLogin { agent: UserId(8), groups: vec![AgentGroupId(1)], campaigns: CampaignsProfile::All });
    d.input(Input::AgentReady { agent: UserId(8) });
    assert_eq!(d.dials().iter().map(|(_, r)| *r).collect::<Vec<_>>(), vec![RecordId(11), RecordId(21)]);
}

#[test]
fn agentless_press_1_connects_a_ready_agent_of_the_group_else_records_interest() {
    let now = t("2026-03-03T15:00:00Z");
    let mut d = Driver::new(now, InMemoryDnc::default());
    let mut c = campaign(1, DialingMode::Agentless);
    c.agentless_lines = 2;
    d.input(Input::CampaignStarted(Box::new(c)));
    let recs = vec![Candidate::new(record(1, "+12125550101")), Candidate::new(record(2, "+12125550102"))];
    d.input(Input::RecordsAvailable { campaign_id: CampaignId(1), records: recs });
    d.input(Input::AgentLogin { agent: UserId(7), groups: vec![AgentGroupId(1)], campaigns: CampaignsProfile::All });
    d.input(Input::AgentReady { agent: UserId(7) });
    let dials = d.dials();
    assert_eq!(dials.len(), 2, "agentless lines, whatever the agents");
    for (call, _) in &dials {
        d.input(Input::Telephony(TelephonyEvent::Answered { call_id: *call, answered_by: AnsweredBy::Human }));
    }
    // The first customer presses 1: the ready agent takes the call.
    d.input(Input::Telephony(TelephonyEvent::Digit { call_id: dials[0].0, digit: '1' }));
    assert!(d
        .out
        .iter()
        .any(|o| matches!(o, Output::Telephony(TelephonyCommand::Connect { call_id, agent: UserId(7) }) if *call_id == dials[0].0)));
    // The second presses 1 too, with no agent free: interest recorded when the message ends.
    d.input(Input::Telephony(TelephonyEvent::Digit { call_id: dials[1].0, digit: '1' }));
    assert_eq!(d.out.iter().filter(|o| matches!(o, Output::Telephony(TelephonyCommand::Connect { .. }))).count(), 1);
    d.at(5);
    d.input(Input::Telephony(TelephonyEvent::Ended { call_id: dials[1].0, result: CallResult::Answered }));
    assert_eq!(d.updates().last().map(|u| (u.record_id, u.last_result)), Some((dials[1].1, CallResult::RightParty)));
    // The connected call ends; the agent's disposition decides its result.
    d.input(Input::Telephony(TelephonyEvent::Ended { call_id: dials[0].0, result: CallResult::Answered }));
    d.input(Input::Disposition { agent: UserId(7), call_id: dials[0].0, result: CallResult::WrongParty, callback: None });
    assert_eq!(d.updates().last().map(|u| (u.record_id, u.last_result)), Some((dials[0].1, CallResult::WrongParty)));
}

#[test]
fn replayed_history_counts_machine_verdicts_as_the_policy_says() {
    use campana_core::settings::AbandonPolicy;
    let now = t("2026-03-03T15:00:00Z");
    let mut d = Driver::new(now, InMemoryDnc::default());
    let mut uk = campaign(1, DialingMode::Predictive);
    uk.settings.abandon_policy = AbandonPolicy::UkOfcom24h;
    d.input(Input::CampaignStarted(Box::new(uk)));
    d.input(Input::CampaignStarted(Box::new(campaign(2, DialingMode::Predictive))));
    for c in [1, 2] {
        let at = now - Duration::minutes(30);
        d.input(Input::AbandonHistory { campaign_id: CampaignId(c), at, live_answers: 100, abandons: 1, machine_verdicts: 50 });
    }
    let (uk_24h, _) = d.e.abandon_windows(CampaignId(1)).expect("campaign 1");
    assert!((uk_24h.live_answers - 105.0).abs() < 1e-9 && (uk_24h.abandons - 6.0).abs() < 1e-9, "{uk_24h:?}: 10% of 50 machines");
    let (us_24h, _) = d.e.abandon_windows(CampaignId(2)).expect("campaign 2");
    assert_eq!((us_24h.live_answers, us_24h.abandons), (100.0, 1.0), "machines are not counted under us_fcc_30d");
}

/// A refill that brings nothing new (records the engine already holds, or none) never makes
/// the engine ask again at once: it waits `refill_backoff_s`, so a driver answering the same
/// records forever cannot spin. Held records stay held and nothing about them is persisted.
#[test]
fn a_refill_of_held_records_backs_off_instead_of_asking_again() {
    let now = t("2026-03-03T15:00:00Z");
    let mut d = Driver::new(now, InMemoryDnc::default());
    d.input(Input::CampaignStarted(Box::new(campaign(1, DialingMode::Progressive))));
    let recs: Vec<Candidate> = (1..=8).map(|i| Candidate::new(record(i, &format!("+1212555010{i}")))).collect();
    d.input(Input::RecordsAvailable { campaign_id: CampaignId(1), records: recs.clone() });
    let held = d.e.held_records(CampaignId(1));
    assert_eq!(held.len(), 8, "{held:?}");
    // The buffer is small: the engine asks for more at once.
    let asks = |d: &Driver| d.out.iter().filter(|o| matches!(o, Output::NeedRecords { .. })).count();
    assert_eq!(asks(&d), 2, "{:?}", d.out);
    // An edit of the campaign keeps the buffer; a driver that forgot what the engine holds
    // answers the request with the same 8 records.
    d.input(Input::CampaignUpdated(Box::new(CampaignConfig { priority: 3, ..campaign(1, DialingMode::Progressive) })));
    d.out.clear();
    d.input(Input::RecordsAvailable { campaign_id: CampaignId(1), records: recs.clone() });
    assert_eq!(asks(&d), 0, "asked again at once after a refill that added nothing: {:?}", d.out);
    assert!(
        !d.out.iter().any(|o| matches!(o, Output::Persist(PersistCommand::RecordDeferred { .. }))),
        "held records must not be deferred in the store: {:?}",
        d.out
    );
    assert_eq!(d.e.held_records(CampaignId(1)), held);
    assert!(d.e.next_deadline().is_some_and(|t| t <= now + Duration::seconds(30)), "the back-off is a deadline");
    // After the back-off it asks again (once).
    d.at(29);
    assert_eq!(asks(&d), 0);
    d.at(2);
    assert_eq!(asks(&d), 1, "{:?}", d.out);
}

/// The dialer's DNC lists hold every number at any size: 600,000 numbers (past the 500,000 at
/// which the old cache was emptied), and the first one is still refused right before the dial.
/// Changes told after the lists were built stay on top of a replacement built before them.
#[test]
fn dnc_lists_past_half_a_million_numbers_never_fail_open() {
    use campana_core::DncListId;
    use campana_engine::dnc::DncListsBuilder;
    use std::sync::Arc;
    let now = t("2026-03-03T15:00:00Z");
    let mut b = DncListsBuilder::default();
    b.list(DncListId(1), true);
    let first = num("+12125550109").as_u64();
    for i in 0..600_000u64 {
        b.add(DncListId(1), first + i * 3, None);
    }
    let lists = b.build();
    assert_eq!(lists.len(), 600_000);
    let mut d = Driver { e: Engine::new(EngineConfig::default(), Box::new(lists), 1, now), now, out: Vec::new() };
    d.input(Input::CampaignStarted(Box::new(campaign(1, DialingMode::Progressive))));
    let recs = vec![
        Candidate::new(record(9, "+12125550109")),
        Candidate::new(record(1, "+12125550101")),
        Candidate::new(record(2, "+12125550102")),
        Candidate::new(record(3, "+12125550103")),
    ];
    d.input(Input::RecordsAvailable { campaign_id: CampaignId(1), records: recs });
    // +12125550102 goes on the internal list after the lists were built (change 1).
    let hit = DncHit { list_id: None, expires_at: None };
    d.input(Input::DncChanged { seq: 1, numbers: vec![(num("+12125550102"), vec![hit])] });
    // Lists rebuilt from a read made before change 1: they do not have it, the change stays.
    let mut b = DncListsBuilder::default();
    b.list(DncListId(1), true);
    b.add(DncListId(1), first, None);
    d.input(Input::DncReplaced { lists: SharedDnc(Arc::new(b.build())), as_of_seq: 0 });
    d.input(Input::AgentLogin { agent: UserId(7), groups: vec![AgentGroupId(1)], campaigns: CampaignsProfile::All });
    d.input(Input::AgentReady { agent: UserId(7) });
    let deferred_dnc = |d: &Driver, id: i64| {
        d.out.iter().any(|o| matches!(o, Output::Persist(PersistCommand::RecordDeferred { record_id, reason, .. }) if *record_id == RecordId(id) && reason.code == ReasonCode::Dnc))
    };
    assert_eq!(d.dials().iter().map(|x| x.1).collect::<Vec<_>>(), vec![RecordId(1)], "only the number on no list is dialed");
    assert!(deferred_dnc(&d, 9), "the first of 600,000 numbers is still refused");
    let call = d.dials()[0].0;
    d.at(3);
    d.input(Input::Telephony(TelephonyEvent::Ended { call_id: call, result: CallResult::Busy }));
    assert!(deferred_dnc(&d, 2), "a change told after the build survives the replacement");
    assert_eq!(d.dials().iter().map(|x| x.1).collect::<Vec<_>>(), vec![RecordId(1), RecordId(3)]);
}
