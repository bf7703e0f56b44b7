//! The built-in registrar for agents' phones: each agent has SIP credentials; a REGISTER is
//! accepted only with a valid digest (RFC 3261 section 22, checked with rsipstack's
//! `verify_digest`) for a known agent, and repeated failures from one address are refused for a
//! while and logged (toll-fraud scanners try thousands of passwords).
//!
//! Failures are counted per packet source address (the datagram's or connection's, never what
//! the request says about itself), a nonce serves one attempt from the address it was issued
//! to, and a binding's Contact must name the registering address itself (or a network the
//! operator lists in `contact_networks`) and never a trunk: a phone's registration cannot make
//! Campana send a call anywhere else.
//!
//! The policy is plain data in, decision out ([`Registrar::decide`]), so it is tested without
//! a network; `lib.rs` turns decisions into SIP responses.

use campana_core::ids::UserId;
use rsipstack::dialog::authenticate::verify_digest;
use rsipstack::sip::typed::Authorization;
use rsipstack::sip::Method;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Most nonces outstanding at once; the oldest are forgotten beyond this.
pub const MAX_OUTSTANDING_NONCES: usize = 10_000;
/// How long a nonce stays valid.
pub const NONCE_LIFETIME_S: u64 = 300;
/// Most source addresses tracked for failures at once.
pub const MAX_TRACKED_SOURCES: usize = 10_000;

/// One agent's phone credentials.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentCredential {
    pub agent: UserId,
    /// The SIP user name (From/To user of the REGISTER and digest username).
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for AgentCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCredential")
            .field("agent", &self.agent)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Registrar settings.
///
/// Deserializable: `realm` and `agents` are required, the rest defaults as in
/// [`RegistrarConfig::new`].
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrarConfig {
    /// Digest realm announced in challenges.
    pub realm: String,
    pub agents: Vec<AgentCredential>,
    /// Failed authentications from one IP address within `failure_window_s` before that address
    /// is refused outright (403) until the window passes.
    #[serde(default = "defaults::max_auth_failures")]
    pub max_auth_failures: u32,
    #[serde(default = "defaults::failure_window_s")]
    pub failure_window_s: u32,
    /// Registration lifetimes granted are clamped to this range.
    #[serde(default = "defaults::min_expires_s")]
    pub min_expires_s: u32,
    #[serde(default = "defaults::max_expires_s")]
    pub max_expires_s: u32,
    /// Networks a phone may name in its Contact besides its own source address (e.g. a phone
    /// behind a proxy that registers for it): CIDR strings such as `"10.20.0.0/16"`. Empty by
    /// default: the Contact's host must be the address the REGISTER came from.
    #[serde(default)]
    pub contact_networks: Vec<ipnet::IpNet>,
}

impl RegistrarConfig {
    pub fn new(realm: impl Into<String>, agents: Vec<AgentCredential>) -> RegistrarConfig {
        RegistrarConfig {
            realm: realm.into(),
            agents,
            max_auth_failures: defaults::max_auth_failures(),
            failure_window_s: defaults::failure_window_s(),
            min_expires_s: defaults::min_expires_s(),
            max_expires_s: defaults::max_expires_s(),
            contact_networks: Vec::new(),
        }
    }
}

mod defaults {
    pub fn max_auth_failures() -> u32 {
        5
    }
    pub fn failure_window_s() -> u32 {
        300
    }
    pub fn min_expires_s() -> u32 {
        60
    }
    pub fn max_expires_s() -> u32 {
        3600
    }
}

/// Where an agent's phone can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub agent: UserId,
    pub username: String,
    /// The Contact URI the phone registered (text, as sent).
    pub contact: String,
    pub expires_at: Instant,
}

/// What to answer to one REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterDecision {
    /// 401 with `WWW-Authenticate: Digest realm=..., nonce=...`.
    Challenge { nonce: String },
    /// 200 with the granted lifetime (0 = the binding was removed).
    Accepted { agent: UserId, expires_s: u32 },
    /// 403: bad credentials, unknown user or an address over its failure limit.
    Forbidden,
    /// 400: no usable Contact or From.
    BadRequest,
    /// 403: the credentials were right but the Contact names an address the phone may not
    /// bind (not its own source, not in `contact_networks`, a trunk, or not a SIP URI with an
    /// IP address).
    ContactRefused { reason: String },
}

/// The parts of a REGISTER the registrar looks at.
#[derive(Debug, Clone)]
pub struct RegisterRequest<'a> {
    pub source_ip: IpAddr,
    /// Raw value of the Authorization header, if any.
    pub authorization: Option<&'a str>,
    /// Contact URI text (without `<>`), `None` for a query or `*`.
    pub contact: Option<String>,
    /// Requested lifetime (Contact `expires` param or Expires header).
    pub expires_s: Option<u32>,
}

