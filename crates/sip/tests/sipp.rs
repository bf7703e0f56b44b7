//! campana-sip against a real SIP peer: sipp (Debian package sip-tester) plays the carrier on
//! 127.0.0.1 with the scenarios in tests/scenarios/. sipp missing is a failure, not a skip:
//! scripts/install-sip-deps.sh installs it (scripts/test runs that first).

use campana_core::ids::UserId;
use campana_core::ids::{CampaignId, RecordId};
use campana_core::phone::PhoneNumber;
use campana_core::record::CallResult;
use campana_core::telephony::{AnsweredBy, CallId, TelephonyCommand, TelephonyEvent};
use campana_sip::{AgentCredential, DigestCredentials, RegistrarConfig, SipTelephony, SipTransport, TrunkConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;

#[path = "support/sipp.rs"]
mod support;
use support::*;

/// Longest a test waits for one event.
const EVENT_TIMEOUT_S: u64 = 20;

fn config(proxy: SocketAddr) -> TrunkConfig {
    let mut c = TrunkConfig::new(proxy, "+15550001111");
    c.bind = "127.0.0.1:0".parse().expect("bind addr");
    c.calls_per_second = 50;
    c
}

fn dial(call: u64, ring_timeout_s: u32) -> TelephonyCommand {
    TelephonyCommand::Dial {
        call_id: CallId(call),
        campaign_id: CampaignId(1),
        record_id: RecordId(call as i64),
        to: PhoneNumber::parse("+14155550123", None).expect("number"),
        caller_id: None,
        trunk: None,
        ring_timeout_s,
        analysis: campana_core::telephony::DialAnalysis::default(),
        record_audio: false,
    }
}

async fn next_event(events: &mut mpsc::Receiver<TelephonyEvent>, sipp: &Sipp) -> TelephonyEvent {
    match tokio::time::timeout(Duration::from_secs(EVENT_TIMEOUT_S), events.recv()).await {
        Ok(Some(e)) => e,
        other => panic!("no telephony event ({other:?}); sipp logs:\n{}", sipp.logs()),
    }
}

/// Dials once and returns the events up to and including `Ended`, plus the telephony.
async fn run_until_ended(sipp: &Sipp, config: TrunkConfig, ring_timeout_s: u32) -> (Vec<TelephonyEvent>, SipTelephony) {
    let (tel, mut events) = SipTelephony::start(config).await.expect("telephony starts");
    tel.send(dial(1, ring_timeout_s)).await.expect("dial");
    let mut seen = Vec::new();
    loop {
        let e = next_event(&mut events, sipp).await;
        let ended = matches!(e, TelephonyEvent::Ended { .. });
        seen.push(e);
        if ended {
            return (seen, tel);
        }
    }
}

fn ended_with(events: &[TelephonyEvent]) -> CallResult {
    match events.last() {
        Some(TelephonyEvent::Ended { result, .. }) => *result,
        other => panic!("last event is not Ended: {other:?}"),
    }
}

fn rang(events: &[TelephonyEvent]) -> bool {
    events.iter().any(|e| matches!(e, TelephonyEvent::Ringing { .. }))
}

fn answered(events: &[TelephonyEvent]) -> bool {
    events.iter().any(|e| matches!(e, TelephonyEvent::Answered { .. }))
}

async fn final_response_case(scenario: &str, want: CallResult) {
    let sipp = Sipp::start(scenario, SipTransport::Udp).await;
    let (events, tel) = run_until_ended(&sipp, config(sipp.addr), 20).await;
    assert!(rang(&events), "{events:?}");
    assert!(!answered(&events), "{events:?}");
    assert_eq!(ended_with(&events), want, "{events:?}");
    sipp.assert_passed().await;
    assert_eq!(tel.stats().active_calls, 0);
}

#[tokio::test]
async fn a_profiles_named_trunk_carries_its_calls_and_an_unknown_one_is_a_dial_error() {
    // The default trunk answers 503; the named trunk "b" answers 486 busy.
    let default_carrier = Sipp::start("unavailable.xml", SipTransport::Udp).await;
    let b_carrier = Sipp::start("busy.xml", SipTransport::Udp).await;
    let b_addr = b_carrier.addr;
    let mut c = config(default_carrier.addr);
    let named: campana_sip::NamedTrunk = toml_like_trunk(b_carrier.addr);
    c.trunks.insert("b".into(), named);
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    let mut to_b = dial(1, 20);
    if let TelephonyCommand::Dial { trunk, .. } = &mut to_b {
        *trunk = Some("b".into());
    }
    tel.send(to_b).await.expect("dial");
    let mut seen = Vec::new();
    while !matches!(seen.last(), Some(TelephonyEvent::Ended { .. })) {
        seen.push(next_event(&mut events, &b_carrier).await);
    }
    assert_eq!(ended_with(&seen), CallResult::Busy, "{seen:?}");
    b_carrier.assert_passed().await;
    // A trunk the configuration does not have: the call ends at once, nothing is sent.
    let mut unknown = dial(2, 20);
    if let TelephonyCommand::Dial { trunk, .. } = &mut unknown {
        *trunk = Some("nope".into());
    }
    tel.send(unknown).await.expect("dial");
    assert_eq!(
        next_event(&mut events, &default_carrier).await,
        TelephonyEvent::Ended { call_id: CallId(2), result: CallResult::DialError }
    );
    assert_eq!(tel.stats().invites_sent, 1);
    // Bad trunk names and settings are refused at start, naming the trunk.
    let mut bad = config(default_carrier.addr);
    bad.trunks.insert("b".into(), campana_sip::NamedTrunk { calls_per_second: 0, ..toml_like_trunk(b_addr) });
    let err = SipTelephony::start(bad).await.err().expect("refused").to_string();
    assert!(err.contains("trunks.b: calls_per_second must be at least 1"), "{err}");
}

/// A named trunk as a `[trunks.NAME]` table with only `proxy` set would deserialize.
fn toml_like_trunk(proxy: SocketAddr) -> campana_sip::NamedTrunk {
    serde_json::from_value(serde_json::json!({ "proxy": proxy.to_string() })).expect("named trunk")
}

#[tokio::test]
async fn busy_486_is_busy() {
    final_response_case("busy.xml", CallResult::Busy).await;
}

#[tokio::test]
async fn not_found_404_is_sit_invalid() {
    final_response_case("invalid_number.xml", CallResult::SitInvalid).await;
}

#[tokio::test]
async fn unavailable_503_is_network_failure() {
    final_response_case("unavailable.xml", CallResult::NetworkFailure).await;
}

#[tokio::test]
async fn a_session_refresh_re_invite_is_answered_and_the_call_goes_on() {
    // The carrier re-INVITEs 500 ms after the answer (a session timer's refresh), expects 200
    // with SDP naming the codec in use, ACKs, and hangs up 500 ms later: the call ends normally.
    let sipp = Sipp::start("answer_reinvite.xml", SipTransport::Udp).await;
    let (events, _tel) = run_until_ended(&sipp, config(sipp.addr), 20).await;
    assert!(answered(&events), "{events:?}");
    assert_eq!(ended_with(&events), CallResult::Answered, "{events:?}");
    sipp.assert_passed().await;
}

#[tokio::test]
async fn a_trunk_that_never_responds_is_network_failure() {
    // A socket that reads nothing: the INVITE is retransmitted, then Timer B (64 x T1; T1 is
    // 50 ms here, so 3.2 s) ends it. rsipstack reports that as a 408 it made itself, which
    // must not read as the called party's `no_answer`.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut c = config(silent.local_addr().expect("addr"));
    c.sip_t1_ms = 50;
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    tel.send(dial(1, 30)).await.expect("dial");
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match events.recv().await {
                Some(TelephonyEvent::Ended { result, .. }) => return Some(result),
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await
    .expect("the call ends within 15 s");
    assert_eq!(ended, Some(CallResult::NetworkFailure));
}

#[tokio::test]
async fn a_trunk_silent_until_the_ring_timeout_is_network_failure_not_no_answer() {
    // The ring timeout (1 s) comes before Timer B (64 x 50 ms): with not even a 100 Trying
    // from the trunk, the result is the network's, not the customer's `no_answer` (as it was).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut c = config(silent.local_addr().expect("addr"));
    c.sip_t1_ms = 50;
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    tel.send(dial(1, 1)).await.expect("dial");
    let ended = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match events.recv().await {
                Some(TelephonyEvent::Ended { result, .. }) => return Some(result),
                Some(_) => continue,
                None => return None,
            }
        }
    })
    .await
    .expect("the call ends within 15 s");
    assert_eq!(ended, Some(CallResult::NetworkFailure));
}

