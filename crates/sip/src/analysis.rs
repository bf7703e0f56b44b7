//! Call analysis on 8 kHz audio, 20 ms frames: special information tones (SIT), fax tones and
//! answering-machine detection (AMD). Own code: Goertzel filters and the common heuristic AMD
//! (initial silence, greeting length, word count, silence after the greeting) are short, and
//! their parameters must be tunable per profile.

use campana_core::record::CallResult;
use campana_core::telephony::AnsweredBy;

/// Sample rate of the analysed audio.
pub const RATE_HZ: f32 = 8000.0;
/// Samples per analysed frame (20 ms).
pub const FRAME_SAMPLES: usize = 160;
const FRAME_MS: u32 = 20;

/// Power of `freq_hz` in `samples` relative to the frame's energy: about 1 for a pure tone at
/// that frequency, near 0 when absent (Goertzel filter).
pub fn tone_ratio(samples: &[f32], freq_hz: f32) -> f32 {
    let n = samples.len();
    if n == 0 {
        return 0.0;
    }
    let w = 2.0 * std::f32::consts::PI * freq_hz / RATE_HZ;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f32, 0.0f32);
    for &x in samples {
        let s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let energy: f32 = samples.iter().map(|x| x * x).sum();
    if energy <= f32::EPSILON {
        return 0.0;
    }
    power / (energy * n as f32 / 2.0)
}

/// Root-mean-square level of a frame (linear 16-bit scale).
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|x| x * x).sum::<f32>() / samples.len() as f32).sqrt()
}

const TONE_THRESHOLD: f32 = 0.5;
/// Quieter frames are not examined for tones (linear 16-bit RMS).
const TONE_MIN_RMS: f32 = 100.0;

// SIT segment frequencies (ANSI T1.401 / Telcordia): first segment low/high, second low/high,
// third always low.
const SIT_FREQS: [f32; 5] = [913.8, 985.2, 1370.6, 1428.5, 1776.7];
/// Segments at least this long are "long" (380 ms nominal), shorter ones "short" (276 ms).
const SIT_LONG_MS: u32 = 330;
const SIT_MIN_MS: u32 = 200;
const FAX_CNG_HZ: f32 = 1100.0;
const FAX_CED_HZ: f32 = 2100.0;
const FAX_CNG_MIN_MS: u32 = 400;
const FAX_CED_MIN_MS: u32 = 1000;

/// Detects SIT sequences and fax tones in a stream of frames.
#[derive(Debug, Default)]
pub struct ToneDetector {
    /// The tone of the current run (index into SIT_FREQS, 5 = CNG, 6 = CED) and its length.
    run: Option<(usize, u32)>,
    /// Finished SIT segments: (frequency index, duration ms), last three kept.
    segments: Vec<(usize, u32)>,
}

impl ToneDetector {
    /// Feeds one 20 ms frame; returns a result once a SIT sequence or a fax tone is recognised.
    pub fn push(&mut self, frame: &[f32]) -> Option<CallResult> {
        let tone = if rms(frame) < TONE_MIN_RMS {
            None
        } else {
            let mut best = (0usize, 0.0f32);
            for (i, f) in SIT_FREQS.iter().chain([FAX_CNG_HZ, FAX_CED_HZ].iter()).enumerate() {
                let r = tone_ratio(frame, *f);
                if r > best.1 {
                    best = (i, r);
                }
            }
            (best.1 >= TONE_THRESHOLD).then_some(best.0)
        };
        match (self.run, tone) {
            (Some((t, ms)), Some(n)) if t == n => {
                self.run = Some((t, ms + FRAME_MS));
            }
            (run, tone) => {
                if let Some((t, ms)) = run {
                    if let Some(r) = self.finish_segment(t, ms) {
                        return Some(r);
                    }
                }
                self.run = tone.map(|t| (t, FRAME_MS));
            }
        }
        // Fax tones are recognised while they last.
        match self.run {
            Some((5, ms)) if ms >= FAX_CNG_MIN_MS => Some(CallResult::Fax),
            Some((6, ms)) if ms >= FAX_CED_MIN_MS => Some(CallResult::Fax),
            // The third SIT segment is recognised once long enough (the tone may be followed
            // by an announcement rather than silence).
            Some((4, ms)) if ms >= SIT_MIN_MS => self.classify_with(4, ms),
            _ => None,
        }
    }

