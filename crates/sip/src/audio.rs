//! Prompts: WAV files read into G.711 frames (own code: the RIFF chunks Campana accepts and the
//! G.711 encoders (ITU-T G.711 segment tables as formulas) are short and fully tested).
//!
//! Accepted: 8 kHz mono, 16-bit linear PCM, mu-law or A-law. No resampling: prompts are prepared
//! for telephony, and a wrong file is refused with the reason rather than played badly.

use std::path::{Path, PathBuf};

/// Largest prompt file read (bytes): about 17 minutes of 8 kHz 16-bit audio.
pub const MAX_PROMPT_BYTES: u64 = 16 * 1024 * 1024;
/// Longest prompt name (characters).
pub const MAX_PROMPT_NAME_LEN: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    #[error("prompt name {0:?} must be 1 to {MAX_PROMPT_NAME_LEN} letters, digits, '-' or '_'")]
    BadName(String),
    #[error("no prompts directory is configured")]
    NoDirectory,
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{0} is larger than {MAX_PROMPT_BYTES} bytes")]
    TooLarge(PathBuf),
    #[error("not a WAV file this player accepts: {0}")]
    Format(&'static str),
}

/// Audio samples of a prompt, as read from the file.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    Linear16(Vec<i16>),
    MuLaw(Vec<u8>),
    ALaw(Vec<u8>),
}

/// The WAV file of a prompt name in `dir` (`dir/NAME.wav`); names cannot leave `dir`.
pub fn prompt_path(dir: Option<&Path>, name: &str) -> Result<PathBuf, PromptError> {
    let ok =
        !name.is_empty() && name.len() <= MAX_PROMPT_NAME_LEN && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(PromptError::BadName(name.to_string()));
    }
    Ok(dir.ok_or(PromptError::NoDirectory)?.join(format!("{name}.wav")))
}

/// Reads a prompt file into G.711 bytes of `payload_type` (0 PCMU, 8 PCMA).
pub async fn load_prompt(path: &Path, payload_type: u8) -> Result<Vec<u8>, PromptError> {
    let meta = tokio::fs::metadata(path).await.map_err(|source| PromptError::Read { path: path.to_path_buf(), source })?;
    if meta.len() > MAX_PROMPT_BYTES {
        return Err(PromptError::TooLarge(path.to_path_buf()));
    }
    let bytes = tokio::fs::read(path).await.map_err(|source| PromptError::Read { path: path.to_path_buf(), source })?;
    Ok(to_g711(parse_wav(&bytes)?, payload_type))
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes([*b.get(i)?, *b.get(i + 1)?, *b.get(i + 2)?, *b.get(i + 3)?]))
}

/// Reads the samples of a WAV file. Never panics on any input.
pub fn parse_wav(b: &[u8]) -> Result<Samples, PromptError> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err(PromptError::Format("no RIFF/WAVE header"));
    }
    let mut at = 12usize;
    let mut format: Option<(u16, u16, u32, u16)> = None;
    while at + 8 <= b.len() {
        let id = &b[at..at + 4];
        let len = u32_at(b, at + 4).ok_or(PromptError::Format("truncated chunk"))? as usize;
        let body_start = at + 8;
        let body_end = body_start.checked_add(len).ok_or(PromptError::Format("chunk length"))?;
        if id == b"fmt " {
            let f = b.get(body_start..body_end).ok_or(PromptError::Format("truncated fmt chunk"))?;
            let tag = u16_at(f, 0).ok_or(PromptError::Format("short fmt chunk"))?;
            let channels = u16_at(f, 2).ok_or(PromptError::Format("short fmt chunk"))?;
            let rate = u32_at(f, 4).ok_or(PromptError::Format("short fmt chunk"))?;
            let bits = u16_at(f, 14).ok_or(PromptError::Format("short fmt chunk"))?;
            format = Some((tag, channels, rate, bits));
        } else if id == b"data" {
            let (tag, channels, rate, bits) = format.ok_or(PromptError::Format("data before fmt"))?;
            if channels != 1 || rate != 8000 {
                return Err(PromptError::Format("must be 8 kHz mono"));
            }
            // A truncated last chunk is read as far as it goes.
            let data = &b[body_start.min(b.len())..body_end.min(b.len())];
            return match (tag, bits) {
                (1, 16) => Ok(Samples::Linear16(data.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect())),
                (7, 8) => Ok(Samples::MuLaw(data.to_vec())),
                (6, 8) => Ok(Samples::ALaw(data.to_vec())),
                _ => Err(PromptError::Format("must be 16-bit PCM, mu-law or A-law")),
            };
        }
        // Chunks are padded to even lengths.
        at = body_end.checked_add(len % 2).ok_or(PromptError::Format("chunk length"))?;
    }
    Err(PromptError::Format("no data chunk"))
}