#[tokio::test]
async fn a_t1_out_of_range_is_refused_naming_the_field() {
    let mut c = config("127.0.0.1:9".parse().expect("addr"));
    c.sip_t1_ms = 5;
    let e = SipTelephony::start(c).await.err().expect("refused");
    assert!(e.to_string().contains("sip_t1_ms must be between 10 and 10000, not 5"), "{e}");
}

#[tokio::test]
async fn ring_timeout_sends_cancel_and_is_no_answer() {
    let sipp = Sipp::start("no_answer.xml", SipTransport::Udp).await;
    let started = std::time::Instant::now();
    let (events, _tel) = run_until_ended(&sipp, config(sipp.addr), 2).await;
    assert!(rang(&events), "{events:?}");
    assert_eq!(ended_with(&events), CallResult::NoAnswer, "{events:?}");
    assert!(started.elapsed() >= Duration::from_secs(2), "ended before the ring timeout");
    sipp.assert_passed().await;
}

#[tokio::test]
async fn hang_up_before_answer_is_cancelled() {
    let sipp = Sipp::start("no_answer.xml", SipTransport::Udp).await;
    let (tel, mut events) = SipTelephony::start(config(sipp.addr)).await.expect("telephony starts");
    tel.send(dial(7, 30)).await.expect("dial");
    assert!(matches!(next_event(&mut events, &sipp).await, TelephonyEvent::Ringing { .. }));
    tel.send(TelephonyCommand::HangUp { call_id: CallId(7) }).await.expect("hang up");
    let e = next_event(&mut events, &sipp).await;
    assert_eq!(e, TelephonyEvent::Ended { call_id: CallId(7), result: CallResult::Cancelled });
    sipp.assert_passed().await;
}

async fn answered_then_local_bye(transport: SipTransport) {
    let sipp = Sipp::start("answer_local_bye.xml", transport).await;
    let mut c = config(sipp.addr);
    c.transport = transport;
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    tel.send(dial(3, 20)).await.expect("dial");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ringing { call_id: CallId(3) });
    assert!(matches!(next_event(&mut events, &sipp).await, TelephonyEvent::Answered { call_id: CallId(3), .. }));
    // Let RTP flow: Campana sends silence, sipp echoes it back.
    tokio::time::sleep(Duration::from_millis(600)).await;
    tel.send(TelephonyCommand::HangUp { call_id: CallId(3) }).await.expect("hang up");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ended { call_id: CallId(3), result: CallResult::Answered });
    let stats = tel.stats();
    assert!(stats.rtp_packets_sent >= 10, "{stats:?}");
    assert!(stats.rtp_packets_received >= 5, "RTP echoed by sipp was not received: {stats:?}");
    sipp.assert_passed().await;
}

#[tokio::test]
async fn answered_with_rtp_then_campana_hangs_up_udp() {
    answered_then_local_bye(SipTransport::Udp).await;
}

#[tokio::test]
async fn answered_then_carrier_hangs_up_after_early_media() {
    let sipp = Sipp::start("answer_remote_bye.xml", SipTransport::Udp).await;
    let (events, tel) = run_until_ended(&sipp, config(sipp.addr), 20).await;
    assert!(
        matches!(events.as_slice(), [TelephonyEvent::Ringing { .. }, TelephonyEvent::Answered { .. }, TelephonyEvent::Ended { .. }]),
        "{events:?}"
    );
    assert_eq!(ended_with(&events), CallResult::Answered);
    assert!(tel.stats().rtp_packets_received > 0, "{:?}", tel.stats());
    sipp.assert_passed().await;
}

async fn digest_case(scenario: &str) {
    let sipp = Sipp::start(scenario, SipTransport::Udp).await;
    let mut c = config(sipp.addr);
    c.credentials = Some(DigestCredentials { username: "trunkuser".into(), password: "trunksecret".into(), realm: None });
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    tel.send(dial(5, 20)).await.expect("dial");
    let e = next_event(&mut events, &sipp).await;
    assert!(matches!(e, TelephonyEvent::Answered { call_id: CallId(5), .. }), "{e:?}; sipp logs:\n{}", sipp.logs());
    tel.send(TelephonyCommand::HangUp { call_id: CallId(5) }).await.expect("hang up");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ended { call_id: CallId(5), result: CallResult::Answered });
    sipp.assert_passed().await;
}

#[tokio::test]
async fn digest_407_challenge_is_answered() {
    digest_case("digest_407.xml").await;
}

#[tokio::test]
async fn digest_401_challenge_is_answered() {
    digest_case("digest_401.xml").await;
}

#[tokio::test]
async fn wrong_password_is_dial_error() {
    let sipp = Sipp::start("digest_401.xml", SipTransport::Udp).await;
    let mut c = config(sipp.addr);
    c.credentials = Some(DigestCredentials { username: "trunkuser".into(), password: "wrong".into(), realm: None });
    let (events, _tel) = run_until_ended(&sipp, c, 20).await;
    assert_eq!(ended_with(&events), CallResult::DialError, "{events:?}");
    sipp.assert_passed().await;
}

#[tokio::test]
async fn answered_with_rtp_then_campana_hangs_up_tcp() {
    answered_then_local_bye(SipTransport::Tcp).await;
}

#[tokio::test]
async fn outside_invite_and_register_are_refused() {
    // Campana first, then sipp as the outsider sending to it.
    let (tel, _events) = SipTelephony::start(config("127.0.0.1:9".parse().expect("addr"))).await.expect("telephony starts");
    let target = tel.local_sip_addr();
    let sipp = Sipp::start_client("outside_invite_refused.xml", target).await;
    sipp.assert_passed().await;
    assert_eq!(tel.stats().refused_requests, 2, "{:?}", tel.stats());
    assert_eq!(tel.stats().invites_sent, 0);
}

