//! The live dialer's persistence, on SQLite and PostgreSQL: which records are offered, in which
//! order, and what the engine's persistence commands write.

use campana_core::record::*;
use campana_core::settings::*;
use campana_core::stored::*;
use campana_core::telephony::CallId;
use campana_core::*;
use campana_engine::treatment::{after_call, FinishedCall};
use campana_engine::{Blocked, PersistCommand, ReasonCode};
use campana_store::testing::both;
use campana_store::*;
use chrono::{Duration, TimeZone as _, Utc};
use std::collections::HashSet;

fn contact(ext: &str, sort: &str, phones: &[&str]) -> Contact {
    let u: ContactUpsert = serde_json::from_value(serde_json::json!({
        "name": format!("Customer {ext}"),
        "sort_value": sort,
        "custom": {"balance": sort.parse::<f64>().unwrap()},
        "phones": phones.iter().map(|p| serde_json::json!({"number": p, "type": "home"})).collect::<Vec<_>>()
    }))
    .unwrap();
    let cols = vec![CustomColumn { name: "balance".into(), kind: ColumnKind::Number }];
    u.into_contact(Some(ext.into()), &cols, None).unwrap()
}

#[tokio::test]
async fn offers_first_open_number_of_each_chain_in_profile_order_and_persists_results() {
    for (db, s, _g) in both().await {
        let list = s
            .create::<ContactList>(&ContactListInput {
                name: "Dial".into(),
                description: String::new(),
                columns: vec![CustomColumn { name: "balance".into(), kind: ColumnKind::Number }],
                default_country: None,
            })
            .await
            .unwrap();
        s.upsert_contacts(
            list.id,
            &[
                contact("a", "10", &["+12125550101", "+12125550102"]),
                contact("b", "9", &["+12125550103"]),
                contact("c", "100", &["+12125550104"]),
            ],
        )
        .await
        .unwrap();
        let lists = [list.id];
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 15, 0, 0).unwrap();
        let none = HashSet::new();
        let phones = |c: &[campana_engine::Candidate]| c.iter().map(|c| c.record.phone.to_string()).collect::<Vec<_>>();

        // Id order; the second number of chain "a" waits for the first.
        let got = s
            .dialable_records(&DialableQuery { lists: &lists, sort_order: &[], filters: &[], now, limit: 10, exclude: &none })
            .await
            .unwrap();
        assert_eq!(phones(&got), ["+12125550101", "+12125550103", "+12125550104"], "{db}");

        // Numeric sort on a custom column, descending; alphabetic on sort_value ascending.
        let by_balance = [SortKey { field: "custom.balance".into(), kind: SortKind::Numeric, direction: SortDirection::Desc }];
        let got = s
            .dialable_records(&DialableQuery { lists: &lists, sort_order: &by_balance, filters: &[], now, limit: 10, exclude: &none })
            .await
            .unwrap();
        assert_eq!(phones(&got), ["+12125550104", "+12125550101", "+12125550103"], "{db}");
        let alpha = [SortKey { field: "sort_value".into(), kind: SortKind::Alphabetic, direction: SortDirection::Asc }];
        let got = s
            .dialable_records(&DialableQuery { lists: &lists, sort_order: &alpha, filters: &[], now, limit: 10, exclude: &none })
            .await
            .unwrap();
        assert_eq!(phones(&got), ["+12125550101", "+12125550104", "+12125550103"], "{db}: '10' < '100' < '9' as text");
        let numeric = [SortKey { field: "sort_value".into(), kind: SortKind::Numeric, direction: SortDirection::Asc }];
        let got = s
            .dialable_records(&DialableQuery { lists: &lists, sort_order: &numeric, filters: &[], now, limit: 10, exclude: &none })
            .await
            .unwrap();
        assert_eq!(phones(&got), ["+12125550103", "+12125550101", "+12125550104"], "{db}");
        // Unknown sort fields are refused with the field named.
        let bad = [SortKey { field: "shoe_size".into(), kind: SortKind::Numeric, direction: SortDirection::Asc }];
        let e = s
            .dialable_records(&DialableQuery { lists: &lists, sort_order: &bad, filters: &[], now, limit: 10, exclude: &none })
            .await
            .unwrap_err();
        assert!(e.to_string().contains("shoe_size"), "{db}: {e}");
        // Filters.
        let f = [RecordFilter { field: "name".into(), op: FilterOp::Contains, value: "Customer b".into() }];
        let got = s
            .dialable_records(&DialableQuery { lists: &lists, sort_order: &[], filters: &f, now, limit: 10, exclude: &none })
            .await
            .unwrap();
        assert_eq!(phones(&got), ["+12125550103"], "{db}");

        // Excluded (already in the engine) records are skipped; the limit holds.
        let first = got[0].record.id;
        let ex: HashSet<RecordId> = [first].into();
        let got =
            s.dialable_records(&DialableQuery { lists: &lists, sort_order: &[], filters: &[], now, limit: 1, exclude: &ex }).await.unwrap();
        assert_eq!(phones(&got), ["+12125550101"], "{db}");
        let rec_a1 = got[0].clone();

        // A deferral hides the record until its moment; "never" until cleared.
        let later = now + Duration::hours(2);
        let defer = |id: RecordId, at: Option<chrono::DateTime<Utc>>| PersistCommand::RecordDeferred {
            campaign_id: CampaignId(1),
            record_id: id,
            reason: Blocked { code: ReasonCode::ContactOutsideHours, message: String::new(), next_dialable_at: at },
        };
        s.persist_dialer(&[defer(first, Some(later)), defer(rec_a1.record.id, None)]).await.unwrap();
        let got = s
            .dialable_records(&DialableQuery { lists: &lists, sort_order: &[], filters: &[], now, limit: 10, exclude: &none })
            .await
            .unwrap();
        assert_eq!(phones(&got), ["+12125550102", "+12125550104"], "{db}: a never-dialable first number does not block its chain");
        let got = s
            .dialable_records(&DialableQuery { lists: &lists, sort_order: &[], filters: &[], now: later, limit: 10, exclude: &none })
            .await
            .unwrap();
        assert_eq!(phones(&got), ["+12125550102", "+12125550103", "+12125550104"], "{db}");
        assert_eq!(s.clear_deferrals(&lists).await.unwrap(), 2, "{db}");

        // A call: started, then result + treatment (busy: retry in 5 min).
        let call = CallId(41);
        let settings = Settings::default();
        s.persist_dialer(&[PersistCommand::AttemptStarted {
            call_id: call,
            campaign_id: CampaignId(0),
            record_id: rec_a1.record.id,
            chain_id: rec_a1.record.chain_id,
            number: rec_a1.record.phone.clone(),
            at: now,
        }])
        .await
        .unwrap_err(); // campaign 0 does not exist: the foreign key holds
        let camp = s
            .create_campaign(
                &serde_json::from_value(serde_json::json!({"name": "C", "contact_list_ids": [list.id.0], "time_zone": "America/New_York", "daily_hours": {"start": "09:00", "end": "20:00"}, "weekdays": ["mon"]}))
                    .unwrap(),
            )
            .await
            .unwrap();
        let started = PersistCommand::AttemptStarted {
            call_id: call,
            campaign_id: camp.id,
            record_id: rec_a1.record.id,
            chain_id: rec_a1.record.chain_id,
            number: rec_a1.record.phone.clone(),
            at: now,
        };
        s.persist_dialer(&[started]).await.unwrap();
        assert_eq!(s.max_call_id().await.unwrap(), 41);
        let open = s.open_attempts().await.unwrap();
        assert_eq!(open.len(), 1, "{db}");
        assert_eq!(open[0].record_id, rec_a1.record.id);
        assert!(!open[0].abandoned, "{db}: not abandoned: closed as a system error");
        let counts = s.attempt_counts(camp.id, now - Duration::hours(1)).await.unwrap();
        assert_eq!((counts.dials, counts.in_progress), (1, 1), "{db}");

        // The server died: the open call is closed as a system error and its treatment applied.
        let cand = s.dialer_candidate(rec_a1.record.id).await.unwrap();
        let (u, _) = after_call(&FinishedCall {
            campaign_id: camp.id,
            cand: &cand,
            settings: &settings,
            zone: chrono_tz::America::New_York,
            result: CallResult::SystemError,
            callback: None,
            agent: None,
            dialed_at: open[0].started_at,
            now: later,
        });
        s.close_attempt(open[0].call_id, CallResult::SystemError, later, &u).await.unwrap();
        assert!(s.open_attempts().await.unwrap().is_empty(), "{db}");
        let after = s.dialer_candidate(rec_a1.record.id).await.unwrap();
        assert_eq!(after.record.attempts_total, 1, "{db}");
        assert_eq!(after.record.last_result, Some(CallResult::SystemError));
        assert_eq!(after.record.last_call_at, Some(now), "{db}: the recall delay counts from the dial");
        assert_eq!(after.result_streak, 1);
        assert_eq!(after.chain_attempts, 1);
        let attempts = s.record_attempts(rec_a1.record.id, 10).await.unwrap();
        assert_eq!(attempts[0].result, Some(CallResult::SystemError), "{db}");

        // A live answer that was abandoned, then the abandon history per hour.
        let call2 = CallId(42);
        let c2 = s.dialer_candidate(first).await.unwrap();
        s.persist_dialer(&[
            PersistCommand::AttemptStarted {
                call_id: call2,
                campaign_id: camp.id,
                record_id: first,
                chain_id: c2.record.chain_id,
                number: c2.record.phone.clone(),
                at: now,
            },
            PersistCommand::AbandonRecorded { call_id: call2, campaign_id: camp.id, at: now },
            PersistCommand::CallResult {
                call_id: call2,
                campaign_id: camp.id,
                record_id: first,
                result: CallResult::Abandoned,
                dialed_at: now,
                answered_at: Some(now),
                connected_at: None,
                ended_at: now + Duration::seconds(3),
                agent: None,
                live_answer: true,
            },
            PersistCommand::DncAdd { number: c2.record.phone.clone(), reason: "test".into() },
            PersistCommand::DncAdd { number: c2.record.phone.clone(), reason: "twice is fine".into() },
        ])
        .await
        .unwrap();
        // An answering machine two minutes later, hung up by the dialer.
        let call3 = CallId(43);
        let at3 = now + Duration::seconds(150);
        s.persist_dialer(&[
            PersistCommand::AttemptStarted {
                call_id: call3,
                campaign_id: camp.id,
                record_id: first,
                chain_id: c2.record.chain_id,
                number: c2.record.phone.clone(),
                at: at3,
            },
            PersistCommand::CallResult {
                call_id: call3,
                campaign_id: camp.id,
                record_id: first,
                result: CallResult::AnsweringMachine,
                dialed_at: at3,
                answered_at: Some(at3),
                connected_at: None,
                ended_at: at3 + Duration::seconds(4),
                agent: None,
                live_answer: false,
            },
        ])
        .await
        .unwrap();
        let h = s.abandon_history(now - Duration::days(30)).await.unwrap();
        assert_eq!(h.len(), 2, "{db}: {h:?}");
        assert_eq!((h[0].live_answers, h[0].abandons, h[0].machine_verdicts, h[0].campaign_id), (1, 1, 0, camp.id), "{db}");
        assert_eq!(h[0].minute_start, now, "{db}: bucketed by minute, the engine ledger's width");
        assert_eq!((h[1].live_answers, h[1].abandons, h[1].machine_verdicts), (0, 0, 1), "{db}");
        assert_eq!(h[1].minute_start, now + Duration::minutes(2), "{db}");
        let dnc = s.dnc_entries_all_lists(std::slice::from_ref(&c2.record.phone), now).await.unwrap();
        assert_eq!(dnc.len(), 1, "{db}");
        assert!(dnc[0].2, "{db}: on the internal list");
        let counts = s.attempt_counts(camp.id, now - Duration::hours(1)).await.unwrap();
        assert_eq!((counts.dials, counts.live_answers, counts.abandons, counts.in_progress), (3, 1, 1, 0), "{db}");

        // Busy beyond its retries moves to the next number of the chain.
        let mut cand = s.dialer_candidate(rec_a1.record.id).await.unwrap();
        cand.record.last_result = Some(CallResult::Busy);
        cand.result_streak = 3;
        let (u, _) = after_call(&FinishedCall {
            campaign_id: camp.id,
            cand: &cand,
            settings: &settings,
            zone: chrono_tz::America::New_York,
            result: CallResult::Busy,
            callback: None,
            agent: None,
            dialed_at: later,
            now: later,
        });
        assert_eq!(u.chain, campana_engine::ChainStep::NextNumber);
        s.persist_dialer(&[PersistCommand::RecordUpdate(u)]).await.unwrap();
        let all = s.list_records(list.id, &RecordFilterParams::default(), PageParams::default()).await.unwrap();
        let second = all.items.iter().find(|r| r.phone.as_str() == "+12125550102").unwrap();
        assert_eq!(second.record_status, RecordStatus::ChainReady, "{db}");
        let got = s
            .dialable_records(&DialableQuery { lists: &lists, sort_order: &[], filters: &[], now: later, limit: 10, exclude: &none })
            .await
            .unwrap();
        assert!(phones(&got).contains(&"+12125550102".to_string()), "{db}: {:?}", phones(&got));
        assert!(!phones(&got).contains(&"+12125550101".to_string()), "{db}: completed");
    }
}

