//! Pacing: how many calls to place now for a campaign.
//!
//! **Predictive** ([`predictive_dials`]) places, each time something changes:
//! 1. one call per free agent not already covered by a ringing call;
//! 2. more calls while the chance that the *next* call's answer finds no agent stays at or under
//!    `theta`. The answers still to come are counted by what each ringing call's age says
//!    ([`AgeProfile`], [`RingingAges`]): a call ringing for 15 s is far less likely to be
//!    answered than a fresh one, so old calls hold back few new ones. `theta` starts at the
//!    campaign's `abandon_rate_target` and is adapted by the engine to the realised rate.
//!    The live-answer probability `p` is an exponentially weighted mean over the last ~60
//!    outcomes, fed in dial order once every earlier call is resolved, so a wave of quick
//!    answers or of ring timeouts after a burst of dials does not bias it.
//! 3. the *guard*: the abandon budget `B = cap * answers_in_window - abandons_in_window` (the
//!    smaller over the 24 h and 30 d windows, counting only answers that stay in the window for
//!    the next 10 minutes). At most `answers - (free agents - waiting answers)` calls can be
//!    abandoned, so the pacer allows `N` calls ringing only while
//!    `P(answers > free - waiting + B) <= risk`, each call at the upper confidence bound of its
//!    answer probability (Hoeffding: a binomial with the same mean bounds the tail). With
//!    `B < 1` it places no more calls than free agents, so the first abandon can only come
//!    once enough live answers make it fit under the cap.
//!
//! **Power** mode uses [`guard_max`] (every ringing call at `p_high`) on its fixed ratio.

use serde::Serialize;
use std::collections::VecDeque;

/// Estimated live-answer probability per dial.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerEstimator {
    p: f64,
    /// Effective number of samples (bounded by 1/alpha).
    n: f64,
    /// Mean seconds from dial to a live answer.
    answer_s: f64,
    /// Mean seconds an agent spends per connected call (talk + wrap-up).
    handle_s: f64,
    /// Mean seconds of conversation (connect to hang-up).
    talk_s: f64,
    /// Mean seconds of wrap-up (hang-up to disposition).
    wrap_s: f64,
    /// Slow estimate: memory of [`SLOW_WINDOW_S`] seconds of outcomes (at least 60 of them),
    /// and its effective number of samples.
    slow: f64,
    slow_n: f64,
    /// Mean seconds between outcomes, and when the last one was seen.
    gap_s: f64,
    last_s: Option<f64>,
}

/// Memory of the slow estimate, in seconds of outcomes.
pub const SLOW_WINDOW_S: f64 = 180.0;
/// Most outcomes the slow estimate remembers.
const SLOW_MAX_N: f64 = 2000.0;

/// Weight of the newest outcome.
pub const ALPHA: f64 = 1.0 / 60.0;

impl Default for AnswerEstimator {
    fn default() -> Self {
        AnswerEstimator {
            p: 0.3,
            n: 5.0,
            answer_s: 10.0,
            handle_s: 180.0,
            talk_s: 150.0,
            wrap_s: 30.0,
            slow: 0.3,
            slow_n: 5.0,
            gap_s: 5.0,
            last_s: None,
        }
    }
}