    fn finish_segment(&mut self, tone: usize, ms: u32) -> Option<CallResult> {
        if tone >= SIT_FREQS.len() || ms < SIT_MIN_MS {
            self.segments.clear();
            return None;
        }
        if tone == 4 {
            return self.classify_with(4, ms);
        }
        self.segments.push((tone, ms));
        if self.segments.len() > 2 {
            self.segments.remove(0);
        }
        None
    }

    fn classify_with(&mut self, third: usize, third_ms: u32) -> Option<CallResult> {
        let [(f1, d1), (f2, d2)] = self.segments[..] else { return None };
        if third != 4 || !(f1 <= 1 && (2..=3).contains(&f2)) {
            return None;
        }
        let _ = third_ms;
        let high1 = f1 == 1;
        let high2 = f2 == 3;
        let long1 = d1 >= SIT_LONG_MS;
        let long2 = d2 >= SIT_LONG_MS;
        self.segments.clear();
        self.run = None;
        Some(classify_sit(high1, long1, high2, long2))
    }
}

/// The SIT code of the first two segments' frequency (high/low) and length (long/short).
///
/// | segment 1 | segment 2 | code | result |
/// |---|---|---|---|
/// | low short | low short | IC (intercept) | `sit_intercept` |
/// | high long | low short | VC (vacant code) | `sit_vacant` |
/// | low short | high long | RO' (reorder, intra-LATA) | `sit_reorder` |
/// | high short | low long | RO'' (reorder, inter-LATA) | `sit_reorder` |
/// | high long | high long | NC' (no circuit, intra-LATA) | `sit_no_circuit` |
/// | low long | low long | NC'' (no circuit, inter-LATA) | `sit_no_circuit` |
/// | low long | high short | IO (ineffective other) | `sit_invalid` |
/// | anything else | | | `sit_invalid` |
pub fn classify_sit(high1: bool, long1: bool, high2: bool, long2: bool) -> CallResult {
    match (high1, long1, high2, long2) {
        (false, false, false, false) => CallResult::SitIntercept,
        (true, true, false, false) => CallResult::SitVacant,
        (false, false, true, true) | (true, false, false, true) => CallResult::SitReorder,
        (true, true, true, true) | (false, true, false, true) => CallResult::SitNoCircuit,
        _ => CallResult::SitInvalid,
    }
}

/// Tunable answering-machine detection, the common heuristic (as Asterisk's AMD): a person
/// says a short greeting and waits; a machine says a long one, or many words, or nothing.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmdParams {
    /// Silence before any speech longer than this: machine.
    pub initial_silence_ms: u32,
    /// Speech in the greeting longer than this: machine.
    pub greeting_ms: u32,
    /// Silence after speech longer than this: human (the person waits for an answer).
    pub after_greeting_silence_ms: u32,
    /// Longest analysis; undecided then: unknown.
    pub total_analysis_ms: u32,
    /// Voice shorter than this is not a word.
    pub min_word_ms: u32,
    /// Silence longer than this ends a word.
    pub between_words_silence_ms: u32,
    /// More words than this: machine.
    pub max_words: u32,
    /// Frames louder than this RMS (16-bit linear) are voice.
    pub silence_threshold_rms: f32,
}

impl Default for AmdParams {
    fn default() -> Self {
        AmdParams {
            initial_silence_ms: 2500,
            greeting_ms: 2000,
            after_greeting_silence_ms: 800,
            total_analysis_ms: 5000,
            min_word_ms: 100,
            between_words_silence_ms: 50,
            max_words: 3,
            silence_threshold_rms: 256.0,
        }
    }
}

impl AmdParams {
    /// These parameters with a profile's initial silence, greeting length and word count.
    pub fn with_tuning(self, t: campana_core::telephony::MachineTuning) -> AmdParams {
        AmdParams { initial_silence_ms: t.initial_silence_ms, greeting_ms: t.greeting_ms, max_words: t.max_words, ..self }
    }
}

/// Answering-machine detection over 20 ms frames after answer.
#[derive(Debug)]
pub struct Amd {
    p: AmdParams,
    elapsed_ms: u32,
    voice_ms: u32,
    silence_ms: u32,
    heard_voice: bool,
    in_word: bool,
    word_voice_ms: u32,
    words: u32,
    decided: Option<AnsweredBy>,
}

impl Amd {
    pub fn new(p: AmdParams) -> Amd {
        Amd { p, elapsed_ms: 0, voice_ms: 0, silence_ms: 0, heard_voice: false, in_word: false, word_voice_ms: 0, words: 0, decided: None }
    }