#[tokio::test]
async fn in_dialog_requests_are_answered_at_once_and_never_block_the_bye() {
    // OPTIONS (200 with Allow), INFO, NOTIFY (200), REFER (405 with Allow), then a MESSAGE and
    // at once a BYE: each answered within 2 s, and the BYE ends the call. Before, OPTIONS got
    // 501 after 32 s and a MESSAGE left the dialog unconfirmed for as long, losing the BYE.
    let sipp = Sipp::start("in_dialog_requests_then_bye.xml", SipTransport::Udp).await;
    let started = std::time::Instant::now();
    let (events, _tel) = run_until_ended(&sipp, config(sipp.addr), 20).await;
    assert!(answered(&events), "{events:?}");
    assert_eq!(ended_with(&events), CallResult::Answered, "{events:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "the call ended only after {:?}", started.elapsed());
    sipp.assert_passed().await;
}

#[tokio::test]
async fn outside_requests_get_505_405_with_allow_200_and_513_and_no_version_is_told() {
    let (tel, _events) = SipTelephony::start(with_registrar(config("127.0.0.1:9".parse().expect("addr")))).await.expect("telephony starts");
    let mut sipp = Sipp::start_client("outside_requests.xml", tel.local_sip_addr()).await;
    sipp.wait_passed().await;
    let messages = sipp.messages();
    assert!(messages.lines().any(|l| l.trim() == "User-Agent: Campana"), "no plain User-Agent in:\n{messages}");
    assert!(!messages.contains("Campana/"), "a version is told:\n{messages}");
}

#[tokio::test]
async fn over_max_channels_is_dial_error() {
    let sipp = Sipp::start("no_answer.xml", SipTransport::Udp).await;
    let mut c = config(sipp.addr);
    c.max_channels = 1;
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    tel.send(dial(1, 30)).await.expect("dial");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ringing { call_id: CallId(1) });
    tel.send(dial(2, 30)).await.expect("dial");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ended { call_id: CallId(2), result: CallResult::DialError });
    tel.send(TelephonyCommand::HangUp { call_id: CallId(1) }).await.expect("hang up");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ended { call_id: CallId(1), result: CallResult::Cancelled });
    sipp.assert_passed().await;
}

#[tokio::test]
async fn calls_per_second_spaces_invites() {
    // Three calls at 2 calls/s: the third INVITE leaves no earlier than 1 s after the first.
    // sipp answers each with 486 so the calls end quickly.
    let sipp = Sipp::start_n("busy.xml", SipTransport::Udp, 3).await;
    let mut c = config(sipp.addr);
    c.calls_per_second = 2;
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    let started = std::time::Instant::now();
    for i in 1..=3 {
        tel.send(dial(i, 20)).await.expect("dial");
    }
    let mut ended = 0;
    while ended < 3 {
        if let TelephonyEvent::Ended { result, .. } = next_event(&mut events, &sipp).await {
            assert_eq!(result, CallResult::Busy);
            ended += 1;
        }
    }
    assert!(started.elapsed() >= Duration::from_millis(1000), "{:?}", started.elapsed());
    sipp.assert_passed().await;
}

fn with_registrar(mut c: TrunkConfig) -> TrunkConfig {
    c.registrar = Some(RegistrarConfig::new(
        "campana.test",
        vec![AgentCredential { agent: UserId(7), username: "agent7".into(), password: "pw7".into() }],
    ));
    c
}

#[tokio::test]
async fn agent_phone_registers_with_digest() {
    let (tel, _events) = SipTelephony::start(with_registrar(config("127.0.0.1:9".parse().expect("addr")))).await.expect("telephony starts");
    assert_eq!(tel.agent_contact(UserId(7)), None);
    let sipp = Sipp::start_client_with("agent_register.xml", tel.local_sip_addr(), &["-au", "agent7", "-ap", "pw7"]).await;
    let port = sipp.port;
    sipp.assert_passed().await;
    assert_eq!(tel.agent_contact(UserId(7)), Some(format!("sip:agent7@127.0.0.1:{port}")));
}

#[tokio::test]
async fn agent_phone_with_wrong_password_is_refused() {
    let (tel, _events) = SipTelephony::start(with_registrar(config("127.0.0.1:9".parse().expect("addr")))).await.expect("telephony starts");
    let sipp = Sipp::start_client_with("agent_register_wrong_password.xml", tel.local_sip_addr(), &["-au", "agent7", "-ap", "guess"]).await;
    sipp.assert_passed().await;
    assert_eq!(tel.agent_contact(UserId(7)), None);
    assert_eq!(tel.stats().refused_requests, 1);
}

#[tokio::test]
async fn answered_call_is_bridged_to_a_registered_agent_phone() {
    bridged_call(false, false).await;
}

#[tokio::test]
async fn a_bridged_calls_rtp_is_forwarded_in_the_kernel() {
    // `kernel_relay`: the same call, its RTP forwarded by Campana's nftables rules (the test
    // runs as root with nft, both installed by scripts/install-sip-deps.sh).
    bridged_call(false, true).await;
}

#[tokio::test]
async fn a_customer_hearing_a_prompt_that_ends_the_call_can_still_be_bridged() {
    // Agentless "press 1 for an agent": the message (then hang up) is playing when the engine
    // connects an agent; the call goes on bridged until the customer hangs up. (Connect drops
    // the prompt, so a message ending while the agent's phone still rings cannot end the call;
    // this sipp phone answers at once, so the test shows the bridge, not that race.)
    bridged_call(true, false).await;
}

async fn bridged_call(prompt_first: bool, kernel: bool) {
    // The customer (carrier side) answers and echoes RTP, hangs up after 3 s.
    let customer = Sipp::start("customer_bridged.xml", SipTransport::Udp).await;
    let prompts = tempfile::tempdir().expect("temp dir");
    let samples: Vec<i16> = (0..4000).map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16).collect();
    std::fs::write(prompts.path().join("agentless_message.wav"), campana_sip::audio::wav_linear16(&samples)).expect("write wav");
    let mut c = with_registrar(config(customer.addr));
    c.prompts_dir = Some(prompts.path().to_path_buf());
    c.kernel_relay = kernel;
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    // The agent's phone registers from port P, then answers Campana's call on P.
    let register = Sipp::start_client_with("agent_register.xml", tel.local_sip_addr(), &["-au", "agent7", "-ap", "pw7"]).await;
    let phone_port = register.port;
    register.assert_passed().await;
    assert!(tel.agent_contact(UserId(7)).is_some());
    let phone = Sipp::spawn_with("agent_phone.xml", SippOpts { port: Some(phone_port), rtp_echo: false, ..SippOpts::default() }).await;

    tel.send(dial(9, 20)).await.expect("dial");
    assert_eq!(next_event(&mut events, &customer).await, TelephonyEvent::Ringing { call_id: CallId(9) });
    assert!(matches!(next_event(&mut events, &customer).await, TelephonyEvent::Answered { call_id: CallId(9), .. }));
    if prompt_first {
        // A 0.5 s message: without the bridge it would end the call long before the customer does.
        let prompt = campana_core::telephony::PromptName("agentless_message".into());
        tel.send(TelephonyCommand::Play { call_id: CallId(9), prompt, then_hang_up: true, after_beep: false }).await.expect("play");
    }
    tel.send(TelephonyCommand::Connect { call_id: CallId(9), agent: UserId(7) }).await.expect("connect");
    let connected = tokio::time::timeout(Duration::from_secs(2), events.recv()).await;
    assert_eq!(
        connected.ok().flatten(),
        Some(TelephonyEvent::Connected { call_id: CallId(9), agent: UserId(7) }),
        "agent logs:\n{}",
        phone.logs()
    );
    // The customer hangs up; Campana ends the agent leg with BYE. The phone's RFC 4733 digit,
    // relayed to the customer and echoed back, shows as a Digit on the customer leg meanwhile.
    let mut digits = Vec::new();
    loop {
        match next_event(&mut events, &customer).await {
            TelephonyEvent::Digit { digit, .. } => digits.push(digit),
            e => {
                assert_eq!(e, TelephonyEvent::Ended { call_id: CallId(9), result: CallResult::Answered });
                break;
            }
        }
    }
    if !kernel {
        // In the kernel, relayed digits are passed through, not seen by Campana.
        assert_eq!(digits, vec!['1']);
    }
    customer.assert_passed().await;
    phone.assert_passed().await;
    let stats = tel.stats();
    assert_eq!(stats.connected, 1);
    // The phone plays a 10-packet RFC 4733 pcap: each packet is relayed to the customer, which
    // echoes it, and the echo is relayed back to the phone: 20 relayed packets, both directions.
    assert!(stats.rtp_packets_relayed >= 20, "{stats:?}");
    assert_eq!(stats.kernel_bridged, u64::from(kernel), "{stats:?}");
}

