//! "Who may be dialed now": every rule gives a machine-readable [`ReasonCode`], a human sentence
//! and, where one exists, the next moment the record becomes dialable.

use crate::rules::{is_open, next_open, CallingRules, LocalSchedule, Window};
use crate::zones::{self, ContactZones};
use campana_core::record::{CallResult, Record, RecordStatus, RecordType};
use campana_core::settings::Settings;
use campana_core::time::{DailyHours, Weekdays};
use campana_core::{AgentGroupId, CampaignId, DncListId, PhoneNumber, UserId};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Why a record is not dialable now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// Record type `no_call`.
    NoCall,
    /// Record type `unknown`.
    RecordTypeUnknown,
    /// Record status completed or cancelled.
    RecordClosed,
    /// Before the record's own `dial_from`.
    BeforeDialFrom,
    /// After the record's own `dial_until`.
    AfterDialUntil,
    /// On a do-not-call list (internal or attached to the campaign).
    Dnc,
    /// `max_attempts_per_number` reached.
    MaxAttemptsNumber,
    /// `max_attempts_per_chain` reached.
    MaxAttemptsChain,
    /// `max_attempts_per_day` reached for the contact's local day.
    MaxAttemptsDay,
    /// Within `abandon_recall_block_s` after an abandoned call.
    AbandonBlock,
    /// Within `min_recall_delay_s` after the last call.
    RecallDelay,
    /// A treatment scheduled the next attempt later.
    RetryScheduled,
    /// A callback is scheduled later.
    CallbackNotDue,
    /// A personal callback is waiting for its agent.
    CallbackAgentAbsent,
    /// The record or its number is in a live call (any campaign).
    CallInProgress,
    /// Before the campaign's start date.
    CampaignNotStarted,
    /// After the campaign's end date.
    CampaignEnded,
    /// Outside the campaign's daily hours or weekdays.
    CampaignOutsideHours,
    /// No zone could be determined for the contact.
    ZoneUnknown,
    /// The profile names a calling-hours rule set that does not exist.
    RulesUnknown,
    /// Outside the contact's legal calling window (hours, weekday or holiday).
    ContactOutsideHours,
    /// An agent skipped the record in preview; offered again after the recall delay.
    PreviewSkipped,
    /// The campaign stopped or the engine had no room for the record.
    NotNeeded,
    /// Another number of the customer ended the chain (success, do-not-call, a final result).
    ChainEnded,
    /// An earlier number of the customer's chain is still open: it is dialed first.
    ChainWaiting,
    /// The profile's record filters leave the record out.
    FilteredOut,
    /// The dialer gave the record back (its reason is `defer_code`); not offered before then.
    Deferred,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::NoCall => "no_call",
            ReasonCode::RecordTypeUnknown => "record_type_unknown",
            ReasonCode::RecordClosed => "record_closed",
            ReasonCode::BeforeDialFrom => "before_dial_from",
            ReasonCode::AfterDialUntil => "after_dial_until",
            ReasonCode::Dnc => "dnc",
            ReasonCode::MaxAttemptsNumber => "max_attempts_number",
            ReasonCode::MaxAttemptsChain => "max_attempts_chain",
            ReasonCode::MaxAttemptsDay => "max_attempts_day",
            ReasonCode::AbandonBlock => "abandon_block",
            ReasonCode::RecallDelay => "recall_delay",
            ReasonCode::RetryScheduled => "retry_scheduled",
            ReasonCode::CallbackNotDue => "callback_not_due",
            ReasonCode::CallbackAgentAbsent => "callback_agent_absent",
            ReasonCode::CallInProgress => "call_in_progress",
            ReasonCode::CampaignNotStarted => "campaign_not_started",
            ReasonCode::CampaignEnded => "campaign_ended",
            ReasonCode::CampaignOutsideHours => "campaign_outside_hours",
            ReasonCode::ZoneUnknown => "zone_unknown",
            ReasonCode::RulesUnknown => "rules_unknown",
            ReasonCode::ContactOutsideHours => "contact_outside_hours",
            ReasonCode::PreviewSkipped => "preview_skipped",
            ReasonCode::NotNeeded => "not_needed",
            ReasonCode::ChainEnded => "chain_ended",
            ReasonCode::ChainWaiting => "chain_waiting",
            ReasonCode::FilteredOut => "filtered_out",
            ReasonCode::Deferred => "deferred",
        }
    }
}

