//! Kernel media forwarding for bridged calls, with nftables: the way rtpengine's kernel module
//! reaches high call counts, without a kernel module.
//!
//! A bridged call's RTP is forwarded unchanged between its two legs. In user space that costs
//! a wake-up, a `recvfrom` and a `sendto` per packet (about 1.1 ms of CPU per bridged call and
//! second, see `docs/benchmarks.md`). With this on, once a call is bridged Campana writes four
//! small map entries per leg into its own nftables table, and the kernel rewrites each packet
//! that arrives on a leg's port (destination: the other leg's far end; source: the other leg's
//! port, so each far end keeps seeing the address it was given in SDP) before any socket sees
//! it. Packets are untracked (`notrack`, no conntrack entry, no NAT state) and rewritten
//! statelessly; per-leg counters come from the map's element counters and are read when the
//! bridge ends.
//!
//! The table, one per [`KernelRelay`] (`campana_media_PID_N`):
//!
//! ```text
//! map leg   { ipv4_addr . inet_service : mark; counter }   leg's local address -> leg mark
//! map daddr / dport { mark : ... }                         the other leg's far end
//! map saddr / sport { mark : ... }                         the other leg's local address
//! prerouting, output (priority raw): set the mark from @leg, notrack, rewrite destination
//! postrouting (priority srcnat):     rewrite the source by the mark, clear the mark
//! ```
//!
//! Requirements (checked by [`KernelRelay::start`], which names the one that fails): Linux
//! with nftables (`nft` on the PATH, Debian package `nftables`), the `CAP_NET_ADMIN`
//! capability, an IPv4 bind address that is not a wildcard, and, unless every peer is on
//! loopback, `net.ipv4.ip_forward=1` (packets between two remote far ends are forwarded by the
//! kernel; a firewall's forward chain must let them through). Legs stay in user space when a
//! call is recorded, when call analysis still reads it (AMD deciding), or when an address is
//! IPv6; and until the kernel's rules are in, the user-space relay forwards as before.
//!
//! Limits: [`KERNEL_OPS_QUEUE_LEN`] bridge changes wait for the worker (beyond that a bridge
//! stays in user space); one `nft` run applies at most [`KERNEL_BATCH_MAX`] of them.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Bridge changes (add or remove) queued for the worker; a bridge that finds the queue full
/// stays in user space.
pub const KERNEL_OPS_QUEUE_LEN: usize = 8192;
/// Most bridge changes applied by one `nft` run (one netlink transaction).
pub const KERNEL_BATCH_MAX: usize = 512;
/// The marks Campana puts on packets it forwards (cleared again after the source rewrite):
/// the top two bits set, the rest a leg number.
const MARK_BASE: u32 = 0xC000_0000;
const MARK_SPACE: u32 = 0x3FFF_FFFF;
/// Table names start with this, then the process id and an instance number.
const TABLE_PREFIX: &str = "campana_media_";

/// Why kernel forwarding cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KernelRelayError {
    #[error("kernel_relay needs nftables' `nft` command (Debian package nftables): {0}")]
    NftMissing(std::io::Error),
    #[error("kernel_relay: nft refused the table (Campana needs CAP_NET_ADMIN, e.g. run as root): {0}")]
    Refused(String),
    #[error("kernel_relay needs a specific IPv4 address to bind RTP on, not {0}")]
    Address(IpAddr),
    #[error("kernel_relay forwards between remote peers and needs net.ipv4.ip_forward=1 (it is {0})")]
    IpForward(String),
    #[error("kernel_relay: {0}")]
    Io(#[from] std::io::Error),
}

/// One direction of a bridge: what arrives at `local` goes out of `via` (the other leg's
/// local address) to `to` (the other leg's far end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegPath {
    pub local: SocketAddrV4,
    pub via: SocketAddrV4,
    pub to: SocketAddrV4,
}

/// Packets and bytes the kernel forwarded for one leg (what arrived on its port).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCount {
    pub packets: u64,
    pub bytes: u64,
}

enum Op {
    Add { paths: [(LegPath, u32); 2], done: oneshot::Sender<bool> },
    Remove { paths: [(LegPath, u32); 2], done: Option<oneshot::Sender<[KernelCount; 2]>> },
}

/// The kernel forwarding of one process's SIP telephony: its nftables table and the worker
/// thread that applies bridge changes in batches. The table is deleted when the last
/// [`KernelBridge`] and the relay are gone.
pub struct KernelRelay {
    table: String,
    ops: std::sync::mpsc::SyncSender<Op>,
    next_mark: AtomicU32,
}

