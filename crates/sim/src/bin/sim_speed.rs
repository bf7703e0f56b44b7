//! Simulator speed next to a baseline in the same run (docs/benchmarks.md, "Simulation speed").
//!
//! `cargo run --release -p campana-sim --bin sim-speed [-- SCENARIO.toml]` (default
//! `crates/sim/scenarios/day-100-agents.toml`). Runs the day 3 times and a bare discrete-event
//! loop 3 times (a `BTreeMap` event queue with ChaCha8 draws, 6 events per dial of the day, no
//! engine) and prints the best CPU time of each and their ratio, so a loaded machine shows in
//! both figures.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::time::Instant;

fn bare_loop(events: u64) -> u64 {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut q: BTreeMap<(u64, u64), u64> = BTreeMap::new();
    let mut seq = 0u64;
    let mut acc = 0u64;
    for _ in 0..200 {
        seq += 1;
        q.insert((rng.gen_range(0..1000), seq), seq);
    }
    let mut done = 0u64;
    while let Some(((t, _), v)) = q.pop_first() {
        acc = acc.wrapping_add(v ^ t);
        done += 1;
        if done + (q.len() as u64) < events {
            seq += 1;
            q.insert((t + rng.gen_range(1..30_000), seq), seq);
        }
    }
    acc
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/day-100-agents.toml").into());
    let text = std::fs::read_to_string(&path).expect("scenario file");
    let sc = campana_sim::Scenario::parse(&text).expect("valid scenario");
    let mut best_sim = f64::MAX;
    let mut dials = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let s = campana_sim::run(&sc, 1).expect("runs");
        best_sim = best_sim.min(t.elapsed().as_secs_f64());
        dials = s.dials;
    }
    let mut best_base = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        std::hint::black_box(bare_loop(dials * 6));
        best_base = best_base.min(t.elapsed().as_secs_f64());
    }
    println!("scenario {path}: {dials} dials");
    println!("Campana simulator: {best_sim:.3} s (best of 3)");
    println!("bare event loop, {} events: {best_base:.3} s (best of 3)", dials * 6);
    println!("ratio: {:.1}x the bare loop", best_sim / best_base);
}
