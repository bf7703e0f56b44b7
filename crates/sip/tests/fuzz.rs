//! The parsing entry points fed with arbitrary and mutated bytes must never panic: the SIP
//! message parser (what rsipstack's UDP and TCP transports call on every datagram / frame),
//! Campana's SDP answer parser and its RTP header parser; and Campana's handling of an incoming
//! request (`campana_sip::fuzzing::one`: the answer table, the registrar, oversized datagrams)
//! over the cargo-fuzz corpus in `fuzz/corpus/sip_inbound` and mutations of it (the stable,
//! bounded stand-in for `cargo fuzz run sip_inbound`, which needs nightly).

use campana_sip::{audio, rtp, sdp};
use proptest::prelude::*;

const INVITE: &[u8] = b"INVITE sip:+14155550123@127.0.0.1:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc;rport\r\n\
From: <sip:+15550001111@127.0.0.1>;tag=1\r\n\
To: <sip:+14155550123@127.0.0.1>\r\n\
Call-ID: abc@127.0.0.1\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:campana@127.0.0.1:5070>\r\n\
Proxy-Authorization: Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x@y\", response=\"0123456789abcdef0123456789abcdef\"\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 63\r\n\r\n\
v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

/// 44-byte header of an 8 kHz mono 16-bit WAV and 4 samples.
const WAV: &[u8] = b"RIFF\x2c\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x08\x00\x00\x00\x00\x00\xe8\x03\x18\xfc\x00\x00";

fn parse_sip(bytes: &[u8]) {
    let _ = rsipstack::sip::SipMessage::try_from(bytes);
    if let Ok(s) = std::str::from_utf8(bytes) {
        let _ = rsipstack::sip::SipMessage::try_from(s);
    }
}

/// A valid message with some bytes replaced, inserted or cut off.
fn mutated(template: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..16), any::<prop::sample::Index>()).prop_map(
        move |(edits, cut)| {
            let mut v = template.to_vec();
            for (at, byte, kind) in edits {
                if v.is_empty() {
                    break;
                }
                let i = at.index(v.len());
                match kind {
                    0 => v[i] = byte,
                    1 => v.insert(i, byte),
                    _ => {
                        v.remove(i);
                    }
                }
            }
            let keep = cut.index(v.len() + 1);
            v.truncate(keep.max(v.len() / 2));
            v
        },
    )
}

/// The checked-in fuzz corpus (the first byte of each file is the context: see
/// `campana_sip::fuzzing`).
fn corpus() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/sip_inbound");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("fuzz corpus").flatten().map(|e| e.path()).collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).expect("corpus file")).collect()
}

#[test]
fn the_inbound_fuzz_corpus_holds_every_invariant() {
    let seeds = corpus();
    assert!(seeds.len() >= 10, "the corpus has {} inputs", seeds.len());
    for s in &seeds {
        campana_sip::fuzzing::one(s);
    }
}

fn corpus_input() -> impl Strategy<Value = Vec<u8>> {
    let seeds = corpus();
    (0..seeds.len(), prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..12), any::<u8>()).prop_map(
        move |(k, edits, flags)| {
            let mut v = seeds[k].clone();
            for (at, byte, kind) in edits {
                if v.len() < 2 {
                    break;
                }
                let i = 1 + at.index(v.len() - 1);
                match kind {
                    0 => v[i] = byte,
                    1 => v.insert(i, byte),
                    _ => {
                        v.remove(i);
                    }
                }
            }
            v[0] = flags;
            v
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn inbound_handling_holds_its_invariants_on_mutated_corpus(input in corpus_input()) {
        campana_sip::fuzzing::one(&input);
    }

    #[test]
    fn sip_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        parse_sip(&bytes);
    }

    #[test]
    fn sip_parser_never_panics_on_mutated_messages(bytes in mutated(INVITE)) {
        parse_sip(&bytes);
    }

    #[test]
    fn sdp_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = sdp::parse_answer(&bytes);
    }

    #[test]
    fn sdp_parser_never_panics_on_mutated_offers(bytes in mutated(b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5004 RTP/AVP 8 0 101\r\nc=IN IP6 ::1\r\na=rtpmap:101 telephone-event/8000\r\n")) {
        let _ = sdp::parse_answer(&bytes);
    }

    #[test]
    fn wav_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = audio::parse_wav(&bytes);
    }

    #[test]
    fn wav_parser_never_panics_on_mutated_files(bytes in mutated(WAV)) {
        let _ = audio::parse_wav(&bytes);
    }

    #[test]
    fn rtp_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Some(h) = rtp::parse_header(&bytes) {
            prop_assert!(h.payload_offset <= bytes.len());
        }
    }
}

#[test]
fn the_templates_are_valid() {
    assert!(rsipstack::sip::SipMessage::try_from(INVITE).is_ok());
    assert!(audio::parse_wav(WAV).is_ok());
}
