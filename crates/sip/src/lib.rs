//! Campana's SIP telephony: places calls through a SIP trunk behind the engine's telephony
//! boundary ([`TelephonyCommand`] in, [`TelephonyEvent`] out).
//!
//! SIP parsing, transactions (RFC 3261 client INVITE / non-INVITE state machines with their
//! retransmission timers), dialogs, CANCEL and digest authentication come from `rsipstack`
//! (see `DESIGN.md`). This crate adds the trunk policy on top: the SDP offer, pacing
//! (calls per second, concurrent channels), ring timeouts, the mapping of final responses to
//! call results ([`results`]), a minimal RTP leg per call ([`rtp`]), and refusing every SIP
//! request that does not belong to a call Campana placed (no open relay).
//!
//! Limits: the command queue holds `TrunkConfig::command_queue_len` commands, the event queue
//! `TrunkConfig::event_queue_len` events (call tasks wait when it is full), each call's control
//! queue [`CALL_CONTROL_QUEUE_LEN`] commands, and at most `TrunkConfig::max_channels` calls
//! exist at once. rsipstack's per-call dialog state channel is unbounded, but one call task
//! drains it continuously and a call produces a handful of states.

pub mod analysis;
pub mod audio;
pub mod call_leg;
pub mod config;
pub mod fuzzing;
pub mod inbound;
pub mod kernel_relay;
pub mod recording;
pub mod registrar;
pub mod results;
pub mod rtp;
pub mod sdp;
pub mod udp;

pub use config::{DigestCredentials, NamedTrunk, NumberFormat, SipTransport, Trunk, TrunkConfig};
pub use registrar::{AgentCredential, RegistrarConfig};

use call_leg::CallLeg;
use campana_core::ids::UserId;
use campana_core::phone::PhoneNumber;
use campana_core::record::CallResult;
use campana_core::telephony::{CallId, PromptName, TelephonyCommand, TelephonyEvent};
use rsipstack::dialog::authenticate::Credential;
use rsipstack::dialog::dialog::DialogState;
use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::dialog::invitation::InviteOption;
use rsipstack::dialog::registration::Registration;
use rsipstack::sip::{Header, HostWithPort, Method, StatusCode, StatusCodeKind, Transport, Uri};
use rsipstack::transaction::endpoint::Endpoint;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::{SipAddr, TransportLayer};
use rsipstack::EndpointBuilder;
use rtp::{RtpLeg, RtpStats, RtpTarget};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Capacity of each call's control queue (hang-up and the like; one is usually enough).
pub const CALL_CONTROL_QUEUE_LEN: usize = 4;
/// Frames queued from the customer leg to call analysis; more are dropped.
pub const ANALYSIS_QUEUE_LEN: usize = 64;
/// Longest a bridged call waits for its kernel forwarding rules (the user-space relay forwards
/// meanwhile, and afterwards when they are late).
pub const KERNEL_BRIDGE_TIMEOUT_S: u64 = 2;
/// Retry interval after a failed registration.
pub const REGISTER_RETRY_S: u64 = 30;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    #[error("invalid trunk configuration: {0}")]
    Config(String),
    #[error("SIP stack: {0}")]
    Stack(Box<rsipstack::Error>),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    #[error("the SIP telephony has stopped")]
    Stopped,
    #[error(transparent)]
    KernelRelay(#[from] kernel_relay::KernelRelayError),
}

/// Counters over the life of a [`SipTelephony`].
#[derive(Debug, Default)]
struct Counters {
    invites_sent: AtomicU64,
    answered: AtomicU64,
    ended: AtomicU64,
    refused_requests: AtomicU64,
    rtp_packets_sent: AtomicU64,
    rtp_packets_received: AtomicU64,
    rtp_packets_relayed: AtomicU64,
    connected: AtomicU64,
    kernel_bridged: AtomicU64,
}

/// A snapshot of the telephony's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SipStats {
    pub invites_sent: u64,
    pub answered: u64,
    pub ended: u64,
    /// Out-of-dialog requests refused (INVITE, REGISTER, ... from anyone: no open relay).
    pub refused_requests: u64,
    /// RTP packets sent and received by calls that have ended.
    pub rtp_packets_sent: u64,
    pub rtp_packets_received: u64,
    /// RTP packets relayed between bridged legs (both directions), by calls that have ended.
    pub rtp_packets_relayed: u64,
    /// Customer calls bridged to an agent's phone.
    pub connected: u64,
    /// Bridged calls whose RTP the kernel forwarded (`kernel_relay`).
    pub kernel_bridged: u64,
    /// Calls that exist now (ringing or answered).
    pub active_calls: u64,
}

enum CallControl {
    HangUp,
    Connect(UserId),
    Disconnect(UserId),
    Play { prompt: PromptName, then_hang_up: bool, after_beep: bool },
}

/// What an agent leg reports to its customer call.
enum AgentLegEvent {
    /// The agent's phone answered; its RTP leg knows the phone's media address.
    Answered(Arc<RtpLeg>),
    /// The agent's phone could not be reached or did not answer.
    Failed(String),
    /// The agent hung up.
    Ended,
}

/// Capacity of an agent leg's event queue (three events at most in its life).
const AGENT_LEG_QUEUE_LEN: usize = 4;

struct Shared {
    config: TrunkConfig,
    endpoint: Endpoint,
    dialog_layer: Arc<DialogLayer>,
    events: mpsc::Sender<TelephonyEvent>,
    calls: Mutex<HashMap<CallId, mpsc::Sender<CallControl>>>,
    /// The default trunk's route.
    default_route: Arc<Route>,
    /// The named trunks' routes (`[trunks]`).
    named_routes: HashMap<String, Arc<Route>>,
    counters: Counters,
    local_ip: IpAddr,
    local_sip: SocketAddr,
    cancel: CancellationToken,
    registrar: Option<Mutex<registrar::Registrar>>,
    /// Kernel forwarding of bridged calls' RTP (`kernel_relay`), when on.
    kernel_relay: Option<Arc<kernel_relay::KernelRelay>>,
}

/// One trunk calls go out through, with its own pacing and channel count.
struct Route {
    trunk: Trunk,
    /// The earliest moment the next INVITE may go out (calls-per-second pacing).
    next_invite_at: Mutex<Instant>,
    /// Calls on this trunk now (ringing or answered), at most `trunk.max_channels`.
    channels: std::sync::atomic::AtomicUsize,
}

impl Route {
    fn new(trunk: Trunk) -> Arc<Route> {
        Arc::new(Route { trunk, next_invite_at: Mutex::new(Instant::now()), channels: Default::default() })
    }

    /// The trunk's name for logs.
    fn label(&self) -> &str {
        self.trunk.name.as_deref().unwrap_or("default")
    }

    fn domain(&self) -> String {
        self.trunk.domain.clone().unwrap_or_else(|| self.trunk.proxy.to_string())
    }

    fn user_for(&self, number: &PhoneNumber) -> String {
        match self.trunk.number_format {
            NumberFormat::E164 => number.as_str().to_string(),
            NumberFormat::Digits => number.digits().to_string(),
        }
    }

    fn credential(&self) -> Option<Credential> {
        self.trunk.credentials.as_ref().map(|c| Credential {
            username: c.username.clone(),
            password: c.password.clone(),
            realm: c.realm.clone(),
            auth_username: None,
        })
    }