/// A "no" with its reason and, where one exists, when the answer becomes "yes".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Blocked {
    pub code: ReasonCode,
    pub message: String,
    /// The next moment every rule allows the record (None: never, or not foreseeable).
    pub next_dialable_at: Option<DateTime<Utc>>,
}

/// A record made available to the engine, with what the store knows beyond [`Record`].
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub record: Record,
    /// Attempts on every number of the record's chain (customer).
    pub chain_attempts: u32,
    /// Next attempt scheduled by a treatment (not before).
    pub retry_at: Option<DateTime<Utc>>,
    /// Personal callback: the agent who owns it.
    pub callback_agent: Option<UserId>,
    /// Consecutive attempts that ended with `record.last_result` (treatments' `max_retries`).
    pub result_streak: u32,
    /// Why the store holds the record back from the dialer; all clear for every record it offers.
    pub hold: StoreHold,
}

impl Candidate {
    /// A fresh general record.
    pub fn new(record: Record) -> Self {
        Candidate { record, chain_attempts: 0, retry_at: None, callback_agent: None, result_streak: 0, hold: StoreHold::default() }
    }
}

/// What the store knows beyond the record that keeps it from offering the record to the dialer
/// (`campana-store`'s `dialable_records` leaves out exactly the records where one is set, and
/// [`check`] reports them, so the explanation and the dialer cannot disagree).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoreHold {
    /// Another number of the customer ended the chain: that record's id and last result.
    pub chain_ended_by: Option<(campana_core::RecordId, Option<CallResult>)>,
    /// The chain position of an earlier open number of the customer (dialed first).
    pub earlier_open: Option<i32>,
    /// The profile's record filters leave the record out.
    pub filtered_out: bool,
    /// The dialer gave the record back with this reason code: not offered before `until`
    /// (`None`: until something about the record or the campaign changes).
    pub deferred: Option<(Option<DateTime<Utc>>, String)>,
}

/// Why an agent does not take calls of a campaign (the engine's own rule, also shown on the
/// campaign's agents page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentMismatch {
    /// The campaign has an agent group and the agent is not a member.
    NotInAgentGroup,
    /// The campaign is outside the agent's campaigns profile.
    OutsideCampaignsProfile,
}

impl AgentMismatch {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentMismatch::NotInAgentGroup => "not_in_agent_group",
            AgentMismatch::OutsideCampaignsProfile => "outside_campaigns_profile",
        }
    }
}

/// Whether an agent of these groups and campaigns profile takes calls of `campaign` (whose
/// effective agent group is `group`): every reason it does not, none when it does (no
/// allocation: the engine asks this for every ready agent of every pacing pass).
pub fn agent_mismatches(
    agent_groups: &[AgentGroupId],
    profile: &campana_core::user::CampaignsProfile,
    campaign: CampaignId,
    group: Option<AgentGroupId>,
) -> impl Iterator<Item = AgentMismatch> {
    let outside_group = group.is_some_and(|g| !agent_groups.contains(&g)).then_some(AgentMismatch::NotInAgentGroup);
    let outside_profile = (!profile.allows(campaign)).then_some(AgentMismatch::OutsideCampaignsProfile);
    outside_group.into_iter().chain(outside_profile)
}

/// A campaign as the engine needs it.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignConfig {
    pub id: CampaignId,
    /// Effective settings (`campana_core::settings::effective`).
    pub settings: Settings,
    pub daily_hours: DailyHours,
    pub weekdays: Weekdays,
    /// The zone the campaign's dates and hours are read in.
    #[serde(serialize_with = "ser_tz")]
    pub time_zone: Tz,
    pub start_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    /// Higher wins the next free agent of a shared group.
    pub priority: i32,
    /// Agents of this group take the calls; `None` = any logged-in agent.
    pub agent_group: Option<AgentGroupId>,
    /// Agentless mode: simultaneous calls (no setting in core yet; engine-side).
    pub agentless_lines: u32,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `serialize_with` passes a reference