/// The parts of a REGISTER the registrar reads, taken from the parsed request (owned, so
/// the request can be answered afterwards).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterFields {
    /// Raw value of the Authorization header.
    pub authorization: Option<String>,
    /// The first Contact's URI (without `<>`); `None` for `*` or none.
    pub contact: Option<String>,
    /// The Contact's `expires` parameter, else the Expires header.
    pub expires_s: Option<u32>,
}

/// Reads a REGISTER's [`RegisterFields`].
pub fn register_fields(req: &rsipstack::sip::Request) -> RegisterFields {
    use rsipstack::sip::HeadersExt;
    let authorization = req.authorization_header().map(|h| h.value().to_string());
    let contact = req.typed_contact_headers().ok().and_then(|c| c.into_iter().next());
    let contact_expires_s = contact.as_ref().and_then(|c| {
        c.params.iter().find_map(|p| {
            let text = p.to_string();
            text.strip_prefix(";expires=").or_else(|| text.strip_prefix("expires=")).and_then(|v| v.parse::<u32>().ok())
        })
    });
    let header_expires_s = req.expires_header().and_then(|h| h.value().trim().parse::<u32>().ok());
    RegisterFields { authorization, contact: contact.map(|c| c.uri.to_string()), expires_s: contact_expires_s.or(header_expires_s) }
}

/// Registrar state: bindings, outstanding nonces (with the address each was issued to),
/// failures per source address.
pub struct Registrar {
    config: RegistrarConfig,
    bindings: HashMap<String, Binding>,
    nonces: HashMap<String, (Instant, IpAddr)>,
    failures: HashMap<IpAddr, (u32, Instant)>,
    /// The trunks' addresses: never a phone's Contact.
    trunks: Vec<SocketAddr>,
}

/// Why a Contact URI may not be bound, or `None` when it may: a `sip:` URI whose host is an IP
/// address equal to the registering `source` or inside one of `networks`, and not a trunk's
/// address (a trunk's IP is allowed only as the phone's own source on another port than the
/// trunk's, as on a test machine where everything is on loopback).
pub fn contact_refusal(contact: &str, source: IpAddr, networks: &[ipnet::IpNet], trunks: &[SocketAddr]) -> Option<String> {
    use rsipstack::sip::{Host, Scheme, Uri};
    let Ok(uri) = Uri::try_from(contact) else { return Some(format!("Contact {contact:?} is not a SIP URI")) };
    if !matches!(uri.scheme, None | Some(Scheme::Sip)) {
        return Some(format!("Contact {contact:?} is not a sip: URI"));
    }
    let Host::IpAddr(ip) = uri.host_with_port.host else {
        return Some(format!("Contact {contact:?} names a host name, not the phone's IP address"));
    };
    let port = uri.host_with_port.port.map_or(5060, u16::from);
    let at = SocketAddr::new(ip, port);
    if trunks.iter().any(|t| *t == at || (t.ip() == ip && ip != source)) {
        return Some(format!("Contact {contact:?} is a trunk's address"));
    }
    if ip != source && !networks.iter().any(|n| n.contains(&ip)) {
        return Some(format!("Contact {contact:?} is not the registering address {source} nor in contact_networks"));
    }
    None
}

impl Registrar {
    /// A registrar whose phones may never bind one of `trunks` (the trunks' proxies).
    pub fn new(config: RegistrarConfig, trunks: Vec<SocketAddr>) -> Registrar {
        Registrar { config, bindings: HashMap::new(), nonces: HashMap::new(), failures: HashMap::new(), trunks }
    }

    pub fn realm(&self) -> &str {
        &self.config.realm
    }

    /// The live binding of an agent's phone.
    pub fn binding_of(&self, agent: UserId, now: Instant) -> Option<&Binding> {
        self.bindings.values().find(|b| b.agent == agent && b.expires_at > now)
    }

    fn blocked(&mut self, ip: IpAddr, now: Instant) -> bool {
        let window = Duration::from_secs(u64::from(self.config.failure_window_s));
        match self.failures.get(&ip) {
            Some((count, since)) if now.duration_since(*since) < window => *count >= self.config.max_auth_failures,
            Some(_) => {
                self.failures.remove(&ip);
                false
            }
            None => false,
        }
    }

