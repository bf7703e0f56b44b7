//! `campana-sim SCENARIO.toml [SEED]`: runs one simulated day and prints the JSON summary.
//! (The server exposes the same as `campana simulate --scenario F --seed N`.)

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: campana-sim SCENARIO.toml [SEED]");
        std::process::exit(2);
    };
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1);
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(2);
        }
    };
    let sc = match campana_sim::Scenario::parse(&text) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    let t0 = std::time::Instant::now();
    match campana_sim::run(&sc, seed) {
        Ok(s) => {
            println!("{}", serde_json::to_string_pretty(&s).expect("summary serialises"));
            eprintln!("simulated in {:.3} s", t0.elapsed().as_secs_f64());
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