fn ser_tz<S: serde::Serializer>(z: &Tz, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(z.name())
}

/// The campaign's dates, weekdays and daily hours as a schedule in its zone.
pub struct CampaignSchedule<'a>(pub &'a CampaignConfig);

impl LocalSchedule for CampaignSchedule<'_> {
    fn windows(&self, date: NaiveDate) -> Vec<Window> {
        let c = self.0;
        if c.start_date.is_some_and(|s| date < s) || c.end_date.is_some_and(|e| date > e) || !c.weekdays.contains(date.weekday()) {
            return Vec::new();
        }
        vec![(c.daily_hours.start.naive(), c.daily_hours.end.naive())]
    }
}

/// A do-not-call hit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DncHit {
    /// `None` = the internal list.
    pub list_id: Option<DncListId>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The do-not-call lookup the driver supplies (in memory; the engine performs no IO).
pub trait DncLookup {
    /// Is `number` on the internal list or one of `lists` at `now` (expired entries do not count)?
    fn lookup(&self, number: &PhoneNumber, lists: &[DncListId], now: DateTime<Utc>) -> Option<DncHit>;

    /// A refusal that does not come from an entry (a registry whose copy is too old covers the
    /// number): checked even for numbers whose entries changed since the lookup was built.
    fn blocked(&self, _number: &PhoneNumber, _lists: &[DncListId]) -> Option<DncHit> {
        None
    }
}

/// A simple in-memory DNC store (tests, simulator, small deployments).
#[derive(Debug, Clone, Default)]
pub struct InMemoryDnc {
    entries: HashMap<PhoneNumber, Vec<DncHit>>,
}

