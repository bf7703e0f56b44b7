//! Trunk configuration: where Campana sends calls and how it authenticates.

use std::net::{IpAddr, SocketAddr};

/// The transport used towards the trunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SipTransport {
    #[default]
    Udp,
    Tcp,
}

/// Digest credentials for 401/407 challenges (and registration).
#[derive(Clone, PartialEq, Eq)]
pub struct DigestCredentials {
    pub username: String,
    pub password: String,
    /// Restrict to one realm; `None` answers any realm the trunk names.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NumberFormat {
    /// `+15551234567`
    #[default]
    E164,
    /// `15551234567`
    Digits,
}

/// One SIP trunk (carrier) Campana originates calls through.
#[derive(Debug, Clone)]
pub struct TrunkConfig {
    /// The trunk's proxy (IP and port; every request goes there).
    pub proxy: SocketAddr,
    /// Domain written in Request-URI, To and From; `None` uses the proxy's address.
    pub domain: Option<String>,
    pub transport: SipTransport,
    /// Local SIP address to bind (UDP; TCP connections are made from an OS-chosen port).
    /// Port 0 lets the OS choose.
    pub bind: SocketAddr,
    /// Address written into SDP and Contact when `bind` is a wildcard; `None` takes the local
    /// address the OS routes towards the proxy.
    pub public_ip: Option<IpAddr>,
    pub credentials: Option<DigestCredentials>,
    /// REGISTER with the trunk (refreshed before expiry) when set.
    pub register_expires_s: Option<u32>,
    /// Default caller id (From user and P-Asserted-Identity) when a dial command has none.
    pub caller_id: String,
    /// Display name in From; `None` for none.
    pub caller_name: Option<String>,
    pub number_format: NumberFormat,
    /// Most INVITEs sent per second (new calls wait their turn; 0 is refused).
    pub calls_per_second: u32,
    /// Most calls at once (ringing or answered); dials beyond end at once as `dial_error`.
    pub max_channels: usize,
    /// Longest an answered call may last before Campana hangs up (a guard against leaks).
    pub max_call_duration_s: u32,
    /// Directory of prompt WAV files (`NAME.wav`, 8 kHz mono, 16-bit PCM or G.711) that
    /// `Play` commands name.
    pub prompts_dir: Option<std::path::PathBuf>,
    /// How long an agent's phone may ring on `Connect` before the customer call is abandoned.
    pub agent_answer_timeout_s: u32,
    /// Capacity of the command queue into [`crate::SipTelephony`].
    pub command_queue_len: usize,
    /// Capacity of the event queue out of [`crate::SipTelephony`]; when full, call tasks wait.
    pub event_queue_len: usize,
    /// User-Agent header value.
    pub user_agent: String,
    /// The built-in registrar for agents' phones on the same SIP port; `None` refuses every
    /// REGISTER.
    pub registrar: Option<crate::registrar::RegistrarConfig>,
}

impl TrunkConfig {
    /// A configuration with the defaults below for everything but the proxy and caller id.
    pub fn new(proxy: SocketAddr, caller_id: impl Into<String>) -> TrunkConfig {
        TrunkConfig {
            proxy,
            domain: None,
            transport: SipTransport::Udp,
            bind: SocketAddr::from(([0, 0, 0, 0], 5060)),
            public_ip: None,
            credentials: None,
            register_expires_s: None,
            caller_id: caller_id.into(),
            caller_name: None,
            number_format: NumberFormat::E164,
            calls_per_second: 10,
            max_channels: 100,
            max_call_duration_s: 4 * 3600,
            agent_answer_timeout_s: 10,
            prompts_dir: None,
            command_queue_len: 1024,
            event_queue_len: 4096,
            user_agent: format!("Campana/{}", env!("CARGO_PKG_VERSION")),
            registrar: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), crate::SipError> {
        let bad = |m: &str| Err(crate::SipError::Config(m.to_string()));
        if self.calls_per_second == 0 {
            return bad("calls_per_second must be at least 1");
        }
        if self.max_channels == 0 {
            return bad("max_channels must be at least 1");
        }
        if self.command_queue_len == 0 || self.event_queue_len == 0 {
            return bad("queue lengths must be at least 1");
        }
        if self.caller_id.is_empty() || !self.caller_id.chars().all(|c| c.is_ascii_digit() || c == '+') {
            return bad("caller_id must be digits, optionally with a leading +");
        }
        if let Some(d) = &self.domain {
            if d.is_empty() || !d.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == ':') {
                return bad("domain must be a host name");
            }
        }
        Ok(())
    }
}