impl AnswerEstimator {
    pub fn observe(&mut self, live: bool) {
        let x = if live { 1.0 } else { 0.0 };
        let a = ALPHA.max(1.0 / (self.n + 1.0));
        self.p += a * (x - self.p);
        self.n = (self.n + 1.0).min(1.0 / ALPHA);
    }
    /// An outcome seen at `t_s` (seconds on any fixed origin): updates the fast mean
    /// ([`AnswerEstimator::observe`]) and the slow one, whose memory is [`SLOW_WINDOW_S`] seconds
    /// of outcomes (60 to 2,000 outcomes), so a large team's estimate is not noisier than a
    /// small one's over the same minutes.
    pub fn observe_at(&mut self, live: bool, t_s: f64) {
        self.observe(live);
        if let Some(last) = self.last_s {
            self.gap_s += 0.02 * ((t_s - last).max(0.0) - self.gap_s);
        }
        self.last_s = Some(t_s);
        let cap = (SLOW_WINDOW_S / self.gap_s.max(1e-3)).clamp(1.0 / ALPHA, SLOW_MAX_N);
        let x = if live { 1.0 } else { 0.0 };
        let a = (1.0 / cap).max(1.0 / (self.slow_n + 1.0));
        self.slow += a * (x - self.slow);
        self.slow_n = (self.slow_n + 1.0).min(cap);
    }
    /// The slow estimate (what the predictive pacer plans with).
    pub fn slow_mean(&self) -> f64 {
        self.slow.clamp(0.01, 1.0)
    }
    /// Upper bound for the predictive guard: the slow estimate plus `z` standard errors, and
    /// never under the fast estimate (which follows a sudden rise within ~60 outcomes).
    pub fn slow_upper(&self, z: f64) -> f64 {
        let p = self.slow_mean();
        (p + z * (p * (1.0 - p) / self.slow_n.max(1.0)).sqrt() + 0.01).max(self.mean()).min(1.0)
    }
    pub fn observe_answer_delay(&mut self, s: f64) {
        self.answer_s += 0.05 * (s - self.answer_s);
    }
    pub fn observe_handle(&mut self, s: f64) {
        self.handle_s += 0.05 * (s - self.handle_s);
    }
    pub fn observe_talk(&mut self, s: f64) {
        self.talk_s += 0.05 * (s - self.talk_s);
    }
    pub fn observe_wrap(&mut self, s: f64) {
        self.wrap_s += 0.05 * (s - self.wrap_s);
    }
    pub fn talk_s(&self) -> f64 {
        self.talk_s.max(1.0)
    }
    pub fn wrap_s(&self) -> f64 {
        self.wrap_s.max(0.1)
    }
    pub fn handle_s(&self) -> f64 {
        self.handle_s.max(1.0)
    }
    pub fn mean(&self) -> f64 {
        self.p.clamp(0.01, 1.0)
    }
    /// Upper confidence bound used by the guard.
    pub fn upper(&self) -> f64 {
        let p = self.mean();
        (p + 2.5 * (p * (1.0 - p) / self.n.max(1.0)).sqrt() + 0.03).min(1.0)
    }
    /// Upper confidence bound `p + z sd + add`.
    pub fn upper_with(&self, z: f64, add: f64) -> f64 {
        let p = self.mean();
        (p + z * (p * (1.0 - p) / self.n.max(1.0)).sqrt() + add).min(1.0)
    }
    pub fn answer_s(&self) -> f64 {
        self.answer_s
    }
}