impl InMemoryDnc {
    pub fn add(&mut self, number: PhoneNumber, list_id: Option<DncListId>, expires_at: Option<DateTime<Utc>>) {
        self.entries.entry(number).or_default().push(DncHit { list_id, expires_at });
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl DncLookup for InMemoryDnc {
    fn lookup(&self, number: &PhoneNumber, lists: &[DncListId], now: DateTime<Utc>) -> Option<DncHit> {
        self.entries
            .get(number)?
            .iter()
            .find(|h| h.expires_at.is_none_or(|e| e > now) && h.list_id.is_none_or(|l| lists.contains(&l)))
            .cloned()
    }
}

/// No DNC entries at all.
pub struct NoDnc;
impl DncLookup for NoDnc {
    fn lookup(&self, _: &PhoneNumber, _: &[DncListId], _: DateTime<Utc>) -> Option<DncHit> {
        None
    }
}

/// Everything eligibility needs besides the record.
pub struct EligibilityContext<'a> {
    pub campaign: &'a CampaignConfig,
    pub rules: &'a CallingRules,
    pub dnc: &'a dyn DncLookup,
    /// Is this record, its number or another number of its customer in a live call now (any campaign)?
    pub in_call: &'a dyn Fn(&Candidate) -> bool,
    /// Is this agent logged in (personal callbacks)?
    pub agent_present: &'a dyn Fn(UserId) -> bool,
    /// A personal callback whose agent is absent falls back to any agent this long after it is due.
    pub callback_grace_s: i64,
}

/// Human rendering of a delay: "3 h 12 min".
pub fn human_delay(d: Duration) -> String {
    let m = d.num_minutes().max(0);
    if m >= 48 * 60 {
        format!("{} d {} h", m / 1440, (m % 1440) / 60)
    } else if m >= 60 {
        format!("{} h {} min", m / 60, m % 60)
    } else {
        format!("{} min", m.max(if d.num_seconds() > 0 { 1 } else { 0 }))
    }
}

fn at_in(t: DateTime<Utc>, tz: Tz, now: DateTime<Utc>) -> String {
    format!("{} ({}), in {}", t.with_timezone(&tz).format("%a %H:%M %Z"), tz.name(), human_delay(t - now))
}

/// The contact's zones for a candidate (cached by the engine per record).
pub fn contact_zones(c: &Candidate) -> Option<ContactZones> {
    let r = &c.record;
    zones::resolve(&r.phone, r.time_zone.map(|z| z.0), r.postal_code.as_deref())
}

struct Check {
    code: ReasonCode,
    msg: String,
    /// When this rule alone stops blocking (None = never / unknown).
    until: Option<DateTime<Utc>>,
}

/// The time-dependent and static checks at instant `t`, first failure only.
fn first_block(
    ctx: &EligibilityContext<'_>,
    c: &Candidate,
    zones: Option<&ContactZones>,
    t: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Check> {
    let r = &c.record;
    let s = &ctx.campaign.settings;
    let chk = |code, msg: String, until| Some(Check { code, msg, until });
    match r.record_type {
        RecordType::NoCall => return chk(ReasonCode::NoCall, "the record is marked 'no call'".into(), None),
        RecordType::Unknown => return chk(ReasonCode::RecordTypeUnknown, "the record type is unknown".into(), None),
        _ => {}
    }
    if matches!(r.record_status, RecordStatus::Completed | RecordStatus::Cancelled) {
        return chk(ReasonCode::RecordClosed, format!("the record is {}", r.record_status), None);
    }
    if let Some((by, result)) = c.hold.chain_ended_by {
        let how = result.map_or(String::new(), |r| format!(" ({r})"));
        return chk(
            ReasonCode::ChainEnded,
            format!("the customer's chain ended on record {by}{how}: no number of it is dialed again"),
            None,
        );
    }
    if c.hold.filtered_out {
        return chk(ReasonCode::FilteredOut, "the profile's record filters leave this record out".into(), None);
    }
    if let Some(p) = c.hold.earlier_open {
        return chk(
            ReasonCode::ChainWaiting,
            format!("the customer's number at chain position {p} is still open and is dialed first"),
            None,
        );
    }
    if let Some(u) = r.dial_until {
        if t >= u {
            return chk(ReasonCode::AfterDialUntil, format!("the record may only be dialed until {u}"), None);
        }
    }
    if let Some(f) = r.dial_from {
        if t < f {
            return chk(ReasonCode::BeforeDialFrom, format!("the record may not be dialed before {f}"), Some(f));
        }
    }
    if let Some(h) = ctx.dnc.lookup(&r.phone, &s.dnc_list_ids, t) {
        let which = h.list_id.map_or("the internal do-not-call list".to_string(), |l| format!("do-not-call list {l}"));
        return chk(ReasonCode::Dnc, format!("{} is on {which}", r.phone), h.expires_at);
    }
    if r.attempts_total.max(0) as u32 >= s.max_attempts_per_number {
        return chk(
            ReasonCode::MaxAttemptsNumber,
            format!("{} attempts on this number (max {})", r.attempts_total, s.max_attempts_per_number),
            None,
        );
    }
    if c.chain_attempts >= s.max_attempts_per_chain {
        return chk(
            ReasonCode::MaxAttemptsChain,
            format!("{} attempts on this customer (max {})", c.chain_attempts, s.max_attempts_per_chain),
            None,
        );
    }
    let tz0 = zones.and_then(|z| z.zones.first().copied()).unwrap_or(ctx.campaign.time_zone);
    if let Some(day) = r.attempts_day {
        let local = t.with_timezone(&tz0).date_naive();
        if day == local && r.attempts_today.max(0) as u32 >= s.max_attempts_per_day {
            let midnight = crate::rules::local_to_utc(tz0, (local + Duration::days(1)).and_hms_opt(0, 0, 0).expect("midnight"));
            return chk(
                ReasonCode::MaxAttemptsDay,
                format!(
                    "{} attempts today in {} (max {} a day); the count resets at local midnight",
                    r.attempts_today,
                    tz0.name(),
                    s.max_attempts_per_day
                ),
                Some(midnight),
            );
        }
    }
    if let (Some(CallResult::Abandoned), Some(last)) = (r.last_result, r.last_call_at) {
        let until = last + Duration::seconds(i64::from(s.abandon_recall_block_s));
        if t < until {
            return chk(
                ReasonCode::AbandonBlock,
                format!("the last call was abandoned; no new call until {}", at_in(until, tz0, now)),
                Some(until),
            );
        }
    }
    if let Some(last) = r.last_call_at {
        let until = last + Duration::seconds(i64::from(s.min_recall_delay_s));
        if t < until {
            return chk(
                ReasonCode::RecallDelay,
                format!("last called at {last}; minimum recall delay until {}", at_in(until, tz0, now)),
                Some(until),
            );
        }
    }
    if let Some(rt) = c.retry_at {
        if t < rt {
            return chk(ReasonCode::RetryScheduled, format!("the next attempt is scheduled for {}", at_in(rt, tz0, now)), Some(rt));
        }
    }
    if matches!(r.record_type, RecordType::PersonalCallback | RecordType::CampaignCallback) {
        if let Some(cb) = r.callback_at {
            if t < cb {
                return chk(ReasonCode::CallbackNotDue, format!("a callback is scheduled for {}", at_in(cb, tz0, now)), Some(cb));
            }
            if let Some(agent) = c.callback_agent.filter(|_| r.record_type == RecordType::PersonalCallback) {
                let fallback = cb + Duration::seconds(ctx.callback_grace_s);
                if !(ctx.agent_present)(agent) && t < fallback {
                    return chk(
                        ReasonCode::CallbackAgentAbsent,
                        format!(
                            "personal callback for agent {agent}, who is not logged in; any agent may take it from {}",
                            at_in(fallback, tz0, now)
                        ),
                        Some(fallback),
                    );
                }
            }
        }
    }
    let camp = CampaignSchedule(ctx.campaign);
    let ctz = ctx.campaign.time_zone;
    if !is_open(ctz, &camp, t) {
        let local = t.with_timezone(&ctz).date_naive();
        let next = next_open(ctz, &camp, t);
        let nx = next.map_or("no further day is open".to_string(), |n| format!("opens {}", at_in(n, ctz, now)));
        if ctx.campaign.end_date.is_some_and(|e| local > e) {
            return chk(ReasonCode::CampaignEnded, format!("the campaign ended on {}", ctx.campaign.end_date.expect("checked")), None);
        }
        if ctx.campaign.start_date.is_some_and(|s| local < s) {
            return chk(
                ReasonCode::CampaignNotStarted,
                format!("the campaign starts on {}; {nx}", ctx.campaign.start_date.expect("checked")),
                next,
            );
        }
        return chk(
            ReasonCode::CampaignOutsideHours,
            format!(
                "outside the campaign's hours {}-{} {} ({}); {nx}",
                ctx.campaign.daily_hours.start,
                ctx.campaign.daily_hours.end,
                ctz.name(),
                ctx.campaign.weekdays.to_csv()
            ),
            next,
        );
    }
    let Some(zones) = zones else {
        return chk(ReasonCode::ZoneUnknown, format!("no time zone is known for {} (set the record's time_zone)", r.phone), None);
    };
    let Some(set) = ctx.rules.get(&s.calling_hours_rules) else {
        return chk(ReasonCode::RulesUnknown, format!("calling-hours rule set '{}' does not exist", s.calling_hours_rules), None);
    };
    let zones = zones.applied(s.explicit_zone_wins);
    let rule = set.for_contact(&zones.us_states, &zones.country_prefix);
    for tz in &zones.zones {
        if !is_open(*tz, &rule, t) {
            let next = next_open(*tz, &rule, t);
            let lt = t.with_timezone(tz);
            let region = rule.region_names().map_or(String::new(), |k| format!(", rules for {k}"));
            let nx = next.map_or("no allowed time ahead".to_string(), |n| format!("dialable at {}", at_in(n, *tz, now)));
            return chk(
                ReasonCode::ContactOutsideHours,
                format!(
                    "outside calling hours in {} (local {}; rule set '{}'{region}); {nx}; zones from {}",
                    tz.name(),
                    lt.format("%a %H:%M"),
                    set.name,
                    zones.describe()
                ),
                next,
            );
        }
    }
    if let Some((until, code)) = &c.hold.deferred {
        if until.is_none_or(|u| t < u) {
            let when = until.map_or("until the record or the campaign changes".to_string(), |u| format!("until {}", at_in(u, tz0, now)));
            return chk(ReasonCode::Deferred, format!("the dialer gave the record back ({code}); not offered again {when}"), *until);
        }
    }
    None
}

/// The answer for one candidate at `now`: `Ok(())` or the first blocking rule with the next
/// moment all rules allow it (searching forward through the time-based rules).
pub fn check(ctx: &EligibilityContext<'_>, c: &Candidate, zones: Option<&ContactZones>, now: DateTime<Utc>) -> Result<(), Blocked> {
    if (ctx.in_call)(c) {
        return Err(Blocked {
            code: ReasonCode::CallInProgress,
            message: format!("{} or another number of this customer is in a live call", c.record.phone),
            next_dialable_at: None,
        });
    }
    let Some(first) = first_block(ctx, c, zones, now, now) else { return Ok(()) };
    let mut next = first.until;
    let mut guard = 0;
    while let Some(t) = next {
        guard += 1;
        if guard > 64 {
            next = None;
            break;
        }
        match first_block(ctx, c, zones, t, now) {
            None => break,
            Some(b) => next = b.until.filter(|u| *u > t),
        }
    }
    Err(Blocked { code: first.code, message: first.msg, next_dialable_at: next })
}

/// Result of [`compliance_preview`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompliancePreview {
    pub at: Option<DateTime<Utc>>,
    pub total: usize,
    pub dialable_now: usize,
    pub skipped: usize,
    /// Reason code -> records.
    pub by_reason: BTreeMap<ReasonCode, usize>,
    /// Reason code -> the earliest moment one of its records becomes dialable.
    pub earliest_by_reason: BTreeMap<ReasonCode, DateTime<Utc>>,
}

/// Pre-launch compliance preview: "X of Y records would be skipped now, by reason". Pure.
pub fn compliance_preview(
    candidates: &[Candidate],
    campaign: &CampaignConfig,
    rules: &CallingRules,
    dnc: &dyn DncLookup,
    now: DateTime<Utc>,
) -> CompliancePreview {
    let ctx = EligibilityContext { campaign, rules, dnc, in_call: &|_| false, agent_present: &|_| true, callback_grace_s: 0 };
    let mut p = CompliancePreview { at: Some(now), total: candidates.len(), ..Default::default() };
    for c in candidates {
        let z = contact_zones(c);
        match check(&ctx, c, z.as_ref(), now) {
            Ok(()) => p.dialable_now += 1,
            Err(b) => {
                p.skipped += 1;
                *p.by_reason.entry(b.code).or_default() += 1;
                if let Some(n) = b.next_dialable_at {
                    let e = p.earliest_by_reason.entry(b.code).or_insert(n);
                    *e = (*e).min(n);
                }
            }
        }
    }
    p
}

/// One zone's view in a [`CheckNumberReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneReport {
    pub zone: String,
    /// Local time at `at`, RFC 3339 with offset.
    pub local_time: String,
    pub allowed: bool,
    pub next_allowed_at: Option<DateTime<Utc>>,
}