    fn destination(&self) -> SipAddr {
        let transport = match self.trunk.transport {
            SipTransport::Udp => Transport::Udp,
            SipTransport::Tcp => Transport::Tcp,
        };
        SipAddr::new(transport, HostWithPort::from(self.trunk.proxy))
    }

    fn invite_option(&self, dial: &Dial, offer: String, local_sip: SocketAddr) -> Result<InviteOption, SipError> {
        let domain = self.domain();
        let caller_user = match &dial.caller_id {
            Some(n) => self.user_for(n),
            None => self.trunk.caller_id.clone(),
        };
        let callee = Uri::try_from(format!("sip:{}@{}", self.user_for(&dial.to), domain).as_str()).map_err(|e| sip_err(e.into()))?;
        let caller = Uri::try_from(format!("sip:{caller_user}@{domain}").as_str()).map_err(|e| sip_err(e.into()))?;
        let contact_transport = match self.trunk.transport {
            SipTransport::Udp => "",
            SipTransport::Tcp => ";transport=tcp",
        };
        let contact = Uri::try_from(format!("sip:campana@{local_sip}{contact_transport}").as_str()).map_err(|e| sip_err(e.into()))?;
        let pai = Header::Other("P-Asserted-Identity".into(), format!("<sip:{caller_user}@{domain}>"));
        Ok(InviteOption {
            caller_display_name: self.trunk.caller_name.clone(),
            caller,
            callee,
            destination: Some(self.destination()),
            content_type: Some("application/sdp".into()),
            offer: Some(offer.into_bytes()),
            contact,
            credential: self.credential(),
            headers: Some(vec![pai]),
            ..Default::default()
        })
    }
}

/// Real telephony over a SIP trunk. Dropping it (or [`SipTelephony::shutdown`]) stops the SIP
/// endpoint; calls still up are abandoned without BYE, so hang them up first.
pub struct SipTelephony {
    commands: mpsc::Sender<TelephonyCommand>,
    shared: Arc<Shared>,
}

impl SipTelephony {
    /// Binds the SIP endpoint, starts the command loop (and registration when configured), and
    /// returns the telephony with the receiver of its events.
    pub async fn start(config: TrunkConfig) -> Result<(SipTelephony, mpsc::Receiver<TelephonyEvent>), SipError> {
        config.validate()?;
        let cancel = CancellationToken::new();
        let local_ip = match config.public_ip {
            Some(ip) => ip,
            None if !config.bind.ip().is_unspecified() => config.bind.ip(),
            None => route_ip_towards(config.proxy).await?,
        };
        let transport_layer = TransportLayer::new(cancel.clone());
        let external = if config.bind.ip().is_unspecified() { Some(SocketAddr::new(local_ip, config.bind.port())) } else { None };
        let socket: Arc<dyn rsipstack::platform::net::UdpSocket> = Arc::new(udp::WholeDatagramSocket::new(bind_sip_udp(config.bind)?));
        let udp = UdpConnection::from_socket(socket, external, Some(cancel.child_token())).await?;
        let bound = udp.get_addr().clone();
        transport_layer.add_transport(udp.into());
        let t1 = Duration::from_millis(u64::from(config.sip_t1_ms));
        let option = rsipstack::transaction::endpoint::EndpointOption { t1, t1x64: t1 * 64, ..Default::default() };
        let endpoint = EndpointBuilder::new()
            .with_option(option)
            .with_cancel_token(cancel.clone())
            .with_transport_layer(transport_layer)
            .with_user_agent(&config.user_agent)
            .build();
        let local_sip = match &bound.addr.port {
            Some(p) => SocketAddr::new(local_ip, u16::from(*p)),
            None => SocketAddr::new(local_ip, 5060),
        };
        let incoming = endpoint.incoming_transactions()?;
        let dialog_layer = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let kernel_relay = if config.kernel_relay { Some(kernel_relay::KernelRelay::start(local_ip)?) } else { None };
        let (events_tx, events_rx) = mpsc::channel(config.event_queue_len);
        let (commands_tx, commands_rx) = mpsc::channel(config.command_queue_len);
        let shared = Arc::new(Shared {
            endpoint,
            dialog_layer,
            events: events_tx,
            calls: Mutex::new(HashMap::new()),
            default_route: Route::new(config.default_trunk()),
            named_routes: config.trunks.keys().filter_map(|n| Some((n.clone(), Route::new(config.named_trunk(n)?)))).collect(),
            counters: Counters::default(),
            local_ip,
            local_sip,
            cancel,
            registrar: config.registrar.clone().map(|r| Mutex::new(registrar::Registrar::new(r, config.trunk_addrs()))),
            kernel_relay,
            config,
        });
        let endpoint_inner = shared.endpoint.inner.clone();
        tokio::spawn(async move {
            if let Err(e) = endpoint_inner.serve().await {
                tracing::error!(error = %e, "SIP endpoint stopped");
            }
        });
        tokio::spawn(incoming_loop(shared.clone(), incoming));
        tokio::spawn(command_loop(shared.clone(), commands_rx));
        for route in std::iter::once(&shared.default_route).chain(shared.named_routes.values()) {
            if route.trunk.register_expires_s.is_some() {
                tokio::spawn(register_loop(shared.clone(), route.clone()));
            }
        }
        tracing::info!(local = %local_sip, proxy = %shared.config.proxy, "SIP telephony started");
        Ok((SipTelephony { commands: commands_tx, shared }, events_rx))
    }

    /// A sender for commands (clone it freely); bounded by `command_queue_len`.
    pub fn commands(&self) -> mpsc::Sender<TelephonyCommand> {
        self.commands.clone()
    }

    /// Queues one command, waiting when the queue is full.
    pub async fn send(&self, command: TelephonyCommand) -> Result<(), SipError> {
        self.commands.send(command).await.map_err(|_| SipError::Stopped)
    }

    /// The local SIP address (as written in Via and Contact).
    pub fn local_sip_addr(&self) -> SocketAddr {
        self.shared.local_sip
    }

    pub fn stats(&self) -> SipStats {
        let c = &self.shared.counters;
        SipStats {
            invites_sent: c.invites_sent.load(Ordering::Relaxed),
            answered: c.answered.load(Ordering::Relaxed),
            ended: c.ended.load(Ordering::Relaxed),
            refused_requests: c.refused_requests.load(Ordering::Relaxed),
            rtp_packets_sent: c.rtp_packets_sent.load(Ordering::Relaxed),
            rtp_packets_received: c.rtp_packets_received.load(Ordering::Relaxed),
            rtp_packets_relayed: c.rtp_packets_relayed.load(Ordering::Relaxed),
            connected: c.connected.load(Ordering::Relaxed),
            kernel_bridged: c.kernel_bridged.load(Ordering::Relaxed),
            active_calls: self.shared.calls.lock().map(|m| m.len() as u64).unwrap_or_default(),
        }
    }

    /// The Contact URI an agent's phone registered with the built-in registrar, if it is
    /// registered now.
    pub fn agent_contact(&self, agent: campana_core::ids::UserId) -> Option<String> {
        let registrar = self.shared.registrar.as_ref()?;
        let r = registrar.lock().expect("registrar lock poisoned");
        r.binding_of(agent, std::time::Instant::now()).map(|b| b.contact.clone())
    }