    fn record_failure(&mut self, ip: IpAddr, now: Instant) {
        if self.failures.len() >= MAX_TRACKED_SOURCES && !self.failures.contains_key(&ip) {
            let window = Duration::from_secs(u64::from(self.config.failure_window_s));
            self.failures.retain(|_, (_, since)| now.duration_since(*since) < window);
            if self.failures.len() >= MAX_TRACKED_SOURCES {
                // Under a wide scan keep refusing: forget the oldest entry only.
                if let Some(oldest) = self.failures.iter().min_by_key(|(_, (_, since))| *since).map(|(ip, _)| *ip) {
                    self.failures.remove(&oldest);
                }
            }
        }
        let e = self.failures.entry(ip).or_insert((0, now));
        e.0 += 1;
        if e.0 >= self.config.max_auth_failures {
            tracing::warn!(source = %ip, failures = e.0, "repeated SIP authentication failures: refusing this address for a while");
        }
    }

    fn new_nonce(&mut self, source: IpAddr, now: Instant) -> String {
        let lifetime = Duration::from_secs(NONCE_LIFETIME_S);
        if self.nonces.len() >= MAX_OUTSTANDING_NONCES {
            self.nonces.retain(|_, (at, _)| now.duration_since(*at) < lifetime);
            if self.nonces.len() >= MAX_OUTSTANDING_NONCES {
                if let Some(oldest) = self.nonces.iter().min_by_key(|(_, (at, _))| *at).map(|(n, _)| n.clone()) {
                    self.nonces.remove(&oldest);
                }
            }
        }
        let nonce = format!("{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>());
        self.nonces.insert(nonce.clone(), (now, source));
        nonce
    }

    /// Nonces outstanding now (at most [`MAX_OUTSTANDING_NONCES`]).
    pub fn outstanding_nonces(&self) -> usize {
        self.nonces.len()
    }

    /// Decides the answer to a REGISTER.
    pub fn decide(&mut self, req: &RegisterRequest<'_>, now: Instant) -> RegisterDecision {
        if self.blocked(req.source_ip, now) {
            return RegisterDecision::Forbidden;
        }
        let Some(raw) = req.authorization else {
            return RegisterDecision::Challenge { nonce: self.new_nonce(req.source_ip, now) };
        };
        let Ok(auth) = Authorization::parse(raw) else {
            self.record_failure(req.source_ip, now);
            return RegisterDecision::Forbidden;
        };
        // A nonce serves one attempt, from the address it was issued to.
        let issued = self.nonces.remove(&auth.nonce);
        let fresh = issued.is_some_and(|(at, to)| to == req.source_ip && now.duration_since(at) < Duration::from_secs(NONCE_LIFETIME_S));
        if !fresh {
            // Unknown, used, stale or another address's nonce: challenge again (not a failure:
            // nonces expire, and a phone may retry with the last one).
            return RegisterDecision::Challenge { nonce: self.new_nonce(req.source_ip, now) };
        }
        let agent = self.config.agents.iter().find(|a| a.username == auth.username).cloned();
        let ok = match &agent {
            Some(a) => auth.realm == self.config.realm && verify_digest(&auth, &a.password, &Method::Register, raw),
            None => false,
        };
        let Some(agent) = agent.filter(|_| ok) else {
            tracing::warn!(source = %req.source_ip, username = %auth.username, "SIP registration with bad credentials refused");
            self.record_failure(req.source_ip, now);
            return RegisterDecision::Forbidden;
        };
        self.failures.remove(&req.source_ip);
        let Some(contact) = &req.contact else {
            return RegisterDecision::BadRequest;
        };
        if let Some(reason) = contact_refusal(contact, req.source_ip, &self.config.contact_networks, &self.trunks) {
            tracing::warn!(source = %req.source_ip, agent = %agent.agent, %reason, "SIP registration's Contact refused");
            return RegisterDecision::ContactRefused { reason };
        }
        let asked_s = req.expires_s.unwrap_or(self.config.max_expires_s);
        if asked_s == 0 {
            self.bindings.remove(&agent.username);
            return RegisterDecision::Accepted { agent: agent.agent, expires_s: 0 };
        }
        let expires_s = asked_s.clamp(self.config.min_expires_s, self.config.max_expires_s);
        self.bindings.insert(
            agent.username.clone(),
            Binding {
                agent: agent.agent,
                username: agent.username.clone(),
                contact: contact.clone(),
                expires_at: now + Duration::from_secs(u64::from(expires_s)),
            },
        );
        tracing::info!(agent = %agent.agent, contact = %contact, expires_s, "agent phone registered");
        RegisterDecision::Accepted { agent: agent.agent, expires_s }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::dialog::authenticate::compute_digest;

    fn registrar() -> Registrar {
        Registrar::new(
            RegistrarConfig::new(
                "campana.test",
                vec![AgentCredential { agent: UserId(7), username: "agent7".into(), password: "pw7".into() }],
            ),
            vec!["192.0.2.1:5060".parse().expect("trunk")],
        )
    }

    fn auth_header(user: &str, password: &str, realm: &str, nonce: &str) -> String {
        let uri = "sip:campana.test";
        let response =
            compute_digest(user, password, realm, nonce, &Method::Register, uri, rsipstack::sip::headers::auth::Algorithm::Md5, None);
        format!("Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5")
    }

    fn req<'a>(auth: Option<&'a str>) -> RegisterRequest<'a> {
        RegisterRequest {
            source_ip: "127.0.0.1".parse().expect("ip"),
            authorization: auth,
            contact: Some("sip:agent7@127.0.0.1:5099".into()),
            expires_s: Some(120),
        }
    }

