//! A minimal RTP endpoint for one call leg (RFC 3550): binds a UDP port for the SDP offer,
//! counts what arrives, and sends 20 ms G.711 silence frames towards the far end once its
//! address is known (so carriers that wait for media before passing audio, or that drop
//! one-way calls, see a live stream).
//!
//! Own code rather than a crate: the 12-byte fixed header is all Campana sends, and the
//! receive side only validates and counts packets for now.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Samples per 20 ms packet at 8 kHz.
pub const SAMPLES_PER_PACKET: u32 = 160;
/// Packet interval.
pub const PACKET_INTERVAL_MS: u64 = 20;
/// Largest RTP datagram read (bytes); larger ones are truncated by the OS and counted.
pub const MAX_RTP_PACKET_BYTES: usize = 1500;
/// Digits buffered between a leg and its call task; more are dropped (and logged).
pub const DIGIT_QUEUE_LEN: usize = 32;
/// No payload type negotiated yet (RTP payload types are 7 bits).
const NO_PAYLOAD_TYPE: u8 = 0xFF;
/// Fixed RTP header length without CSRCs or extensions.
pub const RTP_HEADER_LEN_BYTES: usize = 12;

/// Packet counters of one leg.
#[derive(Debug, Default)]
pub struct RtpCounters {
    pub packets_sent: AtomicU64,
    pub packets_received: AtomicU64,
    pub bytes_received: AtomicU64,
    /// Datagrams that arrived but were not RTP version 2.
    pub packets_invalid: AtomicU64,
    /// Received packets forwarded to the bridged leg's far end.
    pub packets_relayed: AtomicU64,
}

/// A snapshot of [`RtpCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RtpStats {
    pub packets_sent: u64,
    pub packets_received: u64,
    pub bytes_received: u64,
    pub packets_invalid: u64,
    pub packets_relayed: u64,
}

impl RtpCounters {
    pub fn snapshot(&self) -> RtpStats {
        RtpStats {
            packets_sent: self.packets_sent.load(Ordering::Relaxed),
            packets_received: self.packets_received.load(Ordering::Relaxed),
            bytes_received: self.bytes_received.load(Ordering::Relaxed),
            packets_invalid: self.packets_invalid.load(Ordering::Relaxed),
            packets_relayed: self.packets_relayed.load(Ordering::Relaxed),
        }
    }
}

/// The fixed fields of an RTP header, as read from a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Offset of the payload in the datagram (after CSRCs and any extension).
    pub payload_offset: usize,
}

/// Reads an RTP header; `None` when the datagram is not RTP version 2 or is truncated.
/// Never panics, whatever the bytes.
pub fn parse_header(packet: &[u8]) -> Option<RtpHeader> {
    if packet.len() < RTP_HEADER_LEN_BYTES || packet[0] >> 6 != 2 {
        return None;
    }
    let csrc_count = usize::from(packet[0] & 0x0f);
    let mut offset = RTP_HEADER_LEN_BYTES + 4 * csrc_count;
    if packet[0] & 0x10 != 0 {
        let ext = packet.get(offset..offset + 4)?;
        let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        offset += 4 + 4 * words;
    }
    if offset > packet.len() {
        return None;
    }
    Some(RtpHeader {
        marker: packet[1] & 0x80 != 0,
        payload_type: packet[1] & 0x7f,
        sequence: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        payload_offset: offset,
    })
}