    /// Where the recording of a call is (or will be) written, when recordings are configured.
    pub fn recording_path(&self, call_id: CallId) -> Option<std::path::PathBuf> {
        self.shared.config.recordings_dir.as_deref().map(|d| recording::recording_path(d, call_id))
    }

    /// Stops the endpoint and every task.
    pub fn shutdown(&self) {
        self.shared.cancel.cancel();
    }
}

impl Drop for SipTelephony {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

/// Receive buffer asked for the SIP UDP socket (the kernel caps it at `net.core.rmem_max`). The
/// default (about 200 KiB) overflowed at 2,000 calls/s in the benchmark: responses were dropped,
/// INVITEs retransmitted and calls lost.
pub const SIP_UDP_RECV_BUFFER_BYTES: usize = 4 << 20;

/// Binds the SIP UDP socket with a large receive buffer (rsipstack's own constructor keeps the
/// system default).
fn bind_sip_udp(addr: SocketAddr) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if let Err(e) = socket.set_recv_buffer_size(SIP_UDP_RECV_BUFFER_BYTES) {
        tracing::warn!(error = %e, "cannot enlarge the SIP socket's receive buffer");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// The local address the OS would use to reach `peer` (no packet is sent).
async fn route_ip_towards(peer: SocketAddr) -> Result<IpAddr, SipError> {
    let any: SocketAddr = if peer.is_ipv4() { SocketAddr::from(([0, 0, 0, 0], 0)) } else { SocketAddr::from(([0u16; 8], 0)) };
    let s = tokio::net::UdpSocket::bind(any).await?;
    s.connect(peer).await?;
    Ok(s.local_addr()?.ip())
}

async fn emit(shared: &Shared, event: TelephonyEvent) {
    if shared.events.send(event).await.is_err() {
        tracing::debug!("telephony event receiver dropped");
    }
}

async fn command_loop(shared: Arc<Shared>, mut commands: mpsc::Receiver<TelephonyCommand>) {
    loop {
        let command = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            c = commands.recv() => match c { Some(c) => c, None => return },
        };
        match command {
            TelephonyCommand::Dial { call_id, to, caller_id, trunk, ring_timeout_s, record_audio, analysis, .. } => {
                let route = match &trunk {
                    None => Some(shared.default_route.clone()),
                    Some(name) => shared.named_routes.get(name).cloned(),
                };
                let Some(route) = route else {
                    tracing::error!(%call_id, trunk = ?trunk, "the profile names a SIP trunk the SIP configuration does not have ([trunks])");
                    shared.counters.ended.fetch_add(1, Ordering::Relaxed);
                    emit(&shared, TelephonyEvent::Ended { call_id, result: CallResult::DialError }).await;
                    continue;
                };
                let control = {
                    let mut calls = shared.calls.lock().expect("calls lock poisoned");
                    if calls.contains_key(&call_id) {
                        tracing::warn!(%call_id, "dial for a call id already in progress: ignored");
                        continue;
                    }
                    if route.channels.load(Ordering::Relaxed) >= route.trunk.max_channels {
                        None
                    } else {
                        let (tx, rx) = mpsc::channel(CALL_CONTROL_QUEUE_LEN);
                        calls.insert(call_id, tx);
                        route.channels.fetch_add(1, Ordering::Relaxed);
                        Some(rx)
                    }
                };
                let Some(control) = control else {
                    tracing::warn!(%call_id, trunk = route.label(), max_channels = route.trunk.max_channels, "all channels busy");
                    shared.counters.ended.fetch_add(1, Ordering::Relaxed);
                    emit(&shared, TelephonyEvent::Ended { call_id, result: CallResult::DialError }).await;
                    continue;
                };
                let send_at = {
                    let mut next = route.next_invite_at.lock().expect("pacing lock poisoned");
                    let now = Instant::now();
                    let at = (*next).max(now);
                    *next = at + Duration::from_secs(1) / route.trunk.calls_per_second;
                    at
                };
                let dial = Dial { call_id, to, caller_id, ring_timeout_s, record_audio, analysis, send_at, route };
                tokio::spawn(run_call(shared.clone(), dial, control));
            }
            TelephonyCommand::HangUp { call_id } => control_call(&shared, call_id, CallControl::HangUp).await,
            TelephonyCommand::Connect { call_id, agent } => control_call(&shared, call_id, CallControl::Connect(agent)).await,
            TelephonyCommand::Disconnect { call_id, agent } => control_call(&shared, call_id, CallControl::Disconnect(agent)).await,
            TelephonyCommand::Play { call_id, prompt, then_hang_up, after_beep } => {
                control_call(&shared, call_id, CallControl::Play { prompt, then_hang_up, after_beep }).await
            }
        }
    }
}

async fn control_call(shared: &Shared, call_id: CallId, control: CallControl) {
    let tx = shared.calls.lock().expect("calls lock poisoned").get(&call_id).cloned();
    match tx {
        Some(tx) => {
            if tx.send(control).await.is_err() {
                tracing::debug!(%call_id, "call already ended");
            }
        }
        None => tracing::debug!(%call_id, "control for an unknown or ended call"),
    }
}

struct Dial {
    record_audio: bool,
    analysis: campana_core::telephony::DialAnalysis,
    call_id: CallId,
    to: PhoneNumber,
    caller_id: Option<PhoneNumber>,
    ring_timeout_s: u32,
    send_at: Instant,
    /// The trunk the call goes out through.
    route: Arc<Route>,
}

impl From<rsipstack::Error> for SipError {
    fn from(e: rsipstack::Error) -> SipError {
        SipError::Stack(Box::new(e))
    }
}

fn sip_err(e: rsipstack::Error) -> SipError {
    SipError::from(e)
}

async fn run_call(shared: Arc<Shared>, dial: Dial, mut control: mpsc::Receiver<CallControl>) {
    let call_id = dial.call_id;
    let mut rtp_stats = RtpStats::default();
    let result = place_call(&shared, &dial, &mut control, &mut rtp_stats).await;
    shared.calls.lock().expect("calls lock poisoned").remove(&call_id);
    dial.route.channels.fetch_sub(1, Ordering::Relaxed);
    let c = &shared.counters;
    c.ended.fetch_add(1, Ordering::Relaxed);
    c.rtp_packets_sent.fetch_add(rtp_stats.packets_sent, Ordering::Relaxed);
    c.rtp_packets_received.fetch_add(rtp_stats.packets_received, Ordering::Relaxed);
    c.rtp_packets_relayed.fetch_add(rtp_stats.packets_relayed, Ordering::Relaxed);
    tracing::info!(%call_id, result = %result.as_str(), rtp_sent = rtp_stats.packets_sent, rtp_received = rtp_stats.packets_received, "call ended");
    emit(&shared, TelephonyEvent::Ended { call_id, result }).await;
}

/// `now` for the call's state machine.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Sleeps until `at`, forever when `None`.
async fn sleep_until_opt(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// The result an [`call_leg::Action::End`] among `actions` names, if any.
fn end_of(actions: &[call_leg::Action]) -> Option<CallResult> {
    actions.iter().find_map(|a| if let call_leg::Action::End(r) = a { Some(*r) } else { None })
}

/// Turns an engine's control message into the call's event: the agent's registered contact is
/// looked up, the prompt's audio loaded (only for an answered call: it is played nowhere else).
async fn control_event(shared: &Shared, leg: &CallLeg, payload_type: u8, control: Option<CallControl>) -> call_leg::Event<'static> {
    use call_leg::Event;
    match control {
        Some(CallControl::HangUp) | None => Event::HangUp,
        Some(CallControl::Connect(agent)) => {
            let contact = shared.registrar.as_ref().and_then(|r| {
                r.lock().expect("registrar lock poisoned").binding_of(agent, std::time::Instant::now()).map(|b| b.contact.clone())
            });
            Event::Connect { agent, contact }
        }
        Some(CallControl::Disconnect(agent)) => Event::Disconnect { agent },
        Some(CallControl::Play { prompt, then_hang_up, after_beep }) => {
            let audio = if leg.phase() == call_leg::Phase::Answered {
                match audio::prompt_path(shared.config.prompts_dir.as_deref(), &prompt.0) {
                    Ok(path) => audio::load_prompt(&path, payload_type).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            } else {
                Ok(Vec::new())
            };
            Event::Play { prompt: prompt.0, audio, then_hang_up, after_beep }
        }
    }
}

/// Runs one call to its end and returns its result: the IO shell around [`CallLeg`], which
/// decides everything. This task owns the sockets, the dialog, the agent leg's task and the
/// timers; it feeds the leg what happened and carries out the actions it returns.
async fn place_call(shared: &Arc<Shared>, dial: &Dial, control: &mut mpsc::Receiver<CallControl>, rtp_stats: &mut RtpStats) -> CallResult {
    use call_leg::{Action, Event};
    let call_id = dial.call_id;
    let mut leg = CallLeg::new(call_leg::LegConfig {
        call_id,
        send_at: dial.send_at.into_std(),
        ring_timeout_s: dial.ring_timeout_s,
        max_call_duration_s: shared.config.max_call_duration_s,
        sit: sit_on(shared, dial),
        fax: fax_on(shared, dial),
        amd: dial.analysis.machine.map(|t| shared.config.amd.with_tuning(t)),
        record: dial.record_audio,
    });
    // Wait for the pacing slot; a hang-up meanwhile ends the call before any INVITE.
    loop {
        let deadline = leg.next_deadline();
        let actions = tokio::select! {
            _ = sleep_until_opt(deadline) => leg.handle(Event::Tick, now()),
            c = control.recv() => {
                let event = control_event(shared, &leg, sdp::PT_PCMU, c).await;
                leg.handle(event, now())
            }
            _ = shared.cancel.cancelled() => leg.handle(Event::Shutdown, now()),
        };
        let mut send = false;
        for action in actions {
            match action {
                Action::SendInvite => send = true,
                Action::Emit(event) => emit(shared, event).await,
                Action::End(result) => return result,
                other => unreachable!("{other:?} before the INVITE"),
            }
        }
        if send {
            break;
        }
    }
    let rtp = match RtpLeg::bind(shared.local_ip, &shared.cancel).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(%call_id, error = %e, "cannot bind an RTP port");
            return end_of(&leg.handle(Event::InviteNotSent(CallResult::SystemError), now())).unwrap_or(CallResult::SystemError);
        }
    };
    let offer = sdp::offer(call_id.0, shared.local_ip, rtp.local.port());
    let option = match dial.route.invite_option(dial, offer, shared.local_sip) {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(%call_id, error = %e, "cannot build the INVITE");
            return end_of(&leg.handle(Event::InviteNotSent(CallResult::DialError), now())).unwrap_or(CallResult::DialError);
        }
    };
    let (state_tx, mut states) = shared.dialog_layer.new_dialog_state_channel();
    let (dialog, mut invite) = match shared.dialog_layer.do_invite_async(option, state_tx) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!(%call_id, error = %e, "cannot send the INVITE");
            return end_of(&leg.handle(Event::InviteNotSent(CallResult::DialError), now())).unwrap_or(CallResult::DialError);
        }
    };
    shared.counters.invites_sent.fetch_add(1, Ordering::Relaxed);
    leg.handle(Event::InviteSent, now());

    let (analysis_tx, mut analysis_rx) = mpsc::channel::<recording::RecFrame>(ANALYSIS_QUEUE_LEN);
    let mut io = CallIo {
        shared,
        dial,
        rtp: &rtp,
        dialog: &dialog,
        analysis_tx,
        agent_leg: None,
        agent_answered: None,
        bridged: None,
        unbridged_relayed: 0,
        kernel_bridge: None,
        kernel_forwarded: Default::default(),
        prompt: None,
        recorder: None,
        offer: None,
    };
    let mut digits = rtp.digits.lock().await;
    let mut invite_done = false;
    let mut states_closed = false;
    let result = loop {
        let deadline = leg.next_deadline();
        // Biased: dialog states (180 before 200) are handled before the INVITE's outcome, so
        // Ringing always precedes Answered.
        let wake = tokio::select! {
            biased;
            Some(digit) = digits.recv() => Wake::Digit(digit),
            Some(frame) = analysis_rx.recv(), if leg.analysing() => Wake::Frame(frame),
            _ = async {
                match io.prompt.as_mut() {
                    Some(done) => { let _ = done.await; }
                    None => std::future::pending().await,
                }
            } => Wake::PromptDone,
            ev = async {
                match io.agent_leg.as_mut() {
                    Some((rx, _)) => rx.recv().await,
                    None => std::future::pending().await,
                }
            } => Wake::Agent(ev),
            state = states.recv(), if !states_closed => Wake::State(state),
            r = &mut invite, if !invite_done => {
                invite_done = true;
                Wake::Invite(match r {
                    Ok(Ok((_, Some(resp)))) => Ok(resp),
                    Ok(Ok((_, None))) => Err("no final response".to_string()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(e.to_string()),
                })
            }
            _ = sleep_until_opt(deadline) => Wake::Tick,
            c = control.recv() => Wake::Control(c),
            _ = shared.cancel.cancelled() => Wake::Shutdown,
        };
        let actions = match wake {
            Wake::Digit(digit) => leg.handle(Event::Digit(digit), now()),
            Wake::Frame(frame) => {
                let samples: Vec<f32> = match frame.payload_type {
                    sdp::PT_PCMA => frame.payload.iter().map(|b| f32::from(audio::alaw_to_linear(*b))).collect(),
                    _ => frame.payload.iter().map(|b| f32::from(audio::ulaw_to_linear(*b))).collect(),
                };
                leg.handle(Event::CustomerAudio(&samples), now())
            }
            Wake::PromptDone => {
                io.prompt = None;
                leg.handle(Event::PromptDone, now())
            }
            Wake::Agent(Some(AgentLegEvent::Answered(agent_rtp))) => {
                io.agent_answered = Some(agent_rtp);
                leg.handle(Event::AgentAnswered, now())
            }
            Wake::Agent(Some(AgentLegEvent::Failed(why))) => leg.handle(Event::AgentFailed(why), now()),
            Wake::Agent(Some(AgentLegEvent::Ended) | None) => leg.handle(Event::AgentEnded, now()),
            Wake::State(None) => {
                // The dialog is gone: its final response arrives through `invite`.
                states_closed = true;
                leg.handle(Event::StatesClosed, now())
            }
            Wake::State(Some(state)) => match state {
                DialogState::Trying(_) => leg.handle(Event::Trying, now()),
                DialogState::Early(_, resp) => leg.handle(Event::Early { sdp: &resp.body }, now()),
                DialogState::Confirmed(_, resp) => leg.handle(Event::Confirmed { sdp: &resp.body }, now()),
                DialogState::Terminated(_, reason) => {
                    tracing::debug!(%call_id, ?reason, "dialog terminated");
                    leg.handle(Event::Terminated, now())
                }
                DialogState::Updated(_, request, handle) => {
                    io.offer = Some((request, handle));
                    leg.handle(Event::Reoffer, now())
                }
                _ => Vec::new(),
            },
            Wake::Invite(Ok(resp)) => {
                let code = resp.status_code.code();
                if resp.status_code.kind() != StatusCodeKind::Successful {
                    tracing::debug!(%call_id, code, "final response");
                }
                let local_timeout = code == 408 && is_local_timeout(&resp);
                leg.handle(Event::Final { code, sdp: &resp.body, local_timeout }, now())
            }
            Wake::Invite(Err(e)) => {
                tracing::warn!(%call_id, error = %e, "INVITE failed without a final response");
                leg.handle(Event::NoFinal, now())
            }
            Wake::Tick => leg.handle(Event::Tick, now()),
            Wake::Control(c) => {
                let event = control_event(shared, &leg, rtp.payload_type().unwrap_or(sdp::PT_PCMU), c).await;
                leg.handle(event, now())
            }
            Wake::Shutdown => leg.handle(Event::Shutdown, now()),
        };
        if let Some(result) = io.apply(call_id, actions).await {
            break result;
        }
    };
    drop(digits);
    if let Some((_, stop)) = io.recorder.take() {
        stop.cancel();
    }
    if let Some((_, stop)) = io.agent_leg.take() {
        stop.cancel();
    }
    shared.dialog_layer.remove_dialog(&dialog.id());
    let mut forwarded = match io.kernel_bridge.take() {
        Some(k) => k.close().await,
        None => Default::default(),
    };
    for (f, earlier) in forwarded.iter_mut().zip(io.kernel_forwarded) {
        f.packets += earlier.packets;
        f.bytes += earlier.bytes;
    }
    *rtp_stats = rtp.stats();
    // Both legs' packets, as the user-space counters of the two legs add up to.
    rtp_stats.packets_received += forwarded[0].packets + forwarded[1].packets;
    rtp_stats.bytes_received += forwarded[0].bytes + forwarded[1].bytes;
    rtp_stats.packets_relayed += forwarded[0].packets + forwarded[1].packets;
    rtp_stats.packets_relayed += io.unbridged_relayed;
    if let Some(agent_rtp) = io.bridged.take() {
        let a = agent_rtp.stats();
        rtp_stats.packets_relayed += a.packets_relayed;
    }
    result
}