    /// Feeds one 20 ms frame; returns the decision once made (and the same afterwards).
    pub fn push(&mut self, frame: &[f32]) -> Option<AnsweredBy> {
        if self.decided.is_some() {
            return self.decided;
        }
        self.elapsed_ms += FRAME_MS;
        let voice = rms(frame) >= self.p.silence_threshold_rms;
        if voice {
            self.silence_ms = 0;
            self.voice_ms += FRAME_MS;
            self.word_voice_ms += FRAME_MS;
            if !self.in_word && self.word_voice_ms >= self.p.min_word_ms {
                self.in_word = true;
                self.heard_voice = true;
                self.words += 1;
            }
        } else {
            self.silence_ms += FRAME_MS;
            if self.silence_ms >= self.p.between_words_silence_ms {
                self.in_word = false;
                self.word_voice_ms = 0;
            }
        }
        let initial_silence = !self.heard_voice && self.silence_ms >= self.p.initial_silence_ms;
        let long_greeting = self.words > self.p.max_words || self.voice_ms >= self.p.greeting_ms;
        let d = if initial_silence || long_greeting {
            Some(AnsweredBy::Machine)
        } else if self.heard_voice && self.silence_ms >= self.p.after_greeting_silence_ms {
            Some(AnsweredBy::Human)
        } else if self.elapsed_ms >= self.p.total_analysis_ms {
            Some(AnsweredBy::Unknown)
        } else {
            None
        };
        self.decided = d;
        d
    }
}

/// Beep frequencies looked for: 400 to 2,000 Hz every 25 Hz (a 160-sample Goertzel filter
/// is about 50 Hz wide, so every tone in the range is within 12.5 Hz of one of them).
const BEEP_LOW_HZ: f32 = 400.0;
const BEEP_STEP_HZ: f32 = 25.0;
const BEEP_BINS: usize = 65;
/// A beep is one frequency held at least this long (speech never holds one this long).
pub const BEEP_MIN_MS: u32 = 120;
/// Share of a frame's energy in one frequency for the frame to be tonal.
const BEEP_TONE_RATIO: f32 = 0.6;
/// Silence this long after sound: the greeting is over and no beep is coming (some voicemail
/// systems have none).
pub const BEEP_SILENCE_MS: u32 = 3000;
/// Longest a message waits for the beep or the silence (then it is played anyway).
pub const BEEP_WAIT_MAX_MS: u32 = 30_000;

/// Why a voicemail message may start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeepWaitEnd {
    /// The beep ended.
    Beep,
    /// A long silence followed the greeting.
    Silence,
    /// [`BEEP_WAIT_MAX_MS`] passed.
    Timeout,
}

/// Waits for the end of an answering machine's beep, so that a message is left after it (and
/// not spoken over the greeting, where the voicemail does not record it).
#[derive(Debug, Default)]
pub struct BeepDetector {
    /// The tonal run now: frequency bin and length.
    run: Option<(usize, u32)>,
    silence_ms: u32,
    elapsed_ms: u32,
}

impl BeepDetector {
    /// Feeds one 20 ms frame; says when the message may start.
    pub fn push(&mut self, frame: &[f32]) -> Option<BeepWaitEnd> {
        self.elapsed_ms += FRAME_MS;
        let beep_ended = |run: Option<(usize, u32)>| run.is_some_and(|(_, ms)| ms >= BEEP_MIN_MS);
        if rms(frame) < TONE_MIN_RMS {
            self.silence_ms += FRAME_MS;
            if beep_ended(self.run.take()) {
                return Some(BeepWaitEnd::Beep);
            }
            if self.silence_ms >= BEEP_SILENCE_MS {
                return Some(BeepWaitEnd::Silence);
            }
        } else {
            self.silence_ms = 0;
            let (bin, ratio) = (0..BEEP_BINS)
                .map(|i| (i, tone_ratio(frame, BEEP_LOW_HZ + BEEP_STEP_HZ * i as f32)))
                .fold((0, 0.0f32), |best, x| if x.1 > best.1 { x } else { best });
            if ratio >= BEEP_TONE_RATIO {
                self.run = match self.run {
                    // The same tone (a neighbouring bin: it may sit between two).
                    Some((b, ms)) if b.abs_diff(bin) <= 1 => Some((b, ms + FRAME_MS)),
                    previous => {
                        if beep_ended(previous) {
                            return Some(BeepWaitEnd::Beep);
                        }
                        Some((bin, FRAME_MS))
                    }
                };
            } else if beep_ended(self.run.take()) {
                return Some(BeepWaitEnd::Beep);
            }
        }
        (self.elapsed_ms >= BEEP_WAIT_MAX_MS).then_some(BeepWaitEnd::Timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator (xorshift) for noise and variation.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        }
        fn range(&mut self, lo: u32, hi: u32) -> u32 {
            lo + ((self.next() + 1.0) / 2.0 * (hi - lo) as f32) as u32
        }
    }

