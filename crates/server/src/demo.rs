//! Demo data for `campana demo`: two campaign groups, four campaigns in different dialing
//! modes sharing one profile, contact lists across several countries and US time zones, a
//! DNC list, dispositions with colours, manager tags and demo logins. Seeded once per data
//! directory and deterministic (fixed RNG seed).

use campana_core::campaign::*;
use campana_core::record::{ColumnKind, ContactUpsert, CustomColumn, DncEntryInput, PhoneInput, PhoneType};
use campana_core::settings::{DialingMode, SettingsFields, SettingsProfileInput};
use campana_core::stored::*;
use campana_core::user::{CampaignsProfile, UserInput};
use campana_core::PhoneNumber;
use campana_store::{PageParams, Store};
use rand::{Rng, SeedableRng};

/// Demo logins: (username, password, role).
pub type Logins = Vec<(&'static str, &'static str, &'static str)>;

pub const LOGINS: [(&str, &str, &str); 3] =
    [("admin", "campana-admin", "administrator"), ("supervisor", "campana-super", "supervisor"), ("agent", "campana-agent", "agent")];

/// Number shapes per region: (prefix, random digits, zone hint).
const NUMBER_PLANS: &[(&str, usize)] = &[
    ("+1212", 7), // New York
    ("+1312", 7), // Chicago
    ("+1303", 7), // Denver
    ("+1602", 7), // Phoenix (no DST)
    ("+1213", 7), // Los Angeles
    ("+1907", 7), // Anchorage
    ("+1808", 7), // Honolulu
    ("+346", 8),  // Spain, mobile
    ("+447700", 6),
    ("+5255", 8), // Mexico City
    ("+4930", 8), // Berlin
    ("+6129", 7), // Sydney
    ("+8135", 7), // Tokyo
    ("+9122", 8), // Mumbai
    ("+656", 7),  // Singapore
];

/// The demo's simulated customers: more of them answer than in `serve --telephony sim` (35%
/// against 20%), so a person who signs in as the agent gets a call within a minute or so.
pub fn population() -> campana_sim::model::Population {
    campana_sim::model::Population { answer_prob: 0.35, ..Default::default() }
}

/// Simulated agents working beside the demo's people (the demo's default `--sim-agents`).
pub const SIM_AGENTS: u32 = 12;

fn random_number(rng: &mut impl Rng) -> PhoneNumber {
    loop {
        let (prefix, digits) = NUMBER_PLANS[rng.gen_range(0..NUMBER_PLANS.len())];
        let mut s = prefix.to_string();
        for i in 0..digits {
            // NANP exchanges and subscriber numbers must not start with 0 or 1.
            let d = if i == 0 && prefix.starts_with("+1") { rng.gen_range(2..10) } else { rng.gen_range(0..10) };
            s.push(char::from(b'0' + d as u8));
        }
        if let Ok(n) = PhoneNumber::parse(&s, None) {
            return n;
        }
    }
}

const PLANS: [&str; 3] = ["basic", "plus", "max"];
const FIRST: &[&str] =
    &["Ana", "Ben", "Chloe", "Diego", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jon", "Kira", "Liam", "Mia", "Noah", "Olga", "Pablo"];
const LAST: &[&str] = &["Garcia", "Smith", "Müller", "Johnson", "López", "Brown", "Khan", "Rossi", "Nguyen", "Dubois", "Silva", "Kowalski"];

/// Seeds the demo once; returns the logins.
pub async fn seed(store: &Store, records: usize) -> anyhow::Result<Logins> {
    if !store.list_campaigns(&Default::default(), PageParams { limit: Some(1), cursor: None }).await?.items.is_empty() {
        return Ok(LOGINS.to_vec());
    }
    tracing::info!(records, "seeding demo data");
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let named = |n: &str, d: &str| NamedInput { name: n.into(), description: d.into() };
    let sales = store.create::<CampaignGroup>(&named("Sales", "Outbound sales for both brands")).await?;
    let care = store.create::<CampaignGroup>(&named("Customer care", "Renewals and feedback")).await?;
    // One agent group per campaign that needs agents: a campaign's priority decides only among
    // campaigns sharing agents, so each mode gets agents of its own and every campaign moves.
    // The simulated agents are spread over the three; the demo's people are in all of them.
    let team = store.create::<AgentGroup>(&named("Sales floor", "Agents of the predictive sales campaign")).await?;
    let desk = store.create::<AgentGroup>(&named("Brand B desk", "Agents previewing Brand B's leads")).await?;
    let renewals = store.create::<AgentGroup>(&named("Care team", "Agents calling customers whose plan renews")).await?;
    let script = store
        .create::<Script>(&ScriptInput {
            name: "Renewal offer".into(),
            body: "Hello {{name}}, this is {{agent}} from Campana Mobile. Your plan renews soon...".into(),
        })
        .await?;
    let profile = store
        .create::<SettingsProfile>(&SettingsProfileInput {
            name: "Standard outbound".into(),
            description: "Shared by the demo campaigns".into(),
            is_default: false,
            settings: SettingsFields {
                dialing_mode: Some(DialingMode::Predictive),
                agent_group_id: Some(Some(team.id)),
                script_id: Some(Some(script.id)),
                abandon_rate_max: Some(0.03),
                ..Default::default()
            },
        })
        .await?;
    let colour = |c: &str| Colour::parse(c).expect("static colour");
    for (name, c, success, fin, cb, dnc) in [
        ("Sale", "#2e7d32", true, true, false, false),
        ("Interested, call back", "#f9a825", false, false, true, false),
        ("Not interested", "#c62828", false, true, false, false),
        ("Wrong number", "#6d4c41", false, true, false, false),
        ("Do not call", "#212121", false, true, false, true),
    ] {
        store
            .create::<Disposition>(&DispositionInput {
                name: name.into(),
                colour: colour(c),
                is_success: success,
                is_final: fin,
                is_callback: cb,
                is_do_not_call: dnc,
                profile_id: None,
                campaign_id: None,
            })
            .await?;
    }
    store.create::<ManagerTag>(&ManagerTagInput { name: "Escalate".into(), colour: colour("#6a1b9a"), campaign_id: None }).await?;
    store.create::<ManagerTag>(&ManagerTagInput { name: "Great call".into(), colour: colour("#00838f"), campaign_id: None }).await?;
    let federal = store.create::<DncList>(&named("National registry extract", "Numbers from the national do-not-call registry")).await?;

    let columns = vec![
        CustomColumn { name: "plan".into(), kind: ColumnKind::Text },
        CustomColumn { name: "balance".into(), kind: ColumnKind::Number },
    ];
    let mut lists = Vec::new();
    for name in ["Spring leads", "Renewals 2026"] {
        lists.push(
            store
                .create::<ContactList>(&ContactListInput {
                    name: name.into(),
                    description: String::new(),
                    columns: columns.clone(),
                    default_country: campana_core::CountryCode::parse("US").ok(),
                })
                .await?,
        );
    }
    let per_list = records / lists.len();
    for (li, list) in lists.iter().enumerate() {
        let mut batch = Vec::new();
        for i in 0..per_list {
            let phones = rng.gen_range(1..=3);
            let types = [PhoneType::Home, PhoneType::Mobile, PhoneType::Work];
            let contact = ContactUpsert {
                name: format!("{} {}", FIRST[rng.gen_range(0..FIRST.len())], LAST[rng.gen_range(0..LAST.len())]),
                phones: (0..phones).map(|p| PhoneInput { number: random_number(&mut rng).to_string(), phone_type: types[p] }).collect(),
                time_zone: None,
                postal_code: None,
                sort_value: Some(format!("{:05}", rng.gen_range(0..100_000))),
                dial_from: None,
                dial_until: None,
                record_type: campana_core::record::RecordType::General,
                custom: serde_json::json!({"plan": PLANS[i % 3], "balance": (i % 500) as f64}).as_object().cloned().unwrap_or_default(),
            };
            match contact.into_contact(Some(format!("L{li}-{i:06}")), &list.input.columns, list.input.default_country) {
                Ok(c) => batch.push(c),
                Err(e) => tracing::debug!(?e, "demo contact skipped"),
            }
            if batch.len() == 1000 {
                store.upsert_contacts(list.id, &batch).await?;
                batch.clear();
            }
        }
        store.upsert_contacts(list.id, &batch).await?;
        // A few of the list's numbers are on the DNC list.
        let page = store.list_records(list.id, &Default::default(), PageParams { limit: Some(20), cursor: None }).await?;
        for r in page.items.iter().step_by(4) {
            store
                .put_dnc_entry(
                    federal.id,
                    &DncEntryInput { phone: r.phone.clone(), expires_at: None, reason: "registered".into(), source: "import".into() },
                )
                .await?;
        }
    }

    let base = |name: &str,
                group: Option<campana_core::CampaignGroupId>,
                mode: DialingMode,
                agents: Option<campana_core::AgentGroupId>,
                list: campana_core::ContactListId,
                priority: i32| {
        CampaignInput {
            name: name.into(),
            description: format!("Demo campaign in {mode} mode"),
            agent_notes: "Confirm the customer's identity before discussing the account.".into(),
            start_date: None,
            end_date: None,
            // Around the clock, so the demo dials whenever it is started: each contact's own
            // local calling hours (08:00-21:00 by default) still decide who is called.
            daily_hours: campana_core::DailyHours::new(campana_core::LocalTime::hm(0, 0), campana_core::LocalTime::hm(23, 59))
                .expect("static hours"),
            weekdays: campana_core::Weekdays::ALL,
            time_zone: campana_core::TimeZone::parse("America/New_York").expect("static zone"),
            priority,
            group_id: group,
            profile_id: Some(profile.id),
            overrides: SettingsFields {
                dialing_mode: Some(mode),
                dnc_list_ids: Some(vec![federal.id]),
                // The profile's group (the sales floor) unless the campaign names its own.
                agent_group_id: agents.filter(|g| *g != team.id).map(Some),
                ..Default::default()
            },
            contact_list_ids: vec![list],
        }
    };
    let campaigns = [
        // The people of the demo are in every group: the predictive campaign comes first for
        // them, so a person who gets ready is handed calls already answered (progressive calls
        // ring first, and most simulated customers do not answer).
        base("Spring promotion", Some(sales.id), DialingMode::Predictive, Some(team.id), lists[0].id, 20),
        base("Brand B preview", Some(sales.id), DialingMode::Preview, Some(desk.id), lists[0].id, 5),
        base("Plan renewals", Some(care.id), DialingMode::Progressive, Some(renewals.id), lists[1].id, 10),
        base("Satisfaction survey", None, DialingMode::Agentless, None, lists[1].id, 1),
    ];
    for c in &campaigns {
        let created = store.create_campaign(c).await?;
        store.campaign_action(created.id, CampaignAction::Start).await?;
    }
    let roles = store.list_all::<Role>().await?;
    for (user, pw, role) in LOGINS {
        let role_id =
            roles.iter().find(|r| r.input.name == role).map(|r| r.id).ok_or_else(|| anyhow::anyhow!("built-in role {role} missing"))?;
        let input = UserInput {
            username: user.into(),
            display_name: format!("Demo {role}"),
            role_id,
            campaigns_profile: CampaignsProfile::All,
            agent_group_ids: vec![team.id, desk.id, renewals.id],
            password: Some(pw.into()),
            active: true,
        };
        store.create_user(&input, Some(crate::service::account::hash_password(pw))).await?;
    }
    Ok(LOGINS.to_vec())
}