/// What woke a call task up.
enum Wake {
    Digit(char),
    Frame(recording::RecFrame),
    PromptDone,
    Agent(Option<AgentLegEvent>),
    State(Option<DialogState>),
    Invite(Result<rsipstack::sip::Response, String>),
    Tick,
    Control(Option<CallControl>),
    Shutdown,
}

/// The IO side of a call after its INVITE: what [`call_leg::Action`]s act on.
struct CallIo<'a> {
    shared: &'a Arc<Shared>,
    dial: &'a Dial,
    rtp: &'a RtpLeg,
    dialog: &'a rsipstack::dialog::invite_dialog::InviteDialog,
    /// The customer leg's frames for call analysis go here.
    analysis_tx: mpsc::Sender<recording::RecFrame>,
    /// The agent leg's task: its events and its stop.
    agent_leg: Option<(mpsc::Receiver<AgentLegEvent>, CancellationToken)>,
    /// The agent leg's RTP, from its answer until the bridge.
    agent_answered: Option<Arc<RtpLeg>>,
    /// The agent leg's RTP once bridged.
    bridged: Option<Arc<RtpLeg>>,
    /// Packets relayed by agent legs since unbridged (an agent who left).
    unbridged_relayed: u64,
    /// The bridge's rules in the kernel, when it forwards this call's RTP (closed before the
    /// legs' ports are released, so no rule outlives its port).
    kernel_bridge: Option<kernel_relay::KernelBridge>,
    /// Packets the kernel forwarded under rules since replaced (a media address that moved).
    kernel_forwarded: [kernel_relay::KernelCount; 2],
    /// The end of the prompt playing now.
    prompt: Option<tokio::sync::oneshot::Receiver<()>>,
    /// The recording of this call, started at answer when asked for: its frame queue and stop.
    recorder: Option<(mpsc::Sender<recording::RecFrame>, CancellationToken)>,
    /// The far end's re-INVITE / UPDATE waiting for its answer.
    offer: Option<(rsipstack::sip::Request, rsipstack::dialog::dialog::TransactionHandle)>,
}