/// What `campana check-number` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckNumberReport {
    pub number: String,
    pub at: DateTime<Utc>,
    pub rule_set: String,
    /// Stricter region rules applied (`US-FL`, `US-FL and US-NY`, `+33`), if any.
    pub region_rule: Option<String>,
    /// Every source of the contact's zones (explicit zone, ZIP code, number) and what it gave.
    pub zone_sources: Vec<zones::ZoneEvidence>,
    /// The sources in words (also in the message when a call is not allowed).
    pub zones_from: String,
    /// US states whose rules apply (from the ZIP code and the area code).
    pub us_states: Vec<String>,
    pub country_prefix: Option<String>,
    pub zones: Vec<ZoneReport>,
    /// Zones of the number's prefix, when they differ from the zones used.
    pub number_zones: Vec<String>,
    pub allowed: bool,
    pub reason: Option<ReasonCode>,
    pub message: String,
    /// The next moment every zone allows a call (the intersection).
    pub next_allowed_at: Option<DateTime<Utc>>,
}

/// Checks a number against a calling-hours rule set with the shipped rules. The same code path
/// the engine uses for the contact window.
pub fn check_number(number: &PhoneNumber, postal_code: Option<&str>, at: DateTime<Utc>, rules_name: &str) -> CheckNumberReport {
    check_number_with(crate::rules::CallingRules::builtin(), number, None, postal_code, at, rules_name, false)
}

