//! "Why not dialable", the compliance preview and "available now" against the dialer's own
//! decision, on SQLite and PostgreSQL: for records in every state the store knows (a pending
//! retry, a deferral, a chain waiting or ended, a record filter, a callback, a DNC entry), the
//! records the explanation calls dialable at `t` are exactly those the store offers the dialer at
//! `t` and the engine's eligibility accepts.

use campana::explain;
use campana_core::campaign::CampaignInput;
use campana_core::record::*;
use campana_core::stored::*;
use campana_engine::eligibility::{check, contact_zones, EligibilityContext};
use campana_engine::treatment::{after_call, FinishedCall};
use campana_engine::{Blocked, CallbackRequest, Candidate, InMemoryDnc, PersistCommand, ReasonCode};
use campana_store::testing::both;
use campana_store::{DialableQuery, PageParams, RecordFilterParams};
use chrono::{DateTime, Duration, TimeZone as _, Utc};
use std::collections::{BTreeMap, BTreeSet, HashSet};

fn contact(ext: &str, phones: &[&str]) -> Contact {
    let u: ContactUpsert = serde_json::from_value(serde_json::json!({
        "name": format!("Customer {ext}"),
        "phones": phones.iter().map(|p| serde_json::json!({"number": p, "type": "home"})).collect::<Vec<_>>()
    }))
    .unwrap();
    u.into_contact(Some(ext.into()), &[], None).unwrap()
}