impl CallIo<'_> {
    /// Carries out the leg's actions in order; the call's result once it ended.
    async fn apply(&mut self, call_id: CallId, actions: Vec<call_leg::Action>) -> Option<CallResult> {
        use call_leg::Action;
        let shared = self.shared;
        let rtp = self.rtp;
        for action in actions {
            match action {
                Action::SendInvite => unreachable!("the INVITE is out"),
                Action::Cancel => {
                    if let Err(e) = self.dialog.cancel().await {
                        tracing::warn!(%call_id, error = %e, "CANCEL failed");
                    }
                }
                Action::Bye => {
                    if let Err(e) = self.dialog.hangup().await {
                        tracing::warn!(%call_id, error = %e, "BYE failed");
                    }
                }
                Action::StartMedia { sdp } => start_media(rtp, &sdp, call_id),
                Action::StartRecording => self.recorder = start_recording(shared, self.dial, rtp),
                Action::AnalyseCustomer => rtp.record_to(self.analysis_tx.clone(), recording::CHANNEL_CUSTOMER),
                Action::StopAnalysing => rtp.stop_recording_to(&self.analysis_tx),
                Action::Play { audio } => {
                    self.prompt = Some(match audio {
                        Some(audio) => rtp.play(audio),
                        None => {
                            let (tx, rx) = tokio::sync::oneshot::channel();
                            let _ = tx.send(());
                            rx
                        }
                    })
                }
                Action::StopPrompt => self.prompt = None,
                Action::CallAgent { agent, contact } => {
                    tracing::debug!(%call_id, %agent, %contact, "calling the agent's phone");
                    let codec = rtp.payload_type().unwrap_or(sdp::PT_PCMU);
                    let (tx, rx) = mpsc::channel(AGENT_LEG_QUEUE_LEN);
                    let stop = shared.cancel.child_token();
                    tokio::spawn(run_agent_leg(shared.clone(), call_id, contact, codec, tx, stop.clone()));
                    self.agent_leg = Some((rx, stop));
                }
                Action::StopAgentLeg => {
                    if let Some((_, stop)) = self.agent_leg.take() {
                        stop.cancel();
                    }
                }
                Action::Unbridge => {
                    let Some(agent_rtp) = self.bridged.take() else { continue };
                    if let Some(k) = self.kernel_bridge.take() {
                        let forwarded = k.close().await;
                        for (sum, f) in self.kernel_forwarded.iter_mut().zip(forwarded) {
                            sum.packets += f.packets;
                            sum.bytes += f.bytes;
                        }
                    }
                    RtpLeg::unbridge(rtp, &agent_rtp);
                    self.unbridged_relayed += agent_rtp.stats().packets_relayed;
                }
                Action::Bridge { kernel } => {
                    let Some(agent_rtp) = self.agent_answered.take() else {
                        tracing::error!(%call_id, "bridge without the agent leg's media");
                        continue;
                    };
                    if let Some((frames, _)) = &self.recorder {
                        agent_rtp.record_to(frames.clone(), recording::CHANNEL_AGENT);
                    }
                    // The far ends, read before the bridge stops the legs' own sending.
                    let far_ends = (rtp.target(), agent_rtp.target());
                    if !RtpLeg::bridge(rtp, &agent_rtp) {
                        tracing::warn!(%call_id, "a leg has no media address: bridged without media relay");
                    } else if self.recorder.is_none() && kernel {
                        self.kernel_bridge = kernel_bridge_of(shared, (rtp, far_ends.0), (&agent_rtp, far_ends.1)).await;
                        if self.kernel_bridge.is_some() {
                            shared.counters.kernel_bridged.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    self.bridged = Some(agent_rtp);
                }
                Action::AnswerOffer { bridged } => {
                    let Some((request, handle)) = self.offer.take() else { continue };
                    // The first offer listed both G.711 codecs; the answer names the one in use.
                    let partner = if bridged { self.bridged.clone() } else { None };
                    let follow = match &partner {
                        Some(partner) => MediaFollow::Bridged { partner },
                        None => MediaFollow::Free,
                    };
                    let moved = answer_in_dialog_offer(shared, call_id, (call_id.0, call_id.0 + 1), rtp, follow, &request, handle).await;
                    if let (Some(_), Some(partner)) = (moved, &partner) {
                        // The kernel's rules name the old address: take them out (the user-space
                        // relay, already following, forwards meanwhile) and put in new ones.
                        if let Some(k) = self.kernel_bridge.take() {
                            let forwarded = k.close().await;
                            for (sum, f) in self.kernel_forwarded.iter_mut().zip(forwarded) {
                                sum.packets += f.packets;
                                sum.bytes += f.bytes;
                            }
                            let far_end = |leg: &RtpLeg| {
                                leg.far_end().map(|remote| RtpTarget { remote, payload_type: leg.payload_type().unwrap_or(sdp::PT_PCMU) })
                            };
                            self.kernel_bridge = kernel_bridge_of(shared, (rtp, far_end(rtp)), (partner, far_end(partner))).await;
                        }
                    }
                }
                Action::Emit(event) => {
                    match &event {
                        TelephonyEvent::Answered { .. } => {
                            shared.counters.answered.fetch_add(1, Ordering::Relaxed);
                        }
                        TelephonyEvent::Connected { .. } => {
                            shared.counters.connected.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                    emit(shared, event).await;
                }
                Action::End(result) => return Some(result),
            }
        }
        None
    }
}

/// How an in-dialog offer's new media address is handled on a leg.
enum MediaFollow<'a> {
    /// The leg is not bridged: its own media goes to the new address.
    Free,
    /// The leg is bridged to `partner`: the relay sends this leg's media to the new address.
    Bridged { partner: &'a RtpLeg },
    /// The leg is bridged and its partner is out of reach here: a new address is refused (488).
    Refuse,
}

/// Answers a re-INVITE or UPDATE from the far end of an answered leg (RFC 4028 session refresh,
/// hold, a new media address) with 200 OK and this leg's SDP, for the codec in use and the same
/// origin (`session_id`, with the version of that description), so the session goes on
/// unchanged on Campana's side (an UPDATE without SDP gets a bare 200). A new media address is
/// followed (the leg's own media, or the bridge's relay towards it) or, where it cannot be,
/// refused with 488: never accepted and ignored. An offer Campana cannot read gets 488.
/// Returns the new address when the media moved.
async fn answer_in_dialog_offer(
    shared: &Shared,
    call_id: CallId,
    (session_id, session_version): (u64, u64),
    rtp: &RtpLeg,
    follow: MediaFollow<'_>,
    request: &rsipstack::sip::Request,
    handle: rsipstack::dialog::dialog::TransactionHandle,
) -> Option<SocketAddr> {
    let payload_type = rtp.payload_type().unwrap_or(sdp::PT_PCMU);
    let mut moved_to = None;
    if !request.body.is_empty() {
        match sdp::parse_answer(&request.body) {
            Ok(offer) => {
                // The far end as last known: a bridged leg sends nothing of its own, its
                // `target` is cleared, but the address is still the one in use.
                let moved = rtp.far_end().is_some_and(|remote| remote != offer.remote_rtp);
                if moved {
                    match follow {
                        MediaFollow::Free => rtp.set_target(RtpTarget { remote: offer.remote_rtp, payload_type }),
                        MediaFollow::Bridged { partner } => RtpLeg::follow(rtp, partner, offer.remote_rtp),
                        MediaFollow::Refuse => {
                            tracing::warn!(%call_id, remote = %offer.remote_rtp, "media address changed on a bridged agent leg: 488");
                            if let Err(e) = handle.reply(StatusCode::NotAcceptableHere).await {
                                tracing::debug!(%call_id, error = ?e, "488 not sent");
                            }
                            return None;
                        }
                    }
                    tracing::info!(%call_id, remote = %offer.remote_rtp, "media address changed: followed");
                    moved_to = Some(offer.remote_rtp);
                }
            }
            Err(e) => {
                tracing::warn!(%call_id, method = %request.method, error = %e, "in-dialog offer unreadable: 488");
                if let Err(e) = handle.reply(StatusCode::NotAcceptableHere).await {
                    tracing::debug!(%call_id, error = ?e, "488 not sent");
                }
                return None;
            }
        }
    }
    if request.body.is_empty() && request.method == Method::Update {
        // An UPDATE without an offer (a bare session refresh) gets a 200 without SDP (RFC 3311).
        if let Err(e) = handle.reply(StatusCode::OK).await {
            tracing::debug!(%call_id, error = ?e, "200 to the UPDATE not sent");
        }
        return moved_to;
    }
    tracing::debug!(%call_id, method = %request.method, "in-dialog offer answered (session refresh or hold)");
    let body = sdp::offer_codec_version(session_id, session_version, shared.local_ip, rtp.local.port(), Some(payload_type)).into_bytes();
    let headers = vec![Header::ContentType("application/sdp".into())];
    if let Err(e) = handle.respond(StatusCode::OK, Some(headers), Some(body)).await {
        tracing::debug!(%call_id, error = ?e, "200 to the in-dialog offer not sent");
    }
    moved_to
}

/// Whether a 408 was made by rsipstack itself when the INVITE's Timer B (or C) fired, not
/// received: a response from a UAS always tags To (RFC 3261 §8.2.6.2); the synthesized one
/// copies the request's untagged To.
fn is_local_timeout(resp: &rsipstack::sip::Response) -> bool {
    use rsipstack::sip::HeadersExt;
    resp.to_header().ok().and_then(|to| to.tag().ok().flatten()).is_none()
}

/// Hands a bridged call's RTP to the kernel when `kernel_relay` is on and every address is
/// IPv4; the user-space relay goes on forwarding until the rules are in, and for good when
/// they cannot be added. (The caller counts the call in `kernel_bridged` once, not again when
/// the rules are replaced after a media move.)
async fn kernel_bridge_of(
    shared: &Shared,
    customer: (&RtpLeg, Option<RtpTarget>),
    agent: (&RtpLeg, Option<RtpTarget>),
) -> Option<kernel_relay::KernelBridge> {
    let relay = shared.kernel_relay.as_ref()?;
    let ((customer, Some(c)), (agent, Some(a))) = (customer, agent) else { return None };
    let (to_agent, to_customer) = kernel_relay::paths(customer.local, c.remote, agent.local, a.remote)?;
    let bridge =
        tokio::time::timeout(Duration::from_secs(KERNEL_BRIDGE_TIMEOUT_S), relay.bridge(to_agent, to_customer)).await.ok().flatten();
    bridge
}

/// Calls an agent's registered phone for a customer call and reports its progress; `stop`
/// ends it (CANCEL before answer, BYE after).
async fn run_agent_leg(
    shared: Arc<Shared>,
    call_id: CallId,
    contact: String,
    codec: u8,
    events: mpsc::Sender<AgentLegEvent>,
    stop: CancellationToken,
) {
    let fail = |why: String| {
        let events = events.clone();
        async move {
            let _ = events.send(AgentLegEvent::Failed(why)).await;
        }
    };
    let rtp = match RtpLeg::bind(shared.local_ip, &shared.cancel).await {
        Ok(r) => Arc::new(r),
        Err(e) => return fail(format!("cannot bind an RTP port: {e}")).await,
    };
    let option = match agent_invite_option(&shared, call_id, &contact, codec, rtp.local.port()) {
        Ok(o) => o,
        Err(e) => return fail(format!("bad agent contact {contact}: {e}")).await,
    };
    let (state_tx, mut states) = shared.dialog_layer.new_dialog_state_channel();
    let (dialog, mut invite) = match shared.dialog_layer.do_invite_async(option, state_tx) {
        Ok(x) => x,
        Err(e) => return fail(format!("cannot send the INVITE: {e}")).await,
    };
    let deadline = tokio::time::sleep(Duration::from_secs(u64::from(shared.config.agent_answer_timeout_s)));
    tokio::pin!(deadline);
    let mut answered = false;
    let mut invite_done = false;
    loop {
        tokio::select! {
            r = &mut invite, if !invite_done => {
                invite_done = true;
                match r {
                    Ok(Ok((_, Some(resp)))) if resp.status_code.kind() == StatusCodeKind::Successful => {
                        if stop.is_cancelled() { break; }
                        match sdp::parse_answer(&resp.body) {
                            Ok(a) => rtp.set_target(RtpTarget { remote: a.remote_rtp, payload_type: a.payload_type }),
                            Err(e) => tracing::warn!(%call_id, error = %e, "agent phone's SDP unusable"),
                        }
                        answered = true;
                        let _ = events.send(AgentLegEvent::Answered(rtp.clone())).await;
                    }
                    Ok(Ok((_, Some(resp)))) => { fail(format!("agent phone answered {}", resp.status_code.code())).await; break; }
                    Ok(Ok((_, None))) => { fail("no final response from the agent phone".into()).await; break; }
                    Ok(Err(e)) => { fail(format!("agent INVITE failed: {e}")).await; break; }
                    Err(e) => { fail(format!("agent INVITE task failed: {e}")).await; break; }
                }
            }
            st = states.recv() => match st {
                Some(DialogState::Terminated(_, _)) if answered => { let _ = events.send(AgentLegEvent::Ended).await; break; }
                Some(DialogState::Updated(_, request, handle)) => {
                    // The phone's re-INVITE or UPDATE (a session refresh, hold): the leg is bridged
                    // once answered.
                    // Its offer already named the one codec: the description is unchanged.
                    // A new address after the bridge cannot be followed from here (the relay
                    // towards the phone is the customer leg's): 488.
                    let session = call_id.0 | (1 << 62);
                    let follow = if answered { MediaFollow::Refuse } else { MediaFollow::Free };
                    answer_in_dialog_offer(&shared, call_id, (session, session), &rtp, follow, &request, handle).await;
                }
                Some(_) => {}
                None if answered => { let _ = events.send(AgentLegEvent::Ended).await; break; }
                None => {}
            },
            _ = &mut deadline, if !answered => {
                if let Err(e) = dialog.cancel().await { tracing::debug!(%call_id, error = %e, "agent CANCEL failed"); }
                fail(format!("agent phone did not answer within {} s", shared.config.agent_answer_timeout_s)).await;
                break;
            }
            _ = stop.cancelled() => {
                let r = if answered { dialog.hangup().await } else { dialog.cancel().await };
                if let Err(e) = r { tracing::debug!(%call_id, error = %e, "ending the agent leg failed"); }
                break;
            }
        }
    }
    shared.dialog_layer.remove_dialog(&dialog.id());
    let s = rtp.stats();
    shared.counters.rtp_packets_sent.fetch_add(s.packets_sent, Ordering::Relaxed);
    shared.counters.rtp_packets_received.fetch_add(s.packets_received, Ordering::Relaxed);
}

fn agent_invite_option(shared: &Shared, call_id: CallId, contact: &str, codec: u8, rtp_port: u16) -> Result<InviteOption, SipError> {
    let callee = Uri::try_from(contact).map_err(|e| sip_err(e.into()))?;
    let destination = SipAddr::try_from(&callee)?;
    // Never an agent leg to a trunk (the registrar refuses such contacts; this holds even so).
    if let Ok(to) = destination.get_socketaddr() {
        if shared.config.trunk_addrs().contains(&to) {
            return Err(SipError::Config(format!("agent contact {contact} is a trunk's address")));
        }
    }
    let caller = Uri::try_from(format!("sip:campana@{}", shared.local_sip).as_str()).map_err(|e| sip_err(e.into()))?;
    let offer = sdp::offer_codec(call_id.0 | (1 << 62), shared.local_ip, rtp_port, Some(codec));
    Ok(InviteOption {
        caller_display_name: Some(format!("Campana {call_id}")),
        caller: caller.clone(),
        callee,
        destination: Some(destination),
        content_type: Some("application/sdp".into()),
        offer: Some(offer.into_bytes()),
        contact: caller,
        ..Default::default()
    })
}

/// SIT detection on this call: the trunk allows it and the profile asks for it.
fn sit_on(shared: &Shared, dial: &Dial) -> bool {
    shared.config.sit_detection && dial.analysis.sit
}

/// Fax detection on this call: the trunk allows it and the profile asks for it.
fn fax_on(shared: &Shared, dial: &Dial) -> bool {
    shared.config.fax_detection && dial.analysis.fax
}

/// Starts recording an answered call when its dial asked for it and a directory is configured.
fn start_recording(shared: &Arc<Shared>, dial: &Dial, rtp: &RtpLeg) -> Option<(mpsc::Sender<recording::RecFrame>, CancellationToken)> {
    if !dial.record_audio {
        return None;
    }
    let Some(dir) = &shared.config.recordings_dir else {
        tracing::warn!(call_id = %dial.call_id, "recording asked for but no recordings_dir is configured");
        return None;
    };
    let path = recording::recording_path(dir, dial.call_id);
    let (tx, rx) = mpsc::channel(recording::RECORDER_QUEUE_LEN);
    let stop = shared.cancel.child_token();
    let call_id = dial.call_id;
    let task_stop = stop.clone();
    tokio::spawn(async move {
        match recording::run_recorder(path, rx, task_stop).await {
            Ok(info) => tracing::info!(%call_id, path = %info.path.display(), duration_ms = info.duration_ms, "recording written"),
            Err(e) => tracing::error!(%call_id, error = %e, "recording failed"),
        }
    });
    rtp.record_to(tx.clone(), recording::CHANNEL_CUSTOMER);
    Some((tx, stop))
}

fn start_media(rtp: &RtpLeg, body: &[u8], call_id: CallId) {
    if body.is_empty() {
        return;
    }
    match sdp::parse_answer(body) {
        Ok(a) => {
            rtp.set_target(RtpTarget { remote: a.remote_rtp, payload_type: a.payload_type });
            if let Some(pt) = a.telephone_event_pt {
                rtp.set_telephone_event_pt(pt);
            }
        }
        Err(e) => tracing::warn!(%call_id, error = %e, "unusable SDP answer"),
    }
}

/// Handles requests that come to Campana: in-dialog requests (BYE, re-INVITE, ...) of calls it
/// placed go to their dialog; everything else is refused, so no outside request can make
/// Campana place or relay a call.
async fn incoming_loop(shared: Arc<Shared>, mut incoming: rsipstack::transaction::TransactionReceiver) {
    use inbound::Inbound;
    loop {
        let mut tx = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            t = incoming.recv() => match t { Some(t) => t, None => return },
        };
        let dialog = shared.dialog_layer.match_dialog(&tx);
        let registrar_on = shared.registrar.is_some();
        let (status, allow) = match inbound::decide(&tx.original.version, &tx.original.method, dialog.is_some(), registrar_on) {
            Inbound::Dialog => {
                let Some(mut dialog) = dialog else { continue };
                tokio::spawn(async move {
                    if let Err(e) = dialog.handle(&mut tx).await {
                        tracing::debug!(error = %e, "in-dialog request failed");
                    }
                });
                continue;
            }
            Inbound::Register => {
                tokio::spawn(handle_register(shared.clone(), tx));
                continue;
            }
            Inbound::Ignore => continue,
            Inbound::Refuse => {
                let refused = shared.counters.refused_requests.fetch_add(1, Ordering::Relaxed) + 1;
                let source = packet_source(&tx).map(|s| s.ip());
                // Scanners send thousands: warn on the 1st, 2nd, 4th, 8th, ... refusal, debug otherwise.
                if refused.is_power_of_two() {
                    tracing::warn!(method = %tx.original.method, ?source, refused_total = refused, "refused an out-of-dialog request (toll-fraud attempt?)");
                } else {
                    tracing::debug!(method = %tx.original.method, ?source, "refused an out-of-dialog request");
                }
                (StatusCode::Forbidden, false)
            }
            Inbound::Reply { status, allow } => {
                if dialog.is_none() && status == 405 {
                    shared.counters.refused_requests.fetch_add(1, Ordering::Relaxed);
                }
                (StatusCode::from(status), allow)
            }
        };
        let headers = if allow { vec![Header::Allow(inbound::allow(registrar_on).into())] } else { vec![] };
        // The answer is SIP/2.0 whatever the request said (the stack copies the request's).
        tx.original.version = rsipstack::sip::Version::V2;
        tokio::spawn(async move {
            if let Err(e) = tx.reply_with(status, headers, None).await {
                tracing::debug!(error = %e, "reply failed");
            }
        });
    }
}

/// Registers with one trunk and refreshes the registration before it expires.
async fn register_loop(shared: Arc<Shared>, route: Arc<Route>) {
    let expires_s = route.trunk.register_expires_s.unwrap_or(3600).max(60);
    let trunk = route.label().to_string();
    let server = match Uri::try_from(format!("sip:{}", route.domain()).as_str()) {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "invalid registrar address");
            return;
        }
    };
    let mut registration = Registration::new(shared.endpoint.inner.clone(), route.credential());
    loop {
        let wait_s = match registration.register(server.clone(), Some(expires_s)).await {
            Ok(resp) if resp.status_code.kind() == StatusCodeKind::Successful => {
                let granted_s = registration.expires().max(60);
                tracing::info!(granted_s, trunk, "registered with the trunk");
                u64::from(granted_s) * 8 / 10
            }
            Ok(resp) => {
                tracing::warn!(status = resp.status_code.code(), trunk, "registration refused");
                REGISTER_RETRY_S
            }
            Err(e) => {
                tracing::warn!(error = %e, trunk, "registration failed");
                REGISTER_RETRY_S
            }
        };
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(wait_s)) => {}
        }
    }
}

