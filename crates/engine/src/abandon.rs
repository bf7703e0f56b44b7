//! Abandon accounting per campaign over rolling windows (24 h for UK Ofcom, 30 d for US FCC).
//!
//! A *live answer* is a call answered by a person (AMD said human, or detection was off). An
//! *abandon* is a live answer not connected to an agent within `connect_deadline_ms`; the
//! safe-harbor prompt is played. Counting of answering-machine calls: under `us_fcc_30d` a call
//! the AMD classified as a machine is neither a live answer nor an abandon; under
//! `uk_ofcom_24h` each machine verdict that was hung up adds `amd_false_positive_share` (engine
//! configuration, default 0.1) to both counts, Ofcom's "reasoned estimate" of live persons
//! misclassified as machines.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::VecDeque;

/// 24 hours in seconds.
pub const WINDOW_24H_S: i64 = 86_400;
/// 30 days in seconds.
pub const WINDOW_30D_S: i64 = 30 * 86_400;
/// Bucket width of the ledger.
pub const BUCKET_S: i64 = 60;
/// The ledger keeps at most this many one-minute buckets (30 days plus one day).
pub const MAX_BUCKETS: usize = (WINDOW_30D_S / BUCKET_S + 1440) as usize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WindowCounts {
    pub live_answers: f64,
    pub abandons: f64,
}

impl WindowCounts {
    /// abandons / live answers (0 when nothing was answered).
    pub fn rate(&self) -> f64 {
        if self.live_answers > 0.0 {
            self.abandons / self.live_answers
        } else {
            0.0
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    start: i64,
    answers: f64,
    abandons: f64,
    /// Running totals up to and including this bucket (differences give any range).
    cum_answers: f64,
    cum_abandons: f64,
}

/// (minute, window, changes) of a memoised budget.
type MemoKey = (i64, i64, u64);

/// One campaign's ledger: one-minute buckets, bounded to [`MAX_BUCKETS`].
#[derive(Debug, Clone, Default)]
pub struct AbandonLedger {
    buckets: VecDeque<Bucket>,
    /// Memo of `budget` results: (minute, window, changes) -> budget (bounded to 4 entries).
    memo: std::cell::RefCell<Vec<(MemoKey, f64)>>,
    changes: u64,
}

impl AbandonLedger {
    pub fn add(&mut self, at: DateTime<Utc>, answers: f64, abandons: f64) {
        self.changes += 1;
        let start = at.timestamp().div_euclid(BUCKET_S) * BUCKET_S;
        if self.buckets.back().is_none_or(|b| b.start < start) {
            let (ca, cb) = self.buckets.back().map_or((0.0, 0.0), |b| (b.cum_answers, b.cum_abandons));
            self.buckets.push_back(Bucket { start, answers: 0.0, abandons: 0.0, cum_answers: ca, cum_abandons: cb });
            while self.buckets.len() > MAX_BUCKETS {
                self.buckets.pop_front();
            }
        }
        // Late entries (history replayed out of order) go to the newest bucket not after them.
        let idx = self.buckets.partition_point(|b| b.start <= start).saturating_sub(1);
        let b = &mut self.buckets[idx];
        b.answers += answers;
        b.abandons += abandons;
        for b in self.buckets.range_mut(idx..) {
            b.cum_answers += answers;
            b.cum_abandons += abandons;
        }
    }

    /// Counts over `(to - window_s, to]`.
    pub fn window(&self, to: DateTime<Utc>, window_s: i64) -> WindowCounts {
        self.range(to.timestamp() - window_s, to.timestamp())
    }

    /// Totals of the buckets that overlap `(from_excl, to_incl]` (a bucket counts whole when
    /// any of its minute is inside).
    fn range(&self, from_excl: i64, to_incl: i64) -> WindowCounts {
        // Buckets with start + BUCKET_S > from_excl and start <= to_incl.
        let lo = self.buckets.partition_point(|b| b.start + BUCKET_S <= from_excl);
        let hi = self.buckets.partition_point(|b| b.start <= to_incl);
        if lo >= hi {
            return WindowCounts::default();
        }
        let last = &self.buckets[hi - 1];
        let (ba, bb) = if lo == 0 {
            let f = &self.buckets[0];
            (f.cum_answers - f.answers, f.cum_abandons - f.abandons)
        } else {
            let p = &self.buckets[lo - 1];
            (p.cum_answers, p.cum_abandons)
        };
        WindowCounts { live_answers: last.cum_answers - ba, abandons: last.cum_abandons - bb }
    }

    /// How many more abandons the window can take within the next `horizon_s` and still be at
    /// or under `cap`, counting only answers that will still be inside the window then.
    pub fn budget(&self, now: DateTime<Utc>, window_s: i64, horizon_s: i64, cap: f64) -> f64 {
        let t = now.timestamp();
        // Answers that stay in the window until now + horizon (buckets fully after the cut).
        let cut = t + horizon_s - window_s + BUCKET_S;
        let answers = self.range(cut, t).live_answers;
        let abandons = self.range(t - window_s, t).abandons;
        cap * answers - abandons
    }

    /// [`AbandonLedger::budget`], memoised per minute until the ledger changes. Conservative
    /// within the minute: answers only expire at bucket boundaries.
    pub fn budget_cached(&self, now: DateTime<Utc>, window_s: i64, horizon_s: i64, cap: f64) -> f64 {
        let key = (now.timestamp().div_euclid(BUCKET_S), window_s, self.changes);
        if let Some((_, v)) = self.memo.borrow().iter().find(|(k, _)| *k == key) {
            return *v;
        }
        let minute_end = DateTime::<Utc>::from_timestamp((key.0 + 1) * BUCKET_S, 0).unwrap_or(now);
        let v = self.budget(minute_end.max(now), window_s, horizon_s, cap);
        let mut m = self.memo.borrow_mut();
        if m.len() >= 4 {
            m.remove(0);
        }
        m.push((key, v));
        v
    }

    /// The worst window rate over `(t - window_s, t]` evaluated at every bucket end up to `now`
    /// (used by tests and the simulator).
    pub fn worst_rate(&self, window_s: i64, min_answers: f64) -> f64 {
        let mut worst: f64 = 0.0;
        for b in &self.buckets {
            if b.abandons > 0.0 {
                let w = self.range(b.start + BUCKET_S - window_s, b.start + BUCKET_S - 1);
                if w.live_answers >= min_answers && w.live_answers > 0.0 {
                    worst = worst.max(w.rate());
                }
            }
        }
        worst
    }

    /// How many minute-ends with an abandon have a window rate over `cap`.
    pub fn windows_over(&self, window_s: i64, cap: f64) -> u64 {
        self.buckets
            .iter()
            .filter(|b| b.abandons > 0.0)
            .filter(|b| {
                let w = self.range(b.start + BUCKET_S - window_s, b.start + BUCKET_S - 1);
                w.abandons > cap * w.live_answers + 1e-9
            })
            .count() as u64
    }

    pub fn since(&self, at: DateTime<Utc>) -> Duration {
        Duration::seconds(self.buckets.front().map_or(0, |b| at.timestamp() - b.start))
    }
}