#[tokio::test]
async fn the_explanation_calls_dialable_exactly_what_the_dialer_dials() {
    // Tuesday 2026-03-10 11:00 in New York (EDT): inside the contact's calling hours.
    let t: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 3, 10, 15, 0, 0).unwrap();
    for (db, s, _g) in both().await {
        let list = s
            .create::<ContactList>(&ContactListInput {
                name: "L".into(),
                description: String::new(),
                columns: vec![],
                default_country: None,
            })
            .await
            .unwrap();
        let contacts = [
            contact("fresh", &["+12125550101"]),
            contact("retry_later", &["+12125550102"]),
            contact("retry_past", &["+12125550103"]),
            contact("waiting", &["+12125550104", "+12125550105"]),
            contact("ended", &["+12125550106", "+12125550107"]),
            contact("deferred", &["+12125550108"]),
            contact("never", &["+12125550109", "+12125550110"]),
            contact("dnc", &["+12125550111"]),
            contact("filtered", &["+12125550112"]),
            contact("callback", &["+12125550113"]),
            contact("done", &["+12125550114"]),
            contact("recent", &["+12125550115"]),
        ];
        s.upsert_contacts(list.id, &contacts).await.unwrap();
        let input: CampaignInput = serde_json::from_value(serde_json::json!({
            "name": "C", "contact_list_ids": [list.id.0], "time_zone": "America/New_York",
            "daily_hours": {"start": "00:00", "end": "23:59"}, "weekdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "overrides": {"record_filters": [{"field": "name", "op": "ne", "value": "Customer filtered"}]}
        }))
        .unwrap();
        let camp = s.create_campaign(&input).await.unwrap();
        let records = s.list_records(list.id, &RecordFilterParams::default(), PageParams::default()).await.unwrap().items;
        let by_phone = |p: &str| records.iter().find(|r| r.phone.as_str() == p).unwrap().clone();
        let settings = s.effective_settings(&camp).await.unwrap().settings;
        let finish = |cand: &Candidate, result, callback, dialed_at, now| {
            after_call(&FinishedCall {
                campaign_id: camp.id,
                cand,
                settings: &settings,
                zone: chrono_tz::America::New_York,
                result,
                callback,
                agent: None,
                dialed_at,
                now,
            })
            .0
        };
        let cand = |p: &str| {
            let s = s.clone();
            let id = by_phone(p).id;
            async move { s.dialer_candidate(id).await.unwrap() }
        };
        let day_before = t - Duration::days(1);
        // Busy yesterday, its treatment's retry 4 minutes after t (the recall delay long over).
        let u = finish(&cand("+12125550102").await, CallResult::Busy, None, day_before, t - Duration::seconds(60));
        assert_eq!(u.retry_at, Some(t + Duration::seconds(240)));
        s.persist_dialer(&[PersistCommand::RecordUpdate(u)]).await.unwrap();
        let u = finish(&cand("+12125550103").await, CallResult::Busy, None, day_before, t - Duration::seconds(400));
        s.persist_dialer(&[PersistCommand::RecordUpdate(u)]).await.unwrap();
        let u = finish(&cand("+12125550106").await, CallResult::RightParty, None, day_before, day_before);
        s.persist_dialer(&[PersistCommand::RecordUpdate(u)]).await.unwrap();
        let defer = |p: &str, code, at| PersistCommand::RecordDeferred {
            campaign_id: camp.id,
            record_id: by_phone(p).id,
            reason: Blocked { code, message: String::new(), next_dialable_at: at },
        };
        s.persist_dialer(&[
            defer("+12125550108", ReasonCode::ContactOutsideHours, Some(t + Duration::hours(1))),
            defer("+12125550109", ReasonCode::ZoneUnknown, None),
        ])
        .await
        .unwrap();
        let internal = s.internal_dnc_list().await.unwrap();
        let entry =
            DncEntryInput { phone: by_phone("+12125550111").phone, expires_at: None, reason: "asked".into(), source: "customer".into() };
        s.put_dnc_entry(internal, &entry).await.unwrap();
        let cb = CallbackRequest { at: t + Duration::hours(2), personal: false };
        let u = finish(&cand("+12125550113").await, CallResult::AgentCallback, Some(cb), day_before, day_before);
        s.persist_dialer(&[PersistCommand::RecordUpdate(u)]).await.unwrap();
        let u = finish(&cand("+12125550114").await, CallResult::DoNotCall, None, day_before, day_before);
        s.persist_dialer(&[PersistCommand::RecordUpdate(u)]).await.unwrap();
        let u = finish(&cand("+12125550115").await, CallResult::Busy, None, t - Duration::seconds(60), t - Duration::seconds(60 + 300));
        s.persist_dialer(&[PersistCommand::RecordUpdate(u)]).await.unwrap();

        // The dialer: what the store offers at t, then the engine's eligibility.
        let none = HashSet::new();
        let offered = s
            .dialable_records(&DialableQuery {
                lists: &[list.id],
                sort_order: &settings.sort_order,
                filters: &settings.record_filters,
                now: t,
                limit: 1000,
                exclude: &none,
            })
            .await
            .unwrap();
        let cfg = explain::campaign_config(&camp, settings.clone());
        let mut dnc = InMemoryDnc::default();
        let phones: Vec<_> = offered.iter().map(|c| c.record.phone.clone()).collect();
        for (phone, list_id, internal, expires) in s.dnc_entries_for(&phones, &settings.dnc_list_ids, t).await.unwrap() {
            dnc.add(phone, if internal { None } else { Some(list_id) }, expires);
        }
        let ctx = EligibilityContext {
            campaign: &cfg,
            rules: campana_engine::CallingRules::builtin(),
            dnc: &dnc,
            in_call: &|_| false,
            agent_present: &|_| true,
            callback_grace_s: 0,
        };
        let dialer: BTreeSet<String> =
            offered.iter().filter(|c| check(&ctx, c, contact_zones(c).as_ref(), t).is_ok()).map(|c| c.record.phone.to_string()).collect();

        // The explanation, record by record as the API reads them, and the preview's count ("available now").
        let records = s.list_records(list.id, &RecordFilterParams::default(), PageParams::default()).await.unwrap().items;
        let mut explained = BTreeSet::new();
        let mut reasons = BTreeMap::new();
        for r in &records {
            match explain::why(&s, &camp, r.clone(), t).await.unwrap() {
                Ok(()) => {
                    explained.insert(r.phone.to_string());
                }
                Err(b) => {
                    reasons.insert(r.phone.to_string(), b.code);
                }
            }
        }
        assert_eq!(explained, dialer, "{db}: explained as dialable vs dialed; reasons {reasons:?}");
        let expected: BTreeSet<String> =
            ["+12125550101", "+12125550103", "+12125550104", "+12125550110"].into_iter().map(String::from).collect();
        assert_eq!(dialer, expected, "{db}");
        let preview = explain::preview(&s, &camp, t).await.unwrap();
        assert_eq!((preview.total, preview.dialable_now), (records.len(), dialer.len()), "{db}: {preview:?}");
        let want = [
            ("+12125550102", ReasonCode::RetryScheduled),
            ("+12125550105", ReasonCode::ChainWaiting),
            ("+12125550106", ReasonCode::RecordClosed),
            ("+12125550107", ReasonCode::ChainEnded),
            ("+12125550108", ReasonCode::Deferred),
            ("+12125550109", ReasonCode::Deferred),
            ("+12125550111", ReasonCode::Dnc),
            ("+12125550112", ReasonCode::FilteredOut),
            ("+12125550113", ReasonCode::CallbackNotDue),
            ("+12125550114", ReasonCode::NoCall),
            ("+12125550115", ReasonCode::RecallDelay),
        ];
        for (phone, code) in want {
            assert_eq!(reasons.get(phone), Some(&code), "{db}: {phone}: {reasons:?}");
        }
        // The pending retry's answer says when: the retry time.
        let r = by_phone("+12125550102");
        let Err(b) = explain::why(&s, &camp, r, t).await.unwrap() else { panic!("blocked") };
        assert_eq!(b.next_dialable_at, Some(t + Duration::seconds(240)), "{db}: {b:?}");
    }
}
