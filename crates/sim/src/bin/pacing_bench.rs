//! Pacing benchmark: progressive 1:1, a VICIdial-style adaptive controller, the hindsight-best
//! fixed power ratio (grid search, same cap) and Campana's predictive, on the same simulated
//! days. Prints a Markdown table (docs/benchmarks.md, "## Pacing").
//!
//! `cargo run --release -p campana-sim --bin pacing-bench [-- --hours H --seed N --quick --predictive-only --only TEXT]`

use campana_sim::{run, AgentModel, Population, Scenario, Shift, Summary};

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

fn scenario(c: &Case, hours: f64, mode: &str, lines: f64, adaptive: bool) -> Scenario {
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
        unguarded_power: true,
        agents: c.agents.clone(),
        population: c.pop.clone(),
    }
}

fn sim(sc: &Scenario, seed: u64) -> Summary {
    run(sc, seed).expect("benchmark scenario runs")
}

fn cell(s: &Summary) -> String {
    format!(
        "{:.1}% / {:.2}%{}",
        s.occupancy * 100.0,
        s.abandon_rate_worst_24h.max(s.abandon_rate_worst_30d) * 100.0,
        if s.windows_over_cap > 0 { " ✗" } else { "" }
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let get = |k: &str| args.iter().position(|a| a == k).and_then(|i| args.get(i + 1)).cloned();
    let hours: f64 = get("--hours").and_then(|s| s.parse().ok()).unwrap_or(6.0);
    let seed: u64 = get("--seed").and_then(|s| s.parse().ok()).unwrap_or(1);
    let quick = args.iter().any(|a| a == "--quick");
    let only_predictive = args.iter().any(|a| a == "--predictive-only");
    // `--only TEXT`: the scenarios whose name contains TEXT.
    let only = get("--only");
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

    println!("Simulated day: {hours} h, seed {seed}, cap 3% (worst rolling window measured at every minute with an abandon).");
    println!("Cells: occupancy / worst-window abandon rate; ✗ marks a run with a window over 3%.\n");
    println!("| scenario | progressive 1:1 | VICIdial-style adaptive | best fixed ratio (hindsight) | Campana predictive | predictive ≥ best fixed |");
    println!("|---|---|---|---|---|---|");
    let mut wins = 0;
    cases.retain(|c| only.as_ref().is_none_or(|o| c.name.contains(o.as_str())));
    for c in &cases {
        if only_predictive {
            let pred = sim(&scenario(c, hours, "predictive", 1.0, false), seed);
            println!("| {} | {} |", c.name, cell(&pred));
            continue;
        }
        let prog = sim(&scenario(c, hours, "progressive", 1.0, false), seed);
        let vici = sim(&scenario(c, hours, "power", 1.0, true), seed);
        let pred = sim(&scenario(c, hours, "predictive", 1.0, false), seed);
        // Grid search the fixed power ratio: ascending from 1.0 by 0.1, stop after 3 failures in a row.
        let mut best: Option<(f64, Summary)> = None;
        let mut fails = 0;
        let mut r = 1.0;
        while r <= 4.0 + 1e-9 && fails < 3 {
            let s = sim(&scenario(c, hours, "power", r, false), seed);
            if s.windows_over_cap == 0 {
                fails = 0;
                if best.as_ref().is_none_or(|(_, b)| s.occupancy > b.occupancy) {
                    best = Some((r, s));
                }
            } else {
                fails += 1;
            }
            r = ((r + 0.1) * 10.0_f64).round() / 10.0;
        }
        let (best_cell, best_occ) = match &best {
            Some((r, s)) => (format!("{r:.1} lines: {}", cell(s)), s.occupancy),
            None => ("none under the cap".into(), 0.0),
        };
        let ok = pred.occupancy + 1e-9 >= best_occ && pred.windows_over_cap == 0;
        wins += ok as usize;
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            c.name,
            cell(&prog),
            cell(&vici),
            best_cell,
            cell(&pred),
            if ok { "yes" } else { "**no**" }
        );
    }
    println!(
        "\nCampana predictive at or above the hindsight-best fixed ratio with no window over the cap: {wins} of {} scenarios.",
        cases.len()
    );
}
