//! Trunk configuration: where Campana sends calls and how it authenticates.

use std::net::{IpAddr, SocketAddr};

/// The transport used towards the trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SipTransport {
    #[default]
    Udp,
    Tcp,
}

/// Digest credentials for 401/407 challenges (and registration).
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DigestCredentials {
    pub username: String,
    pub password: String,
    /// Restrict to one realm; `None` answers any realm the trunk names.
    #[serde(default)]
    pub realm: Option<String>,
}

impl std::fmt::Debug for DigestCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("realm", &self.realm)
            .finish()
    }
}

/// How the dialed number is written in the Request-URI and To.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberFormat {
    /// `+15551234567`
    #[default]
    E164,
    /// `15551234567`
    Digits,
}

/// One SIP trunk (carrier) Campana originates calls through.
///
/// Deserializable (e.g. from a `[sip]` TOML table): `proxy` and `caller_id` are required, every
/// other field has the default of [`TrunkConfig::new`].
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkConfig {
    /// The trunk's proxy (IP and port; every request goes there).
    pub proxy: SocketAddr,
    /// Domain written in Request-URI, To and From; `None` uses the proxy's address.
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub transport: SipTransport,
    /// Local SIP address to bind (UDP; TCP connections are made from an OS-chosen port).
    /// Port 0 lets the OS choose.
    #[serde(default = "defaults::bind")]
    pub bind: SocketAddr,
    /// Address written into SDP and Contact when `bind` is a wildcard; `None` takes the local
    /// address the OS routes towards the proxy.
    #[serde(default)]
    pub public_ip: Option<IpAddr>,
    #[serde(default)]
    pub credentials: Option<DigestCredentials>,
    /// REGISTER with the trunk (refreshed before expiry) when set.
    #[serde(default)]
    pub register_expires_s: Option<u32>,
    /// Default caller id (From user and P-Asserted-Identity) when a dial command has none.
    pub caller_id: String,
    /// Display name in From; `None` for none.
    #[serde(default)]
    pub caller_name: Option<String>,
    #[serde(default)]
    pub number_format: NumberFormat,
    /// Most INVITEs sent per second (new calls wait their turn; 0 is refused).
    #[serde(default = "defaults::calls_per_second")]
    pub calls_per_second: u32,
    /// Most calls at once (ringing or answered); dials beyond end at once as `dial_error`.
    #[serde(default = "defaults::max_channels")]
    pub max_channels: usize,
    /// Longest an answered call may last before Campana hangs up (a guard against leaks).
    #[serde(default = "defaults::max_call_duration_s")]
    pub max_call_duration_s: u32,
    /// Directory of prompt WAV files (`NAME.wav`, 8 kHz mono, 16-bit PCM or G.711) that
    /// `Play` commands name.
    #[serde(default)]
    pub prompts_dir: Option<std::path::PathBuf>,
    /// Directory of call recordings (`call-N.wav`, stereo: customer left, agent right) for
    /// dials with `record_audio`; `None` records nothing.
    #[serde(default)]
    pub recordings_dir: Option<std::path::PathBuf>,
    /// SIT detection on early media and after answer (the call ends with the SIT's result); on
    /// for a call when this and the profile's `call_analysis.sit_detection` are both on.
    #[serde(default = "defaults::yes")]
    pub sit_detection: bool,
    /// Fax tone detection after answer (the call ends as `fax`); on for a call when this and the
    /// profile's `call_analysis.fax_detection` are both on.
    #[serde(default = "defaults::yes")]
    pub fax_detection: bool,
    /// Answering-machine detection's finer parameters, for dials that ask for it; the profile's
    /// initial silence, greeting length and word count replace these three for each call.
    #[serde(default)]
    pub amd: crate::analysis::AmdParams,
    /// How long an agent's phone may ring on `Connect` before the customer call is abandoned.
    #[serde(default = "defaults::agent_answer_timeout_s")]
    pub agent_answer_timeout_s: u32,
    /// Capacity of the command queue into [`crate::SipTelephony`].
    #[serde(default = "defaults::command_queue_len")]
    pub command_queue_len: usize,
    /// Capacity of the event queue out of [`crate::SipTelephony`]; when full, call tasks wait.
    #[serde(default = "defaults::event_queue_len")]
    pub event_queue_len: usize,
    /// User-Agent header value (default `Campana`, without the version).
    #[serde(default = "defaults::user_agent")]
    pub user_agent: String,
    /// The built-in registrar for agents' phones on the same SIP port; `None` refuses every
    /// REGISTER.
    #[serde(default)]
    pub registrar: Option<crate::registrar::RegistrarConfig>,
    /// SIP timer T1 (RFC 3261, the round-trip estimate): retransmissions start at T1 and an
    /// INVITE with no response at all ends after 64 x T1 (Timer B; 32 s by default) as
    /// `network_failure`. 10 to 10,000 ms.
    #[serde(default = "defaults::sip_t1_ms")]
    pub sip_t1_ms: u32,
    /// Forward bridged calls' RTP in the kernel (nftables) instead of in Campana's process:
    /// about 1,000 bridged calls per core in user space, about 6 times as many this way. Needs Linux
    /// with `nft`, CAP_NET_ADMIN, a specific IPv4 bind address and, for remote peers,
    /// `net.ipv4.ip_forward=1` (checked at start). Recorded calls and calls still in answering
    /// machine detection stay in user space. See [`crate::kernel_relay`].
    #[serde(default)]
    pub kernel_relay: bool,
    /// More trunks by name (`[trunks.NAME]`), chosen by a settings profile's `sip_trunk`; the
    /// top-level fields above are the default trunk.
    #[serde(default)]
    pub trunks: std::collections::BTreeMap<String, NamedTrunk>,
}