#[tokio::test]
async fn a_bridged_customer_moving_its_media_is_followed() {
    customer_moves_media(false).await;
}

#[tokio::test]
async fn a_bridged_customer_moving_its_media_is_followed_in_the_kernel() {
    customer_moves_media(true).await;
}

/// The customer re-INVITEs with a new media port once bridged; the agent phone's RTP, sent
/// after that, must reach the new port (the relay, or the kernel's rules, follow the move).
async fn customer_moves_media(kernel: bool) {
    let moved = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("bind the moved media port");
    let moved_port = moved.local_addr().expect("addr").port().to_string();
    let customer = Sipp::spawn_with(
        "customer_bridged_moves_media.xml",
        SippOpts { extra: &["-set", "moved_port", &moved_port], ..SippOpts::default() },
    )
    .await;
    let mut c = with_registrar(config(customer.addr));
    c.kernel_relay = kernel;
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    let register = Sipp::start_client_with("agent_register.xml", tel.local_sip_addr(), &["-au", "agent7", "-ap", "pw7"]).await;
    let phone_port = register.port;
    register.assert_passed().await;
    let phone =
        Sipp::spawn_with("agent_phone_late_rtp.xml", SippOpts { port: Some(phone_port), rtp_echo: false, ..SippOpts::default() }).await;
    let received = tokio::spawn(async move {
        // (relayed RFC 4733 packets of the phone, other RTP packets)
        let mut buf = [0u8; 2048];
        let mut packets = (0u32, 0u32);
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(8), moved.recv(&mut buf)).await {
            match campana_sip::rtp::parse_header(&buf[..n]) {
                Some(h) if h.payload_type == 101 => packets.0 += 1,
                Some(_) => packets.1 += 1,
                None => {}
            }
        }
        packets
    });
    tel.send(dial(21, 20)).await.expect("dial");
    assert_eq!(next_event(&mut events, &customer).await, TelephonyEvent::Ringing { call_id: CallId(21) });
    assert!(matches!(next_event(&mut events, &customer).await, TelephonyEvent::Answered { call_id: CallId(21), .. }));
    tel.send(TelephonyCommand::Connect { call_id: CallId(21), agent: UserId(7) }).await.expect("connect");
    assert_eq!(next_event(&mut events, &customer).await, TelephonyEvent::Connected { call_id: CallId(21), agent: UserId(7) });
    loop {
        match next_event(&mut events, &customer).await {
            TelephonyEvent::Digit { .. } => {}
            e => {
                assert_eq!(e, TelephonyEvent::Ended { call_id: CallId(21), result: CallResult::Answered });
                break;
            }
        }
    }
    customer.assert_passed().await;
    phone.assert_passed().await;
    // The phone's 10-packet pcap, sent after the move, all at the customer's new port, and
    // nothing else there: a bridged leg sends no generated silence over the relayed audio.
    let (relayed, other) = received.await.expect("receiver");
    assert!(relayed >= 10, "{relayed} relayed RTP packets at the customer's new media port; {:?}", tel.stats());
    assert_eq!(other, 0, "packets not from the agent's phone at the customer's new media port");
    assert_eq!(tel.stats().kernel_bridged, u64::from(kernel));
}

#[tokio::test]
async fn a_bridged_agent_phone_moving_its_media_is_refused_with_488_and_the_call_goes_on() {
    // The agent leg's media cannot follow a move (the relay towards the phone is the customer
    // leg's): the phone's re-INVITE gets 488 (sipp fails on a 200) and the call goes on until
    // the customer hangs up.
    let moved_port = free_port(true).to_string();
    let customer = Sipp::start("customer_bridged.xml", SipTransport::Udp).await;
    let (tel, mut events) = SipTelephony::start(with_registrar(config(customer.addr))).await.expect("telephony starts");
    let register = Sipp::start_client_with("agent_register.xml", tel.local_sip_addr(), &["-au", "agent7", "-ap", "pw7"]).await;
    let phone_port = register.port;
    register.assert_passed().await;
    let extra = ["-set", "moved_port", moved_port.as_str()];
    let phone = Sipp::spawn_with(
        "agent_phone_moves_media.xml",
        SippOpts { port: Some(phone_port), rtp_echo: false, extra: &extra, ..SippOpts::default() },
    )
    .await;
    tel.send(dial(22, 20)).await.expect("dial");
    assert_eq!(next_event(&mut events, &customer).await, TelephonyEvent::Ringing { call_id: CallId(22) });
    assert!(matches!(next_event(&mut events, &customer).await, TelephonyEvent::Answered { call_id: CallId(22), .. }));
    tel.send(TelephonyCommand::Connect { call_id: CallId(22), agent: UserId(7) }).await.expect("connect");
    assert_eq!(next_event(&mut events, &customer).await, TelephonyEvent::Connected { call_id: CallId(22), agent: UserId(7) });
    assert_eq!(next_event(&mut events, &customer).await, TelephonyEvent::Ended { call_id: CallId(22), result: CallResult::Answered });
    customer.assert_passed().await;
    phone.assert_passed().await;
}

#[tokio::test]
async fn safe_harbor_prompt_is_played_then_the_call_ends() {
    // A 0.5 s prompt (8 kHz 16-bit WAV): 25 packets of 20 ms, then PromptDone and BYE.
    let prompts = tempfile::tempdir().expect("temp dir");
    let samples: Vec<i16> = (0..4000).map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16).collect();
    std::fs::write(prompts.path().join("safe_harbor.wav"), campana_sip::audio::wav_linear16(&samples)).expect("write wav");
    let sipp = Sipp::start("answer_local_bye.xml", SipTransport::Udp).await;
    let mut c = config(sipp.addr);
    c.prompts_dir = Some(prompts.path().to_path_buf());
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    tel.send(dial(11, 20)).await.expect("dial");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ringing { call_id: CallId(11) });
    assert!(matches!(next_event(&mut events, &sipp).await, TelephonyEvent::Answered { call_id: CallId(11), .. }));
    let started = std::time::Instant::now();
    let prompt = campana_core::telephony::PromptName("safe_harbor".into());
    tel.send(TelephonyCommand::Play { call_id: CallId(11), prompt, then_hang_up: true, after_beep: false }).await.expect("play");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::PromptDone { call_id: CallId(11) });
    let played = started.elapsed();
    assert!(played >= Duration::from_millis(450), "prompt ended after {played:?}");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ended { call_id: CallId(11), result: CallResult::Answered });
    let stats = tel.stats();
    assert!(stats.rtp_packets_sent >= 25, "{stats:?}");
    sipp.assert_passed().await;
}