/// The address a request's packet came from (the UDP datagram's source, the TCP connection's
/// peer), never what the request says about itself (Via, `received`, Contact).
fn packet_source(tx: &rsipstack::transaction::Transaction) -> Option<SocketAddr> {
    tx.connection.as_ref()?.get_remote_addr()?.get_socketaddr().ok()
}

/// Answers a REGISTER with the built-in registrar's decision.
async fn handle_register(shared: Arc<Shared>, mut tx: rsipstack::transaction::Transaction) {
    use registrar::{RegisterDecision, RegisterRequest};
    let Some(registrar) = shared.registrar.as_ref() else { return };
    let fields = registrar::register_fields(&tx.original);
    let decision = match packet_source(&tx).map(|s| s.ip()) {
        None => RegisterDecision::BadRequest,
        Some(source_ip) => {
            let request = RegisterRequest {
                source_ip,
                authorization: fields.authorization.as_deref(),
                contact: fields.contact.clone(),
                expires_s: fields.expires_s,
            };
            registrar.lock().expect("registrar lock poisoned").decide(&request, std::time::Instant::now())
        }
    };
    let realm = registrar.lock().expect("registrar lock poisoned").realm().to_string();
    let (status, headers) = match &decision {
        RegisterDecision::Challenge { nonce } => (
            StatusCode::Unauthorized,
            vec![Header::Other(
                "WWW-Authenticate".into(),
                format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\""),
            )],
        ),
        RegisterDecision::Accepted { expires_s, .. } => {
            let mut h = vec![Header::Other("Expires".into(), expires_s.to_string())];
            if let Some(c) = &fields.contact {
                h.push(Header::Other("Contact".into(), format!("<{c}>;expires={expires_s}")));
            }
            (StatusCode::OK, h)
        }
        RegisterDecision::Forbidden => {
            shared.counters.refused_requests.fetch_add(1, Ordering::Relaxed);
            (StatusCode::Forbidden, vec![])
        }
        RegisterDecision::BadRequest => (StatusCode::BadRequest, vec![]),
        RegisterDecision::ContactRefused { .. } => {
            shared.counters.refused_requests.fetch_add(1, Ordering::Relaxed);
            (StatusCode::Forbidden, vec![])
        }
    };
    if let Err(e) = tx.reply_with(status, headers, None).await {
        tracing::debug!(error = %e, "REGISTER reply failed");
    }
}
