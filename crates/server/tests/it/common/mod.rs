//! Starts the real `campana` binary on a random port against a fresh database.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The first administrator's password in tests.
pub const ADMIN_PASSWORD: &str = "test-admin-password";

pub struct Server {
    child: Child,
    pub base: String,
    /// An API token of the administrator (set by [`Server::ready`]).
    pub token: String,
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
        Server::start_args(backend, &["serve"]).await
    }

    /// [`Server::start`] with these arguments (`serve --telephony sim ...`), signed in.
    pub async fn start_args(backend: &str, args: &[&str]) -> Server {
        let data_dir = tempfile::tempdir().unwrap();
        let database_url = match backend {
            "sqlite" => format!("sqlite://{}/campana.db", data_dir.path().display()),
            "postgres" => campana_store::testing::postgres_store().await.expect("PostgreSQL for tests").1,
            other => panic!("unknown backend {other}"),
        };
        Server::start_with(data_dir, database_url, args).ready().await
    }

    /// Signs in as the administrator and creates an API token for [`Server::client`].
    pub async fn ready(mut self) -> Server {
        self.token = self.token_for("admin", ADMIN_PASSWORD).await;
        self
    }

    /// Signs in with a password (session cookie) and exchanges the session for an API token.
    pub async fn token_for(&self, user: &str, password: &str) -> String {
        let c = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let r =
            c.post(self.url("/api/v1/auth/login")).json(&serde_json::json!({"username": user, "password": password})).send().await.unwrap();
        assert_eq!(r.status(), 200, "login as {user}: {}", r.text().await.unwrap());
        let me: serde_json::Value = r.json().await.unwrap();
        let csrf = me["csrf_token"].as_str().unwrap().to_string();
        let t: serde_json::Value = c
            .post(self.url("/api/v1/auth/tokens"))
            .header("x-csrf-token", csrf)
            .json(&serde_json::json!({"name": "tests"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        t["token"].as_str().unwrap().to_string()
    }

    /// A client that sends the administrator's API token.
    pub fn client(&self) -> reqwest::Client {
        client_with(&self.token)
    }

    pub fn start_with(data_dir: tempfile::TempDir, database_url: String, args: &[&str]) -> Server {
        Server::start_with_env(data_dir, database_url, args, &[])
    }

    /// [`Server::start_args`] with environment variables for the server (e.g. test hooks).
    pub async fn start_args_env(backend: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let data_dir = tempfile::tempdir().unwrap();
        let database_url = match backend {
            "sqlite" => format!("sqlite://{}/campana.db", data_dir.path().display()),
            _ => campana_store::testing::postgres_store().await.expect("PostgreSQL for tests").1,
        };
        Server::start_with_env(data_dir, database_url, args, env).ready().await
    }

    pub fn start_with_env(data_dir: tempfile::TempDir, database_url: String, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(bin())
            .envs(env.iter().copied())
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir.path())
            .args(["--database-url", &database_url])
            .args(args)
            .env("CAMPANA_LOG", "warn")
            .env("CAMPANA_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start campana");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("read the server's first line");
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).unwrap_or_else(|| panic!("no URL in {line:?}"));
        let base = url.trim_end_matches('/').to_string();
        Server { child, base, token: String::new(), data_dir, database_url }
    }

    /// Kills the server with SIGKILL (no shutdown code runs) and hands back its data
    /// directory and database for a restart.
    pub fn kill9(mut self) -> (tempfile::TempDir, String) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap());
        (dir, self.database_url.clone())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A client sending `Authorization: Bearer token`.
pub fn client_with(token: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder().default_headers(h).build().unwrap()
}

/// Both backends, for `for backend in BACKENDS`.
pub const BACKENDS: [&str; 2] = ["sqlite", "postgres"];

/// POST JSON; the status and the JSON answer (null when none).
pub async fn post_json(c: &reqwest::Client, url: String, body: serde_json::Value) -> (reqwest::StatusCode, serde_json::Value) {
    let r = c.post(url).json(&body).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// GET; the status and the JSON answer (null when none).
pub async fn get_json(c: &reqwest::Client, url: String) -> (reqwest::StatusCode, serde_json::Value) {
    let r = c.get(url).send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(serde_json::Value::Null))
}