/// G.711 mu-law encoding of one linear sample.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign = if s < 0 { 0x80 } else { 0 };
    if s < 0 {
        s = -s;
    }
    s = s.min(CLIP) + BIAS;
    let exponent = (7 - (s.leading_zeros() as i32 - 17)).clamp(0, 7);
    let mantissa = (s >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) as u8 | mantissa as u8)
}

/// G.711 A-law encoding of one linear sample.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let s = i32::from(sample) >> 3; // 13-bit
    let (sign, magnitude) = if s >= 0 { (0x80u8, s) } else { (0x00u8, -s - 1) };
    let magnitude = magnitude.min(0x0fff);
    let out = if magnitude < 32 {
        (magnitude >> 1) as u8
    } else {
        let exponent = 31 - (magnitude as u32).leading_zeros() as i32 - 4; // 1..=7
        let mantissa = (magnitude >> exponent) & 0x0f;
        ((exponent << 4) as u8) | mantissa as u8
    };
    (sign | out) ^ 0x55
}

/// mu-law to linear (for transcoding prompts stored in the other law).
pub fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let sign = u & 0x80;
    let exponent = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if sign != 0 { -magnitude } else { magnitude }) as i16
}

/// A-law to linear.
pub fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let sign = a & 0x80;
    let exponent = i32::from((a >> 4) & 0x07);
    let mantissa = i32::from(a & 0x0f);
    let magnitude = if exponent == 0 { (mantissa << 4) + 8 } else { ((mantissa << 4) + 0x108) << (exponent - 1) };
    (if sign != 0 { magnitude } else { -magnitude }) as i16
}

/// Samples as G.711 bytes of `payload_type` (8 = A-law, anything else mu-law).
pub fn to_g711(samples: Samples, payload_type: u8) -> Vec<u8> {
    let alaw = payload_type == crate::sdp::PT_PCMA;
    match (samples, alaw) {
        (Samples::MuLaw(v), false) | (Samples::ALaw(v), true) => v,
        (Samples::Linear16(v), false) => v.into_iter().map(linear_to_ulaw).collect(),
        (Samples::Linear16(v), true) => v.into_iter().map(linear_to_alaw).collect(),
        (Samples::MuLaw(v), true) => v.into_iter().map(|u| linear_to_alaw(ulaw_to_linear(u))).collect(),
        (Samples::ALaw(v), false) => v.into_iter().map(|a| linear_to_ulaw(alaw_to_linear(a))).collect(),
    }
}

/// A WAV file of 8 kHz mono 16-bit PCM (used by tests and tools).
pub fn wav_linear16(samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut v = Vec::with_capacity(44 + samples.len() * 2);
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data_len).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&8000u32.to_le_bytes());
    v.extend_from_slice(&16000u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        v.extend_from_slice(&s.to_le_bytes());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_round_trips_within_quantisation() {
        for s in (-32768i32..=32767).step_by(97) {
            let s = s as i16;
            let u = ulaw_to_linear(linear_to_ulaw(s));
            let a = alaw_to_linear(linear_to_alaw(s));
            let tol = (i32::from(s).abs() / 16).max(16) + 8;
            assert!((i32::from(u) - i32::from(s)).abs() <= tol * 2, "ulaw {s} -> {u}");
            assert!((i32::from(a) - i32::from(s)).abs() <= tol * 2, "alaw {s} -> {a}");
        }
        // Known code points: silence.
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_alaw(0), 0xD5);
    }

    #[test]
    fn wav_round_trip_and_refusals() {
        let w = wav_linear16(&[0, 1000, -1000]);
        assert_eq!(parse_wav(&w).expect("valid"), Samples::Linear16(vec![0, 1000, -1000]));
        let mut stereo = w.clone();
        stereo[22] = 2;
        assert!(matches!(parse_wav(&stereo), Err(PromptError::Format(_))));
        assert!(matches!(parse_wav(b"RIFF...."), Err(PromptError::Format(_))));
        assert!(matches!(prompt_path(Some(Path::new("/p")), "../etc/passwd"), Err(PromptError::BadName(_))));
        assert_eq!(prompt_path(Some(Path::new("/p")), "safe_harbor").expect("ok"), PathBuf::from("/p/safe_harbor.wav"));
    }
}