    fn tone(freq: f32, ms: u32, amp: f32, out: &mut Vec<f32>) {
        let start = out.len();
        for i in 0..(ms as usize * 8) {
            out.push(amp * (2.0 * std::f32::consts::PI * freq * (start + i) as f32 / RATE_HZ).sin());
        }
    }

    fn silence(ms: u32, rng: &mut Rng, noise: f32, out: &mut Vec<f32>) {
        for _ in 0..(ms as usize * 8) {
            out.push(noise * rng.next());
        }
    }

    /// Speech-like: noise shaped by a syllable-rate envelope.
    fn speech(ms: u32, rng: &mut Rng, out: &mut Vec<f32>) {
        let n = ms as usize * 8;
        for i in 0..n {
            let env = 0.6 + 0.4 * (2.0 * std::f32::consts::PI * 4.0 * i as f32 / RATE_HZ).sin().abs();
            out.push(4000.0 * env * rng.next());
        }
    }

    fn tones_result(audio: &[f32]) -> Option<CallResult> {
        let mut d = ToneDetector::default();
        audio.chunks_exact(FRAME_SAMPLES).find_map(|f| d.push(f))
    }

    fn amd_result(audio: &[f32], p: AmdParams) -> AnsweredBy {
        let mut a = Amd::new(p);
        audio.chunks_exact(FRAME_SAMPLES).find_map(|f| a.push(f)).unwrap_or(AnsweredBy::Unknown)
    }

    #[test]
    fn goertzel_separates_sit_frequencies() {
        let mut v = Vec::new();
        tone(913.8, 20, 8000.0, &mut v);
        assert!(tone_ratio(&v, 913.8) > 0.8);
        assert!(tone_ratio(&v, 985.2) < tone_ratio(&v, 913.8) / 2.0);
        assert!(tone_ratio(&v, 1776.7) < 0.05);
    }

    #[test]
    fn sit_codes_are_recognised_with_noise() {
        let cases = [
            ((913.8, 276), (1370.6, 276), CallResult::SitIntercept),
            ((985.2, 380), (1370.6, 276), CallResult::SitVacant),
            ((913.8, 276), (1428.5, 380), CallResult::SitReorder),
            ((985.2, 276), (1370.6, 380), CallResult::SitReorder),
            ((985.2, 380), (1428.5, 380), CallResult::SitNoCircuit),
            ((913.8, 380), (1370.6, 380), CallResult::SitNoCircuit),
            ((913.8, 380), (1428.5, 276), CallResult::SitInvalid),
        ];
        let mut rng = Rng(7);
        for ((f1, d1), (f2, d2), want) in cases {
            let mut v = Vec::new();
            silence(200, &mut rng, 50.0, &mut v);
            tone(f1, d1, 6000.0, &mut v);
            tone(f2, d2, 6000.0, &mut v);
            tone(1776.7, 380, 6000.0, &mut v);
            speech(1000, &mut rng, &mut v);
            let noisy: Vec<f32> = v.iter().map(|x| x + 150.0 * rng.next()).collect();
            assert_eq!(tones_result(&noisy), Some(want), "{f1}/{d1} {f2}/{d2}");
        }
    }

    #[test]
    fn fax_tones_and_no_false_sit_on_speech() {
        let mut rng = Rng(3);
        let mut cng = Vec::new();
        tone(1100.0, 500, 5000.0, &mut cng);
        assert_eq!(tones_result(&cng), Some(CallResult::Fax));
        let mut ced = Vec::new();
        tone(2100.0, 1200, 5000.0, &mut ced);
        assert_eq!(tones_result(&ced), Some(CallResult::Fax));
        let mut talk = Vec::new();
        speech(5000, &mut rng, &mut talk);
        assert_eq!(tones_result(&talk), None);
    }