// ---- The live dialer: a campaign over contacts whose calling window is open now.

/// A zone where it is now between 09:00 and 19:59, so the contacts' calling window (08:00-21:00)
/// is open for at least an hour.
pub fn open_zone() -> &'static str {
    use chrono::Timelike;
    let zones = [
        "Pacific/Kiritimati",
        "Pacific/Auckland",
        "Australia/Sydney",
        "Asia/Tokyo",
        "Asia/Kolkata",
        "Asia/Dubai",
        "Europe/Berlin",
        "Atlantic/Azores",
        "America/Sao_Paulo",
        "America/New_York",
        "America/Chicago",
        "America/Los_Angeles",
        "Pacific/Honolulu",
    ];
    let now = chrono::Utc::now();
    zones
        .into_iter()
        .find(|z| (9..20).contains(&now.with_timezone(&z.parse::<chrono_tz::Tz>().unwrap()).hour()))
        .expect("some zone is in its daytime")
}

/// A list of `n` contacts in an open zone and a running campaign dialing it.
pub async fn campaign(srv: &Server, name: &str, n: usize, overrides: serde_json::Value) -> (i64, i64) {
    let c = srv.client();
    let (s, list) = post_json(&c, srv.url("/api/v1/contact-lists"), serde_json::json!({"name": format!("{name} list")})).await;
    assert_eq!(s, 201, "{list}");
    let lid = list["id"].as_i64().unwrap();
    let zone = open_zone();
    let members: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({"external_id": format!("{name}-{i}"), "contact": {
                "name": format!("Customer {i}"), "time_zone": zone,
                "phones": [{"number": format!("+1212555{:04}", i), "type": "home"}]}})
        })
        .collect();
    let (s, o) =
        post_json(&c, srv.url(&format!("/api/v1/contact-lists/{lid}/records/bulk-upsert")), serde_json::json!({"members": members})).await;
    assert_eq!(s, 200, "{o}");
    let (s, camp) = post_json(
        &c,
        srv.url("/api/v1/campaigns"),
        serde_json::json!({"name": name, "daily_hours": {"start": "00:00", "end": "23:59"},
               "weekdays": ["mon","tue","wed","thu","fri","sat","sun"], "time_zone": "UTC",
               "contact_list_ids": [lid], "overrides": overrides}),
    )
    .await;
    assert_eq!(s, 201, "{camp}");
    let id = camp["id"].as_i64().unwrap();
    let (s, b) = post_json(&c, srv.url(&format!("/api/v1/campaigns/{id}/start")), serde_json::json!({})).await;
    assert_eq!(s, 200, "{b}");
    (id, lid)
}

pub async fn wait_for<F: Fn(&serde_json::Value) -> bool>(c: &reqwest::Client, url: String, what: &str, ok: F) -> serde_json::Value {
    for _ in 0..3000 {
        let (s, v) = get_json(c, url.clone()).await;
        if s == 200 && ok(&v) {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what} at {url}");
}

/// Creates an agent group; its id.
pub async fn agent_group(srv: &Server, name: &str) -> i64 {
    let (s, g) = post_json(&srv.client(), srv.url("/api/v1/agent-groups"), serde_json::json!({"name": name})).await;
    assert_eq!(s, 201, "{g}");
    g["id"].as_i64().unwrap()
}

/// Creates a user (password "long enough pw") with a role id, campaigns profile and agent groups; its id.
pub async fn user(srv: &Server, name: &str, role_id: i64, campaigns_profile: serde_json::Value, agent_groups: &[i64]) -> i64 {
    let body = serde_json::json!({"username": name, "role_id": role_id, "campaigns_profile": campaigns_profile,
        "agent_group_ids": agent_groups, "password": "long enough pw"});
    let (s, u) = post_json(&srv.client(), srv.url("/api/v1/users"), body).await;
    assert_eq!(s, 201, "{u}");
    u["id"].as_i64().unwrap()
}