/// One more trunk. It shares Campana's SIP port, registrar, prompts, recordings and call
/// analysis with the default trunk; its carrier fields are its own (credentials, domain and
/// registration are never borrowed from another trunk), except `caller_id` and `caller_name`,
/// which default to the top level's.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTrunk {
    pub proxy: SocketAddr,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub transport: SipTransport,
    #[serde(default)]
    pub credentials: Option<DigestCredentials>,
    #[serde(default)]
    pub register_expires_s: Option<u32>,
    #[serde(default)]
    pub caller_id: Option<String>,
    #[serde(default)]
    pub caller_name: Option<String>,
    #[serde(default)]
    pub number_format: NumberFormat,
    #[serde(default = "defaults::calls_per_second")]
    pub calls_per_second: u32,
    #[serde(default = "defaults::max_channels")]
    pub max_channels: usize,
}

/// A trunk with every field resolved: where one call goes out.
#[derive(Debug, Clone)]
pub struct Trunk {
    /// `None` for the default trunk.
    pub name: Option<String>,
    pub proxy: SocketAddr,
    pub domain: Option<String>,
    pub transport: SipTransport,
    pub credentials: Option<DigestCredentials>,
    pub register_expires_s: Option<u32>,
    pub caller_id: String,
    pub caller_name: Option<String>,
    pub number_format: NumberFormat,
    pub calls_per_second: u32,
    pub max_channels: usize,
}

impl Trunk {
    fn validate(&self) -> Result<(), String> {
        if self.calls_per_second == 0 {
            return Err("calls_per_second must be at least 1".into());
        }
        if self.max_channels == 0 {
            return Err("max_channels must be at least 1".into());
        }
        if self.caller_id.is_empty() || !self.caller_id.chars().all(|c| c.is_ascii_digit() || c == '+') {
            return Err("caller_id must be digits, optionally with a leading +".into());
        }
        if let Some(d) = &self.domain {
            if d.is_empty() || !d.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ':') {
                return Err("domain must be a host name".into());
            }
        }
        Ok(())
    }
}

impl TrunkConfig {
    /// A configuration with the defaults below for everything but the proxy and caller id.
    pub fn new(proxy: SocketAddr, caller_id: impl Into<String>) -> TrunkConfig {
        TrunkConfig {
            proxy,
            domain: None,
            transport: SipTransport::Udp,
            bind: defaults::bind(),
            public_ip: None,
            credentials: None,
            register_expires_s: None,
            caller_id: caller_id.into(),
            caller_name: None,
            number_format: NumberFormat::E164,
            calls_per_second: defaults::calls_per_second(),
            max_channels: defaults::max_channels(),
            max_call_duration_s: defaults::max_call_duration_s(),
            agent_answer_timeout_s: defaults::agent_answer_timeout_s(),
            prompts_dir: None,
            sit_detection: true,
            fax_detection: true,
            amd: crate::analysis::AmdParams::default(),
            recordings_dir: None,
            command_queue_len: defaults::command_queue_len(),
            event_queue_len: defaults::event_queue_len(),
            user_agent: defaults::user_agent(),
            registrar: None,
            kernel_relay: false,
            sip_t1_ms: defaults::sip_t1_ms(),
            trunks: Default::default(),
        }
    }

