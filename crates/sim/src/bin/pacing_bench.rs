//! Pacing benchmark: progressive 1:1, a VICIdial-style adaptive controller, the hindsight-best
//! fixed power ratio (searched over the whole range), the same search with Campana's production
//! guard on, and Campana's predictive, on the same simulated days (several seeds, common random
//! numbers: each record's outcome comes from its own stream). Prints a Markdown table
//! (docs/benchmarks.md, "## Pacing").
//!
//! `cargo run --release -p campana-sim --bin pacing-bench [-- --hours H --seeds N --first-seed S
//! --threads T --quick --predictive-only --only TEXT]`

use campana_sim::{run, AgentModel, Population, Scenario, Shift, Summary};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct Case {
    name: String,
    agents: AgentModel,
    pop: Population,
}

fn base_pop(hit: f64, records: u32) -> Population {
    Population {
        records,
        answer_prob: hit,
        busy_share: 0.05,
        machine_share: 0.0,
        time_to_answer_s: 8.0,
        patience_s: 6.0,
        area_codes: vec!["212".into(), "305".into(), "617".into()],
        ..Population::default()
    }
}

fn agents(n: u32) -> AgentModel {
    AgentModel { count: n, talk_mean_s: 150.0, wrap_mean_s: 15.0, ..AgentModel::default() }
}

fn scenario(c: &Case, hours: f64, mode: &str, lines: f64, adaptive: bool, guarded: bool) -> Scenario {
    Scenario {
        name: c.name.clone(),
        start: "2026-03-03T14:00:00Z".parse().expect("valid"),
        hours,
        campaign_zone: "America/New_York".into(),
        mode: mode.into(),
        lines_per_agent: lines,
        abandon_rate_max: 0.03,
        abandon_rate_target: Some(0.027),
        calling_hours_rules: "default".into(),
        agent_first: false,
        agentless_lines: None,
        vicidial_adaptive: adaptive,
        unguarded_power: !guarded,
        agents: c.agents.clone(),
        population: c.pop.clone(),
    }
}

/// One method's days over the seeds.
#[derive(Clone, Default)]
struct Runs {
    occ: Vec<f64>,
    worst: f64,
    over: usize,
    abandons: u64,
}

impl Runs {
    fn of(sums: &[Summary]) -> Runs {
        Runs {
            occ: sums.iter().map(|s| s.occupancy).collect(),
            worst: sums.iter().map(|s| s.abandon_rate_worst_24h.max(s.abandon_rate_worst_30d)).fold(0.0, f64::max),
            over: sums.iter().filter(|s| s.windows_over_cap > 0).count(),
            abandons: sums.iter().map(|s| s.abandons).sum(),
        }
    }
    fn mean(&self) -> f64 {
        self.occ.iter().sum::<f64>() / self.occ.len().max(1) as f64
    }
    fn cell(&self) -> String {
        format!(
            "{:.1}% ± {:.1} / {:.2}%{}",
            self.mean() * 100.0,
            sd(&self.occ) * 100.0,
            self.worst * 100.0,
            if self.over > 0 { format!(" ✗{}", self.over) } else { String::new() }
        )
    }
}

/// Sample standard deviation.
fn sd(x: &[f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let m = x.iter().sum::<f64>() / x.len() as f64;
    (x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() - 1) as f64).sqrt()
}

/// Runs `jobs` (scenario, seed) on `threads` threads, results in order.
fn run_all(jobs: Vec<(Scenario, u64)>, threads: usize) -> Vec<Summary> {
    let n = jobs.len();
    let jobs = Arc::new(Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>()));
    let out = Arc::new(Mutex::new(vec![None; n]));
    let hs: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (jobs, out) = (jobs.clone(), out.clone());
            std::thread::spawn(move || loop {
                let Some((i, (sc, seed))) = jobs.lock().expect("jobs").pop() else { break };
                let s = run(&sc, seed).expect("benchmark scenario runs");
                out.lock().expect("out")[i] = Some(s);
            })
        })
        .collect();
    for h in hs {
        h.join().expect("worker");
    }
    let v = std::mem::take(&mut *out.lock().expect("out"));
    v.into_iter().map(|s| s.expect("every job ran")).collect()
}

/// A fixed-ratio search: ratios `grid` in ascending order, each on every seed. Returns the best
/// ratio with no seed over the cap, the best below the first ratio with a seed over the cap,
/// the first failing ratio and the first ratio at which every seed fails.
struct Search {
    best: Option<(f64, Runs)>,
    best_below_first_fail: Option<(f64, Runs)>,
    first_fail: Option<f64>,
    all_fail: Option<f64>,
    top: f64,
}

