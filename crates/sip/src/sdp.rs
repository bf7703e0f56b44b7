//! The SDP offer Campana sends and the small subset of an SDP answer it reads (RFC 4566).
//!
//! Own code rather than a crate: the offer is fixed text and the answer needs only the audio
//! connection address, port and chosen payload type. The parser never panics on any input
//! (property-tested over arbitrary bytes).

use std::net::{IpAddr, SocketAddr};

/// RTP payload type of G.711 mu-law.
pub const PT_PCMU: u8 = 0;
/// RTP payload type of G.711 A-law.
pub const PT_PCMA: u8 = 8;
/// Dynamic payload type Campana offers for RFC 4733 telephone-event.
pub const PT_TELEPHONE_EVENT: u8 = 101;
/// Largest SDP body read (bytes); longer bodies are refused.
pub const MAX_SDP_LEN_BYTES: usize = 16 * 1024;

/// Builds the offer: PCMU, PCMA and telephone-event on one audio stream, 20 ms packets.
pub fn offer(session_id: u64, media_ip: IpAddr, rtp_port: u16) -> String {
    offer_codec(session_id, media_ip, rtp_port, None)
}

/// Builds an offer limited to one G.711 codec (the agent leg of a bridge gets the customer
/// leg's codec, so packets are relayed without transcoding); `None` offers both.
pub fn offer_codec(session_id: u64, media_ip: IpAddr, rtp_port: u16, only: Option<u8>) -> String {
    offer_codec_version(session_id, session_id, media_ip, rtp_port, only)
}

/// As [`offer_codec`], with the origin's session version given (RFC 3264 §8: one more than
/// before whenever the description changes, the same when it does not).
pub fn offer_codec_version(session_id: u64, session_version: u64, media_ip: IpAddr, rtp_port: u16, only: Option<u8>) -> String {
    let family = if media_ip.is_ipv6() { "IP6" } else { "IP4" };
    let codecs: Vec<u8> = match only {
        Some(pt) => vec![pt],
        None => vec![PT_PCMU, PT_PCMA],
    };
    let mut formats = String::new();
    let mut rtpmaps = String::new();
    for pt in &codecs {
        formats.push_str(&format!("{pt} "));
        let name = if *pt == PT_PCMA { "PCMA" } else { "PCMU" };
        rtpmaps.push_str(&format!("a=rtpmap:{pt} {name}/8000\r\n"));
    }
    format!(
        "v=0\r\n\
         o=campana {session_id} {session_version} IN {family} {media_ip}\r\n\
         s=campana\r\n\
         c=IN {family} {media_ip}\r\n\
         t=0 0\r\n\
         m=audio {rtp_port} RTP/AVP {formats}{PT_TELEPHONE_EVENT}\r\n\
         {rtpmaps}\
         a=rtpmap:{PT_TELEPHONE_EVENT} telephone-event/8000\r\n\
         a=fmtp:{PT_TELEPHONE_EVENT} 0-16\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n"
    )
}

/// What Campana needs from an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioAnswer {
    /// Where to send RTP.
    pub remote_rtp: SocketAddr,
    /// The first payload type the answer lists that Campana offered (PCMU or PCMA).
    pub payload_type: u8,
    /// The telephone-event payload type, when the answer accepted it.
    pub telephone_event_pt: Option<u8>,
}

/// Why an answer was not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("the SDP body is longer than {MAX_SDP_LEN_BYTES} bytes")]
    TooLong,
    #[error("the SDP body is not UTF-8 text")]
    NotText,
    #[error("no audio stream in the SDP")]
    NoAudio,
    #[error("the audio stream was rejected (port 0)")]
    AudioRejected,
    #[error("no connection address for the audio stream")]
    NoConnection,
    #[error("no common codec (PCMU or PCMA)")]
    NoCommonCodec,
    #[error("malformed line: {0}")]
    Malformed(&'static str),
}