/// [`check_number`] with explicit rules, an optional explicit zone and the profile's
/// `explicit_zone_wins`.
pub fn check_number_with(
    rules: &CallingRules,
    number: &PhoneNumber,
    explicit_zone: Option<Tz>,
    postal_code: Option<&str>,
    at: DateTime<Utc>,
    rules_name: &str,
    explicit_zone_wins: bool,
) -> CheckNumberReport {
    let resolved = zones::resolve(number, explicit_zone, postal_code);
    let z = resolved.as_ref().map(|z| z.applied(explicit_zone_wins));
    let mut rep = CheckNumberReport {
        number: number.to_string(),
        at,
        rule_set: rules_name.to_string(),
        region_rule: None,
        zone_sources: z.as_ref().map(|z| z.sources.clone()).unwrap_or_default(),
        zones_from: z.as_ref().map(|z| z.describe()).unwrap_or_default(),
        us_states: z.as_ref().map(|z| z.us_states.clone()).unwrap_or_default(),
        country_prefix: z.as_ref().map(|z| z.country_prefix.clone()),
        zones: Vec::new(),
        number_zones: Vec::new(),
        allowed: false,
        reason: None,
        message: String::new(),
        next_allowed_at: None,
    };
    let Some(z) = z else {
        rep.reason = Some(ReasonCode::ZoneUnknown);
        rep.message = format!("no time zone is known for {number}");
        return rep;
    };
    if z.number_zones != z.zones {
        rep.number_zones = z.number_zones.iter().map(|t| t.name().to_string()).collect();
    }
    let Some(set) = rules.get(rules_name) else {
        rep.reason = Some(ReasonCode::RulesUnknown);
        rep.message = format!(
            "calling-hours rule set '{rules_name}' does not exist; known: {}",
            rules.sets.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        return rep;
    };
    let rule = set.for_contact(&z.us_states, &z.country_prefix);
    rep.region_rule = rule.region_names();
    for tz in &z.zones {
        rep.zones.push(ZoneReport {
            zone: tz.name().to_string(),
            local_time: at.with_timezone(tz).to_rfc3339(),
            allowed: is_open(*tz, &rule, at),
            next_allowed_at: next_open(*tz, &rule, at),
        });
    }
    rep.next_allowed_at = intersect_next(&z.zones, &rule, at);
    rep.allowed = rep.next_allowed_at == Some(at);
    if rep.allowed {
        rep.message = format!("allowed now in {}", z.zones.iter().map(|t| t.name()).collect::<Vec<_>>().join(", "));
    } else {
        rep.reason = Some(ReasonCode::ContactOutsideHours);
        let first_closed = rep.zones.iter().find(|r| !r.allowed).map_or("", |r| r.zone.as_str());
        rep.message = match rep.next_allowed_at {
            Some(n) => format!("outside calling hours in {first_closed}; next allowed in every zone at {n}, in {}", human_delay(n - at)),
            None => format!("outside calling hours in {first_closed}; no moment allowed in every zone within a year"),
        };
    }
    rep
}

/// First instant at or after `t` that every zone allows.
pub fn intersect_next(zones: &[Tz], rule: &dyn LocalSchedule, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut cand = t;
    for _ in 0..200 {
        let mut moved = false;
        for tz in zones {
            if !is_open(*tz, rule, cand) {
                let n = next_open(*tz, rule, cand)?;
                if n > cand {
                    cand = n;
                    moved = true;
                }
            }
        }
        if !moved {
            return Some(cand);
        }
    }
    None
}