/// Writes a fixed 12-byte header followed by `payload` into `out`.
pub fn write_packet(out: &mut Vec<u8>, payload_type: u8, marker: bool, sequence: u16, timestamp: u32, ssrc: u32, payload: &[u8]) {
    out.clear();
    out.push(0x80);
    out.push((u8::from(marker) << 7) | (payload_type & 0x7f));
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

/// The key of an RFC 4733 DTMF event code (0-9, *, #, A-D); `None` for other events.
pub fn event_digit(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// G.711 silence byte for a payload type (mu-law 0xFF, A-law 0xD5).
pub fn silence_byte(payload_type: u8) -> u8 {
    if payload_type == crate::sdp::PT_PCMA {
        0xD5
    } else {
        0xFF
    }
}

/// Where and how to send, once the far end's SDP is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpTarget {
    pub remote: SocketAddr,
    pub payload_type: u8,
}

/// Where a bridged leg forwards what it receives: out of the other leg's socket (so the far
/// end sees the address it was given in SDP) to the other leg's far end.
#[derive(Clone)]
struct Relay {
    socket: Arc<UdpSocket>,
    remote: SocketAddr,
}

/// A prompt being played: G.711 bytes of the leg's payload type, sent 160 per packet.
struct Playing {
    audio: Vec<u8>,
    position: usize,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

/// One leg's RTP port and its send/receive tasks.
pub struct RtpLeg {
    /// Where received G.711 frames are copied (recorder, call analysis), with a channel number.
    taps: watch::Sender<Vec<(mpsc::Sender<crate::recording::RecFrame>, u8)>>,
    /// RFC 4733 digits received on this leg.
    pub digits: tokio::sync::Mutex<mpsc::Receiver<char>>,
    telephone_event_pt: Arc<std::sync::atomic::AtomicU8>,
    /// The payload type last negotiated with the far end ([`NO_PAYLOAD_TYPE`] before).
    negotiated_pt: std::sync::atomic::AtomicU8,
    playing: Arc<std::sync::Mutex<Option<Playing>>>,
    pub local: SocketAddr,
    pub counters: Arc<RtpCounters>,
    socket: Arc<UdpSocket>,
    target: watch::Sender<Option<RtpTarget>>,
    /// The far end's media address, once known; unlike `target` it stays known while bridged
    /// (when this leg's own sending stops), so a re-INVITE that moves it is recognised.
    far_end: std::sync::Mutex<Option<SocketAddr>>,
    relay: watch::Sender<Option<Relay>>,
    cancel: CancellationToken,
}

impl RtpLeg {
    /// Binds a UDP port on `ip` (port chosen by the OS) and starts the receive and send tasks;
    /// sending begins when [`RtpLeg::set_target`] is called.
    pub async fn bind(ip: IpAddr, parent: &CancellationToken) -> std::io::Result<RtpLeg> {
        let socket = Arc::new(UdpSocket::bind(SocketAddr::new(ip, 0)).await?);
        let local = socket.local_addr()?;
        let counters = Arc::new(RtpCounters::default());
        let cancel = parent.child_token();
        let (target_tx, target_rx) = watch::channel(None);
        let (relay_tx, relay_rx) = watch::channel(None);
        let playing = Arc::new(std::sync::Mutex::new(None));
        let (digits_tx, digits_rx) = mpsc::channel(DIGIT_QUEUE_LEN);
        let (tap_tx, tap_rx) = watch::channel(Vec::new());
        let telephone_event_pt = Arc::new(std::sync::atomic::AtomicU8::new(crate::sdp::PT_TELEPHONE_EVENT));
        tokio::spawn(receive_loop(
            socket.clone(),
            counters.clone(),
            relay_rx,
            telephone_event_pt.clone(),
            digits_tx,
            tap_rx,
            cancel.clone(),
        ));
        tokio::spawn(send_loop(socket.clone(), counters.clone(), target_rx, playing.clone(), cancel.clone()));
        Ok(RtpLeg {
            taps: tap_tx,
            digits: tokio::sync::Mutex::new(digits_rx),
            telephone_event_pt,
            negotiated_pt: std::sync::atomic::AtomicU8::new(NO_PAYLOAD_TYPE),
            playing,
            local,
            counters,
            socket,
            target: target_tx,
            far_end: std::sync::Mutex::new(None),
            relay: relay_tx,
            cancel,
        })
    }

    /// Plays G.711 audio (of this leg's payload type) instead of silence, replacing any prompt
    /// still playing; the receiver completes when the last packet is sent, at once when the far
    /// end's address is not known (nothing could be heard).
    pub fn play(&self, audio: Vec<u8>) -> tokio::sync::oneshot::Receiver<()> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.target().is_none() || audio.is_empty() {
            let _ = tx.send(());
            return rx;
        }
        let mut playing = self.playing.lock().expect("prompt lock poisoned");
        *playing = Some(Playing { audio, position: 0, done: Some(tx) });
        rx
    }

    /// The far end this leg sends to, once known.
    pub fn target(&self) -> Option<RtpTarget> {
        *self.target.borrow()
    }

    /// Copies every received G.711 frame to `sink` (a recorder, call analysis) as `channel`.
    /// Frames are dropped when the sink's queue is full; a closed sink is skipped.
    pub fn record_to(&self, sink: mpsc::Sender<crate::recording::RecFrame>, channel: u8) {
        self.taps.send_modify(|taps| {
            taps.retain(|(s, _)| !s.is_closed());
            taps.push((sink, channel));
        });
    }

    /// Stops copying frames to `sink` (given to [`RtpLeg::record_to`] before).
    pub fn stop_recording_to(&self, sink: &mpsc::Sender<crate::recording::RecFrame>) {
        self.taps.send_modify(|taps| taps.retain(|(s, _)| !s.same_channel(sink) && !s.is_closed()));
    }

    /// The payload type the far end uses for RFC 4733 events (from its SDP).
    pub fn set_telephone_event_pt(&self, pt: u8) {
        self.telephone_event_pt.store(pt, Ordering::Relaxed);
    }

    /// Stops the generated silence (the leg goes on receiving).
    pub fn stop_sending(&self) {
        self.target.send_replace(None);
    }

    /// Bridges two legs: what each receives goes out of the other's socket to the other's far
    /// end, packets unchanged (same codec on both legs: the agent leg is offered only the codec
    /// the customer leg negotiated). Generated silence stops on both. Returns false when a far
    /// end is not known yet.
    pub fn bridge(a: &RtpLeg, b: &RtpLeg) -> bool {
        let (Some(ta), Some(tb)) = (a.target(), b.target()) else { return false };
        a.relay.send_replace(Some(Relay { socket: b.socket.clone(), remote: tb.remote }));
        b.relay.send_replace(Some(Relay { socket: a.socket.clone(), remote: ta.remote }));
        a.stop_sending();
        b.stop_sending();
        true
    }

    /// Leg `a` of a bridge (with `b`) moved its media to `remote` (a re-INVITE): the relay of
    /// `b`'s packets towards it follows. `a` sends nothing of its own (bridged: no generated
    /// silence over the relayed audio).
    pub fn follow(a: &RtpLeg, b: &RtpLeg, remote: SocketAddr) {
        *a.far_end.lock().expect("far end lock poisoned") = Some(remote);
        b.relay.send_replace(Some(Relay { socket: a.socket.clone(), remote }));
    }

    /// Starts (or redirects) sending towards the far end.
    pub fn set_target(&self, target: RtpTarget) {
        self.negotiated_pt.store(target.payload_type, Ordering::Relaxed);
        *self.far_end.lock().expect("far end lock poisoned") = Some(target.remote);
        self.target.send_replace(Some(target));
    }

    /// Undoes [`RtpLeg::bridge`]: nothing is relayed between the legs any more, and `a`
    /// sends to its far end again (silence, or a prompt).
    pub fn unbridge(a: &RtpLeg, b: &RtpLeg) {
        a.relay.send_replace(None);
        b.relay.send_replace(None);
        if let (Some(remote), Some(payload_type)) = (a.far_end(), a.payload_type()) {
            a.target.send_replace(Some(RtpTarget { remote, payload_type }));
        }
    }

    /// The far end's media address, once known (bridged or not).
    pub fn far_end(&self) -> Option<SocketAddr> {
        *self.far_end.lock().expect("far end lock poisoned")
    }

    /// The payload type negotiated with the far end, once known (it stays known after a bridge
    /// stops the leg's own sending).
    pub fn payload_type(&self) -> Option<u8> {
        let pt = self.negotiated_pt.load(Ordering::Relaxed);
        (pt != NO_PAYLOAD_TYPE).then_some(pt)
    }

    pub fn stats(&self) -> RtpStats {
        self.counters.snapshot()
    }
}

impl Drop for RtpLeg {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn receive_loop(
    socket: Arc<UdpSocket>,
    counters: Arc<RtpCounters>,
    relay: watch::Receiver<Option<Relay>>,
    telephone_event_pt: Arc<std::sync::atomic::AtomicU8>,
    digits: mpsc::Sender<char>,
    taps: watch::Receiver<Vec<(mpsc::Sender<crate::recording::RecFrame>, u8)>>,
    cancel: CancellationToken,
) {
    let mut buf = vec![0u8; MAX_RTP_PACKET_BYTES];
    // RFC 4733: every packet of one event carries the event's start timestamp.
    let mut last_event_timestamp: Option<u32> = None;
    // One cancellation future for the leg's life, not one per packet.
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        tokio::select! {
            _ = &mut cancelled => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, _from)) => {
                    if let Some(h) = parse_header(&buf[..n]) {
                        if h.payload_type == telephone_event_pt.load(Ordering::Relaxed) && last_event_timestamp != Some(h.timestamp) {
                            if let Some(d) = buf[h.payload_offset..n].first().and_then(|e| event_digit(*e)) {
                                last_event_timestamp = Some(h.timestamp);
                                if digits.try_send(d).is_err() {
                                    tracing::warn!("digit queue full: digit dropped");
                                }
                            }
                        }
                        counters.packets_received.fetch_add(1, Ordering::Relaxed);
                        counters.bytes_received.fetch_add(n as u64, Ordering::Relaxed);
                        if h.payload_type == crate::sdp::PT_PCMU || h.payload_type == crate::sdp::PT_PCMA {
                            for (sink, channel) in taps.borrow().iter() {
                                let frame = crate::recording::RecFrame { channel: *channel, payload_type: h.payload_type, payload: buf[h.payload_offset..n].to_vec() };
                                if sink.try_send(frame).is_err() && !sink.is_closed() {
                                    tracing::debug!("recorder or analysis behind: frame dropped");
                                }
                            }
                        }
                        let to = relay.borrow().clone();
                        if let Some(to) = to {
                            if to.socket.send_to(&buf[..n], to.remote).await.is_ok() {
                                counters.packets_relayed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    } else {
                        counters.packets_invalid.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    // ICMP port unreachable shows up here on some systems; keep listening.
                    tracing::trace!(error = %e, "rtp receive error");
                }
            }
        }
    }
}

async fn send_loop(
    socket: Arc<UdpSocket>,
    counters: Arc<RtpCounters>,
    mut target: watch::Receiver<Option<RtpTarget>>,
    playing: Arc<std::sync::Mutex<Option<Playing>>>,
    cancel: CancellationToken,
) {
    let ssrc: u32 = rand::random();
    let mut sequence: u16 = rand::random();
    let mut timestamp: u32 = rand::random();
    let mut first = true;
    let mut packet = Vec::with_capacity(RTP_HEADER_LEN_BYTES + SAMPLES_PER_PACKET as usize);
    let mut tick = tokio::time::interval(Duration::from_millis(PACKET_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let cancelled = cancel.cancelled();
    tokio::pin!(cancelled);
    loop {
        if target.borrow_and_update().is_none() {
            // Nowhere to send (not answered yet, or bridged: the far ends' own packets are
            // relayed): wait for a target instead of waking every 20 ms for nothing.
            tokio::select! {
                _ = &mut cancelled => return,
                changed = target.changed() => if changed.is_err() { return },
            }
            tick.reset_immediately();
            continue;
        }
        tokio::select! {
            _ = &mut cancelled => return,
            _ = tick.tick() => {}
        }
        let Some(t) = *target.borrow_and_update() else { continue };
        let mut payload = [silence_byte(t.payload_type); SAMPLES_PER_PACKET as usize];
        {
            let mut p = playing.lock().expect("prompt lock poisoned");
            let finished = match p.as_mut() {
                Some(prompt) => {
                    let end = (prompt.position + payload.len()).min(prompt.audio.len());
                    let chunk = &prompt.audio[prompt.position..end];
                    payload[..chunk.len()].copy_from_slice(chunk);
                    prompt.position = end;
                    end >= prompt.audio.len()
                }
                None => false,
            };
            if finished {
                if let Some(done) = p.take().and_then(|mut prompt| prompt.done.take()) {
                    let _ = done.send(());
                }
            }
        }
        write_packet(&mut packet, t.payload_type, first, sequence, timestamp, ssrc, &payload);
        first = false;
        sequence = sequence.wrapping_add(1);
        timestamp = timestamp.wrapping_add(SAMPLES_PER_PACKET);
        if socket.send_to(&packet, t.remote).await.is_ok() {
            counters.packets_sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let mut p = Vec::new();
        write_packet(&mut p, 8, true, 65535, 123456, 0xdeadbeef, &[1, 2, 3]);
        let h = parse_header(&p).expect("valid");
        assert_eq!((h.marker, h.payload_type, h.sequence, h.timestamp, h.ssrc, h.payload_offset), (true, 8, 65535, 123456, 0xdeadbeef, 12));
        assert!(parse_header(&p[..11]).is_none());
        assert!(parse_header(&[0x40; 20]).is_none());
    }

    #[tokio::test]
    async fn two_legs_exchange_packets() {
        let cancel = CancellationToken::new();
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let a = RtpLeg::bind(ip, &cancel).await.expect("bind a");
        let b = RtpLeg::bind(ip, &cancel).await.expect("bind b");
        a.set_target(RtpTarget { remote: b.local, payload_type: 0 });
        b.set_target(RtpTarget { remote: a.local, payload_type: 8 });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (sa, sb) = (a.stats(), b.stats());
        assert!(sa.packets_sent >= 5 && sb.packets_received >= 5, "{sa:?} {sb:?}");
        assert!(sb.packets_sent >= 5 && sa.packets_received >= 5, "{sa:?} {sb:?}");
        assert_eq!(sa.packets_invalid + sb.packets_invalid, 0);
    }

    #[tokio::test]
    async fn bridge_relays_both_ways() {
        // phone_a <-> leg_a [bridge] leg_b <-> phone_b
        let cancel = CancellationToken::new();
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let phone_a = RtpLeg::bind(ip, &cancel).await.expect("bind");
        let phone_b = RtpLeg::bind(ip, &cancel).await.expect("bind");
        let leg_a = RtpLeg::bind(ip, &cancel).await.expect("bind");
        let leg_b = RtpLeg::bind(ip, &cancel).await.expect("bind");
        leg_a.set_target(RtpTarget { remote: phone_a.local, payload_type: 0 });
        leg_b.set_target(RtpTarget { remote: phone_b.local, payload_type: 0 });
        assert!(RtpLeg::bridge(&leg_a, &leg_b));
        phone_a.set_target(RtpTarget { remote: leg_a.local, payload_type: 0 });
        phone_b.set_target(RtpTarget { remote: leg_b.local, payload_type: 0 });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (pa, pb, la, lb) = (phone_a.stats(), phone_b.stats(), leg_a.stats(), leg_b.stats());
        assert!(la.packets_relayed >= 5 && lb.packets_relayed >= 5, "{la:?} {lb:?}");
        // What each phone receives is the other phone's stream, nothing generated by the legs.
        assert!(pa.packets_received >= 5 && pb.packets_received >= 5, "{pa:?} {pb:?}");
        assert_eq!(la.packets_sent + lb.packets_sent, 0, "legs stopped generating silence");
    }
}
