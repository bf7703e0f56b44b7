//! Starts the real `campana` binary on a random port against a fresh database.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

pub struct Server {
    child: Child,
    pub base: String,
    pub data_dir: tempfile::TempDir,
    pub database_url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_campana")
}

impl Server {
    /// `backend`: "sqlite" (a file in a fresh data directory) or "postgres" (a fresh database).
    pub async fn start(backend: &str) -> Server {
        let data_dir = tempfile::tempdir().unwrap();
        let database_url = match backend {
            "sqlite" => format!("sqlite://{}/campana.db", data_dir.path().display()),
            "postgres" => campana_store::testing::postgres_store().await.expect("PostgreSQL for tests").1,
            other => panic!("unknown backend {other}"),
        };
        Server::start_with(data_dir, database_url, &["serve"])
    }

    pub fn start_with(data_dir: tempfile::TempDir, database_url: String, args: &[&str]) -> Server {
        let mut child = Command::new(bin())
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir.path())
            .args(["--database-url", &database_url])
            .args(args)
            .env("CAMPANA_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start campana");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("read the server's first line");
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_else(|| panic!("no URL in {line:?}"));
        let base = url.trim_end_matches('/').to_string();
        Server { child, base, data_dir, database_url }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Both backends, for `for backend in BACKENDS`.
pub const BACKENDS: [&str; 2] = ["sqlite", "postgres"];
