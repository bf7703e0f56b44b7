//! Configuration: command-line flags, then `CAMPANA_*` environment variables, then an optional
//! TOML file (`--config`), then built-in defaults — in that order of precedence.

pub use crate::dialer::TelephonyMode;
use anyhow::Context;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where Campana keeps its data and how it is reached. Every field may be set on the command
/// line, in the environment or in the TOML file.
#[derive(Debug, Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigArgs {
    /// TOML file with any of the settings below (lowest precedence after defaults).
    #[arg(long, env = "CAMPANA_CONFIG", global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address the HTTP server listens on.
    #[arg(long, env = "CAMPANA_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,
    /// Directory for the embedded SQLite database, uploads and recordings.
    #[arg(long, env = "CAMPANA_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// `postgres://user@host/db` to use PostgreSQL (several nodes), or `sqlite://FILE`.
    /// Default: SQLite in the data directory.
    #[arg(long, env = "CAMPANA_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// The dialer's telephony: `off` (default for `serve`: nothing is dialed) or `sim`
    /// (simulated calls and results, the default of `campana demo`; never on real data).
    #[arg(long, env = "CAMPANA_TELEPHONY", global = true, value_enum)]
    pub telephony: Option<TelephonyMode>,
    /// Simulated agents working beside the people logged in (simulated telephony only).
    #[arg(long, env = "CAMPANA_SIM_AGENTS", global = true)]
    pub sim_agents: Option<u32>,
    /// TOML file with the SIP trunk, the agents' phones (registrar), prompts and recordings
    /// directories, for `--telephony sip` (see crates/sip/README.md).
    #[arg(long, env = "CAMPANA_SIP_CONFIG", global = true)]
    pub sip_config: Option<PathBuf>,
    /// Calling-hours rule sets to use instead of the shipped ones: a file in the format of
    /// `data/calling-hours.toml` (checked at start; a bad file stops Campana, naming the fault).
    #[arg(long, env = "CAMPANA_CALLING_HOURS", global = true)]
    pub calling_hours: Option<PathBuf>,
    /// Let webhooks reach loopback, private and link-local addresses (an on-premises CRM, tests).
    /// Off by default: a dialer must not be a tool to reach the inside of its network.
    #[arg(long, env = "CAMPANA_WEBHOOKS_ALLOW_PRIVATE", global = true)]
    pub webhooks_allow_private: Option<bool>,
    /// Seconds between webhook retries, comma-separated; the last repeats until the retry
    /// period ends (default 5,300,1800,7200,18000,36000).
    #[arg(long, env = "CAMPANA_WEBHOOK_RETRY_S", global = true)]
    pub webhook_retry_s: Option<String>,
    /// Hours a webhook delivery is retried before it is given up (default 72, at least 1).
    #[arg(long, env = "CAMPANA_WEBHOOK_GIVE_UP_H", global = true)]
    pub webhook_give_up_h: Option<u32>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub telephony: TelephonyMode,
    pub sim_agents: u32,
    pub sip: Option<campana_sip::TrunkConfig>,
    /// The calling-hours rules file, `None` for the shipped rules.
    pub calling_hours: Option<PathBuf>,
    pub webhooks: crate::webhooks::WebhookOptions,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "campana-data";

impl ConfigArgs {
    pub fn resolve(&self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(p) => load_file(p)?,
            None => ConfigArgs::default(),
        };
        let listen = self.listen.or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("default address parses"));
        let data_dir = self.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = self
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("campana.db").display()));
        let telephony = self.telephony.or(file.telephony).unwrap_or(TelephonyMode::Off);
        let sim_agents = self.sim_agents.or(file.sim_agents).unwrap_or(0);
        let sip = match self.sip_config.clone().or(file.sip_config) {
            Some(p) => {
                let text = std::fs::read_to_string(&p).with_context(|| format!("reading SIP config {}", p.display()))?;
                Some(toml::from_str(&text).with_context(|| format!("SIP config {} is not valid", p.display()))?)
            }
            None => None,
        };
        let calling_hours = self.calling_hours.clone().or(file.calling_hours);
        let mut webhooks = crate::webhooks::WebhookOptions {
            allow_private: self.webhooks_allow_private.or(file.webhooks_allow_private).unwrap_or(false),
            ..Default::default()
        };
        if let Some(list) = self.webhook_retry_s.clone().or(file.webhook_retry_s) {
            let parsed: Result<Vec<u64>, _> = list.split(',').map(|v| v.trim().parse::<u64>()).collect();
            match parsed {
                Ok(v) if !v.is_empty() && v.iter().all(|&x| (1..=86_400).contains(&x)) => webhooks.retry_s = v,
                _ => anyhow::bail!("webhook_retry_s: '{list}' must be whole seconds from 1 to 86400, comma-separated"),
            }
        }
        if let Some(h) = self.webhook_give_up_h.or(file.webhook_give_up_h) {
            anyhow::ensure!((1..=720).contains(&h), "webhook_give_up_h: {h} is outside 1..=720");
            webhooks.give_up_after = chrono::Duration::hours(h as i64);
        }
        Ok(Config { listen, data_dir, database_url, telephony, sim_agents, sip, calling_hours, webhooks })
    }
}

fn load_file(path: &Path) -> anyhow::Result<ConfigArgs> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| {
        format!("config file {} is not valid (keys: listen, data_dir, database_url, telephony, sim_agents, sip_config, calling_hours, webhooks_allow_private, webhook_retry_s, webhook_give_up_h)", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_beat_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:9999\"\ndata_dir = \"/tmp/x\"\n").unwrap();
        let args = ConfigArgs { config: Some(f.clone()), listen: Some("127.0.0.1:1234".parse().unwrap()), ..Default::default() };
        let c = args.resolve().unwrap();
        assert_eq!(c.listen.port(), 1234);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.database_url, "sqlite:///tmp/x/campana.db");
        std::fs::write(&f, "bogus = 1\n").unwrap();
        let e = ConfigArgs { config: Some(f), ..Default::default() }.resolve().unwrap_err();
        assert!(format!("{e:#}").contains("bogus"), "{e:#}");
        let c = ConfigArgs::default().resolve().unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    }
}