/// A bridge whose packets the kernel forwards; [`KernelBridge::close`] removes its rules and
/// returns what was forwarded (dropping it removes them without waiting).
pub struct KernelBridge {
    relay: Arc<KernelRelay>,
    paths: Option<[(LegPath, u32); 2]>,
}

impl KernelRelay {
    /// Creates the table (removing tables left by Campana processes that no longer run) and
    /// starts the worker. `rtp_ip` is the address RTP legs bind to.
    pub fn start(rtp_ip: IpAddr) -> Result<Arc<KernelRelay>, KernelRelayError> {
        let v4 = match rtp_ip {
            IpAddr::V4(v4) if !v4.is_unspecified() => v4,
            other => return Err(KernelRelayError::Address(other)),
        };
        if !v4.is_loopback() {
            let forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap_or_else(|_| "unknown".into());
            if forward.trim() != "1" {
                return Err(KernelRelayError::IpForward(forward.trim().to_string()));
            }
        }
        remove_stale_tables();
        static INSTANCE: AtomicU32 = AtomicU32::new(0);
        let table = format!("{TABLE_PREFIX}{}_{}", std::process::id(), INSTANCE.fetch_add(1, Ordering::Relaxed));
        nft(&table_script(&table)).map_err(|e| match e {
            NftError::Spawn(e) => KernelRelayError::NftMissing(e),
            NftError::Failed(msg) => KernelRelayError::Refused(msg),
        })?;
        let (tx, rx) = std::sync::mpsc::sync_channel(KERNEL_OPS_QUEUE_LEN);
        let worker_table = table.clone();
        std::thread::Builder::new().name("campana-kernel-relay".into()).spawn(move || worker(&worker_table, rx))?;
        tracing::info!(%table, "kernel media forwarding on (nftables)");
        Ok(Arc::new(KernelRelay { table, ops: tx, next_mark: AtomicU32::new(0) }))
    }

    /// The nftables table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Hands a bridge to the kernel: `a` and `b` are the two directions. Resolves once the
    /// rules are in; `None` when they could not be added (the user-space relay goes on).
    pub async fn bridge(self: &Arc<Self>, a: LegPath, b: LegPath) -> Option<KernelBridge> {
        let mark = || MARK_BASE | (self.next_mark.fetch_add(1, Ordering::Relaxed) & MARK_SPACE);
        let paths = [(a, mark()), (b, mark())];
        let (done, added) = oneshot::channel();
        if self.ops.try_send(Op::Add { paths, done }).is_err() {
            tracing::warn!("kernel relay queue full: bridge kept in user space");
            return None;
        }
        if added.await.unwrap_or(false) {
            Some(KernelBridge { relay: self.clone(), paths: Some(paths) })
        } else {
            None
        }
    }
}

impl KernelBridge {
    /// Removes the bridge's rules and returns what the kernel forwarded for each direction
    /// (zeros when the counters could not be read).
    pub async fn close(mut self) -> [KernelCount; 2] {
        let Some(paths) = self.paths.take() else { return Default::default() };
        let (done, counted) = oneshot::channel();
        if self.relay.ops.send(Op::Remove { paths, done: Some(done) }).is_err() {
            return Default::default();
        }
        counted.await.unwrap_or_default()
    }
}

impl Drop for KernelBridge {
    fn drop(&mut self) {
        if let Some(paths) = self.paths.take() {
            // Blocks only while the queue is full; the worker drains it continuously.
            let _ = self.relay.ops.send(Op::Remove { paths, done: None });
        }
    }
}

fn table_script(table: &str) -> String {
    let rewrite_destination =
        "meta mark set ip daddr . udp dport map @leg notrack ip daddr set meta mark map @daddr udp dport set meta mark map @dport";
    format!(
        "table ip {table} {{
  map leg {{ type ipv4_addr . inet_service : mark; counter; }}
  map daddr {{ type mark : ipv4_addr; }}
  map dport {{ type mark : inet_service; }}
  map saddr {{ type mark : ipv4_addr; }}
  map sport {{ type mark : inet_service; }}
  chain pre {{
    type filter hook prerouting priority raw; policy accept;
    {rewrite_destination}
  }}
  chain out {{
    type filter hook output priority raw; policy accept;
    {rewrite_destination}
  }}
  chain post {{
    type filter hook postrouting priority srcnat; policy accept;
    meta mark @saddr ip saddr set meta mark map @saddr udp sport set meta mark map @sport meta mark set 0
  }}
}}
"
    )
}

