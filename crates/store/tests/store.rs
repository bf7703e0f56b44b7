//! The store's behaviour, each test run on SQLite and on PostgreSQL.

use campana_core::campaign::*;
use campana_core::import::{ColumnMapping, DedupePolicy, RowError};
use campana_core::record::*;
use campana_core::settings::*;
use campana_core::stored::*;
use campana_core::*;
use campana_store::testing::both;
use campana_store::*;

fn group(name: &str) -> NamedInput {
    NamedInput { name: name.into(), description: String::new() }
}

fn campaign(name: &str) -> CampaignInput {
    serde_json::from_value(serde_json::json!({
        "name": name, "daily_hours": {"start": "09:00", "end": "20:00"},
        "weekdays": ["mon","tue","wed","thu","fri"], "time_zone": "America/New_York"
    }))
    .unwrap()
}

fn contact(ext: &str, phones: &[&str]) -> Contact {
    let u: ContactUpsert = serde_json::from_value(serde_json::json!({
        "name": format!("Customer {ext}"),
        "phones": phones.iter().map(|p| serde_json::json!({"number": p, "type": "home"})).collect::<Vec<_>>()
    }))
    .unwrap();
    u.into_contact(Some(ext.into()), &[], None).unwrap()
}

#[tokio::test]
async fn catalogue_crud_conflicts_and_not_found() {
    for (db, s, _g) in both().await {
        let g = s.create::<CampaignGroup>(&group("Sales")).await.unwrap();
        assert_eq!(g.input.name, "Sales", "{db}");
        let e = s.create::<CampaignGroup>(&group("Sales")).await.unwrap_err();
        assert_eq!(e.to_string(), "a campaign group named 'Sales' already exists", "{db}");
        let e = s.create::<CampaignGroup>(&group(" padded")).await.unwrap_err();
        assert!(matches!(e, StoreError::Invalid(ref v) if v[0].field == "name"), "{db}: {e}");
        let g2 = s.update::<CampaignGroup>(g.id.0, &group("Sales EU")).await.unwrap();
        assert_eq!(g2.input.name, "Sales EU");
        assert!(matches!(s.get::<CampaignGroup>(999).await, Err(StoreError::NotFound { .. })), "{db}");
        for i in 0..5 {
            s.create::<AgentGroup>(&group(&format!("Team {i}"))).await.unwrap();
        }
        let p1 = s.list::<AgentGroup>(PageParams { limit: Some(2), cursor: None }).await.unwrap();
        assert_eq!(p1.items.len(), 2);
        let c = PageParams::parse_cursor(p1.next_cursor.as_deref().unwrap()).unwrap();
        let p2 = s.list::<AgentGroup>(PageParams { limit: Some(10), cursor: Some(c) }).await.unwrap();
        assert_eq!(p2.items.len(), 3, "{db}");
        assert!(p2.next_cursor.is_none());
        // Built-ins are protected.
        let internal = s.internal_dnc_list().await.unwrap();
        assert!(matches!(s.delete::<DncList>(internal.0).await, Err(StoreError::Conflict(_))), "{db}");
        let roles = s.list_all::<Role>().await.unwrap();
        assert_eq!(roles.iter().filter(|r| r.builtin).count(), 3);
        s.delete::<CampaignGroup>(g.id.0).await.unwrap();
        assert!(s.get::<CampaignGroup>(g.id.0).await.is_err());
    }
}

#[tokio::test]
async fn one_default_profile_and_effective_settings() {
    for (db, s, _g) in both().await {
        let team = s.create::<AgentGroup>(&group("Team")).await.unwrap();
        let p = s
            .create::<SettingsProfile>(&SettingsProfileInput {
                name: "Predictive".into(),
                description: String::new(),
                is_default: true,
                settings: SettingsFields {
                    dialing_mode: Some(DialingMode::Predictive),
                    agent_group_id: Some(Some(team.id)),
                    ..Default::default()
                },
            })
            .await
            .unwrap();
        let defaults: Vec<_> = s.list_all::<SettingsProfile>().await.unwrap().into_iter().filter(|p| p.input.is_default).collect();
        assert_eq!(defaults.len(), 1, "{db}");
        assert_eq!(defaults[0].id, p.id);
        let bad = SettingsProfileInput {
            name: "Bad".into(),
            description: String::new(),
            is_default: false,
            settings: SettingsFields { script_id: Some(Some(ScriptId(77))), ..Default::default() },
        };
        match s.create::<SettingsProfile>(&bad).await.unwrap_err() {
            StoreError::Invalid(v) => assert_eq!(v[0].to_string(), "settings.script_id: script 77 does not exist"),
            e => panic!("{db}: {e}"),
        }
        let mut ci = campaign("Renewals");
        ci.overrides.abandon_rate_max = Some(0.01);
        let c = s.create_campaign(&ci).await.unwrap();
        let eff = s.effective_settings(&c).await.unwrap();
        assert_eq!(eff.settings.dialing_mode, DialingMode::Predictive, "{db}");
        assert_eq!(eff.sources["dialing_mode"], Source::Profile);
        assert_eq!(eff.sources["abandon_rate_max"], Source::Campaign);
        assert_eq!(eff.sources["ring_timeout_s"], Source::Default);
        assert!(matches!(s.delete::<SettingsProfile>(p.id.0).await, Err(StoreError::Conflict(_))));
    }
}