fn search(c: &Case, hours: f64, seeds: &[u64], guarded: bool, grid: &[f64], threads: usize) -> Search {
    let mut s = Search { best: None, best_below_first_fail: None, first_fail: None, all_fail: None, top: 0.0 };
    // In chunks of ratios, so the search stops once every seed fails at or above 8.0.
    for chunk in grid.chunks(threads.max(2) * 2) {
        let jobs: Vec<(Scenario, u64)> =
            chunk.iter().flat_map(|&r| seeds.iter().map(move |&seed| (scenario(c, hours, "power", r, false, guarded), seed))).collect();
        let sums = run_all(jobs, threads);
        for (k, &r) in chunk.iter().enumerate() {
            let runs = Runs::of(&sums[k * seeds.len()..(k + 1) * seeds.len()]);
            s.top = r;
            if runs.over == 0 {
                if s.best.as_ref().is_none_or(|(_, b)| runs.mean() > b.mean()) {
                    s.best = Some((r, runs.clone()));
                }
                if s.first_fail.is_none() && s.best_below_first_fail.as_ref().is_none_or(|(_, b)| runs.mean() > b.mean()) {
                    s.best_below_first_fail = Some((r, runs));
                }
            } else {
                s.first_fail.get_or_insert(r);
                if runs.over == seeds.len() && s.all_fail.is_none() {
                    s.all_fail = Some(r);
                }
            }
        }
        if s.all_fail.is_some() && s.top >= 8.0 - 1e-9 {
            break;
        }
    }
    s
}