    #[test]
    fn challenge_then_accept() {
        let mut r = registrar();
        let now = Instant::now();
        let RegisterDecision::Challenge { nonce } = r.decide(&req(None), now) else { panic!("no challenge") };
        let h = auth_header("agent7", "pw7", "campana.test", &nonce);
        assert_eq!(r.decide(&req(Some(&h)), now), RegisterDecision::Accepted { agent: UserId(7), expires_s: 120 });
        assert_eq!(r.binding_of(UserId(7), now).map(|b| b.contact.as_str()), Some("sip:agent7@127.0.0.1:5099"));
        // The nonce is single-use.
        assert!(matches!(r.decide(&req(Some(&h)), now), RegisterDecision::Challenge { .. }));
    }

    #[test]
    fn wrong_password_and_unknown_user_refused_then_rate_limited() {
        let mut r = registrar();
        let now = Instant::now();
        for i in 0..5 {
            let RegisterDecision::Challenge { nonce } = r.decide(&req(None), now) else { panic!("no challenge at {i}") };
            let user = if i % 2 == 0 { "agent7" } else { "nobody" };
            let h = auth_header(user, "guess", "campana.test", &nonce);
            assert_eq!(r.decide(&req(Some(&h)), now), RegisterDecision::Forbidden);
        }
        // Blocked now, even before a challenge, and with the right password.
        assert_eq!(r.decide(&req(None), now), RegisterDecision::Forbidden);
        // After the window it can try again.
        let later = now + Duration::from_secs(301);
        let RegisterDecision::Challenge { nonce } = r.decide(&req(None), later) else { panic!("still blocked") };
        let h = auth_header("agent7", "pw7", "campana.test", &nonce);
        assert!(matches!(r.decide(&req(Some(&h)), later), RegisterDecision::Accepted { .. }));
    }

    #[test]
    fn expired_binding_is_gone_and_zero_unregisters() {
        let mut r = registrar();
        let now = Instant::now();
        let RegisterDecision::Challenge { nonce } = r.decide(&req(None), now) else { panic!() };
        let h = auth_header("agent7", "pw7", "campana.test", &nonce);
        r.decide(&req(Some(&h)), now);
        assert!(r.binding_of(UserId(7), now + Duration::from_secs(121)).is_none());
        let RegisterDecision::Challenge { nonce } = r.decide(&req(None), now) else { panic!() };
        let h = auth_header("agent7", "pw7", "campana.test", &nonce);
        let mut q = req(Some(&h));
        q.expires_s = Some(0);
        assert_eq!(r.decide(&q, now), RegisterDecision::Accepted { agent: UserId(7), expires_s: 0 });
        assert!(r.binding_of(UserId(7), now).is_none());
    }