#[tokio::test]
async fn connect_to_an_unregistered_agent_reports_the_failure_and_keeps_the_customer() {
    // The customer is not hung up in silence: the engine hears `ConnectFailed` and decides
    // (another agent, or the safe-harbor message); here the safe-harbor prompt then BYE.
    let prompts = safe_harbor_prompts();
    let sipp = Sipp::start("answer_local_bye.xml", SipTransport::Udp).await;
    let mut c = with_registrar(config(sipp.addr));
    c.prompts_dir = Some(prompts.path().to_path_buf());
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    tel.send(dial(12, 20)).await.expect("dial");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ringing { call_id: CallId(12) });
    assert!(matches!(next_event(&mut events, &sipp).await, TelephonyEvent::Answered { call_id: CallId(12), .. }));
    tel.send(TelephonyCommand::Connect { call_id: CallId(12), agent: UserId(7) }).await.expect("connect");
    assert!(matches!(next_event(&mut events, &sipp).await, TelephonyEvent::ConnectFailed { call_id: CallId(12), agent: UserId(7), .. }));
    let prompt = campana_core::telephony::PromptName("safe_harbor".into());
    tel.send(TelephonyCommand::Play { call_id: CallId(12), prompt, then_hang_up: true, after_beep: false }).await.expect("play");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::PromptDone { call_id: CallId(12) });
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ended { call_id: CallId(12), result: CallResult::Answered });
    sipp.assert_passed().await;
}

fn safe_harbor_prompts() -> tempfile::TempDir {
    let prompts = tempfile::tempdir().expect("temp dir");
    let samples: Vec<i16> = (0..4000).map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16).collect();
    std::fs::write(prompts.path().join("safe_harbor.wav"), campana_sip::audio::wav_linear16(&samples)).expect("write wav");
    prompts
}

/// The engine driving SIP telephony (a dialer in a few lines): one progressive campaign with
/// one record, engine outputs kept for the test to read.
struct EngineDriver {
    engine: campana_engine::Engine,
    out: Vec<campana_engine::Output>,
}

impl EngineDriver {
    fn new() -> EngineDriver {
        use campana_core::settings::{DialingMode, Settings};
        use campana_core::time::{DailyHours, LocalTime, Weekdays};
        use campana_engine::*;
        let now = chrono::Utc::now();
        let mut engine = Engine::new(EngineConfig::default(), Box::new(InMemoryDnc::default()), 40, now);
        let cfg = CampaignConfig {
            id: CampaignId(1),
            settings: Settings { dialing_mode: DialingMode::Progressive, ..Settings::default() },
            daily_hours: DailyHours::new(LocalTime::hm(0, 0), LocalTime::hm(23, 59)).expect("hours"),
            weekdays: Weekdays::ALL,
            time_zone: chrono_tz::UTC,
            start_date: None,
            end_date: None,
            priority: 0,
            agent_group: None,
            agentless_lines: 1,
        };
        engine.handle_input(now, Input::CampaignStarted(Box::new(cfg))).expect("campaign");
        // The record's own zone is one where it is about 13:00 now: inside the calling hours
        // whenever the test runs.
        let phone = PhoneNumber::parse("+14155550123", None).expect("number");
        let mut record = campana_core::record::Record::fresh(RecordId(1), campana_core::ContactListId(1), phone, now);
        let offset_h = 13 - i32::try_from(chrono::Timelike::hour(&now)).expect("hour");
        let zone = if offset_h >= 0 { format!("Etc/GMT-{offset_h}") } else { format!("Etc/GMT+{}", -offset_h) };
        record.time_zone = Some(campana_core::time::TimeZone::parse(&zone).expect("zone"));
        engine
            .handle_input(now, Input::RecordsAvailable { campaign_id: CampaignId(1), records: vec![Candidate::new(record)] })
            .expect("records");
        EngineDriver { engine, out: Vec::new() }
    }

    async fn input(&mut self, tel: &SipTelephony, i: campana_engine::Input) {
        self.engine.handle_input(chrono::Utc::now(), i).expect("input accepted");
        self.flush(tel).await;
    }

    async fn flush(&mut self, tel: &SipTelephony) {
        while let Some(o) = self.engine.poll_output() {
            if let campana_engine::Output::Telephony(cmd) = &o {
                tel.send(cmd.clone()).await.expect("command");
            }
            self.out.push(o);
        }
    }

    /// Feeds telephony events (and the engine's timers) until the engine records the call's
    /// result, which it returns.
    async fn run_until_result(&mut self, tel: &SipTelephony, events: &mut mpsc::Receiver<TelephonyEvent>, sipp: &Sipp) -> CallResult {
        self.run_until(tel, events, sipp, |out, _| {
            out.iter().find_map(|o| match o {
                campana_engine::Output::Persist(campana_engine::PersistCommand::CallResult { result, .. }) => Some(*result),
                _ => None,
            })
        })
        .await
    }

    /// Feeds telephony events (and the engine's timers) until the telephony reports the call
    /// ended (a connected call's result waits for the agent's wrap-up); the events fed.
    async fn run_until_ended(
        &mut self,
        tel: &SipTelephony,
        events: &mut mpsc::Receiver<TelephonyEvent>,
        sipp: &Sipp,
    ) -> Vec<TelephonyEvent> {
        self.run_until(tel, events, sipp, |_, fed| fed.iter().any(|e| matches!(e, TelephonyEvent::Ended { .. })).then(|| fed.to_vec()))
            .await
    }

    async fn run_until<T>(
        &mut self,
        tel: &SipTelephony,
        events: &mut mpsc::Receiver<TelephonyEvent>,
        sipp: &Sipp,
        done: impl Fn(&[campana_engine::Output], &[TelephonyEvent]) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(EVENT_TIMEOUT_S);
        let mut fed = Vec::new();
        loop {
            if let Some(r) = done(&self.out, &fed) {
                return r;
            }
            let wait = self
                .engine
                .next_deadline()
                .map(|d| (d - chrono::Utc::now()).to_std().unwrap_or_default())
                .unwrap_or(Duration::from_millis(200))
                .min(Duration::from_millis(200));
            match tokio::time::timeout(wait, events.recv()).await {
                Ok(Some(e)) => {
                    fed.push(e.clone());
                    self.input(tel, campana_engine::Input::Telephony(e)).await;
                }
                Ok(None) => panic!("telephony stopped"),
                Err(_) => {
                    self.engine.handle_timeout(chrono::Utc::now()).expect("timeout");
                    self.flush(tel).await;
                }
            }
            assert!(tokio::time::Instant::now() < deadline, "no result; engine outputs {:?}\nsipp logs:\n{}", self.out, sipp.logs());
        }
    }