    /// The default (top-level) trunk.
    /// Every trunk's proxy address (the default trunk's first): never a phone's Contact, never
    /// the destination of an agent leg.
    pub fn trunk_addrs(&self) -> Vec<SocketAddr> {
        std::iter::once(self.proxy).chain(self.trunks.values().map(|t| t.proxy)).collect()
    }

    pub fn default_trunk(&self) -> Trunk {
        Trunk {
            name: None,
            proxy: self.proxy,
            domain: self.domain.clone(),
            transport: self.transport,
            credentials: self.credentials.clone(),
            register_expires_s: self.register_expires_s,
            caller_id: self.caller_id.clone(),
            caller_name: self.caller_name.clone(),
            number_format: self.number_format,
            calls_per_second: self.calls_per_second,
            max_channels: self.max_channels,
        }
    }

    /// The trunk named `name` in `[trunks]`, resolved.
    pub fn named_trunk(&self, name: &str) -> Option<Trunk> {
        let t = self.trunks.get(name)?;
        Some(Trunk {
            name: Some(name.to_string()),
            proxy: t.proxy,
            domain: t.domain.clone(),
            transport: t.transport,
            credentials: t.credentials.clone(),
            register_expires_s: t.register_expires_s,
            caller_id: t.caller_id.clone().unwrap_or_else(|| self.caller_id.clone()),
            caller_name: t.caller_name.clone().or_else(|| self.caller_name.clone()),
            number_format: t.number_format,
            calls_per_second: t.calls_per_second,
            max_channels: t.max_channels,
        })
    }

    pub(crate) fn validate(&self) -> Result<(), crate::SipError> {
        let bad = |m: String| Err(crate::SipError::Config(m));
        if self.command_queue_len == 0 || self.event_queue_len == 0 {
            return bad("queue lengths must be at least 1".into());
        }
        if !(10..=10_000).contains(&self.sip_t1_ms) {
            return bad(format!("sip_t1_ms must be between 10 and 10000, not {}", self.sip_t1_ms));
        }
        self.default_trunk().validate().or_else(bad)?;
        for name in self.trunks.keys() {
            if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return bad(format!("trunk name {name:?} must be 1 to 64 letters, digits, '-' or '_'"));
            }
            let t = self.named_trunk(name).expect("listed trunk");
            t.validate().or_else(|m| bad(format!("trunks.{name}: {m}")))?;
        }
        Ok(())
    }
}

mod defaults {
    use std::net::SocketAddr;

    pub fn sip_t1_ms() -> u32 {
        500
    }

    pub fn bind() -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0], 5060))
    }
    pub fn yes() -> bool {
        true
    }
    pub fn calls_per_second() -> u32 {
        10
    }
    pub fn max_channels() -> usize {
        100
    }
    pub fn max_call_duration_s() -> u32 {
        4 * 3600
    }
    pub fn agent_answer_timeout_s() -> u32 {
        10
    }
    pub fn command_queue_len() -> usize {
        1024
    }
    pub fn event_queue_len() -> usize {
        4096
    }
    pub fn user_agent() -> String {
        // No version: it tells a scanner which release to attack.
        "Campana".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deserializes_with_defaults() {
        let c: TrunkConfig = serde_json::from_value(serde_json::json!({
            "proxy": "192.0.2.10:5060",
            "caller_id": "+15550001111",
            "transport": "tcp",
            "credentials": { "username": "u", "password": "p" },
            "registrar": { "realm": "campana.test", "agents": [{ "agent": 7, "username": "a7", "password": "pw" }] }
        }))
        .expect("valid config");
        assert_eq!(c.transport, SipTransport::Tcp);
        assert_eq!(c.calls_per_second, 10);
        assert_eq!(c.bind, defaults::bind());
        assert_eq!(c.registrar.as_ref().map(|r| r.max_auth_failures), Some(5));
        assert!(c.validate().is_ok());
        assert!(format!("{c:?}").contains("<redacted>") && !format!("{c:?}").contains("\"pw\""));
        let unknown = serde_json::from_value::<TrunkConfig>(serde_json::json!({ "proxy": "192.0.2.10:5060", "caller_id": "1", "cps": 5 }));
        assert!(unknown.is_err());
    }
}