    fn from(ip: &str, auth: Option<&str>, contact: &str) -> RegisterRequest<'static> {
        let auth = auth.map(|a| &*Box::leak(a.to_string().into_boxed_str()));
        RegisterRequest { source_ip: ip.parse().expect("ip"), authorization: auth, contact: Some(contact.into()), expires_s: Some(120) }
    }

    #[test]
    fn a_nonce_serves_one_attempt_from_the_address_it_was_issued_to() {
        let mut r = registrar();
        let now = Instant::now();
        // A wrong guess uses the nonce up: the next guess with it is only challenged again, so
        // every guess costs a challenge from the guessing address.
        let RegisterDecision::Challenge { nonce } = r.decide(&from("198.51.100.9", None, "sip:a@198.51.100.9"), now) else { panic!() };
        let wrong = auth_header("agent7", "guess", "campana.test", &nonce);
        assert_eq!(r.decide(&from("198.51.100.9", Some(&wrong), "sip:a@198.51.100.9"), now), RegisterDecision::Forbidden);
        let right = auth_header("agent7", "pw7", "campana.test", &nonce);
        assert!(matches!(r.decide(&from("198.51.100.9", Some(&right), "sip:a@198.51.100.9"), now), RegisterDecision::Challenge { .. }));
        // A nonce issued to one address is no good from another.
        let RegisterDecision::Challenge { nonce } = r.decide(&from("198.51.100.9", None, "sip:a@198.51.100.9"), now) else { panic!() };
        let right = auth_header("agent7", "pw7", "campana.test", &nonce);
        assert!(matches!(r.decide(&from("203.0.113.5", Some(&right), "sip:a@203.0.113.5"), now), RegisterDecision::Challenge { .. }));
        // Used nonces are gone; only the two last challenges' are outstanding.
        assert_eq!(r.outstanding_nonces(), 2);
    }

    #[test]
    fn lockout_is_per_source_address_and_another_address_is_not_locked_out() {
        let mut r = registrar();
        let now = Instant::now();
        for _ in 0..5 {
            let RegisterDecision::Challenge { nonce } = r.decide(&from("198.51.100.9", None, "sip:a@198.51.100.9"), now) else { panic!() };
            let h = auth_header("agent7", "guess", "campana.test", &nonce);
            assert_eq!(r.decide(&from("198.51.100.9", Some(&h), "sip:a@198.51.100.9"), now), RegisterDecision::Forbidden);
        }
        assert_eq!(r.decide(&from("198.51.100.9", None, "sip:a@198.51.100.9"), now), RegisterDecision::Forbidden);
        // The agent's own phone elsewhere still registers.
        let RegisterDecision::Challenge { nonce } = r.decide(&from("203.0.113.5", None, "sip:agent7@203.0.113.5:5070"), now) else {
            panic!()
        };
        let h = auth_header("agent7", "pw7", "campana.test", &nonce);
        assert!(matches!(r.decide(&from("203.0.113.5", Some(&h), "sip:agent7@203.0.113.5:5070"), now), RegisterDecision::Accepted { .. }));
    }

    #[test]
    fn a_contact_must_be_the_registering_address_or_a_listed_network_and_never_a_trunk() {
        let trunks: Vec<SocketAddr> = vec!["192.0.2.1:5060".parse().expect("trunk")];
        let src: IpAddr = "203.0.113.5".parse().expect("ip");
        let nets: Vec<ipnet::IpNet> = vec!["10.20.0.0/16".parse().expect("net")];
        assert_eq!(contact_refusal("sip:agent7@203.0.113.5:5070;transport=udp", src, &[], &trunks), None);
        assert_eq!(contact_refusal("sip:agent7@10.20.3.4", src, &nets, &trunks), None);
        for bad in [
            "sip:+19005550100@192.0.2.1",
            "sip:+19005550100@192.0.2.1:5060",
            "sip:+19005550100@192.0.2.1:5080",
            "sip:agent7@198.51.100.77",
            "sip:agent7@10.21.0.1",
            "sip:agent7@carrier.example",
            "sips:agent7@203.0.113.5",
            "tel:+19005550100",
            "not a uri",
        ] {
            assert!(contact_refusal(bad, src, &nets, &trunks).is_some(), "{bad} accepted");
        }
        // Even a listed network never makes a trunk bindable.
        let all: Vec<ipnet::IpNet> = vec!["0.0.0.0/0".parse().expect("net")];
        assert!(contact_refusal("sip:x@192.0.2.1:5060", src, &all, &trunks).is_some());
        // The phone's own source on the trunk's host (loopback tests), on another port: allowed.
        let lo: Vec<SocketAddr> = vec!["127.0.0.1:5060".parse().expect("trunk")];
        assert_eq!(contact_refusal("sip:a@127.0.0.1:5099", "127.0.0.1".parse().expect("ip"), &[], &lo), None);
        assert!(contact_refusal("sip:a@127.0.0.1:5060", "127.0.0.1".parse().expect("ip"), &[], &lo).is_some());
        // Through the registrar: right password, bad contact -> refused, no binding.
        let mut r = registrar();
        let now = Instant::now();
        let RegisterDecision::Challenge { nonce } = r.decide(&from("203.0.113.5", None, "sip:+19005550100@192.0.2.1"), now) else {
            panic!()
        };
        let h = auth_header("agent7", "pw7", "campana.test", &nonce);
        assert!(matches!(
            r.decide(&from("203.0.113.5", Some(&h), "sip:+19005550100@192.0.2.1"), now),
            RegisterDecision::ContactRefused { .. }
        ));
        assert!(r.binding_of(UserId(7), now).is_none());
    }
}
