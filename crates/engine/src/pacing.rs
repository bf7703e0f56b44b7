//! Predictive pacing: how many calls to have in flight for a campaign.
//!
//! Two quantities decide it:
//! - the *want*: the most calls in flight whose expected overflow (live answers beyond the free
//!   agents, `E[(X - free)+]` for `X ~ Binomial(N, p)`) stays at `target_rate` of the expected
//!   answers; `p` is the estimated live-answer probability per dial (an exponentially weighted
//!   mean over recent outcomes, so it follows a lunch-time drop or an afternoon rise within ~60
//!   calls) and `target_rate` is adapted by the engine to the realised rate;
//! - the *guard*: the abandon budget `B = cap * answers_in_window - abandons_in_window` (the
//!   smaller over the 24 h and 30 d windows, counting only answers that stay in the window for
//!   the next 10 minutes). With `N` calls in flight, at most `answers - free agents` can be
//!   abandoned. The pacer allows `N` only while `P(Binomial(N, p_high) > free - waiting + B) <= risk`,
//!   `p_high` an upper confidence bound on `p`; with `B < 1` it dials no more calls than free
//!   agents, so the first abandon can only come once enough live answers make it fit under the cap.

use serde::Serialize;

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
}

/// Weight of the newest outcome.
pub const ALPHA: f64 = 1.0 / 60.0;

impl Default for AnswerEstimator {
    fn default() -> Self {
        AnswerEstimator { p: 0.3, n: 5.0, answer_s: 10.0, handle_s: 180.0 }
    }
}

impl AnswerEstimator {
    pub fn observe(&mut self, live: bool) {
        let x = if live { 1.0 } else { 0.0 };
        let a = ALPHA.max(1.0 / (self.n + 1.0));
        self.p += a * (x - self.p);
        self.n = (self.n + 1.0).min(1.0 / ALPHA);
    }
    pub fn observe_answer_delay(&mut self, s: f64) {
        self.answer_s += 0.05 * (s - self.answer_s);
    }
    pub fn observe_handle(&mut self, s: f64) {
        self.handle_s += 0.05 * (s - self.handle_s);
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
    /// Agents whose wrap-up ends within the expected time to answer.
    pub soon_agents: usize,
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
    /// Expected agents freeing up within the time to answer (wrap-ups ending, talks ending).
    pub freeing: f64,
    /// Expected abandons per live answer the pacer aims for (adapted by the caller).
    pub target_rate: f64,
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

/// Standard normal density and upper tail.
fn phi(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}
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

/// E[(X - f)+] for X ~ Binomial(n, p): the expected answers that find no agent.
pub fn expected_overflow(n: usize, p: f64, f: f64) -> f64 {
    if n == 0 || f >= n as f64 {
        return 0.0;
    }
    let q = 1.0 - p;
    let mean = n as f64 * p;
    let log_p0 = n as f64 * q.ln();
    if log_p0 < -700.0 || q <= 0.0 {
        let sd = (n as f64 * p * q).sqrt().max(1e-9);
        let z = (f - mean) / sd;
        return (sd * phi(z) + (mean - f) * upper_tail(z)).max(0.0);
    }
    // (x - f)+ = (x - f) + (f - x)+, so E[(X - f)+] = mean - f + E[(f - X)+]: only x < f are summed.
    let r = p / q;
    let mut pmf = log_p0.exp();
    let mut lower = 0.0;
    let mut x = 0usize;
    while (x as f64) < f && x <= n {
        lower += (f - x as f64) * pmf;
        pmf *= (n - x) as f64 / (x + 1) as f64 * r;
        x += 1;
    }
    (mean - f + lower).max(0.0)
}

/// How many calls the campaign should have in flight (not answered yet) now: the most whose
/// expected overflow stays at `target_rate` of their expected answers, then the hard guard.
pub fn predictive_target(i: PaceInput) -> usize {
    let free = (i.free_agents as i64 - i.waiting as i64).max(0) as usize;
    let f_eff = free as f64 + i.freeing.max(0.0);
    if f_eff < 1e-9 {
        return 0;
    }
    let p = i.p_mean;
    let hi_bound = (((f_eff + 4.0 * (f_eff + 1.0).sqrt()) / p).ceil() as usize).max(free).min(i.max_in_flight);
    let ok = |n: usize| n == 0 || expected_overflow(n, p, f_eff) <= i.target_rate * n as f64 * p;
    let (mut lo, mut hi) = (free.min(hi_bound), hi_bound);
    if !ok(lo) {
        return guard_max(&i, lo);
    }
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    guard_max(&i, lo)
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

    fn input() -> PaceInput {
        PaceInput {
            free_agents: 5,
            soon_agents: 0,
            waiting: 0,
            in_flight: 0,
            p_mean: 0.2,
            p_high: 0.3,
            budget: 0.5,
            risk: 1e-5,
            max_in_flight: 1000,
            freeing: 0.0,
            target_rate: 0.05,
        }
    }

    #[test]
    fn no_budget_means_one_to_one() {
        assert_eq!(predictive_target(input()), 5);
        let t = predictive_target(PaceInput { budget: 10.0, ..input() });
        assert!(t > 5 && t <= 25, "{t}");
    }

    #[test]
    fn overflow_normal_matches_exact() {
        let (n, p, f) = (200usize, 0.3f64, 55.0f64);
        let mut pmf = (1.0 - p).powi(n as i32);
        let mut exact = 0.0;
        for x in 0..=n {
            if x as f64 > f {
                exact += (x as f64 - f) * pmf;
            }
            if x < n {
                pmf *= (n - x) as f64 / (x + 1) as f64 * p / (1.0 - p);
            }
        }
        assert!((expected_overflow(n, p, f) - exact).abs() < 0.1 * exact.max(0.1), "{exact}");
    }
}