/// P(X > k) for X ~ Binomial(n, p).
pub fn binomial_tail(n: usize, p: f64, k: i64) -> f64 {
    if k < 0 {
        return 1.0;
    }
    if k as usize >= n {
        return 0.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let q = 1.0 - p;
    let log_p0 = n as f64 * q.ln();
    if log_p0 > -700.0 {
        // pmf(i+1) = pmf(i) * (n-i)/(i+1) * p/q, summed up to k.
        let r = p / q;
        let mut pmf = log_p0.exp();
        let mut cdf = pmf;
        for i in 0..(k as usize) {
            pmf *= (n - i) as f64 / (i + 1) as f64 * r;
            cdf += pmf;
        }
        return (1.0 - cdf).max(0.0);
    }
    // Very large n: sum in log space.
    let mut log_pmf = log_p0;
    let mut cdf = log_pmf.exp();
    for i in 0..(k as usize) {
        log_pmf += ((n - i) as f64).ln() - ((i + 1) as f64).ln() + p.ln() - q.ln();
        cdf += log_pmf.exp();
    }
    (1.0 - cdf).max(0.0)
}

#[derive(Debug, Clone, Copy)]
pub struct PaceInput {
    /// Ready agents assigned to the campaign.
    pub free_agents: usize,
    /// Answered calls waiting for an agent.
    pub waiting: usize,
    /// Calls dialed and not yet answered.
    pub in_flight: usize,
    pub p_mean: f64,
    pub p_high: f64,
    /// Abandons the windows can still take.
    pub budget: f64,
    pub risk: f64,
    pub max_in_flight: usize,
}

/// The most calls in flight the abandon guard allows (see the module documentation).
pub fn guard_max(i: &PaceInput, want: usize) -> usize {
    let free = i.free_agents as i64 - i.waiting as i64;
    let base = free.max(0) as usize;
    if i.budget < 1.0 || want <= base {
        return want.min(base);
    }
    let k = free + i.budget.floor() as i64;
    // The tail grows with n: binary search the largest n in [base, want] within the risk.
    let (mut lo, mut hi) = (base, want);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if binomial_tail(mid, i.p_high, k) <= i.risk {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Standard normal upper tail.
fn upper_tail(z: f64) -> f64 {
    // Abramowitz-Stegun 7.1.26 on erfc(z / sqrt 2).
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.3275911 * x);
    let erfc = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * (-x * x).exp();
    if z >= 0.0 {
        0.5 * erfc
    } else {
        1.0 - 0.5 * erfc
    }
}

/// Ages are tracked in one-second bins up to this many seconds (older calls share the last bin).
pub const AGE_BINS: usize = 128;
/// Pseudo-observations of the prior shape (answers spread over the ring time, other outcomes at
/// the ring timeout), so a fresh campaign starts cautious and data takes over within minutes.
const PRIOR_WEIGHT: f64 = 3.0;
/// The shape follows the recent calls: counts are halved when a side passes this total.
const PROFILE_MAX: f64 = 4000.0;

/// How call outcomes are spread over a call's age: seconds from dial to a live answer, and to
/// the end of calls that were not answered by a person (busy, no answer, machine, SIT). Gives
/// the probability that a call still ringing at age `a` will yet be answered by a person.
#[derive(Debug, Clone)]
pub struct AgeProfile {
    /// `live_tail[a]`: weighted live answers that took `a` seconds or more.
    live_tail: Vec<f64>,
    /// `other_tail[a]`: weighted other outcomes at age `a` seconds or more.
    other_tail: Vec<f64>,
}

impl AgeProfile {
    /// A prior for calls that ring at most `ring_timeout_s`.
    pub fn new(ring_timeout_s: u32) -> Self {
        let ring = (ring_timeout_s as usize).clamp(1, AGE_BINS - 1);
        let mut p = AgeProfile { live_tail: vec![0.0; AGE_BINS], other_tail: vec![0.0; AGE_BINS] };
        for b in 0..ring {
            p.add_live(b as f64 + 0.5, PRIOR_WEIGHT / ring as f64);
        }
        p.add_other(ring as f64, PRIOR_WEIGHT);
        p
    }
    fn bin(age_s: f64) -> usize {
        (age_s.max(0.0) as usize).min(AGE_BINS - 1)
    }
    fn add(tail: &mut [f64], b: usize, w: f64) {
        for t in &mut tail[..=b] {
            *t += w;
        }
        if tail[0] > PROFILE_MAX {
            for t in tail.iter_mut() {
                *t *= 0.5;
            }
        }
    }
    fn add_live(&mut self, age_s: f64, w: f64) {
        Self::add(&mut self.live_tail, Self::bin(age_s), w);
    }
    fn add_other(&mut self, age_s: f64, w: f64) {
        Self::add(&mut self.other_tail, Self::bin(age_s), w);
    }
    /// A person answered `age_s` seconds after the dial.
    pub fn observe_live(&mut self, age_s: f64) {
        self.add_live(age_s, 1.0);
    }
    /// A call left the ringing state without a person (ended, machine) at `age_s`.
    pub fn observe_other(&mut self, age_s: f64) {
        self.add_other(age_s, 1.0);
    }
    /// P(a person will yet answer | still ringing at `age_s` whole seconds), for a campaign whose
    /// live-answer probability per dial is `p`.
    pub fn answer_prob_at(&self, age_s: usize, p: f64) -> f64 {
        let (g, o) = self.tails_at(age_s);
        Self::posterior(g, o, p)
    }
    /// Shares of live answers and of other outcomes that come at `age_s` or later.
    fn tails_at(&self, age_s: usize) -> (f64, f64) {
        let b = age_s.min(AGE_BINS - 1);
        (self.live_tail[b] / self.live_tail[0].max(1e-12), self.other_tail[b] / self.other_tail[0].max(1e-12))
    }
    fn posterior(g: f64, o: f64, p: f64) -> f64 {
        let num = p * g;
        let den = num + (1.0 - p) * o;
        if den <= 1e-12 {
            0.0
        } else {
            num / den
        }
    }
}

/// The calls of a campaign still ringing, counted by the second they were dialed (bounded to
/// [`AGE_BINS`] seconds; older ones are kept as one count).
#[derive(Debug, Clone, Default)]
pub struct RingingAges {
    base: i64,
    counts: VecDeque<u32>,
    old: u32,
}

/// Expected future live answers of the calls still ringing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RingingOutlook {
    /// Calls still ringing.
    pub calls: usize,
    /// Expected live answers among them (at the mean answer probability).
    pub mean: f64,
    /// Variance of that number.
    pub var: f64,
    /// Expected live answers at the upper confidence bound of the answer probability.
    pub high: f64,
}

impl RingingAges {
    pub fn add(&mut self, dialed_s: i64) {
        if self.counts.is_empty() {
            self.base = dialed_s;
        }
        if dialed_s < self.base {
            let room = AGE_BINS.saturating_sub(self.counts.len()) as i64;
            if self.old == 0 && self.base - dialed_s <= room {
                for _ in dialed_s..self.base {
                    self.counts.push_front(0);
                }
                self.base = dialed_s;
            } else {
                self.old += 1;
                return;
            }
        }
        let idx = (dialed_s - self.base) as usize;
        while self.counts.len() <= idx {
            self.counts.push_back(0);
        }
        self.counts[idx] += 1;
        while self.counts.len() > AGE_BINS {
            self.old += self.counts.pop_front().unwrap_or(0);
            self.base += 1;
        }
    }
    pub fn remove(&mut self, dialed_s: i64) {
        // A call removed that was never added (or twice) would leave the ringing ages wrong for
        // the rest of the day, and pacing would read them: it panics instead.
        if dialed_s < self.base {
            assert!(self.old > 0, "ringing ages: no call dialed at {dialed_s} to remove");
            self.old -= 1;
        } else {
            let c = self.counts.get_mut((dialed_s - self.base) as usize);
            assert!(c.as_ref().is_some_and(|c| **c > 0), "ringing ages: no call dialed at {dialed_s} to remove");
            if let Some(c) = c {
                *c -= 1;
            }
        }
        while self.counts.front() == Some(&0) {
            self.counts.pop_front();
            self.base += 1;
        }
    }
    /// The second the oldest call still ringing was dialed (`i64::MIN` when some are older
    /// than the tracked window).
    pub fn oldest_dial_s(&self) -> Option<i64> {
        if self.old > 0 {
            Some(i64::MIN)
        } else if self.counts.is_empty() {
            None
        } else {
            Some(self.base)
        }
    }
    /// What the ringing calls will yet bring at `now_s`, for answer probabilities `p` and `p_high`.
    pub fn outlook(&self, now_s: i64, profile: &AgeProfile, p: f64, p_high: f64) -> RingingOutlook {
        let mut o = RingingOutlook::default();
        let mut acc = |n: u32, age: usize| {
            if n == 0 {
                return;
            }
            let n = f64::from(n);
            let (g, other) = profile.tails_at(age);
            let h = AgeProfile::posterior(g, other, p);
            o.calls += n as usize;
            o.mean += n * h;
            o.var += n * h * (1.0 - h);
            o.high += n * AgeProfile::posterior(g, other, p_high);
        };
        acc(self.old, AGE_BINS - 1);
        for (i, &c) in self.counts.iter().enumerate() {
            // Whole seconds the call has surely been ringing.
            let age = (now_s - self.base - i as i64 - 1).max(0) as usize;
            acc(c, age);
        }
        o
    }
}

/// Everything the predictive pacer weighs for one campaign at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Lookahead {
    /// Ready agents assigned to the campaign.
    pub free_agents: usize,
    /// Answered calls waiting for an agent.
    pub waiting: usize,
    /// The calls still ringing and what they will yet bring.
    pub ringing: RingingOutlook,
    /// Live-answer probability of a new dial, and its upper confidence bound.
    pub p_mean: f64,
    pub p_high: f64,
    /// Highest accepted probability that the next call's answer finds no agent (adapted).
    pub theta: f64,
    /// Abandons the windows can still take.
    pub budget: f64,
    pub risk: f64,
    pub max_in_flight: usize,
}