    fn connects(&self) -> Vec<UserId> {
        self.out
            .iter()
            .filter_map(|o| match o {
                campana_engine::Output::Telephony(TelephonyCommand::Connect { agent, .. }) => Some(*agent),
                _ => None,
            })
            .collect()
    }
}

#[tokio::test]
async fn an_agent_phone_refusing_the_call_gives_the_safe_harbor_message_and_an_abandon() {
    // The agent's phone answers Campana's call with 486. Before, the customer was hung up in
    // silence and the attempt stored as `answered`; now the engine (no other agent free) plays
    // the safe-harbor message at the 2 s deadline, counts the abandon and stores `abandoned`,
    // and the agent is put not ready with the reason.
    let prompts = safe_harbor_prompts();
    let customer = Sipp::start("answer_local_bye.xml", SipTransport::Udp).await;
    let mut c = with_registrar(config(customer.addr));
    c.prompts_dir = Some(prompts.path().to_path_buf());
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    let register = Sipp::start_client_with("agent_register.xml", tel.local_sip_addr(), &["-au", "agent7", "-ap", "pw7"]).await;
    let phone_port = register.port;
    register.assert_passed().await;
    let phone = Sipp::spawn_with("agent_phone_busy.xml", SippOpts { port: Some(phone_port), rtp_echo: false, ..SippOpts::default() }).await;
    let mut d = EngineDriver::new();
    let agent = UserId(7);
    d.input(&tel, campana_engine::Input::AgentLogin { agent, groups: vec![], campaigns: campana_core::user::CampaignsProfile::All }).await;
    d.input(&tel, campana_engine::Input::AgentReady { agent }).await;
    let result = d.run_until_result(&tel, &mut events, &customer).await;
    assert_eq!(result, CallResult::Abandoned, "{:?}", d.out);
    assert_eq!(d.connects(), vec![agent]);
    assert!(d.out.iter().any(|o| matches!(o, campana_engine::Output::Persist(campana_engine::PersistCommand::AbandonRecorded { .. }))));
    assert!(d
        .out
        .iter()
        .any(|o| matches!(o, campana_engine::Output::Telephony(TelephonyCommand::Play { prompt, .. }) if prompt.0 == "safe_harbor")));
    assert!(d.out.iter().any(|o| matches!(
        o,
        campana_engine::Output::Agent(campana_engine::AgentNotice::PhoneFailed { next: campana_engine::AfterWrapUp::NotReady, .. })
    )));
    assert_eq!(d.engine.abandon_windows(CampaignId(1)).expect("campaign").0.abandons, 1.0);
    assert!(tel.stats().rtp_packets_sent >= 25, "the safe-harbor prompt was played: {:?}", tel.stats());
    customer.assert_passed().await;
    phone.assert_passed().await;
}

#[tokio::test]
async fn when_the_first_agents_phone_fails_a_second_ready_agent_is_connected() {
    // Two agents ready; the engine connects agent 7 (ready first), whose phone answers 486.
    // Within the 2 s connect deadline the engine connects agent 8, whose phone answers: the
    // customer is bridged to agent 8, the call is a connect (not an abandon), and agent 7 is
    // put not ready with the reason.
    let customer = Sipp::start("customer_bridged.xml", SipTransport::Udp).await;
    let mut c = config(customer.addr);
    c.registrar = Some(RegistrarConfig::new(
        "campana.test",
        vec![
            AgentCredential { agent: UserId(7), username: "agent7".into(), password: "pw7".into() },
            AgentCredential { agent: UserId(8), username: "agent8".into(), password: "pw8".into() },
        ],
    ));
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    let register7 = Sipp::start_client_with("agent_register.xml", tel.local_sip_addr(), &["-au", "agent7", "-ap", "pw7"]).await;
    let register8 = Sipp::start_client_with("agent_register.xml", tel.local_sip_addr(), &["-au", "agent8", "-ap", "pw8"]).await;
    let (port7, port8) = (register7.port, register8.port);
    register7.assert_passed().await;
    register8.assert_passed().await;
    let phone7 = Sipp::spawn_with("agent_phone_busy.xml", SippOpts { port: Some(port7), rtp_echo: false, ..SippOpts::default() }).await;
    let phone8 = Sipp::spawn_with("agent_phone.xml", SippOpts { port: Some(port8), rtp_echo: false, ..SippOpts::default() }).await;
    let mut d = EngineDriver::new();
    let (first, second) = (UserId(7), UserId(8));
    for agent in [first, second] {
        d.input(&tel, campana_engine::Input::AgentLogin { agent, groups: vec![], campaigns: campana_core::user::CampaignsProfile::All })
            .await;
        d.input(&tel, campana_engine::Input::AgentReady { agent }).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let fed = d.run_until_ended(&tel, &mut events, &customer).await;
    assert!(fed.iter().any(|e| matches!(e, TelephonyEvent::Connected { agent, .. } if *agent == second)), "{fed:?}");
    assert!(matches!(fed.last(), Some(TelephonyEvent::Ended { result: CallResult::Answered, .. })), "{fed:?}");
    assert_eq!(d.connects(), vec![first, second], "{:?}", d.out);
    assert!(d.out.iter().any(|o| matches!(
        o,
        campana_engine::Output::Agent(campana_engine::AgentNotice::PhoneFailed { agent, next: campana_engine::AfterWrapUp::NotReady, .. }) if *agent == first
    )));
    assert!(!d.out.iter().any(|o| matches!(o, campana_engine::Output::Persist(campana_engine::PersistCommand::AbandonRecorded { .. }))));
    assert_eq!(d.engine.abandon_windows(CampaignId(1)).expect("campaign").0.abandons, 0.0);
    assert_eq!(tel.stats().connected, 1);
    customer.assert_passed().await;
    phone7.assert_passed().await;
    phone8.assert_passed().await;
}

#[tokio::test]
async fn an_agent_who_logs_out_while_the_customer_rings_is_never_called() {
    // Progressive: the call is dialed for agent 7, who logs out while it rings. The customer
    // answers (after 183) and hangs up a second later: nobody was connected, the agent's
    // phone was never called, and the attempt ends with a result.
    let customer = Sipp::start("answer_remote_bye.xml", SipTransport::Udp).await;
    let (tel, mut events) = SipTelephony::start(with_registrar(config(customer.addr))).await.expect("telephony starts");
    let register = Sipp::start_client_with("agent_register.xml", tel.local_sip_addr(), &["-au", "agent7", "-ap", "pw7"]).await;
    register.assert_passed().await;
    let mut d = EngineDriver::new();
    let agent = UserId(7);
    d.input(&tel, campana_engine::Input::AgentLogin { agent, groups: vec![], campaigns: campana_core::user::CampaignsProfile::All }).await;
    d.input(&tel, campana_engine::Input::AgentReady { agent }).await;
    d.input(&tel, campana_engine::Input::AgentLogout { agent }).await;
    let result = d.run_until_result(&tel, &mut events, &customer).await;
    assert_eq!(result, CallResult::Abandoned, "{:?}", d.out);
    assert!(d.connects().is_empty(), "{:?}", d.out);
    assert_eq!(tel.stats().connected, 0);
    customer.assert_passed().await;
}

#[tokio::test]
async fn an_agent_who_logs_out_while_their_own_phone_rings_is_never_bridged() {
    // Progressive: the customer answers and the engine connects agent 7, whose phone rings
    // (1.5 s before it would answer). The agent logs out meanwhile. Before, the logout waited
    // for the call's end and the phone, answering, was bridged to the customer. Now the agent
    // leaves at once, the phone's leg is cancelled, and the customer (no other agent ready)
    // gets the safe-harbor message: an abandon.
    let prompts = safe_harbor_prompts();
    let customer = Sipp::start("answer_local_bye.xml", SipTransport::Udp).await;
    let mut c = with_registrar(config(customer.addr));
    c.prompts_dir = Some(prompts.path().to_path_buf());
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    let register = Sipp::start_client_with("agent_register.xml", tel.local_sip_addr(), &["-au", "agent7", "-ap", "pw7"]).await;
    let phone_port = register.port;
    register.assert_passed().await;
    let mut phone =
        Sipp::spawn_with("agent_phone_rings.xml", SippOpts { port: Some(phone_port), rtp_echo: false, ..SippOpts::default() }).await;
    let mut d = EngineDriver::new();
    let agent = UserId(7);
    d.input(&tel, campana_engine::Input::AgentLogin { agent, groups: vec![], campaigns: campana_core::user::CampaignsProfile::All }).await;
    d.input(&tel, campana_engine::Input::AgentReady { agent }).await;
    d.run_until(&tel, &mut events, &customer, |out, _| {
        out.iter().any(|o| matches!(o, campana_engine::Output::Telephony(TelephonyCommand::Connect { .. }))).then_some(())
    })
    .await;
    // The phone rings now (sipp answers after 1.5 s unless cancelled).
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.input(&tel, campana_engine::Input::AgentLogout { agent }).await;
    let result = d.run_until_result(&tel, &mut events, &customer).await;
    assert_eq!(result, CallResult::Abandoned, "{:?}", d.out);
    assert_eq!(tel.stats().connected, 0, "the agent who left was bridged: {:?}", d.out);
    assert!(d
        .out
        .iter()
        .any(|o| matches!(o, campana_engine::Output::Telephony(TelephonyCommand::Disconnect { agent: a, .. }) if *a == agent)));
    assert!(d.out.iter().any(|o| matches!(
        o,
        campana_engine::Output::Agent(campana_engine::AgentNotice::DialEnded { agent: a, next: campana_engine::AfterWrapUp::LoggedOut }) if *a == agent
    )));
    customer.assert_passed().await;
    phone.wait_passed().await;
    assert!(phone.messages().contains("CANCEL sip:"), "the phone's leg was not cancelled:\n{}", phone.messages());
}

#[tokio::test]
async fn rfc4733_digit_from_the_customer_is_reported() {
    let sipp = Sipp::start("customer_presses_1.xml", SipTransport::Udp).await;
    let (tel, mut events) = SipTelephony::start(config(sipp.addr)).await.expect("telephony starts");
    tel.send(dial(13, 20)).await.expect("dial");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ringing { call_id: CallId(13) });
    assert!(matches!(next_event(&mut events, &sipp).await, TelephonyEvent::Answered { call_id: CallId(13), .. }));
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Digit { call_id: CallId(13), digit: '1' });
    tel.send(TelephonyCommand::HangUp { call_id: CallId(13) }).await.expect("hang up");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ended { call_id: CallId(13), result: CallResult::Answered });
    sipp.assert_passed().await;
}

