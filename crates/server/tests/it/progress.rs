//! A supervisor's live views of a campaign on simulated telephony, on both backends: today's
//! progress chart series agrees with the day's counters, the campaign's agents say who takes its
//! calls and why the others do not, and the console's campaign page carries both.

use crate::common;

use common::*;
use serde_json::{json, Value};

fn row<'a>(agents: &'a Value, name: &str) -> &'a Value {
    agents["agents"].as_array().unwrap().iter().find(|a| a["name"] == name).unwrap_or_else(|| panic!("{name} not in {agents}"))
}

fn codes(a: &Value) -> Vec<&str> {
    a["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn progress_series_and_campaign_agents() {
    for backend in BACKENDS {
        // Simulated agents before any agent group exists: they join the groups as they appear
        // (at the dialer's next resync, at once when a campaign starts), spread over them.
        let srv = Server::start_args(backend, &["serve", "--telephony", "sim", "--sim-agents", "3"]).await;
        let (team, other) = (agent_group(&srv, "Team").await, agent_group(&srv, "Other floor").await);
        let (id, _) = campaign(&srv, "Renewals", 200, json!({"dialing_mode": "progressive", "agent_group_id": team})).await;
        let (elsewhere, _) = campaign(&srv, "Elsewhere", 1, json!({"agent_group_id": other})).await;
        let all = json!({"scope": "all"});
        user(&srv, "ana", 3, all.clone(), &[team]).await;
        user(&srv, "bob", 3, all.clone(), &[other]).await;
        user(&srv, "carl", 3, json!({"scope": "only", "campaign_ids": [elsewhere]}), &[team]).await;
        user(&srv, "sue", 2, all.clone(), &[team]).await;
        let c = srv.client();

        // Today's series adds up to today's counters (a dial may land between the two reads:
        // the series is read after the counters, so it has at least as many).
        let p = wait_for(&c, srv.url(&format!("/api/v1/campaigns/{id}/progress")), "calls today", |p| {
            p["today"]["dials"].as_i64().unwrap_or(0) >= 2
        })
        .await;
        assert_eq!(p["series_bucket_s"], 300, "{p}");
        assert_eq!(p["abandon_rate_max"], 0.03, "{p}");
        let series = p["series"].as_array().unwrap();
        assert!(!series.is_empty(), "{backend}: {p}");
        let sum = |k: &str| series.iter().map(|b| b[k].as_i64().unwrap()).sum::<i64>();
        assert!(sum("dials") >= p["today"]["dials"].as_i64().unwrap(), "{backend}: {p}");
        assert!(sum("connects") >= p["today"]["connects"].as_i64().unwrap(), "{backend}: {p}");
        let starts: Vec<i64> =
            series.iter().map(|b| chrono::DateTime::parse_from_rfc3339(b["start"].as_str().unwrap()).unwrap().timestamp()).collect();
        assert!(starts.windows(2).all(|w| w[0] < w[1] && (w[1] - w[0]) % 300 == 0), "{backend}: {starts:?}");

        // Who takes the campaign's calls, and why the others do not.
        // (The dialer's snapshot is refreshed about every second: wait for the one taken after
        // the simulated agents joined the groups.)
        let agents = wait_for(&c, srv.url(&format!("/api/v1/campaigns/{id}/agents")), "simulated agents in their groups", |a| {
            a["agents"].as_array().unwrap().iter().filter(|x| x["role"] == "simulated" && x["takes_calls"] == true).count() == 2
        })
        .await;
        assert_eq!(agents["agent_group"], format!("Team (#{team})"), "{agents}");
        assert_eq!(row(&agents, "ana")["takes_calls"], true, "{agents}");
        assert_eq!(row(&agents, "ana")["dialer_state"], Value::Null, "{agents}");
        assert_eq!(codes(row(&agents, "bob")), ["not_in_agent_group"], "{agents}");
        assert_eq!(codes(row(&agents, "carl")), ["outside_campaigns_profile"], "{agents}");
        assert_eq!(codes(row(&agents, "sue")), ["no_agent_privilege"], "{agents}");
        // The simulated agents are spread over the agent groups: two in Team, one in Other floor.
        let simulated: Vec<&Value> = agents["agents"].as_array().unwrap().iter().filter(|a| a["role"] == "simulated").collect();
        assert_eq!(simulated.len(), 3, "{agents}");
        assert!(simulated.iter().all(|a| a["dialer_state"].is_string()), "{agents}");
        assert_eq!(simulated.iter().filter(|a| a["takes_calls"] == true).count(), 2, "{agents}");
        assert!(simulated.iter().any(|a| codes(a) == ["not_in_agent_group"]), "{agents}");
        // Those who take calls come first.
        let takes: Vec<bool> = agents["agents"].as_array().unwrap().iter().map(|a| a["takes_calls"].as_bool().unwrap()).collect();
        assert!(takes.windows(2).all(|w| w[0] >= w[1]), "{agents}");
        // ana signs in to the dialer: her state shows.
        let ana = client_with(&srv.token_for("ana", "long enough pw").await);
        assert_eq!(post_json(&ana, srv.url("/api/v1/agent/login"), json!({})).await.0, 200);
        let agents = wait_for(&c, srv.url(&format!("/api/v1/campaigns/{id}/agents")), "ana in the dialer", |a| {
            a["agents"].as_array().unwrap().iter().any(|x| x["name"] == "ana" && x["dialer_state"] == "not_ready")
        })
        .await;
        assert_eq!(row(&agents, "ana")["takes_calls"], true);
        // An agent does not view campaigns (the privilege campaigns_view).
        let carl = client_with(&srv.token_for("carl", "long enough pw").await);
        assert_eq!(get_json(&carl, srv.url(&format!("/api/v1/campaigns/{id}/agents"))).await.0, 403);

        // The console's campaign page: live progress wired to the stream, the agents' table.
        let web = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let (s, _) = post_json(&web, srv.url("/api/v1/auth/login"), json!({"username": "admin", "password": ADMIN_PASSWORD})).await;
        assert_eq!(s, 200);
        let html = web.get(srv.url(&format!("/campaigns/{id}"))).send().await.unwrap().text().await.unwrap();
        assert!(html.contains(&format!("data-stream=\"/api/v1/campaigns/{id}/progress/events\"")), "{backend}");
        assert!(html.contains("id=\"pg-chart\"") && html.contains("id=\"pg-yet\""), "{backend}");
        let table = web.get(srv.url(&format!("/campaigns/{id}/agents"))).send().await.unwrap().text().await.unwrap();
        assert!(table.contains("id=\"agents-table\"") && table.contains("bob") && table.contains("not in the agent group Team"), "{table}");
    }
}