#[tokio::test]
async fn campaign_life_cycle_and_groups() {
    for (db, s, _g) in both().await {
        let g = s.create::<CampaignGroup>(&group("Brand A")).await.unwrap();
        let list = s
            .create::<ContactList>(&ContactListInput {
                name: "L".into(),
                description: String::new(),
                columns: vec![],
                default_country: None,
            })
            .await
            .unwrap();
        let mut ci = campaign("Spring");
        ci.group_id = Some(g.id);
        let c = s.create_campaign(&ci).await.unwrap();
        assert_eq!(c.state, CampaignState::Draft);
        // Cannot start without a list and an agent group; the error names both.
        match s.campaign_action(c.id, CampaignAction::Start).await.unwrap_err() {
            StoreError::Invalid(v) => {
                let f: Vec<_> = v.iter().map(|e| e.field.as_str()).collect();
                assert_eq!(f, ["contact_list_ids", "agent_group_id"], "{db}");
            }
            e => panic!("{db}: {e}"),
        }
        let team = s.create::<AgentGroup>(&group("T")).await.unwrap();
        ci.contact_list_ids = vec![list.id];
        ci.overrides.agent_group_id = Some(Some(team.id));
        s.update_campaign(c.id, &ci).await.unwrap();
        let c = s.campaign_action(c.id, CampaignAction::Start).await.unwrap();
        assert_eq!(c.state, CampaignState::Running);
        assert_eq!(c.input.contact_list_ids, vec![list.id]);
        let e = s.campaign_action(c.id, CampaignAction::Start).await.unwrap_err();
        assert_eq!(e.to_string(), "cannot start a campaign that is running; allowed from running: pause, stop, complete", "{db}");
        assert!(matches!(s.delete_campaign(c.id).await, Err(StoreError::Conflict(_))));
        let other = s.create_campaign(&campaign("Loose")).await.unwrap();
        let grouped =
            s.list_campaigns(&CampaignFilter { group_id: Some(Some(g.id)), ..Default::default() }, PageParams::default()).await.unwrap();
        assert_eq!(grouped.items.iter().map(|c| c.id).collect::<Vec<_>>(), vec![c.id]);
        let loose = s.list_campaigns(&CampaignFilter { group_id: Some(None), ..Default::default() }, PageParams::default()).await.unwrap();
        assert_eq!(loose.items.iter().map(|c| c.id).collect::<Vec<_>>(), vec![other.id]);
        let only =
            s.list_campaigns(&CampaignFilter { only: Some(vec![other.id]), ..Default::default() }, PageParams::default()).await.unwrap();
        assert_eq!(only.items.len(), 1);
        let mut bad = campaign("Bad refs");
        bad.group_id = Some(CampaignGroupId(404));
        bad.contact_list_ids = vec![ContactListId(405)];
        match s.create_campaign(&bad).await.unwrap_err() {
            StoreError::Invalid(v) => assert_eq!(v.len(), 2, "{db}: {v:?}"),
            e => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn crm_upsert_by_external_id_is_idempotent() {
    for (db, s, _g) in both().await {
        let list = s
            .create::<ContactList>(&ContactListInput {
                name: "CRM".into(),
                description: String::new(),
                columns: vec![],
                default_country: None,
            })
            .await
            .unwrap();
        let batch = vec![contact("m1", &["+12125550101", "+13125550102"]), contact("m2", &["+12125550103"])];
        let o = s.upsert_contacts(list.id, &batch).await.unwrap();
        assert_eq!((o.customers_created, o.customers_updated, o.records_created), (2, 0, 3), "{db}");
        let o = s.upsert_contacts(list.id, &batch).await.unwrap();
        assert_eq!((o.customers_created, o.customers_updated, o.records_created), (0, 2, 0), "{db}");
        let all = s.list_records(list.id, &RecordFilterParams::default(), PageParams::default()).await.unwrap();
        assert_eq!(all.items.len(), 3, "{db}: no duplicates after a second push");
        // m1 drops its second phone and changes the first: attempts restart, the second is cancelled.
        s.upsert_contacts(list.id, &[contact("m1", &["+12125550199"])]).await.unwrap();
        let m1 = s.records_by_external_id(list.id, "m1").await.unwrap();
        assert_eq!(m1.len(), 2);
        assert_eq!(m1[0].phone.as_str(), "+12125550199");
        assert_eq!(m1[0].chain_id, m1[1].chain_id);
        assert_eq!(m1[1].record_status, RecordStatus::Cancelled, "{db}");
        let m2 = s.records_by_external_id(list.id, "m2").await.unwrap();
        assert_ne!(m2[0].chain_id, m1[0].chain_id);
        let e = s.upsert_contacts(list.id, &[contact("x", &["+12125550101"]), contact("x", &["+12125550102"])]).await.unwrap_err();
        assert!(e.to_string().contains("appears twice"), "{e}");
    }
}

fn batch(rows: &[(u64, Contact)], errors: Vec<RowError>) -> StagedBatch {
    StagedBatch { contacts: rows.to_vec(), errors, rows_read: rows.len() as i64, rows_duplicate_in_file: 0 }
}

#[tokio::test]
async fn import_is_all_or_nothing_with_dedupe_policies() {
    for (db, s, _g) in both().await {
        let list = s
            .create::<ContactList>(&ContactListInput {
                name: "Imp".into(),
                description: String::new(),
                columns: vec![],
                default_country: None,
            })
            .await
            .unwrap();
        s.upsert_contacts(list.id, &[contact("a", &["+12125550101"])]).await.unwrap();
        let mapping = ColumnMapping::default();
        // A cancelled import leaves the list as it was.
        let imp = s.import_begin(list.id, "f.csv", "{}").await.unwrap();
        assert!(matches!(s.import_begin(list.id, "g.csv", "{}").await, Err(StoreError::Conflict(_))), "{db}: one running import per list");
        s.import_stage(imp, &batch(&[(2, contact("b", &["+12125550102"]))], vec![])).await.unwrap();
        let st = s.import_abort(imp, ImportState::Cancelled, None).await.unwrap();
        assert_eq!(st.state, ImportState::Cancelled);
        assert_eq!(s.get::<ContactList>(list.id.0).await.unwrap().record_count, 1, "{db}");
        // Skip: the known external id and the known number are duplicates; the rest imports.
        let imp = s.import_begin(list.id, "f.csv", "{}").await.unwrap();
        let err = RowError { row: 5, column: "phone".into(), value: "x".into(), reason: "bad".into() };
        s.import_stage(
            imp,
            &batch(
                &[
                    (2, contact("a", &["+12125550109"])),
                    (3, contact("c", &["+12125550101"])),
                    (4, contact("d", &["+12125550104", "+12125550105"])),
                ],
                vec![err.clone()],
            ),
        )
        .await
        .unwrap();
        let st = s.import_finish(imp, DedupePolicy::Skip, &mapping).await.unwrap();
        assert_eq!(st.state, ImportState::Completed);
        assert_eq!((st.counts.rows_read, st.counts.rows_staged, st.counts.rows_rejected), (3, 3, 1), "{db}");
        assert_eq!((st.counts.rows_duplicate_in_list, st.counts.customers_created, st.counts.records_created), (2, 1, 2), "{db}");
        assert_eq!(s.import_errors(imp, 0, 100).await.unwrap(), vec![err]);
        assert_eq!(s.get::<ContactList>(list.id.0).await.unwrap().record_count, 3);
        assert_eq!(s.get::<ContactList>(list.id.0).await.unwrap().mapping, Some(mapping.clone()));
        // Update: the known external id is updated in place.
        let imp = s.import_begin(list.id, "f.csv", "{}").await.unwrap();
        s.import_stage(imp, &batch(&[(2, contact("a", &["+12125550101", "+12125550110"]))], vec![])).await.unwrap();
        let st = s.import_finish(imp, DedupePolicy::Update, &mapping).await.unwrap();
        assert_eq!((st.counts.customers_updated, st.counts.records_created), (1, 1), "{db}");
        // Keep both: a known number without external id becomes a new customer.
        let mut anon = contact("z", &["+12125550104"]);
        anon.external_id = None;
        let imp = s.import_begin(list.id, "f.csv", "{}").await.unwrap();
        s.import_stage(imp, &batch(&[(2, anon)], vec![])).await.unwrap();
        let st = s.import_finish(imp, DedupePolicy::KeepBoth, &mapping).await.unwrap();
        assert_eq!(st.counts.customers_created, 1);
        let dup = s
            .list_records(
                list.id,
                &RecordFilterParams { phone: Some(PhoneNumber::parse("+12125550104", None).unwrap()), ..Default::default() },
                PageParams::default(),
            )
            .await
            .unwrap();
        assert_eq!(dup.items.len(), 2, "{db}");
        assert_ne!(dup.items[0].chain_id, dup.items[1].chain_id);
        // An import left running by a crash is failed at start-up, and its rows never appear.
        let before = s.get::<ContactList>(list.id.0).await.unwrap().record_count;
        let imp = s.import_begin(list.id, "crash.csv", "{}").await.unwrap();
        s.import_stage(imp, &batch(&[(2, contact("q", &["+12125550177"]))], vec![])).await.unwrap();
        assert_eq!(s.recover_interrupted_imports().await.unwrap(), 1);
        assert_eq!(s.import_status(imp).await.unwrap().state, ImportState::Failed);
        assert_eq!(s.get::<ContactList>(list.id.0).await.unwrap().record_count, before, "{db}");
    }
}

#[tokio::test]
async fn import_scratch_keeps_every_character_and_is_dropped() {
    for (db, s, _g) in both().await {
        let list = s
            .create::<ContactList>(&ContactListInput {
                name: "Chars".into(),
                description: String::new(),
                columns: vec![],
                default_country: None,
            })
            .await
            .unwrap();
        let mut odd = contact("tab\there", &["+12125550101", "+13125550102"]);
        odd.name = "Ann\tO'Neil \"Nan\"\nline two\r\\N back\\slash ñ 😀".into();
        odd.postal_code = Some("60601".into());
        odd.sort_value = Some("\\.".into());
        odd.time_zone = Some(TimeZone::parse("Europe/Madrid").unwrap());
        odd.dial_from = Some(chrono::DateTime::from_timestamp_millis(1_790_000_000_000).unwrap());
        odd.custom.insert("note".into(), serde_json::json!("a\tb\\c\nd"));
        let mut anon = contact("x", &["+12125550103"]);
        anon.external_id = None;
        anon.sort_value = None;
        // Update into an empty list: nothing to match, everything is created.
        let imp = s.import_begin(list.id, "f.csv", "{}").await.unwrap();
        assert!(s.import_scratch_exists(imp).await.unwrap(), "{db}");
        s.import_stage(imp, &batch(&[(2, odd.clone()), (3, anon)], vec![])).await.unwrap();
        let st = s.import_finish(imp, DedupePolicy::Update, &ColumnMapping::default()).await.unwrap();
        assert_eq!((st.counts.customers_created, st.counts.customers_updated, st.counts.records_created), (2, 0, 3), "{db}");
        assert!(!s.import_scratch_exists(imp).await.unwrap(), "{db}: the scratch table is dropped");
        let got = s.records_by_external_id(list.id, "tab\there").await.unwrap();
        assert_eq!(got.len(), 2, "{db}");
        let r = &got[1];
        assert_eq!((r.name.as_str(), r.phone.as_str(), r.chain_position), (odd.name.as_str(), "+13125550102", 2), "{db}");
        assert_eq!((r.postal_code.as_deref(), r.sort_value.as_deref()), (Some("60601"), Some("\\.")), "{db}");
        assert_eq!((r.time_zone, r.dial_from), (odd.time_zone, odd.dial_from), "{db}");
        assert_eq!(r.custom, odd.custom, "{db}");
        assert_eq!(got[0].chain_id, r.chain_id);
        let all = s.list_records(list.id, &RecordFilterParams::default(), PageParams::default()).await.unwrap();
        let anon_rec = all.items.iter().find(|r| r.external_id.is_none()).unwrap();
        assert_eq!(anon_rec.sort_value, None, "{db}: NULL stays NULL");
        assert_ne!(anon_rec.chain_id, r.chain_id);
    }
}

#[tokio::test]
async fn an_import_failing_mid_way_leaves_the_list_as_it_was() {
    for (db, s, _g) in both().await {
        let list = s
            .create::<ContactList>(&ContactListInput {
                name: "Fail".into(),
                description: String::new(),
                columns: vec![],
                default_country: None,
            })
            .await
            .unwrap();
        s.upsert_contacts(list.id, &[contact("a", &["+12125550101"])]).await.unwrap();
        let before = s.list_records(list.id, &RecordFilterParams::default(), PageParams::default()).await.unwrap().items;
        // Failed while reading (after two batches): the scratch goes, the errors stay.
        let imp = s.import_begin(list.id, "f.csv", "{}").await.unwrap();
        let err = RowError { row: 4, column: "phone".into(), value: "x".into(), reason: "bad".into() };
        s.import_stage(imp, &batch(&[(2, contact("b", &["+12125550102"]))], vec![])).await.unwrap();
        s.import_stage(imp, &batch(&[(3, contact("c", &["+12125550103"]))], vec![err.clone()])).await.unwrap();
        let st = s.import_abort(imp, ImportState::Failed, Some("the file is not readable CSV")).await.unwrap();
        assert_eq!((st.state, st.counts.rows_staged), (ImportState::Failed, 2), "{db}");
        assert!(!s.import_scratch_exists(imp).await.unwrap(), "{db}");
        assert_eq!(s.import_errors(imp, 0, 10).await.unwrap(), vec![err], "{db}");
        assert!(matches!(s.import_stage(imp, &batch(&[], vec![])).await, Err(StoreError::Conflict(_))), "{db}");
        // Failed inside the merge, after some records were written: nothing of it stays.
        // (The file reader never stages one external id twice; the store refuses it at merge time.)
        let imp = s.import_begin(list.id, "g.csv", "{}").await.unwrap();
        let rows: Vec<(u64, Contact)> =
            (0..50).map(|i| (i + 2, contact(&format!("n{i}"), &[&format!("+1212555{:04}", 2000 + i)]))).collect();
        s.import_stage(imp, &batch(&rows, vec![])).await.unwrap();
        s.import_stage(imp, &batch(&[(60, contact("n7", &["+13125550100"]))], vec![])).await.unwrap();
        assert!(s.import_finish(imp, DedupePolicy::KeepBoth, &ColumnMapping::default()).await.is_err(), "{db}");
        let st = s.import_abort(imp, ImportState::Failed, Some("merge failed")).await.unwrap();
        assert_eq!(st.state, ImportState::Failed);
        let after = s.list_records(list.id, &RecordFilterParams::default(), PageParams::default()).await.unwrap().items;
        assert_eq!(serde_json::to_value(&after).unwrap(), serde_json::to_value(&before).unwrap(), "{db}: the list is exactly as it was");
        assert_eq!(s.get::<ContactList>(list.id.0).await.unwrap().mapping, None, "{db}");
        assert!(!s.import_scratch_exists(imp).await.unwrap(), "{db}");
        // And the next import runs normally.
        let imp = s.import_begin(list.id, "h.csv", "{}").await.unwrap();
        s.import_stage(imp, &batch(&rows, vec![])).await.unwrap();
        let st = s.import_finish(imp, DedupePolicy::Skip, &ColumnMapping::default()).await.unwrap();
        assert_eq!((st.state, st.counts.records_created), (ImportState::Completed, 50), "{db}");
    }
}

#[tokio::test]
async fn dnc_entries_expire_and_internal_list_always_applies() {
    for (db, s, _g) in both().await {
        let internal = s.internal_dnc_list().await.unwrap();
        let other = s.create::<DncList>(&group("Federal")).await.unwrap();
        let n1 = PhoneNumber::parse("+12125550101", None).unwrap();
        let n2 = PhoneNumber::parse("+12125550102", None).unwrap();
        let now = chrono::Utc::now();
        s.put_dnc_entry(internal, &DncEntryInput { phone: n1.clone(), expires_at: None, reason: "asked".into(), source: "agent".into() })
            .await
            .unwrap();
        s.put_dnc_entry(
            other.id,
            &DncEntryInput {
                phone: n2.clone(),
                expires_at: Some(now + chrono::Duration::hours(1)),
                reason: String::new(),
                source: "import".into(),
            },
        )
        .await
        .unwrap();
        assert_eq!(s.dnc_hits(&n1, &[], now).await.unwrap().len(), 1, "{db}");
        assert_eq!(s.dnc_hits(&n2, &[], now).await.unwrap().len(), 0, "{db}: list not attached");
        assert_eq!(s.dnc_hits(&n2, &[other.id], now).await.unwrap().len(), 1);
        assert_eq!(s.dnc_hits(&n2, &[other.id], now + chrono::Duration::hours(2)).await.unwrap().len(), 0, "{db}: expired");
        let page = s.list_dnc_entries(internal, PageParams::default(), None).await.unwrap();
        assert_eq!(page.items.len(), 1);
        s.delete_dnc_entry(internal, &n1).await.unwrap();
        assert!(s.dnc_hits(&n1, &[], now).await.unwrap().is_empty());
    }
}
