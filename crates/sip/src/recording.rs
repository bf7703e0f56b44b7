//! Call recording: both legs into one stereo WAV (left = customer, right = agent), 8 kHz
//! 16-bit PCM, written as the call goes (memory stays bounded whatever the call's length).
//!
//! The recorder runs on a 20 ms clock: each tick writes one frame per channel, the oldest
//! received one or silence when none came, so the file's length is the call's length and
//! both channels stay aligned.

use crate::audio::{alaw_to_linear, ulaw_to_linear};
use crate::rtp::SAMPLES_PER_PACKET;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Frames queued from the RTP legs to the recorder; more are dropped (and counted).
pub const RECORDER_QUEUE_LEN: usize = 256;
/// Frames buffered per channel for jitter; older ones are dropped beyond this.
pub const MAX_JITTER_FRAMES: usize = 25;

/// Left channel.
pub const CHANNEL_CUSTOMER: u8 = 0;
/// Right channel.
pub const CHANNEL_AGENT: u8 = 1;

/// One received G.711 frame of one channel.
#[derive(Debug, Clone)]
pub struct RecFrame {
    pub channel: u8,
    pub payload_type: u8,
    pub payload: Vec<u8>,
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    pub path: PathBuf,
    pub duration_ms: u64,
}

/// The file of a call's recording in `dir`.
pub fn recording_path(dir: &Path, call_id: campana_core::telephony::CallId) -> PathBuf {
    dir.join(format!("{call_id}.wav"))
}

fn decode(frame: &RecFrame) -> Vec<i16> {
    if frame.payload_type == crate::sdp::PT_PCMA {
        frame.payload.iter().map(|b| alaw_to_linear(*b)).collect()
    } else {
        frame.payload.iter().map(|b| ulaw_to_linear(*b)).collect()
    }
}

fn header(data_len_bytes: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36u32.saturating_add(data_len_bytes)).to_le_bytes());
    h[8..16].copy_from_slice(b"WAVEfmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&2u16.to_le_bytes()); // stereo
    h[24..28].copy_from_slice(&8000u32.to_le_bytes());
    h[28..32].copy_from_slice(&32000u32.to_le_bytes()); // bytes per second
    h[32..34].copy_from_slice(&4u16.to_le_bytes()); // block align
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len_bytes.to_le_bytes());
    h
}

/// Records until `stop` is cancelled or every sender is dropped, then finishes the header.
pub async fn run_recorder(path: PathBuf, mut frames: mpsc::Receiver<RecFrame>, stop: CancellationToken) -> std::io::Result<RecordingInfo> {
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let file = tokio::fs::File::create(&path).await?;
    let mut out = tokio::io::BufWriter::new(file);
    out.write_all(&header(0)).await?;
    let mut queues: [VecDeque<Vec<i16>>; 2] = [VecDeque::new(), VecDeque::new()];
    let mut data_len_bytes: u32 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(crate::rtp::PACKET_INTERVAL_MS));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut ticks: u64 = 0;
    let mut frame = vec![0u8; SAMPLES_PER_PACKET as usize * 4];
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            f = frames.recv() => match f {
                Some(f) => {
                    let q = &mut queues[usize::from(f.channel.min(1))];
                    if q.len() >= MAX_JITTER_FRAMES {
                        q.pop_front();
                    }
                    q.push_back(decode(&f));
                }
                None => break,
            },
            _ = tick.tick() => {
                let left = queues[0].pop_front().unwrap_or_default();
                let right = queues[1].pop_front().unwrap_or_default();
                for i in 0..SAMPLES_PER_PACKET as usize {
                    let l = left.get(i).copied().unwrap_or(0).to_le_bytes();
                    let r = right.get(i).copied().unwrap_or(0).to_le_bytes();
                    frame[i * 4..i * 4 + 2].copy_from_slice(&l);
                    frame[i * 4 + 2..i * 4 + 4].copy_from_slice(&r);
                }
                out.write_all(&frame).await?;
                data_len_bytes = data_len_bytes.saturating_add(frame.len() as u32);
                ticks += 1;
            }
        }
    }
    out.flush().await?;
    let mut file = out.into_inner();
    file.seek(std::io::SeekFrom::Start(0)).await?;
    file.write_all(&header(data_len_bytes)).await?;
    file.flush().await?;
    Ok(RecordingInfo { path, duration_ms: ticks * crate::rtp::PACKET_INTERVAL_MS })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_a_stereo_wav_of_the_recorded_length() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("r/call-1.wav");
        let (tx, rx) = mpsc::channel(RECORDER_QUEUE_LEN);
        let stop = CancellationToken::new();
        let task = tokio::spawn(run_recorder(path.clone(), rx, stop.clone()));
        for _ in 0..5 {
            tx.send(RecFrame { channel: CHANNEL_CUSTOMER, payload_type: 0, payload: vec![0x00; 160] }).await.expect("send");
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        stop.cancel();
        let info = task.await.expect("join").expect("recorded");
        let bytes = std::fs::read(&path).expect("file");
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!(u16::from_le_bytes([bytes[22], bytes[23]]), 2);
        let data_len = u32::from_le_bytes([bytes[40], bytes[41], bytes[42], bytes[43]]) as usize;
        assert_eq!(data_len + 44, bytes.len());
        assert_eq!(data_len as u64, info.duration_ms * 32);
        assert!((300..=600).contains(&info.duration_ms), "{info:?}");
        // The customer channel carries the loud frames, the agent channel silence.
        let left = i16::from_le_bytes([bytes[44 + 4 * 10], bytes[45 + 4 * 10]]);
        let right = i16::from_le_bytes([bytes[46 + 4 * 10], bytes[47 + 4 * 10]]);
        assert!(left.abs() > 1000 && right == 0, "{left} {right}");
    }
}
