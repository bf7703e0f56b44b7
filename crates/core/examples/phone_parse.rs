//! Parses N generated US numbers and prints the time per number:
//! `cargo run --release -p campana-core --example phone_parse -- 100000`.
fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let codes = ["212", "213", "312", "303", "305", "404", "415", "512", "602", "617"];
    let numbers: Vec<String> = (0..n).map(|i| format!("+1{}{}{:06}", codes[i % codes.len()], 2 + i % 8, (i * 7919) % 1_000_000)).collect();
    let t = std::time::Instant::now();
    let mut ok = 0;
    for s in &numbers {
        if campana_core::PhoneNumber::parse(s, None).is_ok() {
            ok += 1;
        }
    }
    let e = t.elapsed();
    println!("{n} numbers, {ok} valid, {:.2} us per number", e.as_secs_f64() * 1e6 / n as f64);
}