    /// Generated answers, with background noise of varying level: people mostly say a short
    /// greeting (1-2 words) and wait, but one in five says a longer one (3-4 words, "hello,
    /// John speaking"); machines say a long greeting (4-12 words), one in ten a short one
    /// (2 words, then a pause), one in ten stays silent.
    fn generated(seed: u64, machine: bool) -> Vec<f32> {
        let mut rng = Rng(seed * 2 + 1);
        let noise = rng.range(20, 180) as f32;
        let mut v = Vec::new();
        silence(rng.range(100, 900), &mut rng, noise, &mut v);
        let kind = rng.range(0, 10);
        let words = match (machine, kind) {
            (true, 0) => 0,
            (true, 1) => 2,
            (true, _) => rng.range(4, 12),
            (false, 0 | 1) => rng.range(3, 5),
            (false, _) => rng.range(1, 3),
        };
        for _ in 0..words {
            speech(rng.range(200, 500), &mut rng, &mut v);
            silence(rng.range(60, 250), &mut rng, noise, &mut v);
        }
        silence(if machine && words == 0 { 4000 } else { 2000 }, &mut rng, noise, &mut v);
        v
    }

    fn beep_wait(audio: &[f32]) -> Option<(BeepWaitEnd, u32)> {
        let mut d = BeepDetector::default();
        audio.chunks(FRAME_SAMPLES).enumerate().find_map(|(i, f)| d.push(f).map(|r| (r, (i as u32 + 1) * FRAME_MS)))
    }

    #[test]
    fn the_message_waits_for_the_end_of_the_beep() {
        let mut misses = 0;
        for seed in 0..200u64 {
            let mut greeting = generated(seed, true);
            greeting.truncate(greeting.len() - 2000 * 8); // the greeting, not its silence
            let mut rng = Rng(seed + 7);
            let freq = rng.range(400, 2000) as f32 + 0.37;
            let beep_ms = rng.range(200, 1000);
            let mut audio = greeting.clone();
            tone(freq, beep_ms, 4000.0, &mut audio);
            let beep_end_ms = (audio.len() / 8) as u32;
            silence(5000, &mut rng, 60.0, &mut audio);
            match beep_wait(&audio) {
                Some((BeepWaitEnd::Beep, at)) if at >= beep_end_ms && at <= beep_end_ms + 60 => {}
                other => {
                    misses += 1;
                    eprintln!("seed {seed}: {freq} Hz {beep_ms} ms beep ending at {beep_end_ms} ms: {other:?}");
                }
            }
            // Without a beep, the greeting's silence starts the message, never its speech.
            let mut no_beep = greeting;
            let greeting_end_ms = (no_beep.len() / 8) as u32;
            silence(5000, &mut rng, 60.0, &mut no_beep);
            let r = beep_wait(&no_beep);
            assert!(matches!(r, Some((BeepWaitEnd::Silence, at)) if at >= greeting_end_ms), "seed {seed}: no beep: {r:?}");
        }
        assert_eq!(misses, 0, "beeps missed or found too early");
        let silent = vec![0.0; 8000 * 40];
        assert_eq!(beep_wait(&silent).map(|(r, _)| r), Some(BeepWaitEnd::Silence));
        let mut tone_forever = Vec::new();
        tone(1000.0, 40_000, 4000.0, &mut tone_forever);
        assert_eq!(beep_wait(&tone_forever), Some((BeepWaitEnd::Timeout, BEEP_WAIT_MAX_MS)));
    }

    /// Precision and recall of machine detection on generated audio (reported in DESIGN.md).
    #[test]
    fn amd_precision_and_recall_on_generated_audio() {
        let p = AmdParams::default();
        let (mut tp, mut fp, mut fneg, mut unknown) = (0u32, 0u32, 0u32, 0u32);
        let n = 300u64;
        for seed in 0..n {
            for machine in [true, false] {
                match (amd_result(&generated(seed, machine), p), machine) {
                    (AnsweredBy::Machine, true) => tp += 1,
                    (AnsweredBy::Machine, false) => fp += 1,
                    (AnsweredBy::Human, true) => fneg += 1,
                    (AnsweredBy::Unknown, _) => unknown += 1,
                    (AnsweredBy::Human, false) => {}
                }
            }
        }
        let precision = f64::from(tp) / f64::from((tp + fp).max(1));
        let recall = f64::from(tp) / n as f64;
        eprintln!(
            "AMD on {n} machines + {n} humans: precision {precision:.3}, recall {recall:.3}, false negatives {fneg}, undecided {unknown}"
        );
        assert!(precision >= 0.88 && recall >= 0.88, "precision {precision:.3} recall {recall:.3}");
    }
}