fn add_script(table: &str, paths: &[(LegPath, u32); 2], out: &mut String) {
    use std::fmt::Write;
    for (p, mark) in paths {
        // Every map of a leg before the leg map itself: a packet that matches @leg finds the rest.
        let _ = writeln!(out, "add element ip {table} daddr {{ {mark} : {} }}", p.to.ip());
        let _ = writeln!(out, "add element ip {table} dport {{ {mark} : {} }}", p.to.port());
        let _ = writeln!(out, "add element ip {table} saddr {{ {mark} : {} }}", p.via.ip());
        let _ = writeln!(out, "add element ip {table} sport {{ {mark} : {} }}", p.via.port());
    }
    for (p, mark) in paths {
        let _ = writeln!(out, "add element ip {table} leg {{ {} . {} : {mark} }}", p.local.ip(), p.local.port());
    }
}

fn remove_script(table: &str, paths: &[(LegPath, u32); 2], out: &mut String) {
    use std::fmt::Write;
    for (p, _) in paths {
        let _ = writeln!(out, "delete element ip {table} leg {{ {} . {} }}", p.local.ip(), p.local.port());
    }
    for (_, mark) in paths {
        for map in ["daddr", "dport", "saddr", "sport"] {
            let _ = writeln!(out, "delete element ip {table} {map} {{ {mark} }}");
        }
    }
}

/// The `nft` program: Debian's `/usr/sbin/nft` when present (not on every user's PATH),
/// otherwise `nft` from the PATH.
pub fn nft_program() -> &'static str {
    if std::path::Path::new("/usr/sbin/nft").exists() {
        "/usr/sbin/nft"
    } else {
        "nft"
    }
}

enum NftError {
    Spawn(std::io::Error),
    Failed(String),
}

/// Runs `nft -f -` with `script` on standard input.
fn nft(script: &str) -> Result<(), NftError> {
    let mut child = Command::new(nft_program())
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(NftError::Spawn)?;
    }
    let out = child.wait_with_output().map_err(NftError::Spawn)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NftError::Failed(String::from_utf8_lossy(&out.stderr).lines().take(3).collect::<Vec<_>>().join(" / ")))
    }
}