/// Reads the first audio stream of an SDP answer.
pub fn parse_answer(body: &[u8]) -> Result<AudioAnswer, SdpError> {
    if body.len() > MAX_SDP_LEN_BYTES {
        return Err(SdpError::TooLong);
    }
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
    let mut session_ip: Option<IpAddr> = None;
    let mut audio: Option<(u16, Vec<u8>)> = None;
    let mut audio_ip: Option<IpAddr> = None;
    let mut in_audio = false;
    let mut seen_audio = false;
    let mut telephone_event_pt = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("m=") {
            in_audio = false;
            if seen_audio {
                continue;
            }
            let mut fields = rest.split_ascii_whitespace();
            if fields.next() != Some("audio") {
                continue;
            }
            let port: u16 =
                fields.next().and_then(|p| p.split('/').next()).and_then(|p| p.parse().ok()).ok_or(SdpError::Malformed("m= port"))?;
            let _proto = fields.next().ok_or(SdpError::Malformed("m= protocol"))?;
            let pts: Vec<u8> = fields.filter_map(|f| f.parse().ok()).collect();
            audio = Some((port, pts));
            in_audio = true;
            seen_audio = true;
        } else if let Some(rest) = line.strip_prefix("c=") {
            let ip = parse_connection(rest)?;
            if in_audio {
                audio_ip = Some(ip);
            } else if !seen_audio {
                session_ip = Some(ip);
            }
        } else if let Some(rest) = line.strip_prefix("a=rtpmap:") {
            if in_audio {
                let mut it = rest.splitn(2, ' ');
                let pt = it.next().and_then(|p| p.parse::<u8>().ok());
                let enc = it.next().unwrap_or_default();
                if let Some(pt) = pt {
                    if enc.to_ascii_lowercase().starts_with("telephone-event/") {
                        telephone_event_pt = Some(pt);
                    }
                }
            }
        }
    }
    let (port, pts) = audio.ok_or(SdpError::NoAudio)?;
    if port == 0 {
        return Err(SdpError::AudioRejected);
    }
    let ip = audio_ip.or(session_ip).ok_or(SdpError::NoConnection)?;
    let payload_type = pts.iter().copied().find(|pt| *pt == PT_PCMU || *pt == PT_PCMA).ok_or(SdpError::NoCommonCodec)?;
    Ok(AudioAnswer { remote_rtp: SocketAddr::new(ip, port), payload_type, telephone_event_pt })
}

fn parse_connection(rest: &str) -> Result<IpAddr, SdpError> {
    let mut fields = rest.split_ascii_whitespace();
    if fields.next() != Some("IN") {
        return Err(SdpError::Malformed("c= network type"));
    }
    let _family = fields.next().ok_or(SdpError::Malformed("c= address type"))?;
    let addr = fields.next().ok_or(SdpError::Malformed("c= address"))?;
    // Multicast answers carry "/ttl"; keep the address part.
    let addr = addr.split('/').next().unwrap_or(addr);
    addr.parse().map_err(|_| SdpError::Malformed("c= address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_round_trips_through_the_parser() {
        let o = offer(42, "127.0.0.1".parse().expect("ip"), 40000);
        let a = parse_answer(o.as_bytes()).expect("parses");
        assert_eq!(a.remote_rtp, "127.0.0.1:40000".parse().expect("addr"));
        assert_eq!(a.payload_type, PT_PCMU);
        assert_eq!(a.telephone_event_pt, Some(PT_TELEPHONE_EVENT));
    }

    #[test]
    fn media_level_connection_and_pcma() {
        let s =
            "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 8 101\r\nc=IN IP4 10.0.0.2\r\n";
        let a = parse_answer(s.as_bytes()).expect("parses");
        assert_eq!(a.remote_rtp, "10.0.0.2:5004".parse().expect("addr"));
        assert_eq!(a.payload_type, PT_PCMA);
        assert_eq!(a.telephone_event_pt, None);
    }

    #[test]
    fn refusals() {
        assert_eq!(parse_answer(b"v=0\r\n"), Err(SdpError::NoAudio));
        assert_eq!(parse_answer(b"c=IN IP4 1.2.3.4\r\nm=audio 0 RTP/AVP 0\r\n"), Err(SdpError::AudioRejected));
        assert_eq!(parse_answer(b"c=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 18\r\n"), Err(SdpError::NoCommonCodec));
        assert_eq!(parse_answer(b"m=audio 4000 RTP/AVP 0\r\n"), Err(SdpError::NoConnection));
        assert_eq!(parse_answer(&[0xff, 0xfe]), Err(SdpError::NotText));
    }
}