#[tokio::test]
async fn registers_with_the_trunk_answering_the_digest_challenge() {
    let sipp = Sipp::start("trunk_register.xml", SipTransport::Udp).await;
    let mut c = config(sipp.addr);
    c.credentials = Some(DigestCredentials { username: "trunkuser".into(), password: "trunksecret".into(), realm: None });
    c.register_expires_s = Some(120);
    let (_tel, _events) = SipTelephony::start(c).await.expect("telephony starts");
    // sipp checks the digest (verifyauth) and fails its scenario when it is wrong.
    sipp.assert_passed().await;
}

#[tokio::test]
async fn agent_hang_up_ends_the_customer_call() {
    let customer = Sipp::start("answer_local_bye.xml", SipTransport::Udp).await;
    let (tel, mut events) = SipTelephony::start(with_registrar(config(customer.addr))).await.expect("telephony starts");
    let register = Sipp::start_client_with("agent_register.xml", tel.local_sip_addr(), &["-au", "agent7", "-ap", "pw7"]).await;
    let phone_port = register.port;
    register.assert_passed().await;
    let phone =
        Sipp::spawn_with("agent_phone_hangs_up.xml", SippOpts { port: Some(phone_port), rtp_echo: false, ..SippOpts::default() }).await;
    tel.send(dial(14, 20)).await.expect("dial");
    assert_eq!(next_event(&mut events, &customer).await, TelephonyEvent::Ringing { call_id: CallId(14) });
    assert!(matches!(next_event(&mut events, &customer).await, TelephonyEvent::Answered { call_id: CallId(14), .. }));
    tel.send(TelephonyCommand::Connect { call_id: CallId(14), agent: UserId(7) }).await.expect("connect");
    assert_eq!(next_event(&mut events, &customer).await, TelephonyEvent::Connected { call_id: CallId(14), agent: UserId(7) });
    // The agent hangs up after 1 s; Campana sends BYE to the customer.
    assert_eq!(next_event(&mut events, &customer).await, TelephonyEvent::Ended { call_id: CallId(14), result: CallResult::Answered });
    phone.assert_passed().await;
    customer.assert_passed().await;
}