fn ratio_cell(x: Option<&(f64, Runs)>) -> String {
    match x {
        Some((r, runs)) => format!("{r:.2}: {}", runs.cell()),
        None => "none under the cap".into(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let hours: f64 = get("--hours").and_then(|s| s.parse().ok()).unwrap_or(6.0);
    let n_seeds: u64 = get("--seeds").and_then(|s| s.parse().ok()).unwrap_or(5);
    let first: u64 = get("--first-seed").and_then(|s| s.parse().ok()).unwrap_or(1);
    let threads: usize = get("--threads").and_then(|s| s.parse().ok()).unwrap_or(2);
    let quick = args.iter().any(|a| a == "--quick");
    let only_predictive = args.iter().any(|a| a == "--predictive-only");
    // `--only TEXT`: the scenarios whose name contains TEXT.
    let only = get("--only");
    let seeds: Vec<u64> = (first..first + n_seeds).collect();
    let teams: &[u32] = if quick { &[5, 25] } else { &[5, 10, 25, 50, 100] };
    let hits: &[f64] = if quick { &[0.2] } else { &[0.1, 0.2, 0.3] };
    let mut cases = Vec::new();
    for &n in teams {
        for &h in hits {
            cases.push(Case { name: format!("{n} agents, {:.0}% hit", h * 100.0), agents: agents(n), pop: base_pop(h, n * 600) });
        }
    }
    // Non-stationary days.
    let mut lunch = base_pop(0.2, 20 * 600);
    lunch.answer_by_hour = vec![1.0, 1.0, 0.5, 0.5, 1.3, 1.5, 1.5, 1.5];
    cases.push(Case { name: "20 agents, lunch dip then evening rise".into(), agents: agents(20), pop: lunch });
    let mut shifts = agents(0);
    shifts.shifts = vec![Shift { from_h: 0.0, to_h: hours * 0.6, count: 10 }, Shift { from_h: hours * 0.3, to_h: hours, count: 20 }];
    cases.push(Case { name: "10 -> 30 -> 20 agents (shifts)".into(), agents: shifts, pop: base_pop(0.2, 30 * 600) });
    let mut rising = base_pop(0.1, 5 * 600);
    rising.answer_by_hour = vec![1.0, 1.5, 2.0, 2.5, 3.0, 3.0, 3.0, 3.0];
    cases.push(Case { name: "5 agents, hit 10% rising to 30%".into(), agents: agents(5), pop: rising });
    let mut breaks = agents(10);
    breaks.break_every_min = 60.0;
    breaks.break_len_s = 600.0;
    cases.push(Case { name: "10 agents with breaks, 15% hit".into(), agents: breaks, pop: base_pop(0.15, 10 * 600) });
    // Days unlike the ones above.
    let mut slow = base_pop(0.2, 10 * 600);
    slow.time_to_answer_s = 20.0;
    cases.push(Case { name: "10 agents, slow answers (20 s), 20% hit".into(), agents: agents(10), pop: slow });
    let mut long = base_pop(0.2, 10 * 300);
    long.machine_share = 0.25;
    long.time_to_answer_s = 20.0;
    cases.push(Case {
        name: "10 agents, talk 400 s, slow answers, 25% machines".into(),
        agents: AgentModel { talk_mean_s: 400.0, ..agents(10) },
        pop: long,
    });
    cases.push(Case {
        name: "10 agents, short talk (45 s), 20% hit".into(),
        agents: AgentModel { talk_mean_s: 45.0, wrap_mean_s: 10.0, ..agents(10) },
        pop: base_pop(0.2, 10 * 1500),
    });
    let mut small_breaks = agents(3);
    small_breaks.break_every_min = 45.0;
    small_breaks.break_len_s = 600.0;
    cases.push(Case { name: "3 agents with breaks, 20% hit".into(), agents: small_breaks, pop: base_pop(0.2, 3 * 600) });
    cases.push(Case { name: "10 agents, a list that runs out (400 records)".into(), agents: agents(10), pop: base_pop(0.2, 400) });
    cases.retain(|c| only.as_ref().is_none_or(|o| c.name.contains(o.as_str())));

    // The fixed ratios: 1.0 to 4.0 by 0.1, by 0.25 to 8.0, then by 0.5 to 12.0; the search
    // stops once every seed fails at a ratio of 8.0 or more.
    let mut grid: Vec<f64> = (10..=40).map(|k| f64::from(k) / 10.0).collect();
    grid.extend((17..=32).map(|k| f64::from(k) / 4.0));
    grid.extend((17..=24).map(|k| f64::from(k) / 2.0));
    // With the production guard, the ratio only sets how far the guard may go.
    let guard_grid: Vec<f64> = vec![1.5, 2.0, 3.0, 4.0, 6.0, 8.0];

    println!(
        "Simulated day: {hours} h, seeds {}..={}, cap 3% (every realised rolling window, measured exactly at each abandon).",
        seeds[0],
        seeds[seeds.len() - 1]
    );
    println!("Cells: mean occupancy ± standard deviation over the seeds / worst window of any seed; ✗N: N seeds with a window over 3%.\n");
    if only_predictive {
        println!("| scenario | Campana predictive |\n|---|---|");
        for c in &cases {
            let jobs = seeds.iter().map(|&s| (scenario(c, hours, "predictive", 1.0, false, true), s)).collect();
            println!("| {} | {} |", c.name, Runs::of(&run_all(jobs, threads)).cell());
        }
        return;
    }
    println!("| scenario | progressive 1:1 | VICIdial-style adaptive | best fixed ratio (hindsight) | best fixed below its first failure | first failing / all failing ratio | best guarded fixed ratio | Campana predictive | Campana − best fixed (paired sd) | verdict |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let (mut at_or_above, mut wins, mut clean) = (0, 0, 0);
    for c in &cases {
        let mut jobs = Vec::new();
        for &seed in &seeds {
            jobs.push((scenario(c, hours, "progressive", 1.0, false, true), seed));
            jobs.push((scenario(c, hours, "power", 1.0, true, false), seed));
            jobs.push((scenario(c, hours, "predictive", 1.0, false, true), seed));
        }
        let sums = run_all(jobs, threads);
        let pick = |k: usize| -> Vec<Summary> { sums.iter().skip(k).step_by(3).cloned().collect() };
        let (prog, vici, pred) = (Runs::of(&pick(0)), Runs::of(&pick(1)), Runs::of(&pick(2)));
        let fixed = search(c, hours, &seeds, false, &grid, threads);
        let guarded = search(c, hours, &seeds, true, &guard_grid, threads);
        let (diff, dsd) = match &fixed.best {
            Some((_, b)) => {
                let d: Vec<f64> = pred.occ.iter().zip(&b.occ).map(|(p, f)| p - f).collect();
                (d.iter().sum::<f64>() / d.len() as f64, sd(&d))
            }
            None => (pred.mean(), sd(&pred.occ)),
        };
        let verdict = if pred.over > 0 {
            "**over the cap**"
        } else if diff > dsd {
            "win"
        } else if diff >= 0.0 {
            "at or above (within the spread)"
        } else if -diff <= dsd {
            "**below (within the spread)**"
        } else {
            "**loss**"
        };
        at_or_above += usize::from(diff >= 0.0 && pred.over == 0);
        wins += usize::from(diff > dsd && pred.over == 0);
        clean += usize::from(pred.over == 0);
        println!(
            "| {} | {} | {} | {} | {} | {} / {} | {} | {} | {:+.1} ({:.1}) | {} |",
            c.name,
            prog.cell(),
            vici.cell(),
            ratio_cell(fixed.best.as_ref()),
            ratio_cell(fixed.best_below_first_fail.as_ref()),
            fixed.first_fail.map_or("none".into(), |r| format!("{r:.2}")),
            fixed.all_fail.map_or(format!("none to {:.2}", fixed.top), |r| format!("{r:.2}")),
            ratio_cell(guarded.best.as_ref()),
            pred.cell(),
            diff * 100.0,
            dsd * 100.0,
            verdict
        );
        let _ = pred.abandons;
    }
    println!(
        "\nCampana predictive, {} scenarios: no window over the cap on any seed in {clean}; at or above the best fixed ratio on the mean in {at_or_above}; ahead by more than the spread in {wins}.",
        cases.len()
    );
}
