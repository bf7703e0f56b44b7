//! The server's import graph, checked: its top-level modules form no cycle, and the layers
//! import only downwards (see ARCHITECTURE.md, "The server"):
//!
//! - `router` assembles `api` and `web`; nothing imports `router`.
//! - `api` and `web` are adapters over `service` and never import each other.
//! - `service` imports neither front-end (nor `router`, `auth`, `upload`, which are HTTP).
//!
//! Read from the source: every `crate::<module>` outside comments counts as an import.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Edges that form a known cycle being removed elsewhere (the dialer's handle and the shared
/// state know each other until the dialer is a sans-IO core); none may be added.
const KNOWN_CYCLE_EDGES: &[(&str, &str)] = &[("state", "dialer")];

/// Imports that must never exist.
const FORBIDDEN: &[(&str, &str)] = &[
    ("api", "web"),
    ("web", "api"),
    ("service", "api"),
    ("service", "web"),
    ("service", "router"),
    ("service", "auth"),
    ("service", "upload"),
    ("api", "router"),
    ("web", "router"),
];

fn rs_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("source directory readable") {
        let p = e.expect("directory entry").path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Top-level module -> the top-level modules it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("under src");
        let first = rel.components().next().expect("a path").as_os_str().to_string_lossy().to_string();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" || module == "main" || module == "layers" {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("source readable");
        let deps = g.entry(module.clone()).or_default();
        for line in text.lines() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
    }
    g
}

#[test]
fn layers_import_only_downwards() {
    let g = graph();
    assert!(g.contains_key("service") && g.contains_key("api") && g.contains_key("web"), "modules found: {:?}", g.keys());
    let bad: Vec<String> = FORBIDDEN
        .iter()
        .filter(|(from, to)| g.get(*from).is_some_and(|d| d.contains(*to)))
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    assert!(bad.is_empty(), "forbidden imports: {bad:?}");
    let into_router: Vec<&String> = g.iter().filter(|(_, d)| d.contains("router")).map(|(m, _)| m).collect();
    assert!(into_router.is_empty(), "only lib.rs and main.rs may use the router: {into_router:?}");
}

#[test]
fn top_level_modules_form_no_cycle() {
    let mut g = graph();
    for (from, to) in KNOWN_CYCLE_EDGES {
        g.get_mut(*from).map(|d| d.remove(*to));
    }
    // Depth-first search for a back edge, reporting the cycle it closes.
    fn visit(m: &str, g: &BTreeMap<String, BTreeSet<String>>, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|x| x == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for d in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, g, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in g.keys() {
        if let Some(cycle) = visit(m, &g, &mut Vec::new(), &mut done) {
            panic!("the server's modules import each other in a cycle: {}", cycle.join(" -> "));
        }
    }
}
