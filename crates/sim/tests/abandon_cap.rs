//! The abandon cap is a promise: over thousands of seeded days unlike the pacing benchmark's
//! (long days, slow answers, long and short talk, answering machines, breaks, shift changes,
//! answer rates that move, lists that run out), no realised rolling window of any day goes over
//! the cap, measured exactly at every abandon (`campana_sim::exact_windows`).
//!
//! `cargo test -p campana-sim --test abandon_cap` runs 1,000 days (the test profile optimises
//! the simulator, see the workspace Cargo.toml). For 10,000 or more:
//! `CAMPANA_CAP_DAYS=10000 cargo test -p campana-sim --release --test abandon_cap`
//! (`CAMPANA_CAP_FROM=N` starts at seed N).

use campana_sim::{run, AgentModel, Population, Scenario, Shift};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn env_u64(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|s| s.parse().ok()).unwrap_or(d)
}

/// A random day: predictive (mostly) or guarded power, 6 to 10 hours.
pub fn day(seed: u64) -> Scenario {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0x00ca_bca9_0000_0001);
    let hours: f64 = r.gen_range(6.0..10.0);
    let team: u32 = r.gen_range(2..=24);
    let talk: f64 = if r.gen_bool(0.3) { r.gen_range(300.0..480.0) } else { r.gen_range(45.0..250.0) };
    let shifts = if r.gen_bool(0.4) {
        // Two or three overlapping blocks: logins and logouts in the middle of the day.
        let a = r.gen_range(1.0..hours / 2.0);
        let b = r.gen_range(hours / 2.0..hours - 0.5);
        let mut v = vec![
            Shift { from_h: 0.0, to_h: b, count: r.gen_range(1..=team) },
            Shift { from_h: a, to_h: hours, count: r.gen_range(1..=team) },
        ];
        if r.gen_bool(0.5) {
            v.push(Shift { from_h: r.gen_range(0.5..a + 0.5), to_h: r.gen_range(b..hours), count: r.gen_range(1..=team) });
        }
        v
    } else {
        vec![]
    };
    let breaks = r.gen_bool(0.4);
    let hit: f64 = r.gen_range(0.05..0.40);
    let machine: f64 = if r.gen_bool(0.5) { r.gen_range(0.05..0.35) } else { 0.0 };
    let busy: f64 = r.gen_range(0.0..0.1);
    let answer_s: f64 = if r.gen_bool(0.4) { r.gen_range(15.0..25.0) } else { r.gen_range(3.0..12.0) };
    // Enough records for the day, or a list that runs out (a fifth of the days).
    let per_agent_hour = 3600.0 / (talk + 20.0) / hit;
    let records = (f64::from(team) * hours * per_agent_hour * if r.gen_bool(0.2) { 0.3 } else { 1.5 }).clamp(50.0, 60_000.0) as u32;
    let cap = [0.03, 0.03, 0.03, 0.02, 0.05][r.gen_range(0..5)];
    let mode = if r.gen_bool(0.8) { "predictive" } else { "power" };
    Scenario {
        name: format!("cap-{seed}"),
        start: "2026-03-03T13:00:00Z".parse().expect("valid"),
        hours,
        campaign_zone: "America/New_York".into(),
        mode: mode.into(),
        lines_per_agent: r.gen_range(1.5..6.0),
        abandon_rate_max: cap,
        abandon_rate_target: if r.gen_bool(0.5) { Some(cap * r.gen_range(0.5..1.0)) } else { None },
        calling_hours_rules: "default".into(),
        agent_first: r.gen_bool(0.2),
        agentless_lines: None,
        vicidial_adaptive: false,
        unguarded_power: false,
        agents: AgentModel {
            count: team,
            shifts,
            talk_mean_s: talk,
            talk_cv: Some(r.gen_range(0.3..1.0)),
            wrap_mean_s: r.gen_range(3.0..40.0),
            break_every_min: if breaks { r.gen_range(30.0..120.0) } else { 0.0 },
            break_len_s: r.gen_range(300.0..900.0),
            callback_share: 0.03,
            dnc_share: 0.02,
            ..AgentModel::default()
        },
        population: Population {
            records,
            answer_prob: hit,
            answer_by_hour: (0..11).map(|_| r.gen_range(0.5..1.6)).collect(),
            machine_share: machine,
            busy_share: busy,
            time_to_answer_s: answer_s,
            patience_s: r.gen_range(2.0..15.0),
            area_codes: vec!["212".into(), "305".into(), "617".into(), "404".into()],
            ..Population::default()
        },
    }
}

fn check(from: u64, to: u64) -> Vec<String> {
    let mut bad = Vec::new();
    for seed in from..to {
        let sc = day(seed);
        let s = run(&sc, seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        if s.windows_over_cap > 0 || !s.violations.is_empty() || s.engine_errors > 0 {
            bad.push(format!(
                "seed {seed} ({}, {} agents, hit {:.2}, answer {:.0} s, talk {:.0} s, machines {:.2}, {} shifts, cap {}): {} windows over, worst {:.4}, {} abandons / {} answers, violations {:?}",
                sc.mode,
                sc.agents.count,
                sc.population.answer_prob,
                sc.population.time_to_answer_s,
                sc.agents.talk_mean_s,
                sc.population.machine_share,
                sc.agents.shifts.len(),
                sc.abandon_rate_max,
                s.windows_over_cap,
                s.abandon_rate_worst_24h,
                s.abandons,
                s.live_answers,
                s.violations
            ));
        }
    }
    bad
}

/// Days in parallel (two threads: CI has two cores).
#[test]
fn no_window_over_the_cap_on_any_day() {
    let n = env_u64("CAMPANA_CAP_DAYS", 1000);
    let from = env_u64("CAMPANA_CAP_FROM", 0);
    let threads = env_u64("CAMPANA_CAP_THREADS", 2).max(1);
    let per = n.div_ceil(threads);
    let handles: Vec<_> = (0..threads)
        .map(|k| {
            let (a, b) = (from + k * per, from + ((k + 1) * per).min(n));
            std::thread::spawn(move || check(a, b))
        })
        .collect();
    let bad: Vec<String> = handles.into_iter().flat_map(|h| h.join().expect("thread")).collect();
    assert!(bad.is_empty(), "{} of {n} days broke the cap:\n{}", bad.len(), bad.join("\n"));
}