/// What ends a chain (docs/dialing.md): after a success on one number the customer's other
/// numbers are never offered again; a wrong party moves to the next number.
#[tokio::test]
async fn a_chain_ended_by_a_success_is_never_offered_again_and_a_wrong_party_moves_on() {
    for (db, s, _g) in both().await {
        let list = s
            .create::<ContactList>(&ContactListInput {
                name: "Chains".into(),
                description: String::new(),
                columns: vec![CustomColumn { name: "balance".into(), kind: ColumnKind::Number }],
                default_country: None,
            })
            .await
            .unwrap();
        s.upsert_contacts(
            list.id,
            &[contact("a", "1", &["+12125550101", "+12125550102", "+12125550103"]), contact("b", "2", &["+12125550104", "+12125550105"])],
        )
        .await
        .unwrap();
        let camp = s
            .create_campaign(
                &serde_json::from_value(serde_json::json!({"name": "C", "contact_list_ids": [list.id.0], "time_zone": "America/New_York", "daily_hours": {"start": "09:00", "end": "20:00"}, "weekdays": ["mon"]}))
                    .unwrap(),
            )
            .await
            .unwrap();
        let lists = [list.id];
        let now = Utc.with_ymd_and_hms(2026, 3, 10, 15, 0, 0).unwrap();
        let none = HashSet::new();
        let (lists_ref, none_ref) = (&lists, &none);
        let offered = |at| {
            let s = s.clone();
            async move {
                let q = DialableQuery { lists: lists_ref, sort_order: &[], filters: &[], now: at, limit: 100, exclude: none_ref };
                s.dialable_records(&q).await.unwrap().iter().map(|c| c.record.phone.to_string()).collect::<Vec<_>>()
            }
        };
        assert_eq!(offered(now).await, ["+12125550101", "+12125550104"], "{db}");
        let settings = Settings::default();
        let finish = |cand: &campana_engine::Candidate, result| {
            after_call(&FinishedCall {
                campaign_id: camp.id,
                cand,
                settings: &settings,
                zone: chrono_tz::America::New_York,
                result,
                callback: None,
                agent: None,
                dialed_at: now,
                now,
            })
            .0
        };
        let first = |phone: &str| {
            let s = s.clone();
            let phone = phone.to_string();
            async move {
                let all = s.list_records(list.id, &RecordFilterParams::default(), PageParams::default()).await.unwrap();
                s.dialer_candidate(all.items.iter().find(|r| r.phone.as_str() == phone).unwrap().id).await.unwrap()
            }
        };
        // Customer a: wrong party on the first number moves on to the second.
        let a1 = first("+12125550101").await;
        s.persist_dialer(&[PersistCommand::RecordUpdate(finish(&a1, CallResult::WrongParty))]).await.unwrap();
        assert_eq!(offered(now).await, ["+12125550102", "+12125550104"], "{db}");
        // A right party on the second ends the chain: the third is never offered.
        let a2 = first("+12125550102").await;
        let u = finish(&a2, CallResult::RightParty);
        assert_eq!(u.chain, campana_engine::ChainStep::End);
        s.persist_dialer(&[PersistCommand::RecordUpdate(u)]).await.unwrap();
        for later in [now, now + Duration::days(3), now + Duration::days(400)] {
            assert_eq!(offered(later).await, ["+12125550104"], "{db}: at {later}");
        }
        // The progress view does not count the third number as still to call (it never will be).
        let p = s.record_progress(&lists, now).await.unwrap();
        assert_eq!((p.total, p.yet_to_call, p.chain_ended, p.successful, p.failed), (5, 2, 1, 1, 1), "{db}: {p:?}");
        let a3 = first("+12125550103").await;
        assert_eq!(a3.hold.chain_ended_by, Some((a2.record.id, Some(CallResult::RightParty))), "{db}");
        // Even when the earlier numbers are gone from the chain's way (the third is reopened by
        // hand, the success record is edited): the chain stays ended.
        s.clear_deferrals(&lists).await.unwrap();
        assert_eq!(offered(now).await, ["+12125550104"], "{db}");
        // Customer b: an answered agentless call (no treatment: final) ends it too.
        let b1 = first("+12125550104").await;
        s.persist_dialer(&[PersistCommand::RecordUpdate(finish(&b1, CallResult::Answered))]).await.unwrap();
        assert!(offered(now).await.is_empty(), "{db}");
        assert!(first("+12125550105").await.hold.chain_ended_by.is_some(), "{db}");
        let p = s.record_progress(&lists, now).await.unwrap();
        assert_eq!((p.yet_to_call, p.chain_ended, p.rescheduled), (0, 2, 0), "{db}: {p:?}");
    }
}