/// The leg map's element counters, by leg address.
fn read_counters(table: &str) -> HashMap<SocketAddrV4, KernelCount> {
    let mut counts = HashMap::new();
    let Ok(out) = Command::new(nft_program()).args(["-j", "list", "map", "ip", table, "leg"]).stderr(Stdio::null()).output() else {
        return counts;
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else { return counts };
    let elems = json["nftables"].as_array().into_iter().flatten().filter_map(|o| o["map"]["elem"].as_array()).flatten();
    for pair in elems {
        let elem = &pair[0]["elem"];
        let key = &elem["val"]["concat"];
        let (Some(ip), Some(port)) = (key[0].as_str().and_then(|s| s.parse::<Ipv4Addr>().ok()), key[1].as_u64()) else { continue };
        let Ok(port) = u16::try_from(port) else { continue };
        let c = &elem["counter"];
        counts.insert(
            SocketAddrV4::new(ip, port),
            KernelCount { packets: c["packets"].as_u64().unwrap_or(0), bytes: c["bytes"].as_u64().unwrap_or(0) },
        );
    }
    counts
}

/// Applies queued bridge changes in batches until every sender is gone, then deletes the table.
fn worker(table: &str, ops: std::sync::mpsc::Receiver<Op>) {
    while let Ok(first) = ops.recv() {
        let mut batch = vec![first];
        while batch.len() < KERNEL_BATCH_MAX {
            match ops.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        apply(table, batch);
    }
    if let Err(NftError::Failed(e)) = nft(&format!("delete table ip {table}\n")) {
        tracing::warn!(%table, error = %e, "kernel relay table not deleted");
    }
}

fn op_script(table: &str, op: &Op, out: &mut String) {
    match op {
        Op::Add { paths, .. } => add_script(table, paths, out),
        Op::Remove { paths, .. } => remove_script(table, paths, out),
    }
}

fn apply(table: &str, batch: Vec<Op>) {
    let counts = if batch.iter().any(|op| matches!(op, Op::Remove { done: Some(_), .. })) { read_counters(table) } else { HashMap::new() };
    let mut script = String::new();
    for op in &batch {
        op_script(table, op, &mut script);
    }
    let batch_ok = match nft(&script) {
        Ok(()) => true,
        Err(NftError::Spawn(e)) => {
            tracing::warn!(error = %e, "nft did not run");
            false
        }
        Err(NftError::Failed(e)) => {
            tracing::debug!(error = %e, ops = batch.len(), "nft batch refused; applying its changes one by one");
            false
        }
    };
    for op in batch {
        // A refused batch is a single transaction that changed nothing: each change again alone,
        // so one bad change does not take the others with it.
        let ok = batch_ok || {
            let mut one = String::new();
            op_script(table, &op, &mut one);
            match nft(&one) {
                Ok(()) => true,
                Err(NftError::Spawn(_)) => false,
                Err(NftError::Failed(e)) => {
                    tracing::warn!(error = %e, "kernel relay change refused");
                    false
                }
            }
        };
        match op {
            Op::Add { done, .. } => {
                let _ = done.send(ok);
            }
            Op::Remove { paths, done } => {
                if let Some(done) = done {
                    let _ = done.send(paths.map(|(p, _)| counts.get(&p.local).copied().unwrap_or_default()));
                }
            }
        }
    }
}

/// Deletes `campana_media_PID_N` tables whose process is gone (a Campana killed with -9 leaves
/// its table, and its rules would forward packets to ports other programs bind later).
fn remove_stale_tables() {
    let Ok(out) = Command::new(nft_program()).args(["list", "tables", "ip"]).stderr(Stdio::null()).output() else { return };
    let mut script = String::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.trim().strip_prefix("table ip ") else { continue };
        let Some(rest) = name.strip_prefix(TABLE_PREFIX) else { continue };
        let Some(pid) = rest.split('_').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            script.push_str(&format!("delete table ip {name}\n"));
        }
    }
    if !script.is_empty() {
        match nft(&script) {
            Ok(()) => tracing::info!("removed kernel relay tables of Campana processes that no longer run"),
            Err(NftError::Failed(e)) => tracing::warn!(error = %e, "stale kernel relay tables not removed"),
            Err(NftError::Spawn(_)) => {}
        }
    }
}

/// The two directions of a bridge between leg `a` (local address, far end) and leg `b`, when
/// every address is IPv4.
pub fn paths(a_local: SocketAddr, a_far: SocketAddr, b_local: SocketAddr, b_far: SocketAddr) -> Option<(LegPath, LegPath)> {
    let v4 = |s: SocketAddr| match s {
        SocketAddr::V4(v) => Some(v),
        SocketAddr::V6(_) => None,
    };
    let (al, af, bl, bf) = (v4(a_local)?, v4(a_far)?, v4(b_local)?, v4(b_far)?);
    Some((LegPath { local: al, via: bl, to: bf }, LegPath { local: bl, via: al, to: af }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_every_map_of_both_legs() {
        let (a, b) = paths(
            "127.0.0.1:4000".parse().expect("addr"),
            "127.0.0.1:5000".parse().expect("addr"),
            "127.0.0.1:4002".parse().expect("addr"),
            "127.0.0.1:6000".parse().expect("addr"),
        )
        .expect("v4");
        assert_eq!(a.to.port(), 6000);
        assert_eq!(a.via.port(), 4002);
        assert_eq!(b.to.port(), 5000);
        let mut add = String::new();
        add_script("t", &[(a, 1), (b, 2)], &mut add);
        assert!(add.contains("add element ip t dport { 1 : 6000 }"), "{add}");
        assert!(add.contains("add element ip t sport { 2 : 4000 }"), "{add}");
        assert!(add.ends_with("add element ip t leg { 127.0.0.1 . 4002 : 2 }\n"), "the leg map last: {add}");
        let mut remove = String::new();
        remove_script("t", &[(a, 1), (b, 2)], &mut remove);
        assert!(remove.starts_with("delete element ip t leg { 127.0.0.1 . 4000 }"), "the leg map first: {remove}");
        assert_eq!(remove.lines().count(), 10);
        assert!(paths(
            "[::1]:1".parse().expect("v6"),
            "127.0.0.1:1".parse().expect("a"),
            "127.0.0.1:2".parse().expect("a"),
            "127.0.0.1:3".parse().expect("a")
        )
        .is_none());
    }
}
