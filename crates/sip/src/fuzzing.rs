//! One fuzz input through Campana's handling of a SIP request that reaches its port, with no
//! network: the parse, the answer table ([`crate::inbound`]), the registrar's decision on a
//! REGISTER (challenge, digest, one-attempt nonce, lockout, Contact rules) and the answer to an
//! oversized datagram ([`crate::udp`]), each with the invariants that must hold whatever the
//! bytes. Run by the cargo-fuzz target `sip_inbound` (crates/sip/fuzz, nightly) and, over the
//! checked-in corpus and mutations of it, by `tests/fuzz.rs` on stable in CI.
//!
//! The first byte of an input chooses the context: bit 0 the request is in a dialog, bit 1 the
//! registrar is on, bit 2 it comes from another address than its Contact's host; the rest is
//! the datagram.

use crate::inbound::{self, Inbound};
use crate::registrar::{self, AgentCredential, RegisterDecision, RegisterRequest, Registrar, RegistrarConfig};
use campana_core::ids::UserId;
use rsipstack::sip::{Method, SipMessage, Version};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

/// The fuzzing registrar's only agent.
const USER: &str = "agent7";
const PASSWORD: &str = "pw7";
const REALM: &str = "campana.test";

/// Runs one input; panics when an invariant breaks.
pub fn one(data: &[u8]) {
    let Some((&flags, datagram)) = data.split_first() else { return };
    if let crate::udp::Oversized::Reply(resp) = crate::udp::oversized(datagram) {
        assert!(matches!(SipMessage::try_from(resp.as_slice()), Ok(SipMessage::Response(_))), "the 513 is not a SIP response");
    }
    let Ok(SipMessage::Request(req)) = SipMessage::try_from(datagram) else { return };
    let (in_dialog, registrar_on, elsewhere) = (flags & 1 != 0, flags & 2 != 0, flags & 4 != 0);
    let answer = inbound::decide(&req.version, &req.method, in_dialog, registrar_on);
    if let Inbound::Reply { status, .. } = answer {
        assert!((200..700).contains(&status), "status {status}");
    }
    if req.version != Version::V2 {
        assert!(matches!(answer, Inbound::Reply { status: 505, .. } | Inbound::Ignore), "{answer:?} to {}", req.version);
        return;
    }
    match (&req.method, in_dialog) {
        (Method::Message | Method::Info | Method::Options | Method::Notify, true) => {
            assert!(matches!(answer, Inbound::Reply { status: 200, .. }), "{answer:?}")
        }
        (Method::Invite, false) => assert_eq!(answer, Inbound::Refuse, "an INVITE from outside"),
        (Method::Register, false) if !registrar_on => assert_eq!(answer, Inbound::Refuse),
        _ => {}
    }
    let _ = crate::sdp::parse_answer(&req.body);
    if answer != Inbound::Register {
        return;
    }
    let fields = registrar::register_fields(&req);
    let trunks: Vec<SocketAddr> = vec![SocketAddr::from(([192, 0, 2, 1], 5060))];
    let config = RegistrarConfig::new(REALM, vec![AgentCredential { agent: UserId(7), username: USER.into(), password: PASSWORD.into() }]);
    let mut r = Registrar::new(config, trunks.clone());
    let contact_ip =
        fields.contact.as_deref().and_then(|c| rsipstack::sip::Uri::try_from(c).ok()).and_then(|u| match u.host_with_port.host {
            rsipstack::sip::Host::IpAddr(ip) => Some(ip),
            rsipstack::sip::Host::Domain(_) => None,
        });
    let source: IpAddr = match (elsewhere, contact_ip) {
        (false, Some(ip)) => ip,
        _ => IpAddr::from([198, 51, 100, 9]),
    };
    let now = Instant::now();
    // The request as it came (its own Authorization, if any: never accepted, no nonce of ours).
    let d = r.decide(
        &RegisterRequest {
            source_ip: source,
            authorization: fields.authorization.as_deref(),
            contact: fields.contact.clone(),
            expires_s: fields.expires_s,
        },
        now,
    );
    assert!(!matches!(d, RegisterDecision::Accepted { .. }), "accepted without a nonce of ours: {d:?}");
    // The same with a right digest for a fresh nonce: the Contact rules decide.
    let RegisterDecision::Challenge { nonce } =
        r.decide(&RegisterRequest { source_ip: source, authorization: None, contact: None, expires_s: None }, now)
    else {
        panic!("no challenge")
    };
    let uri = req.uri.to_string();
    let response = rsipstack::dialog::authenticate::compute_digest(
        USER,
        PASSWORD,
        REALM,
        &nonce,
        &Method::Register,
        &uri,
        rsipstack::sip::headers::auth::Algorithm::Md5,
        None,
    );
    let auth =
        format!("Digest username=\"{USER}\", realm=\"{REALM}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5");
    let request =
        RegisterRequest { source_ip: source, authorization: Some(&auth), contact: fields.contact.clone(), expires_s: fields.expires_s };
    let d = r.decide(&request, now);
    if let RegisterDecision::Accepted { expires_s, .. } = d {
        if expires_s > 0 {
            let contact = fields.contact.as_deref().expect("a binding has a Contact");
            assert_eq!(registrar::contact_refusal(contact, source, &[], &trunks), None, "bound a refused Contact");
            let bound = r.binding_of(UserId(7), now).expect("bound");
            assert_eq!(bound.contact, contact);
        }
    }
    // The nonce is spent: the same digest again is only challenged.
    assert!(matches!(r.decide(&request, now), RegisterDecision::Challenge { .. } | RegisterDecision::Forbidden));
}
