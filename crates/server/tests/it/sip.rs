//! End to end over real SIP on 127.0.0.1: a running campaign dials through sipp playing the
//! carrier, the answered customer is bridged to an agent's phone (sipp) registered with Campana's
//! registrar, RTP is relayed both ways, the agent's disposition is stored and the call's stereo
//! recording is listed on the record and downloadable by those allowed. sipp missing is a
//! failure: scripts/install-sip-deps.sh installs it (scripts/test runs it first).

use crate::common;

#[path = "../../../sip/tests/support/sipp.rs"]
mod sipp;

use campana_sip::SipTransport;
use common::*;
use reqwest::StatusCode;
use serde_json::json;
use sipp::{free_port, Sipp, SippOpts};

const PHONE_PASSWORD: &str = "phone secret 7";

/// The value of one Prometheus sample line, 0 when absent.
fn metric(text: &str, name: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

#[tokio::test]
async fn a_campaign_calls_through_a_sip_trunk_and_bridges_to_a_registered_phone() {
    for backend in BACKENDS {
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            "sqlite" => format!("sqlite://{}/campana.db", dir.path().display()),
            _ => campana_store::testing::postgres_store().await.unwrap().1,
        };
        // Set up with telephony off: an agent in a team, a disposition, a recorded campaign.
        let srv = Server::start_with(dir, url, &["serve"]).ready().await;
        let c = srv.client();
        let (_, team) = post_json(&c, srv.url("/api/v1/agent-groups"), json!({"name": "Team"})).await;
        let team = team["id"].as_i64().unwrap();
        let (s, ana) = post_json(
            &c,
            srv.url("/api/v1/users"),
            json!({"username": "ana", "role_id": 3, "campaigns_profile": {"scope": "all"}, "agent_group_ids": [team], "password": "long enough pw"}),
        )
        .await;
        assert_eq!(s, 201, "{ana}");
        let ana_id = ana["id"].as_i64().unwrap();
        let (s, sale) =
            post_json(&c, srv.url("/api/v1/dispositions"), json!({"name": "Sale", "colour": "#2e7d32", "is_success": true})).await;
        assert_eq!(s, 201, "{sale}");
        let (campaign_id, lid) =
            campaign(&srv, "Over SIP", 1, json!({"dialing_mode": "progressive", "agent_group_id": team, "recording": true})).await;
        let admin_token = srv.token.clone();
        let agent = client_with(&srv.token_for("ana", "long enough pw").await);
        let (dir, url) = srv.kill9();

        // The carrier answers, echoes RTP, and hangs up 3 s after the call is set up.
        let carrier = Sipp::start("customer_bridged.xml", SipTransport::Udp).await;
        let sip_port = free_port(true);
        let recordings = dir.path().join("recordings");
        let config = dir.path().join("sip.toml");
        std::fs::write(
            &config,
            format!(
                "proxy = \"{}\"\nbind = \"127.0.0.1:{sip_port}\"\ncaller_id = \"+15550001111\"\ncalls_per_second = 5\nmax_channels = 4\n\
                 recordings_dir = \"{}\"\n\n[registrar]\nrealm = \"campana.test\"\n\
                 agents = [{{ agent = {ana_id}, username = \"ana\", password = \"{PHONE_PASSWORD}\" }}]\n",
                carrier.addr,
                recordings.display()
            ),
        )
        .unwrap();
        let mut srv = Server::start_with(dir, url, &["serve", "--telephony", "sip", "--sip-config", config.to_str().unwrap()]);
        srv.token = admin_token;
        let c = srv.client();
        let (_, status) = get_json(&c, srv.url("/api/v1/dialer/status")).await;
        assert_eq!(status["telephony"], "sip", "{status}");
        // No prompts directory: the status says what that means for abandoned calls.
        let warnings = status["warnings"].to_string();
        assert!(warnings.contains("prompt safe_harbor: no prompts directory is configured; calls abandoned"), "{status}");

        // Ready before the phone is registered: refused, saying where to register.
        assert_eq!(post_json(&agent, srv.url("/api/v1/agent/login"), json!({})).await.0, 200);
        let (s, e) = post_json(&agent, srv.url("/api/v1/agent/ready"), json!({})).await;
        assert_eq!(s, StatusCode::CONFLICT, "{e}");
        assert!(e["detail"].as_str().unwrap().contains(&format!("register it with Campana at 127.0.0.1:{sip_port}")), "{e}");

        // The phone registers (digest), then waits on the same port for Campana's call.
        let campana_sip_addr = format!("127.0.0.1:{sip_port}").parse().unwrap();
        let register = Sipp::start_client_with("agent_register.xml", campana_sip_addr, &["-au", "ana", "-ap", PHONE_PASSWORD]).await;
        let phone_port = register.port;
        register.assert_passed().await;
        let phone = Sipp::spawn_with("agent_phone.xml", SippOpts { port: Some(phone_port), rtp_echo: false, ..SippOpts::default() }).await;
        let (s, e) = post_json(&agent, srv.url("/api/v1/agent/ready"), json!({})).await;
        assert_eq!(s, 200, "{backend}: {e}");

        // The customer answers and reaches the agent; the agent's screen shows the call.
        let screen = wait_for(&agent, srv.url("/api/v1/agent/state"), "the bridged call", |v| v["agent"]["state"] == "on_call").await;
        assert_eq!(screen["campaign"]["id"], campaign_id, "{screen}");
        let call_id = screen["agent"]["call_id"].as_u64().unwrap();
        let rid = screen["record"]["id"].as_i64().unwrap();
        let (_, status) = get_json(&c, srv.url("/api/v1/dialer/status")).await;
        let phone_contact = status["agents"][ana_id.to_string()]["phone"].as_str().unwrap_or_default().to_string();
        assert!(phone_contact.ends_with(&format!("@127.0.0.1:{phone_port}")), "{status}");

        // The customer hangs up after 3 s; Campana ends the phone's leg; the agent wraps up.
        wait_for(&agent, srv.url("/api/v1/agent/state"), "wrap-up", |v| v["agent"]["state"] == "wrap_up").await;
        let (s, e) = post_json(
            &agent,
            srv.url("/api/v1/agent/disposition"),
            json!({"call_id": call_id, "disposition_id": sale["id"], "notes": "signed up over SIP"}),
        )
        .await;
        assert_eq!(s, 200, "{e}");
        carrier.assert_passed().await;
        phone.assert_passed().await;

        // RTP flowed both ways through Campana: the phone's packets reached the customer and
        // the customer's echo came back (10 + 10 at least).
        let mut relayed = 0.0;
        for _ in 0..50 {
            let text = c.get(srv.url("/metrics")).send().await.unwrap().text().await.unwrap();
            relayed = metric(&text, "campana_sip_rtp_packets_relayed_total");
            if relayed >= 20.0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        assert!(relayed >= 20.0, "{backend}: {relayed} RTP packets relayed");

        // The disposition and the recording are on the record's history.
        let attempts = wait_for(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records/{rid}/attempts")), "the stored result", |a| {
            a[0]["result"] == "right_party" && a[0]["recording"].is_string()
        })
        .await;
        let a = &attempts[0];
        assert_eq!(a["disposition_id"], sale["id"], "{a}");
        assert_eq!(a["notes"], "signed up over SIP");
        assert!(a["connected_at"].is_string(), "{a}");
        let link = a["recording"].as_str().unwrap();
        let r = c.get(srv.url(link)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "audio/wav");
        let wav = r.bytes().await.unwrap();
        assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 2, "stereo");
        let data_len = u32::from_le_bytes([wav[40], wav[41], wav[42], wav[43]]) as u64;
        assert_eq!(data_len + 44, wav.len() as u64, "the WAV header was finished");
        // 8 kHz x 2 channels x 2 bytes = 32 bytes per ms; the customer talked about 3 s.
        let recorded_ms = data_len / 32;
        assert!((2500..=5000).contains(&recorded_ms), "{backend}: recorded {recorded_ms} ms of a 3 s call");

        // Only those who may view the campaign hear it: the agent may not; an unknown call is 404.
        assert_eq!(agent.get(srv.url(link)).send().await.unwrap().status(), StatusCode::FORBIDDEN);
        let other = format!("/api/v1/contact-lists/{lid}/records/{rid}/attempts/{}/recording", call_id + 1000);
        assert_eq!(c.get(srv.url(&other)).send().await.unwrap().status(), StatusCode::NOT_FOUND);

        // A campaign whose settings name a trunk the configuration lacks is called out.
        let (lost, _) = campaign(&srv, "Lost trunk", 1, json!({"sip_trunk": "nope", "dialing_mode": "agentless"})).await;
        let want = format!("campaign {lost}: its settings name the SIP trunk \"nope\"");
        wait_for(&c, srv.url("/api/v1/dialer/status"), "the trunk warning", |s| {
            s["warnings"].to_string().contains(&want.replace('"', "\\\""))
        })
        .await;
        let (s, e) = post_json(
            &c,
            srv.url("/api/v1/settings-profiles"),
            json!({"name": "Bad trunk", "settings": {"sip_trunk": "no spaces please"}}),
        )
        .await;
        assert_eq!((s, e["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("settings.sip_trunk")), "{e}");
    }
}
