//! sipp (Debian package sip-tester) driven from tests: spawned on 127.0.0.1 with a scenario from
//! crates/sip/tests/scenarios/, logs kept in a temporary directory and shown on failure. Shared by
//! campana-sip's tests and the server's end-to-end SIP test (`#[path]` include).

#![allow(dead_code)]

use campana_sip::SipTransport;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Longest sipp may run (its own global timeout, failing the scenario).
pub const SIPP_TIMEOUT_S: u64 = 30;

pub fn sipp_binary() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("sipp")).find(|p| p.is_file()));
    found.unwrap_or_else(|| {
        panic!("sipp is not installed: these tests need it as the SIP carrier. Run scripts/install-sip-deps.sh (Debian package sip-tester); scripts/test does so.")
    })
}

pub fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
    }
}

pub struct SippOpts<'a> {
    pub transport: SipTransport,
    /// Calls sipp handles before exiting (`-m`).
    pub calls: u32,
    /// sipp as a client sending to this address; `None` for sipp as a server.
    pub target: Option<SocketAddr>,
    pub extra: &'a [&'a str],
    /// Echo received RTP back (`-rtp_echo`).
    pub rtp_echo: bool,
    /// sipp's SIP port; `None` picks a free one.
    pub port: Option<u16>,
    /// Files written into sipp's working directory before it starts (e.g. audio.pcap).
    pub files: Vec<(&'static str, Vec<u8>)>,
}

impl Default for SippOpts<'_> {
    fn default() -> Self {
        SippOpts { transport: SipTransport::Udp, calls: 1, target: None, extra: &[], rtp_echo: true, port: None, files: Vec::new() }
    }
}

pub struct Sipp {
    pub child: Child,
    pub addr: SocketAddr,
    /// sipp's own SIP port.
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Sipp {
    pub async fn start(scenario: &str, transport: SipTransport) -> Sipp {
        Sipp::spawn(scenario, transport, 1, None).await
    }

    pub async fn start_n(scenario: &str, transport: SipTransport, calls: u32) -> Sipp {
        Sipp::spawn(scenario, transport, calls, None).await
    }

    /// sipp as a client (UAC) sending to `target`.
    pub async fn start_client(scenario: &str, target: SocketAddr) -> Sipp {
        Sipp::spawn_with(scenario, SippOpts { target: Some(target), ..SippOpts::default() }).await
    }

    pub async fn start_client_with(scenario: &str, target: SocketAddr, extra: &[&str]) -> Sipp {
        Sipp::spawn_with(scenario, SippOpts { target: Some(target), extra, ..SippOpts::default() }).await
    }

    pub async fn spawn(scenario: &str, transport: SipTransport, calls: u32, target: Option<SocketAddr>) -> Sipp {
        Sipp::spawn_with(scenario, SippOpts { transport, calls, target, ..SippOpts::default() }).await
    }

    pub async fn spawn_with(scenario: &str, opts: SippOpts<'_>) -> Sipp {
        let SippOpts { transport, calls, target, extra, rtp_echo, port, files } = opts;
        let sipp = sipp_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).expect("write sipp file");
        }
        let scenario_path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../sip/tests/scenarios")).join(scenario);
        assert!(scenario_path.is_file(), "missing scenario {}", scenario_path.display());
        let port = port.unwrap_or_else(|| free_port(transport == SipTransport::Udp));
        let media_port = free_port(true);
        let t = match transport {
            SipTransport::Udp => "u1",
            SipTransport::Tcp => "t1",
        };
        let log = std::fs::File::create(dir.path().join("sipp.out")).expect("log file");
        let mut command = Command::new(sipp);
        if let Some(target) = target {
            command.arg(target.to_string());
        }
        let child = command
            .current_dir(dir.path())
            .args(["-sf"])
            .arg(&scenario_path)
            .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", t, "-m", &calls.to_string(), "-nostdin"])
            .args(["-mi", "127.0.0.1", "-mp", &media_port.to_string()])
            .args(if rtp_echo { &["-rtp_echo"][..] } else { &[][..] })
            .args(["-timeout", &format!("{SIPP_TIMEOUT_S}s"), "-timeout_error", "-trace_err", "-trace_msg"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log clone")))
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("sipp starts");
        // Give sipp time to bind; a lost first INVITE over UDP would be retransmitted anyway.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Sipp { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), port, dir }
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.ends_with("_messages.log") && std::env::var_os("SIPP_MESSAGES").is_none() {
                    continue; // long; kept out of the failure message
                }
                out.push_str(&format!("--- {name}\n{}\n", std::fs::read_to_string(e.path()).unwrap_or_default()));
            }
        }
        out
    }

    /// The messages sipp sent and received (its `-trace_msg` file).
    pub fn messages(&self) -> String {
        let mut out = String::new();
        if let Ok(entries) = std::fs::read_dir(self.dir.path()) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().ends_with("_messages.log") {
                    out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
                }
            }
        }
        out
    }

    /// Waits for sipp to finish its one call and asserts the scenario passed.
    pub async fn assert_passed(mut self) {
        self.wait_passed().await;
    }

    /// [`Sipp::assert_passed`], keeping sipp's directory for [`Sipp::messages`].
    pub async fn wait_passed(&mut self) {
        let status = tokio::time::timeout(Duration::from_secs(SIPP_TIMEOUT_S + 5), self.child.wait()).await;
        match status {
            Ok(Ok(s)) if s.success() => {}
            other => panic!("sipp scenario failed ({other:?}):\n{}", self.logs()),
        }
    }
}