#[tokio::test]
async fn answered_call_is_recorded_to_a_stereo_wav_of_its_length() {
    let recordings = tempfile::tempdir().expect("temp dir");
    let sipp = Sipp::start("answer_local_bye.xml", SipTransport::Udp).await;
    let mut c = config(sipp.addr);
    c.recordings_dir = Some(recordings.path().to_path_buf());
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    let mut command = dial(15, 20);
    if let TelephonyCommand::Dial { record_audio, .. } = &mut command {
        *record_audio = true;
    }
    tel.send(command).await.expect("dial");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ringing { call_id: CallId(15) });
    assert!(matches!(next_event(&mut events, &sipp).await, TelephonyEvent::Answered { call_id: CallId(15), .. }));
    let answered_at = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    tel.send(TelephonyCommand::HangUp { call_id: CallId(15) }).await.expect("hang up");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ended { call_id: CallId(15), result: CallResult::Answered });
    let call_ms = answered_at.elapsed().as_millis() as u64;
    sipp.assert_passed().await;
    // The recorder finishes the header just after the call ends.
    let path = tel.recording_path(CallId(15)).expect("recordings configured");
    let mut data_len = 0u64;
    for _ in 0..50 {
        if let Ok(b) = std::fs::read(&path) {
            if b.len() >= 44 {
                data_len = u64::from(u32::from_le_bytes([b[40], b[41], b[42], b[43]]));
                if data_len > 0 && data_len + 44 == b.len() as u64 {
                    assert_eq!(u16::from_le_bytes([b[22], b[23]]), 2, "stereo");
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recorded_ms = data_len / 32; // 8 kHz x 2 channels x 2 bytes = 32 bytes per ms
    assert!(recorded_ms + 200 >= call_ms && recorded_ms <= call_ms + 200, "recorded {recorded_ms} ms of a {call_ms} ms call");
}

/// A pcap file of RTP packets (PCMU, 20 ms apart) carrying `samples`, for sipp's
/// play_pcap_audio (Ethernet / IPv4 / UDP framing; sipp rewrites the addresses).
fn rtp_pcap(samples: &[i16]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [
        0xa1b2_c3d4u32.to_le_bytes().to_vec(),
        2u16.to_le_bytes().to_vec(),
        4u16.to_le_bytes().to_vec(),
        vec![0; 8],
        65535u32.to_le_bytes().to_vec(),
        1u32.to_le_bytes().to_vec(),
    ] {
        out.extend_from_slice(&v);
    }
    for (i, chunk) in samples.chunks(160).enumerate() {
        let mut rtp = Vec::new();
        let payload: Vec<u8> = chunk.iter().map(|s| campana_sip::audio::linear_to_ulaw(*s)).collect();
        campana_sip::rtp::write_packet(&mut rtp, 0, i == 0, i as u16, (i * 160) as u32, 0x1234_5678, &payload);
        let udp_len = 8 + rtp.len();
        let ip_len = 20 + udp_len;
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&[0x45, 0, (ip_len >> 8) as u8, ip_len as u8, 0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        frame.extend_from_slice(&[0x1f, 0x40, 0x1f, 0x42, (udp_len >> 8) as u8, udp_len as u8, 0, 0]);
        frame.extend_from_slice(&rtp);
        let t_us = i as u64 * 20_000;
        out.extend_from_slice(&((t_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((t_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

fn push_tone(freq_hz: f64, ms: u32, out: &mut Vec<i16>) {
    let start = out.len();
    for i in 0..(ms as usize * 8) {
        out.push((6000.0 * (2.0 * std::f64::consts::PI * freq_hz * (start + i) as f64 / 8000.0).sin()) as i16);
    }
}

#[tokio::test]
async fn sit_in_early_media_cancels_and_is_reported() {
    // Intercept: 913.8 Hz short, 1370.6 Hz short, 1776.7 Hz long.
    let mut audio = vec![0i16; 1600];
    push_tone(913.8, 276, &mut audio);
    push_tone(1370.6, 276, &mut audio);
    push_tone(1776.7, 380, &mut audio);
    audio.extend(std::iter::repeat_n(0i16, 8000));
    let sipp = Sipp::spawn_with(
        "carrier_sit.xml",
        SippOpts { files: vec![("audio.pcap", rtp_pcap(&audio))], rtp_echo: false, ..SippOpts::default() },
    )
    .await;
    let (events, _tel) = run_until_ended(&sipp, config(sipp.addr), 20).await;
    assert!(rang(&events), "{events:?}");
    assert_eq!(ended_with(&events), CallResult::SitIntercept, "{events:?}");
    sipp.assert_passed().await;
}

/// An answering machine's greeting: `words` speech-like bursts of 300 ms (noise with a 4 Hz
/// envelope, from a xorshift seeded with `seed`), each followed by `gap(word)` samples of silence.
fn greeting(words: usize, seed: u32, gap: impl Fn(usize) -> usize) -> Vec<i16> {
    let mut audio = Vec::new();
    let mut x = seed;
    for word in 0..words {
        for i in 0..(300 * 8) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let noise = (x >> 16) as i16 as f64 / 32768.0;
            let env = 0.6 + 0.4 * (2.0 * std::f64::consts::PI * 4.0 * i as f64 / 8000.0).sin().abs();
            audio.push((5000.0 * env * noise) as i16);
        }
        audio.extend(std::iter::repeat_n(0i16, gap(word)));
    }
    audio
}

#[tokio::test]
async fn answering_machine_greeting_is_detected() {
    // A 4 s greeting of speech-like bursts (a machine), then silence.
    let audio = greeting(10, 12345, |word| if word % 2 == 0 { 800 } else { 1200 });
    let sipp = Sipp::spawn_with(
        "answering_machine.xml",
        SippOpts { files: vec![("audio.pcap", rtp_pcap(&audio))], rtp_echo: false, ..SippOpts::default() },
    )
    .await;
    let (tel, mut events) = SipTelephony::start(config(sipp.addr)).await.expect("telephony starts");
    let mut command = dial(16, 20);
    if let TelephonyCommand::Dial { analysis, .. } = &mut command {
        analysis.machine = Some(campana_core::telephony::MachineTuning { initial_silence_ms: 2500, greeting_ms: 2000, max_words: 3 });
    }
    tel.send(command).await.expect("dial");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ringing { call_id: CallId(16) });
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Answered { call_id: CallId(16), answered_by: AnsweredBy::Unknown });
    assert_eq!(
        next_event(&mut events, &sipp).await,
        TelephonyEvent::MachineDetected { call_id: CallId(16), answered_by: AnsweredBy::Machine }
    );
    tel.send(TelephonyCommand::HangUp { call_id: CallId(16) }).await.expect("hang up");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ended { call_id: CallId(16), result: CallResult::Answered });
    sipp.assert_passed().await;
}

#[tokio::test]
async fn a_message_for_an_answering_machine_starts_after_its_beep() {
    // The machine's greeting (3.6 s of speech-like bursts), its 1,000 Hz beep (0.5 s), then
    // silence. The 0.5 s message must start when the beep ends, so it ends about 4.6 s after
    // the answer (spoken at once it would end after 0.5 s, over the greeting).
    let mut audio = greeting(9, 777, |_| 800);
    let beep_end_s = (audio.len() + 4000) as f64 / 8000.0;
    push_tone(1000.0, 500, &mut audio);
    audio.extend(std::iter::repeat_n(0i16, 8000 * 4));
    let sipp = Sipp::spawn_with(
        "answering_machine.xml",
        SippOpts { files: vec![("audio.pcap", rtp_pcap(&audio))], rtp_echo: false, ..SippOpts::default() },
    )
    .await;
    let prompts = tempfile::tempdir().expect("temp dir");
    let message: Vec<i16> = (0..4000).map(|i| ((i as f64 * 0.2).sin() * 8000.0) as i16).collect();
    std::fs::write(prompts.path().join("machine_message.wav"), campana_sip::audio::wav_linear16(&message)).expect("write wav");
    let mut c = config(sipp.addr);
    c.prompts_dir = Some(prompts.path().to_path_buf());
    let (tel, mut events) = SipTelephony::start(c).await.expect("telephony starts");
    tel.send(dial(17, 20)).await.expect("dial");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ringing { call_id: CallId(17) });
    assert!(matches!(next_event(&mut events, &sipp).await, TelephonyEvent::Answered { call_id: CallId(17), .. }));
    let answered = std::time::Instant::now();
    let prompt = campana_core::telephony::PromptName("machine_message".into());
    tel.send(TelephonyCommand::Play { call_id: CallId(17), prompt, then_hang_up: true, after_beep: true }).await.expect("play");
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::PromptDone { call_id: CallId(17) });
    let done_s = answered.elapsed().as_secs_f64();
    assert!(
        done_s >= beep_end_s + 0.4 && done_s < beep_end_s + 2.0,
        "message ended {done_s:.2} s after the answer; the beep ends at {beep_end_s:.2} s"
    );
    assert_eq!(next_event(&mut events, &sipp).await, TelephonyEvent::Ended { call_id: CallId(17), result: CallResult::Answered });
    sipp.assert_passed().await;
}
