//! Manager tags on call attempts, on SQLite and PostgreSQL.

use campana_core::campaign::{Colour, ManagerTagInput};
use campana_core::record::*;
use campana_core::stored::*;
use campana_core::telephony::CallId;
use campana_core::*;
use campana_engine::PersistCommand;
use campana_store::testing::both;
use chrono::Utc;

#[tokio::test]
async fn a_tag_is_put_on_a_call_once_and_goes_with_the_tag() {
    for (db, s, _g) in both().await {
        let list = s
            .create::<ContactList>(&ContactListInput {
                name: "Tags".into(),
                description: String::new(),
                columns: vec![],
                default_country: None,
            })
            .await
            .unwrap();
        let u: ContactUpsert =
            serde_json::from_value(serde_json::json!({"name": "Ana", "phones": [{"number": "+12125550101", "type": "home"}]})).unwrap();
        s.upsert_contacts(list.id, &[u.into_contact(Some("a".into()), &[], None).unwrap()]).await.unwrap();
        let rec = s.list_records(list.id, &Default::default(), Default::default()).await.unwrap().items.remove(0);
        let camp = s
            .create_campaign(
                &serde_json::from_value(serde_json::json!({"name": "C", "contact_list_ids": [list.id.0], "time_zone": "America/New_York",
                    "daily_hours": {"start": "09:00", "end": "20:00"}, "weekdays": ["mon"]}))
                .unwrap(),
            )
            .await
            .unwrap();
        let call = CallId(77);
        s.persist_dialer(&[PersistCommand::AttemptStarted {
            call_id: call,
            campaign_id: camp.id,
            record_id: rec.id,
            chain_id: rec.chain_id,
            number: rec.phone.clone(),
            at: Utc::now(),
        }])
        .await
        .unwrap();
        assert_eq!(s.call_attempt_agent(77).await.unwrap(), Some((camp.id, None)), "{db}: no agent before the result");
        assert_eq!(s.call_attempt_agent(78).await.unwrap(), None, "{db}");
        let colour = Colour::parse("#6a1b9a").unwrap();
        let tag = s.create::<ManagerTag>(&ManagerTagInput { name: "Escalate".into(), colour, campaign_id: None }).await.unwrap();
        let agent = UserId(5);
        assert!(s.tag_attempt(77, tag.id, agent).await.unwrap(), "{db}");
        assert!(!s.tag_attempt(77, tag.id, agent).await.unwrap(), "{db}: the second time changes nothing");
        assert_eq!(s.attempt_tags(77).await.unwrap(), vec![tag.id], "{db}");
        let e = s.tag_attempt(78, tag.id, agent).await.unwrap_err();
        assert!(e.to_string().contains("call_id"), "{db}: {e}");
        s.delete::<ManagerTag>(tag.id.0).await.unwrap();
        assert!(s.attempt_tags(77).await.unwrap().is_empty(), "{db}: a deleted tag leaves its calls");
    }
}