/// P(a person answering the next call finds no agent), in the normal approximation, when `k`
/// more calls are dialed before it.
fn next_call_overflow(i: &Lookahead, k: f64) -> f64 {
    // Agents still talking or in wrap-up are not counted: only the free ones.
    let avail = i.free_agents as f64 - i.waiting as f64;
    let mean = i.ringing.mean + k * i.p_mean - avail;
    let var = i.ringing.var + k * i.p_mean * (1.0 - i.p_mean);
    let sd = var.max(1e-9).sqrt();
    // The answers beyond the agents are a whole number: P(D >= 0) = P(D > -0.5).
    upper_tail(-(mean + 0.5) / sd)
}

/// How many new calls the predictive pacer places now (see docs/dialing.md, "Pacing"):
/// 1. at least one per free agent not covered by a ringing call;
/// 2. more while the chance that the next call's answer finds no free agent (ringing calls
///    counted by what their age says they will yet bring; agents talking or in wrap-up are not
///    counted) stays at or under `theta`;
/// 3. the hard guard: never more than the abandon budget takes with probability `1 - risk`.
pub fn predictive_dials(i: &Lookahead) -> usize {
    let free = i.free_agents.saturating_sub(i.waiting);
    let base = free.saturating_sub(i.ringing.calls);
    let room = i.max_in_flight.saturating_sub(i.ringing.calls);
    if i.p_mean <= 0.0 || room == 0 {
        return base.min(room);
    }
    let avail = free as f64;
    let hi = ((((avail + 6.0 * (avail + 1.0).sqrt() + 2.0) / i.p_mean).ceil() as usize).max(base)).min(room);
    // The n-th new call is placed when the n - 1 before it leave it under theta.
    let ok = |n: usize| n <= base || next_call_overflow(i, (n - 1) as f64) <= i.theta;
    let (mut lo, mut up) = (base.min(hi), hi);
    while lo < up {
        let mid = lo + (up - lo).div_ceil(2);
        if ok(mid) {
            lo = mid;
        } else {
            up = mid - 1;
        }
    }
    let want = lo;
    if i.budget < 1.0 || want <= base {
        return want.min(base);
    }
    // Guard: with N calls ringing (each answering with at most its upper probability), at most
    // answers - free agents are abandoned; Hoeffding's bound lets a binomial with the same mean
    // stand for the ringing calls' unequal probabilities.
    // Waiting answers beyond the free agents are abandons to come: they use the budget first.
    let k = i.free_agents as i64 - i.waiting as i64 + i.budget.floor() as i64;
    let tail = |m: usize| {
        let n = i.ringing.calls + m;
        let pbar = ((i.ringing.high + m as f64 * i.p_high) / n as f64).clamp(0.0, 1.0);
        binomial_tail(n, pbar, k)
    };
    let (mut lo, mut up) = (base, want);
    while lo < up {
        let mid = lo + (up - lo).div_ceil(2);
        if tail(mid) <= i.risk {
            lo = mid;
        } else {
            up = mid - 1;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail() {
        assert!((binomial_tail(10, 0.5, 4) - 0.623046875).abs() < 1e-9);
        assert_eq!(binomial_tail(3, 0.5, 3), 0.0);
        assert_eq!(binomial_tail(3, 0.5, -1), 1.0);
    }

    #[test]
    fn power_guard_without_budget_is_one_to_one() {
        let i =
            PaceInput { free_agents: 5, waiting: 0, in_flight: 0, p_mean: 0.2, p_high: 0.3, budget: 0.5, risk: 1e-5, max_in_flight: 1000 };
        assert_eq!(guard_max(&i, 15), 5);
        let t = guard_max(&PaceInput { budget: 10.0, ..i }, 15);
        assert!(t > 5 && t <= 15, "{t}");
    }

    fn look() -> Lookahead {
        Lookahead {
            free_agents: 2,
            waiting: 0,
            ringing: RingingOutlook::default(),
            p_mean: 0.2,
            p_high: 0.3,
            theta: 0.03,
            budget: 0.5,
            risk: 1e-3,
            max_in_flight: 1000,
        }
    }

    #[test]
    fn predictive_without_budget_is_one_call_per_free_agent() {
        assert_eq!(predictive_dials(&look()), 2);
        // Ringing calls already cover the free agents.
        let ringing = RingingOutlook { calls: 2, mean: 0.4, var: 0.32, high: 0.6 };
        assert_eq!(predictive_dials(&Lookahead { ringing, ..look() }), 0);
        // An answer waiting for an agent takes a free agent first.
        assert_eq!(predictive_dials(&Lookahead { waiting: 1, ..look() }), 1);
    }

    #[test]
    fn predictive_dials_more_with_budget_and_old_calls_count_less() {
        let with_budget = Lookahead { budget: 20.0, free_agents: 5, theta: 0.1, ..look() };
        let n = predictive_dials(&with_budget);
        assert!(n > 5 && n < 60, "{n}");
        // Ten calls ringing for long (unlikely to answer) hold back fewer new calls than ten fresh ones.
        let old = RingingOutlook { calls: 10, mean: 0.2, var: 0.19, high: 0.4 };
        let fresh = RingingOutlook { calls: 10, mean: 2.0, var: 1.6, high: 3.0 };
        let a = predictive_dials(&Lookahead { ringing: old, ..with_budget });
        let b = predictive_dials(&Lookahead { ringing: fresh, ..with_budget });
        assert!(a > b, "{a} {b}");
        // A larger theta never dials less.
        assert!(predictive_dials(&Lookahead { theta: 0.3, ..with_budget }) >= n);
    }

    #[test]
    fn ringing_ages_and_profile() {
        let mut prof = AgeProfile::new(25);
        for _ in 0..200 {
            prof.observe_live(5.0);
            for _ in 0..4 {
                prof.observe_other(25.0);
            }
        }
        let young = prof.answer_prob_at(0, 0.2);
        let old = prof.answer_prob_at(10, 0.2);
        assert!((young - 0.2).abs() < 0.02, "{young}");
        assert!(old < 0.01, "{old}");
        let mut r = RingingAges::default();
        r.add(100);
        r.add(100);
        r.add(112);
        assert_eq!(r.oldest_dial_s(), Some(100));
        let o = r.outlook(113, &prof, 0.2, 0.3);
        assert_eq!(o.calls, 3);
        assert!(o.mean > 0.15 && o.mean < 0.25, "{o:?}");
        r.remove(100);
        r.remove(100);
        assert_eq!(r.oldest_dial_s(), Some(112));
        r.add(90);
        assert_eq!(r.oldest_dial_s(), Some(90));
        r.remove(90);
        r.remove(112);
        assert_eq!(r.oldest_dial_s(), None);
        // Calls older than the tracked window are kept as one count.
        r.add(0);
        r.add(AGE_BINS as i64 + 10);
        assert_eq!(r.outlook(AGE_BINS as i64 + 11, &prof, 0.2, 0.3).calls, 2);
        r.remove(0);
        r.remove(AGE_BINS as i64 + 10);
        assert_eq!(r.oldest_dial_s(), None);
    }
}
