//! SIP capacity benchmark (issue 6), on 127.0.0.1 only. Figures and commands: docs/benchmarks.md,
//! section "SIP origination and media relay".
//!
//! ```text
//! cargo bench -p campana-sip --bench sip-bench -- --quick     # a short check (about 1 minute)
//! cargo bench -p campana-sip --bench sip-bench                # the full run (about 20 minutes)
//! ```
//!
//! Options: `--rates 100,200,500` (origination steps, calls/s), `--step-s 10` (seconds per step),
//! `--calls 500,1000,2000` (bridged-call steps), `--hold-s 60`, `--ramp-cps 200`,
//! `--only origination|relay`, `--no-rtpengine`, `--no-kernel`, `--no-userspace`.
//!
//! Needs sipp (`scripts/install-sip-deps.sh`, Debian package sip-tester) and, for the relay
//! baseline, rtpengine's userspace daemon (`apt-get install rtpengine-daemon`; no kernel module,
//! started here with `--table=-1`).
//!
//! 1. **Origination**: sipp plays the carrier (100, 180, 200 with SDP, then waits for BYE);
//!    Campana's `SipTelephony` dials at a stepped rate (its own `calls_per_second` pacing) and
//!    hangs up each call as soon as it is answered. Per step: calls answered and ended normally,
//!    the rate achieved, answer lag behind the pacing slot, and CPU per call of Campana (its
//!    runtime's threads, `/proc/self/task/*/schedstat`) next to sipp's (`/proc/PID/task/*`).
//! 2. **Bridged calls with relayed RTP**: agents register with Campana's registrar (sipp UAC,
//!    digest, one user per agent from an injection file); sipp as carrier answers N customer
//!    calls, Campana connects each to its agent's phone (a second sipp UAS) and bridges RTP. The
//!    media comes from this process: one socket is every customer's RTP address and sends 50
//!    packets/s of 172 bytes (12-byte header + 160 bytes G.711) to each customer leg; one socket
//!    is every agent phone's RTP address and echoes what arrives. So every leg carries 50 pps
//!    each way. The same streams then go through Campana with `kernel_relay` (nftables; needs
//!    root and `nft`), straight from the generator to the echo (no relay: the generator's own
//!    cost) and through rtpengine (offer/answer over the ng protocol); the CPU of each relay over
//!    the hold is compared, and the whole machine's (every thread's schedstat), which is where
//!    the kernel's forwarding shows.

use campana_core::ids::{CampaignId, RecordId, UserId};
use campana_core::phone::PhoneNumber;
use campana_core::record::CallResult;
use campana_core::telephony::{CallId, DialAnalysis, TelephonyCommand, TelephonyEvent};
use campana_sip::{AgentCredential, RegistrarConfig, SipTelephony, TrunkConfig};
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Name of the Campana runtime's threads (the CPU counted as Campana's).
const CAMPANA_THREADS: &str = "campana-sip";
/// Prefix of this process's load-generator threads.
const LOADGEN_THREADS: &str = "bench-";
/// RTP packet: 12-byte header + 20 ms of G.711 (160 bytes).
const RTP_PACKET_BYTES: usize = 172;
/// Marks the generator's packets (payload offset 0), so silence from a leg is never counted.
const MAGIC: &[u8; 4] = b"CMPB";
/// Packets per second per stream and direction.
const PPS: u64 = 50;
/// Delay between a customer's answer and the Connect (so the customer leg's own silence
/// reaches the generator first and tells it the leg's address).
const CONNECT_DELAY_MS: u64 = 100;
const LOCALHOST: [u8; 4] = [127, 0, 0, 1];

struct Args {
    rates: Vec<u32>,
    step_s: u64,
    calls: Vec<usize>,
    hold_s: u64,
    ramp_cps: u32,
    origination: bool,
    relay: bool,
    rtpengine: bool,
    /// Also run Campana with `kernel_relay` (nftables forwarding; needs root and `nft`).
    kernel: bool,
    /// Run Campana's user-space relay (`--no-userspace` skips it).
    userspace: bool,
}

fn parse_args() -> Args {
    let argv: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let quick = argv.iter().any(|a| a == "--quick");
    let mut a = if quick {
        Args {
            rates: vec![100, 500],
            step_s: 3,
            calls: vec![200],
            hold_s: 10,
            ramp_cps: 200,
            origination: true,
            relay: true,
            rtpengine: true,
            kernel: true,
            userspace: true,
        }
    } else {
        Args {
            rates: vec![100, 200, 500, 800, 1000, 1500, 2000, 3000],
            step_s: 10,
            calls: vec![250, 500, 750, 1000, 2000],
            hold_s: 60,
            ramp_cps: 200,
            origination: true,
            relay: true,
            rtpengine: true,
            kernel: true,
            userspace: true,
        }
    };
    let list =
        |v: &str| -> Vec<u64> { v.split(',').map(|x| x.trim().parse().unwrap_or_else(|_| usage(&format!("bad number {x:?}")))).collect() };
    let mut i = 0;
    while i < argv.len() {
        let value = || argv.get(i + 1).cloned().unwrap_or_else(|| usage(&format!("{} needs a value", argv[i])));
        match argv[i].as_str() {
            "--quick" => {}
            "--no-rtpengine" => a.rtpengine = false,
            "--no-kernel" => a.kernel = false,
            "--no-userspace" => a.userspace = false,
            "--rates" => {
                a.rates = list(&value()).into_iter().map(|x| x as u32).collect();
                i += 1;
            }
            "--calls" => {
                a.calls = list(&value()).into_iter().map(|x| x as usize).collect();
                i += 1;
            }
            "--step-s" => {
                a.step_s = list(&value())[0];
                i += 1;
            }
            "--hold-s" => {
                a.hold_s = list(&value())[0];
                i += 1;
            }
            "--ramp-cps" => {
                a.ramp_cps = list(&value())[0] as u32;
                i += 1;
            }
            "--only" => {
                match value().as_str() {
                    "origination" => a.relay = false,
                    "relay" => a.origination = false,
                    other => usage(&format!("--only origination|relay, not {other}")),
                }
                i += 1;
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
        i += 1;
    }
    a
}

fn usage(why: &str) -> ! {
    if !why.is_empty() {
        eprintln!("sip-bench: {why}");
    }
    eprintln!(
        "usage: cargo bench -p campana-sip --bench sip-bench -- [--quick] [--rates 100,200] [--step-s 10] \
         [--calls 500,2000] [--hold-s 60] [--ramp-cps 200] [--only origination|relay] [--no-rtpengine] [--no-kernel] [--no-userspace]\n\
         needs sipp (scripts/install-sip-deps.sh) and rtpengine (apt-get install rtpengine-daemon)"
    );
    std::process::exit(2)
}

fn main() {
    let args = parse_args();
    // Campana's tasks run on this runtime's two workers (the machine has 2 cores); the bench's
    // driver runs on the main thread (block_on) and its RTP generator on its own threads, so
    // neither is counted as Campana's CPU.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(CAMPANA_THREADS)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = std::env::temp_dir().join(format!("campana-sip-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("work dir");
    println!("# sip-bench {} UTC", utc_now());
    println!("machine: {} cores, load average at start {}", num_cpus(), loadavg());
    println!("work dir (sipp logs): {}", dir.display());
    rt.block_on(run(&args, &dir));
    println!("load average at end {}", loadavg());
}

async fn run(args: &Args, dir: &Path) {
    if args.origination {
        println!("\n## Origination (sipp as carrier; Campana hangs up at answer; {} s per step)\n", args.step_s);
        println!("| target cps | calls | answered | failed | achieved cps | answer lag p50 / p99 / max | Campana CPU per call | sipp CPU per call | ratio Campana/sipp | sustained | load avg | RSS after |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
        for &rate in &args.rates {
            let load = loadavg_1m();
            match origination_step(rate, args.step_s, dir).await {
                Ok(r) => r.print(&load),
                Err(e) => println!("| {rate} | error: {e} |"),
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    if args.relay {
        println!(
            "\n## Bridged calls with relayed RTP (50 pps each way per leg, {RTP_PACKET_BYTES}-byte packets, hold {} s, ramp {} calls/s)\n",
            args.hold_s, args.ramp_cps
        );
        let media = Media::start().expect("RTP generator sockets");
        let mut rows = Vec::new();
        for &n in &args.calls {
            let ours = if args.userspace {
                relay_campana(n, args.hold_s, args.ramp_cps, dir, &media, false).await
            } else {
                RelayResult::failed("Campana", n, "not run (--no-userspace)".into())
            };
            ours.print_detail();
            tokio::time::sleep(Duration::from_secs(2)).await;
            let kernel = if args.kernel { Some(relay_campana(n, args.hold_s, args.ramp_cps, dir, &media, true).await) } else { None };
            if let Some(k) = &kernel {
                k.print_detail();
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            // What the generator and echo cost alone (no relay in the path): the kernel relay's
            // own cost is the machine CPU above this.
            let direct = if args.kernel { Some(relay_direct(n, args.hold_s, &media).await) } else { None };
            if let Some(d) = &direct {
                d.print_detail();
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            let theirs = if args.rtpengine { Some(relay_rtpengine(n, args.hold_s, dir, &media).await) } else { None };
            if let Some(t) = &theirs {
                t.print_detail();
            }
            rows.push((ours, kernel, direct, theirs));
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        println!("\n| bridged calls | relay | connected | held | packets sent | lost to agent / back | lost: on the relay's sockets / in the relay / on the generator's | round trip p99 / max | relay CPU % (of 1 core) | CPU µs per call-second | loss-free | load generator CPU % | machine CPU % (of one core; {} cores) | load avg before-after |", num_cpus());
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for (o, k, d, t) in &rows {
            o.print_row();
            if let Some(k) = k {
                k.print_row();
            }
            if let Some(d) = d {
                d.print_row();
            }
            if let Some(t) = t {
                t.print_row();
                // A ratio means something only for the same work: both relayed every packet.
                if o.loss_free() && t.loss_free() {
                    println!(
                        "| {} | **ratio Campana/rtpengine** (relay CPU) | | | | | | | **{:.2}x** | | | | | |",
                        o.calls,
                        o.cpu_s / t.cpu_s
                    );
                } else {
                    println!("| {} | ratio Campana/rtpengine (relay CPU) | | | | | | | n/a (packets lost) | | | | | |", o.calls);
                }
                // The kernel forwards in the senders' threads (softirq), so its cost is only
                // seen in the machine's CPU, which also holds the generator's.
                if let Some(k) = k {
                    if k.loss_free() && t.loss_free() {
                        println!(
                            "| {} | **ratio Campana kernel/rtpengine** (machine CPU) | | | | | | | | | | | **{:.2}x** | |",
                            k.calls,
                            k.machine_cpu_s / t.machine_cpu_s
                        );
                    } else {
                        println!(
                            "| {} | ratio Campana kernel/rtpengine (machine CPU) | | | | | | | | | | | n/a (packets lost) | |",
                            k.calls
                        );
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CPU accounting

/// On-CPU nanoseconds of a process's threads (`/proc/PID/task/*/schedstat`), only those whose
/// name starts with `prefix` when given.
fn cpu_ns(pid: u32, prefix: Option<&str>) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    let mut total = 0;
    for t in tasks.flatten() {
        if let Some(p) = prefix {
            let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
            if !comm.trim_end().starts_with(p) {
                continue;
            }
        }
        let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        total += stat.split_whitespace().next().and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    }
    total
}

fn campana_cpu_ns() -> u64 {
    cpu_ns(std::process::id(), Some(CAMPANA_THREADS))
}

fn loadgen_cpu_ns() -> u64 {
    cpu_ns(std::process::id(), Some(LOADGEN_THREADS))
}

/// On-CPU nanoseconds of every thread of every process on the machine (kernel threads such as
/// ksoftirqd included), by (pid, tid): what the relay, the generator, sipp and anything else
/// ran, including the kernel's packet processing done in their context (on loopback a sender
/// runs the receive path too). Read from `/proc/*/task/*/schedstat`, which is exact, where
/// `/proc/stat`'s tick sampling misses most of this workload's short bursts.
fn machine_cpu_snapshot() -> std::collections::HashMap<(u32, u32), u64> {
    let mut out = std::collections::HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return out };
    for p in procs.flatten() {
        let name = p.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { continue };
        for t in tasks.flatten() {
            let Some(tid) = t.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
            if let Some(ns) = stat.split_whitespace().next().and_then(|x| x.parse::<u64>().ok()) {
                out.insert((pid, tid), ns);
            }
        }
    }
    out
}

/// The machine's on-CPU time since `before` (a [`machine_cpu_snapshot`]): each thread's own
/// increase (a thread started since counts from zero). The difference of two machine-wide sums,
/// as measured before, lost the whole past CPU of every thread that ended meanwhile (a
/// compiler, an `nft` run, another process on the machine), which could exceed what the relay
/// used and made the machine's figure read below the relay's own. A thread that ends during the
/// interval is not counted (its CPU since `before` cannot be read any more): this figure is a
/// lower bound that always includes the relay's and the generator's threads, alive throughout.
fn machine_cpu_ns_since(before: &std::collections::HashMap<(u32, u32), u64>) -> u64 {
    machine_cpu_snapshot().into_iter().map(|(task, ns)| ns.saturating_sub(before.get(&task).copied().unwrap_or(0))).sum()
}

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn loadavg_1m() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?").to_string()
}

/// This process's resident memory.
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn utc_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Peers (sipp, rtpengine)

fn free_udp_port() -> u16 {
    UdpSocket::bind(SocketAddr::from((LOCALHOST, 0))).and_then(|s| s.local_addr()).map(|a| a.port()).expect("free port")
}

/// A child process killed on drop (by its own id).
struct Peer {
    child: Child,
}

impl Peer {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn cpu_ns(&self) -> u64 {
        cpu_ns(self.pid(), None)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts sipp with a scenario written to `dir/NAME.xml`; output in `dir/NAME.out`.
fn spawn_sipp(dir: &Path, name: &str, scenario: &str, port: u16, target: Option<SocketAddr>, extra: &[String]) -> Peer {
    let path = dir.join(format!("{name}.xml"));
    std::fs::write(&path, scenario).expect("write scenario");
    let log = std::fs::File::create(dir.join(format!("{name}.out"))).expect("log file");
    let mut cmd = Command::new("sipp");
    if let Some(t) = target {
        cmd.arg(t.to_string());
    }
    let child = cmd
        .current_dir(dir)
        .arg("-sf")
        .arg(&path)
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-t", "u1", "-nostdin", "-trace_err"])
        .args(["-mi", "127.0.0.1", "-mp", &free_udp_port().to_string()])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap_or_else(|e| panic!("sipp does not start ({e}): install it with scripts/install-sip-deps.sh (Debian package sip-tester)"));
    Peer { child }
}

/// Events in sipp's error logs (`-trace_err`) for scenario `name`: (BYE retransmissions that
/// arrived after sipp had closed the call, "Dead call"; all other events).
fn sipp_events(dir: &Path, name: &str) -> (usize, usize) {
    let (mut dead, mut other) = (0, 0);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let f = e.file_name().to_string_lossy().to_string();
            if f.starts_with(name) && f.ends_with("_errors.log") {
                // Events run together (each quotes the message it is about), so count the
                // phrases sipp starts them with.
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                dead += text.matches("Dead call").count();
                other += text.matches("Aborting call").count() + text.matches("timed out").count() + text.matches("Unexpected").count();
            }
        }
    }
    (dead, other)
}

/// A UAS that answers every INVITE (100, 180, 200 with SDP pointing at `media_port`) and
/// waits for the BYE.
fn uas_scenario(media_port: u16) -> String {
    let headers = "[last_Via:]\n      [last_From:]\n      [last_To:];tag=[pid]SIPpTag01[call_number]\n      [last_Call-ID:]\n      [last_CSeq:]\n      Contact: <sip:peer@[local_ip]:[local_port];transport=[transport]>";
    format!(
        r#"<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answer and wait for BYE">
  <recv request="INVITE" />
  <send>
    <![CDATA[
      SIP/2.0 100 Trying
      {headers}
      Content-Length: 0

    ]]>
  </send>
  <send>
    <![CDATA[
      SIP/2.0 180 Ringing
      {headers}
      Content-Length: 0

    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      SIP/2.0 200 OK
      {headers}
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=peer 1 1 IN IP4 127.0.0.1
      s=-
      c=IN IP4 127.0.0.1
      t=0 0
      m=audio {media_port} RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16

    ]]>
  </send>
  <recv request="ACK" />
  <recv request="BYE" />
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      {headers}
      Content-Length: 0

    ]]>
  </send>
</scenario>
"#
    )
}

/// Registers agents `a1..aN` (password `pI`) with Campana's registrar, each with its Contact on
/// the agent phones' sipp (`phones_port`): REGISTER, 401 challenge, REGISTER with the digest
/// answer, 200. Own code rather than a sipp UAC: sipp 3.6.1 does not expand `[field0]` inside
/// `[authentication ...]`, so one sipp process cannot register many users from an injection file.
fn register_agents(registrar: SocketAddr, phones_port: u16, n: usize) -> Result<usize, String> {
    use rsipstack::dialog::authenticate::compute_digest;
    use rsipstack::sip::headers::auth::Algorithm;
    let socket = UdpSocket::bind(SocketAddr::from((LOCALHOST, 0))).map_err(|e| e.to_string())?;
    socket.set_read_timeout(Some(Duration::from_millis(500))).map_err(|e| e.to_string())?;
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let uri = format!("sip:{registrar}");
    let mut buf = vec![0u8; 65_536];
    let mut ok = 0;
    for i in 1..=n {
        let user = format!("a{i}");
        let request = |cseq: u32, auth: &str| {
            format!(
                "REGISTER {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-reg-{i}-{cseq}\r\nFrom: <sip:{user}@{registrar}>;tag=reg{i}\r\n\
                 To: <sip:{user}@{registrar}>\r\nCall-ID: reg-{i}@bench\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:{user}@127.0.0.1:{phones_port}>\r\n\
                 {auth}Expires: 3600\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            )
        };
        let mut exchange = |msg: String, want: &str| -> Result<String, String> {
            for _ in 0..4 {
                socket.send_to(msg.as_bytes(), registrar).map_err(|e| e.to_string())?;
                while let Ok((len, _)) = socket.recv_from(&mut buf) {
                    let reply = String::from_utf8_lossy(&buf[..len]).to_string();
                    if reply.contains(&format!("reg-{i}@bench")) && reply.starts_with(want) {
                        return Ok(reply);
                    }
                }
            }
            Err(format!("{user}: no {want}"))
        };
        let challenge = exchange(request(1, ""), "SIP/2.0 401")?;
        let nonce = challenge.split("nonce=\"").nth(1).and_then(|r| r.split('"').next()).ok_or("401 without a nonce")?.to_string();
        let response =
            compute_digest(&user, &format!("p{i}"), "campana.bench", &nonce, &rsipstack::sip::Method::Register, &uri, Algorithm::Md5, None);
        let auth = format!("Authorization: Digest username=\"{user}\", realm=\"campana.bench\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5\r\n");
        exchange(request(2, &auth), "SIP/2.0 200")?;
        ok += 1;
    }
    Ok(ok)
}

// ---------------------------------------------------------------------------------------------
// 1. Origination

struct OrigResult {
    rate: u32,
    calls: u64,
    answered: u64,
    failures: BTreeMap<String, u64>,
    achieved_cps: f64,
    lag_ms: (f64, f64, f64),
    campana_cpu_s: f64,
    sipp_cpu_s: f64,
    sipp_errors: usize,
}

impl OrigResult {
    fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    fn print(&self, load: &str) {
        let per_call = |s: f64| format!("{:.0} µs", s / self.calls as f64 * 1e6);
        let failed = if self.failures.is_empty() {
            "0".to_string()
        } else {
            format!("{} ({})", self.failed(), self.failures.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "))
        };
        let sustained =
            self.failed() == 0 && self.sipp_errors == 0 && self.achieved_cps >= 0.95 * f64::from(self.rate) && self.lag_ms.1 < 1000.0;
        println!(
            "| {} | {} | {} | {}{} | {:.0} | {:.0} / {:.0} / {:.0} ms | {} | {} | {:.2}x | {} | {load}-{} | {} MiB |",
            self.rate,
            self.calls,
            self.answered,
            failed,
            if self.sipp_errors > 0 { format!(", sipp errors {}", self.sipp_errors) } else { String::new() },
            self.achieved_cps,
            self.lag_ms.0,
            self.lag_ms.1,
            self.lag_ms.2,
            per_call(self.campana_cpu_s),
            per_call(self.sipp_cpu_s),
            if self.sipp_cpu_s > 0.0 { self.campana_cpu_s / self.sipp_cpu_s } else { f64::NAN },
            if sustained { "yes" } else { "**no**" },
            loadavg_1m(),
            rss_mib()
        );
    }
}

fn dial(call: u64) -> TelephonyCommand {
    TelephonyCommand::Dial {
        call_id: CallId(call),
        campaign_id: CampaignId(1),
        record_id: RecordId(call as i64),
        to: PhoneNumber::parse("+14155550123", None).expect("number"),
        caller_id: None,
        trunk: None,
        ring_timeout_s: 30,
        analysis: DialAnalysis::default(),
        record_audio: false,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn origination_step(rate: u32, step_s: u64, dir: &Path) -> Result<OrigResult, String> {
    let n = u64::from(rate) * step_s;
    // Where the carrier's SDP points: a socket nobody reads (the calls are hung up at answer).
    let discard = UdpSocket::bind(SocketAddr::from((LOCALHOST, 0))).map_err(|e| e.to_string())?;
    let port = free_udp_port();
    let name = format!("carrier-{rate}cps");
    let sipp = spawn_sipp(dir, &name, &uas_scenario(discard.local_addr().map_err(|e| e.to_string())?.port()), port, None, &[]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut config = TrunkConfig::new(SocketAddr::from((LOCALHOST, port)), "+15550001111");
    config.bind = SocketAddr::from((LOCALHOST, 0));
    config.calls_per_second = rate;
    config.max_channels = n as usize + 16;
    config.event_queue_len = 65_536;
    let (tel, mut events) = SipTelephony::start(config).await.map_err(|e| e.to_string())?;
    let commands = tel.commands();
    let hangups = tel.commands();
    let cpu0 = campana_cpu_ns();
    let sipp0 = sipp.cpu_ns();
    let t0 = Instant::now();
    let send_all = async move {
        for i in 1..=n {
            if commands.send(dial(i)).await.is_err() {
                return;
            }
        }
    };
    let receive = async {
        let mut answered_at: Vec<Option<Instant>> = vec![None; n as usize + 1];
        let mut failures: BTreeMap<String, u64> = BTreeMap::new();
        let mut ended = 0u64;
        let deadline = t0 + Duration::from_secs(step_s + 60);
        while ended < n {
            let ev = match tokio::time::timeout_at(deadline.into(), events.recv()).await {
                Ok(Some(e)) => e,
                _ => break,
            };
            match ev {
                TelephonyEvent::Answered { call_id, .. } => {
                    answered_at[call_id.0 as usize] = Some(Instant::now());
                    let _ = hangups.send(TelephonyCommand::HangUp { call_id }).await;
                }
                TelephonyEvent::Ended { call_id, result } => {
                    ended += 1;
                    if result != CallResult::Answered || answered_at[call_id.0 as usize].is_none() {
                        *failures.entry(result.as_str().to_string()).or_default() += 1;
                    }
                }
                _ => {}
            }
        }
        if ended < n {
            failures.insert("no result within the step + 60 s".into(), n - ended);
        }
        (answered_at, failures)
    };
    let ((), (answered_at, failures)) = tokio::join!(send_all, receive);
    let cpu = campana_cpu_ns() - cpu0;
    let sipp_cpu = sipp.cpu_ns() - sipp0;
    let active = tel.stats().active_calls;
    // Diagnostics: SIP_BENCH_TASKS=S waits S seconds with the telephony still running, then
    // prints the tasks still alive and the memory (rsipstack keeps each answered INVITE's
    // transaction and dialog for Timer M, 64*T1 = 32 s, after the call).
    if let Some(wait_s) = std::env::var("SIP_BENCH_TASKS").ok().and_then(|v| v.parse::<u64>().ok()) {
        let tasks = || tokio::runtime::Handle::current().metrics().num_alive_tasks();
        println!("(active calls at the end {active}; tokio tasks alive {}, RSS {} MiB)", tasks(), rss_mib());
        for _ in 0..wait_s / 5 {
            tokio::time::sleep(Duration::from_secs(5)).await;
            println!("(after 5 s more: tokio tasks alive {}, RSS {} MiB)", tasks(), rss_mib());
        }
    }
    tel.shutdown();
    drop(tel);
    drop(sipp);
    let slot = 1.0 / f64::from(rate);
    let mut lags: Vec<f64> = Vec::new();
    let mut times: Vec<Instant> = Vec::new();
    for (i, at) in answered_at.iter().enumerate().skip(1) {
        if let Some(at) = at {
            times.push(*at);
            lags.push((at.duration_since(t0).as_secs_f64() - (i - 1) as f64 * slot) * 1000.0);
        }
    }
    lags.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    times.sort();
    let achieved_cps = match (times.first(), times.last()) {
        (Some(a), Some(b)) if times.len() > 1 => (times.len() - 1) as f64 / b.duration_since(*a).as_secs_f64(),
        _ => 0.0,
    };
    Ok(OrigResult {
        rate,
        calls: n,
        answered: times.len() as u64,
        failures,
        achieved_cps,
        lag_ms: (percentile(&lags, 0.5), percentile(&lags, 0.99), lags.last().copied().unwrap_or(f64::NAN)),
        campana_cpu_s: secs(cpu),
        sipp_cpu_s: secs(sipp_cpu),
        sipp_errors: sipp_events(dir, &name).1,
    })
}

// ---------------------------------------------------------------------------------------------
// 2. The RTP generator: one socket for every customer, one echoing socket for every agent phone

#[derive(Default)]
struct MediaCounters {
    /// Packets sent by the customers' socket.
    sent: AtomicU64,
    /// Generator packets that reached the agent phones' socket (and were echoed).
    echoed: AtomicU64,
    /// Echoed packets back at the customers' socket.
    returned: AtomicU64,
    /// Datagrams that were not the generator's (a leg's own silence).
    other: AtomicU64,
    /// Round trips (customer socket -> relay -> phones' echo -> relay -> customer socket) of the
    /// returned packets, counted per bucket of `RTT_BUCKETS_MS` (the last: longer).
    rtt: [AtomicU64; RTT_BUCKETS_MS.len() + 1],
    rtt_max_us: AtomicU64,
}

/// Upper bounds of the round-trip histogram's buckets.
const RTT_BUCKETS_MS: [u64; 10] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

/// The generator's clock: packets carry their send time in microseconds since this.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl MediaCounters {
    fn record_rtt(&self, packet: &[u8]) {
        let Some(sent) = packet.get(16..24).and_then(|b| <[u8; 8]>::try_from(b).ok()).map(u64::from_be_bytes) else { return };
        let rtt_us = (epoch().elapsed().as_micros() as u64).saturating_sub(sent);
        let bucket = RTT_BUCKETS_MS.iter().position(|ms| rtt_us < ms * 1000).unwrap_or(RTT_BUCKETS_MS.len());
        self.rtt[bucket].fetch_add(1, Ordering::Relaxed);
        self.rtt_max_us.fetch_max(rtt_us, Ordering::Relaxed);
    }

    /// The round trip under which 99% of the returned packets came back ("≤ X ms", from the
    /// histogram) and the longest, in ms.
    fn rtt_summary(&self) -> (String, f64) {
        let counts: Vec<u64> = self.rtt.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let max_ms = self.rtt_max_us.load(Ordering::Relaxed) as f64 / 1000.0;
        if total == 0 {
            return ("-".into(), 0.0);
        }
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen * 100 >= total * 99 {
                return (RTT_BUCKETS_MS.get(i).map(|ms| format!("< {ms} ms")).unwrap_or_else(|| "> 1 s".into()), max_ms);
            }
        }
        ("> 1 s".into(), max_ms)
    }
}

struct Media {
    customers: UdpSocket,
    phones_port: u16,
    counters: Arc<MediaCounters>,
    /// Addresses that sent silence to the customers' socket while learning (customer legs).
    learned: Arc<Mutex<HashSet<SocketAddr>>>,
    learning: Arc<AtomicBool>,
}

fn big_socket() -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    // Capped by net.core.rmem_max / wmem_max; bursts of a few thousand packets fit.
    let _ = s.set_recv_buffer_size(8 << 20);
    let _ = s.set_send_buffer_size(8 << 20);
    s.bind(&SocketAddr::from((LOCALHOST, 0)).into())?;
    let s: UdpSocket = s.into();
    force_buffers(&s, 32 << 20);
    s.set_read_timeout(Some(Duration::from_millis(50)))?;
    Ok(s)
}

/// As root, buffers past net.core.rmem_max / wmem_max (SO_RCVBUFFORCE / SO_SNDBUFFORCE), so
/// the generator's sockets absorb the scheduler's pauses at 200,000 packets/s; ignored
/// otherwise.
fn force_buffers(s: &UdpSocket, bytes: libc::c_int) {
    use std::os::fd::AsRawFd;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE] {
        // SAFETY: a valid socket and a c_int option value of the size given.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&bytes as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// Most datagrams one `recvmmsg` / `sendmmsg` call moves.
const BATCH: usize = 256;
/// How long the generator's receivers wait after a batch that was not full, so each call
/// finds many packets (fewer wake-ups; the packets wait in the socket's 32 MiB buffer).
const BATCH_WAIT: Duration = Duration::from_millis(1);
/// Largest datagram the generator reads (bigger ones are truncated; only 172-byte RTP is sent).
const BATCH_DATAGRAM_BYTES: usize = 256;

/// Batched datagram I/O for the load generator (`recvmmsg` / `sendmmsg`, IPv4): one system
/// call moves up to [`BATCH`] packets, so what the generator costs per packet is the kernel's
/// UDP path, not system-call overhead, and it does not become the limit before the relay does.
struct Datagrams {
    bufs: Vec<[u8; BATCH_DATAGRAM_BYTES]>,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_in>,
}

fn to_sockaddr(a: SocketAddr) -> libc::sockaddr_in {
    let SocketAddr::V4(v4) = a else { panic!("the generator is IPv4 only: {a}") };
    // SAFETY: sockaddr_in is plain old data; all zeroes is a valid value.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_port = v4.port().to_be();
    sa.sin_addr = libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() };
    sa
}

fn from_sockaddr(sa: &libc::sockaddr_in) -> SocketAddr {
    SocketAddr::from((u32::from_be(sa.sin_addr.s_addr).to_be_bytes(), u16::from_be(sa.sin_port)))
}

impl Datagrams {
    fn new() -> Datagrams {
        // SAFETY: as in to_sockaddr.
        Datagrams { bufs: vec![[0; BATCH_DATAGRAM_BYTES]; BATCH], lens: vec![0; BATCH], addrs: vec![unsafe { std::mem::zeroed() }; BATCH] }
    }

    fn packet(&self, i: usize) -> &[u8] {
        &self.bufs[i][..self.lens[i]]
    }

    fn from(&self, i: usize) -> SocketAddr {
        from_sockaddr(&self.addrs[i])
    }

    /// Waits for datagrams (up to the socket's read timeout) and reads up to [`BATCH`] of them;
    /// returns how many (0 on timeout or error).
    fn recv(&mut self, sock: &UdpSocket) -> usize {
        use std::os::fd::AsRawFd;
        let mut iov: Vec<libc::iovec> =
            self.bufs.iter_mut().map(|b| libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: BATCH_DATAGRAM_BYTES }).collect();
        // SAFETY: plain old data, zeroed, then every pointer set to live buffers of the lengths given.
        let mut hdrs: Vec<libc::mmsghdr> = (0..BATCH).map(|_| unsafe { std::mem::zeroed() }).collect();
        for (i, h) in hdrs.iter_mut().enumerate() {
            h.msg_hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_in).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut iov[i];
            h.msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: hdrs, iov, bufs and addrs outlive the call; BATCH entries are valid.
        let n = unsafe {
            libc::recvmmsg(sock.as_raw_fd(), hdrs.as_mut_ptr(), BATCH as libc::c_uint, libc::MSG_WAITFORONE, std::ptr::null_mut())
        };
        if n <= 0 {
            return 0;
        }
        let n = n as usize;
        for (len, h) in self.lens.iter_mut().zip(&hdrs).take(n) {
            *len = h.msg_len as usize;
        }
        n
    }
}

/// Sends each `(packet, destination)` with as few `sendmmsg` calls as it takes; returns how
/// many the kernel took.
fn send_batch(sock: &UdpSocket, packets: &[(&[u8], SocketAddr)]) -> usize {
    use std::os::fd::AsRawFd;
    let mut sent = 0;
    for chunk in packets.chunks(BATCH) {
        let mut addrs: Vec<libc::sockaddr_in> = chunk.iter().map(|(_, a)| to_sockaddr(*a)).collect();
        let mut iov: Vec<libc::iovec> =
            chunk.iter().map(|(p, _)| libc::iovec { iov_base: p.as_ptr() as *mut libc::c_void, iov_len: p.len() }).collect();
        // SAFETY: as in Datagrams::recv; the kernel only reads the packets.
        let mut hdrs: Vec<libc::mmsghdr> = (0..chunk.len()).map(|_| unsafe { std::mem::zeroed() }).collect();
        for (i, h) in hdrs.iter_mut().enumerate() {
            h.msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_in).cast();
            h.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            h.msg_hdr.msg_iov = &mut iov[i];
            h.msg_hdr.msg_iovlen = 1;
        }
        let mut done = 0;
        while done < hdrs.len() {
            // SAFETY: the remaining headers point into live vectors.
            let n = unsafe { libc::sendmmsg(sock.as_raw_fd(), hdrs[done..].as_mut_ptr(), (hdrs.len() - done) as libc::c_uint, 0) };
            if n <= 0 {
                break; // a full buffer or an ICMP error: these packets are lost and counted so
            }
            done += n as usize;
        }
        sent += done;
    }
    sent
}

fn is_generated(packet: &[u8]) -> bool {
    packet.len() >= 16 && &packet[12..16] == MAGIC
}

impl Media {
    fn start() -> std::io::Result<Media> {
        let customers = big_socket()?;
        let phones = big_socket()?;
        let phones_port = phones.local_addr()?.port();
        let counters = Arc::new(MediaCounters::default());
        let learned = Arc::new(Mutex::new(HashSet::new()));
        let learning = Arc::new(AtomicBool::new(false));
        {
            let (sock, counters, learned, learning) = (customers.try_clone()?, counters.clone(), learned.clone(), learning.clone());
            std::thread::Builder::new().name("bench-media-rx".into()).spawn(move || {
                let mut d = Datagrams::new();
                loop {
                    let n = d.recv(&sock);
                    if n < BATCH {
                        std::thread::sleep(BATCH_WAIT);
                    }
                    for i in 0..n {
                        if is_generated(d.packet(i)) {
                            counters.returned.fetch_add(1, Ordering::Relaxed);
                            counters.record_rtt(d.packet(i));
                        } else {
                            counters.other.fetch_add(1, Ordering::Relaxed);
                            if learning.load(Ordering::Relaxed) {
                                learned.lock().expect("learned").insert(d.from(i));
                            }
                        }
                    }
                }
            })?;
        }
        {
            let counters = counters.clone();
            std::thread::Builder::new().name("bench-echo".into()).spawn(move || {
                let mut d = Datagrams::new();
                loop {
                    let n = d.recv(&phones);
                    if n < BATCH {
                        std::thread::sleep(BATCH_WAIT);
                    }
                    let echo: Vec<(&[u8], SocketAddr)> =
                        (0..n).filter(|i| is_generated(d.packet(*i))).map(|i| (d.packet(i), d.from(i))).collect();
                    counters.other.fetch_add((n - echo.len()) as u64, Ordering::Relaxed);
                    counters.echoed.fetch_add(echo.len() as u64, Ordering::Relaxed);
                    send_batch(&phones, &echo);
                }
            })?;
        }
        Ok(Media { customers, phones_port, counters, learned, learning })
    }

    fn customers_port(&self) -> u16 {
        self.customers.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    fn reset(&self) {
        for c in [&self.counters.sent, &self.counters.echoed, &self.counters.returned, &self.counters.other] {
            c.store(0, Ordering::Relaxed);
        }
        for c in self.counters.rtt.iter().chain([&self.counters.rtt_max_us]) {
            c.store(0, Ordering::Relaxed);
        }
        self.learned.lock().expect("learned").clear();
    }

    /// Sends 50 pps to each target for `hold`, spread over 1 ms slots (each stream in its slot
    /// of the 20 ms period); catches up when late so the average rate is exact. Blocks.
    fn blast(&self, targets: Vec<SocketAddr>, hold: Duration) -> std::thread::JoinHandle<()> {
        let sock = self.customers.try_clone().expect("socket clone");
        let counters = self.counters.clone();
        std::thread::Builder::new()
            .name("bench-media-tx".into())
            .spawn(move || {
                let period_ms = 1000 / PPS;
                let mut packet = [0xFFu8; RTP_PACKET_BYTES];
                packet[0] = 0x80;
                packet[1] = 0; // PCMU
                packet[12..16].copy_from_slice(MAGIC);
                let start = Instant::now();
                let slots = hold.as_millis() as u64;
                for tick in 0..slots {
                    let due = start + Duration::from_millis(tick);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let round = tick / period_ms;
                    let seq = round as u16;
                    let ts = (round as u32).wrapping_mul(160);
                    packet[2..4].copy_from_slice(&seq.to_be_bytes());
                    packet[4..8].copy_from_slice(&ts.to_be_bytes());
                    // This slot's streams, one packet each, sent in batches.
                    let sent_us = (epoch().elapsed().as_micros() as u64).to_be_bytes();
                    let packets: Vec<([u8; RTP_PACKET_BYTES], SocketAddr)> = (((tick % period_ms) as usize)..targets.len())
                        .step_by(period_ms as usize)
                        .map(|k| {
                            packet[8..12].copy_from_slice(&(k as u32).to_be_bytes());
                            packet[16..24].copy_from_slice(&sent_us);
                            (packet, targets[k])
                        })
                        .collect();
                    let batch: Vec<(&[u8], SocketAddr)> = packets.iter().map(|(p, a)| (&p[..], *a)).collect();
                    counters.sent.fetch_add(send_batch(&sock, &batch) as u64, Ordering::Relaxed);
                }
            })
            .expect("generator thread")
    }
}

struct RelayResult {
    system: &'static str,
    calls: usize,
    connected: usize,
    /// Calls that ended before the hold was over (dropped calls).
    dropped: usize,
    setup_s: f64,
    hold_s: f64,
    sent: u64,
    echoed: u64,
    returned: u64,
    cpu_s: f64,
    loadgen_cpu_s: f64,
    /// Busy CPU of the whole machine over the hold (relay, generator, kernel, anything else).
    machine_cpu_s: f64,
    /// The relay's own counters: RTP packets its legs received, and forwarded (Campana's
    /// `SipStats` after hang-up; rtpengine's `totals` in the ng `delete` replies).
    relay_counters: Option<(u64, u64)>,
    note: String,
    /// 1-minute load average before and after the hold (others' work on the machine).
    load: String,
    /// Round trip of the returned packets: p99 bound and maximum (ms).
    rtt: (String, f64),
}

impl RelayResult {
    fn failed(system: &'static str, calls: usize, note: String) -> RelayResult {
        RelayResult {
            system,
            calls,
            connected: 0,
            dropped: 0,
            setup_s: 0.0,
            hold_s: 0.0,
            sent: 0,
            echoed: 0,
            returned: 0,
            cpu_s: 0.0,
            loadgen_cpu_s: 0.0,
            machine_cpu_s: 0.0,
            relay_counters: None,
            note,
            load: String::new(),
            rtt: ("-".into(), 0.0),
        }
    }

    fn loss_free(&self) -> bool {
        self.connected == self.calls && self.dropped == 0 && self.sent > 0 && self.sent == self.echoed && self.echoed == self.returned
    }

    /// Where packets were lost: (never read by the relay: dropped on its sockets, lost inside
    /// the relay, lost on the generator's sockets), when the relay's counters are known.
    fn losses(&self) -> Option<(u64, u64, u64)> {
        let (received, relayed) = self.relay_counters?;
        let into = (self.sent + self.echoed).checked_sub(received)?;
        let inside = received.checked_sub(relayed)?;
        let at_generator = relayed.checked_sub(self.echoed + self.returned)?;
        Some((into, inside, at_generator))
    }

    fn print_detail(&self) {
        let counters = match self.relay_counters {
            Some((received, relayed)) => format!(", the relay's legs received {received}, forwarded {relayed}"),
            None => String::new(),
        };
        println!(
            "{} x {}: connected {} in {:.1} s, dropped {}, held {:.1} s: sent {}, at agent {}, back {}{}; relay CPU {:.2} s; {}",
            self.system,
            self.calls,
            self.connected,
            self.setup_s,
            self.dropped,
            self.hold_s,
            self.sent,
            self.echoed,
            self.returned,
            counters,
            self.cpu_s,
            self.note
        );
    }

    fn print_row(&self) {
        let call_s = self.calls as f64 * self.hold_s;
        println!(
            "| {} | {} | {} | {:.0} s | {} | {} / {} | {} | {} / {:.0} ms | {:.1}% | {:.1} | {} | {:.0}% | {:.0}% | {} |",
            self.calls,
            self.system,
            self.connected,
            self.hold_s,
            self.sent,
            self.sent.saturating_sub(self.echoed),
            self.echoed.saturating_sub(self.returned),
            match self.losses() {
                Some((into, inside, gen)) => format!("{into} / {inside} / {gen}"),
                None => "?".into(),
            },
            self.rtt.0,
            self.rtt.1,
            if self.hold_s > 0.0 { self.cpu_s / self.hold_s * 100.0 } else { 0.0 },
            if call_s > 0.0 { self.cpu_s / call_s * 1e6 } else { 0.0 },
            if self.loss_free() { "yes" } else { "**no**" },
            if self.hold_s > 0.0 { self.loadgen_cpu_s / self.hold_s * 100.0 } else { 0.0 },
            if self.hold_s > 0.0 { self.machine_cpu_s / self.hold_s * 100.0 } else { 0.0 },
            self.load,
        );
    }
}

/// Runs the generator for `hold` over `targets`, measuring `relay_cpu` over exactly that time.
/// Returns (hold seconds, relay CPU seconds, load generator CPU seconds).
async fn hold_media(media: &Media, targets: Vec<SocketAddr>, hold: Duration, relay_cpu: impl Fn() -> u64) -> (f64, f64, f64, f64, String) {
    let load_before = loadavg_1m();
    let c0 = relay_cpu();
    let g0 = loadgen_cpu_ns();
    let m0 = machine_cpu_snapshot();
    let t0 = Instant::now();
    let handle = media.blast(targets, hold);
    while !handle.is_finished() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let held = t0.elapsed().as_secs_f64();
    let cpu = relay_cpu() - c0;
    let gen = loadgen_cpu_ns() - g0;
    let machine = machine_cpu_ns_since(&m0);
    // The last packets in flight.
    let load = format!("{load_before}-{}", loadavg_1m());
    // Packets still queued in the relay (a relay that fell behind reads them late): wait until
    // the counters stop moving (at most 10 s) before they are read.
    let c = &media.counters;
    let snapshot = || (c.sent.load(Ordering::Relaxed), c.echoed.load(Ordering::Relaxed), c.returned.load(Ordering::Relaxed));
    let mut last = snapshot();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = snapshot();
        if now == last {
            break;
        }
        last = now;
    }
    (held, secs(cpu), secs(gen), secs(machine), load)
}

/// The same streams with no relay: every customer stream goes straight to the phones' echo
/// socket (one address for all), which echoes it back.
async fn relay_direct(n: usize, hold_s: u64, media: &Media) -> RelayResult {
    media.reset();
    let phones = SocketAddr::from((LOCALHOST, media.phones_port));
    let (held, cpu_s, loadgen_cpu_s, machine_cpu_s, load) = hold_media(media, vec![phones; n], Duration::from_secs(hold_s), || 0).await;
    let c = &media.counters;
    RelayResult {
        system: "none (generator to echo directly)",
        calls: n,
        connected: n,
        dropped: 0,
        setup_s: 0.0,
        hold_s: held,
        sent: c.sent.load(Ordering::Relaxed),
        echoed: c.echoed.load(Ordering::Relaxed),
        returned: c.returned.load(Ordering::Relaxed),
        cpu_s,
        loadgen_cpu_s,
        machine_cpu_s,
        relay_counters: None,
        note: "the load generator's own cost".into(),
        load,
        rtt: c.rtt_summary(),
    }
}

async fn relay_campana(n: usize, hold_s: u64, ramp_cps: u32, dir: &Path, media: &Media, kernel: bool) -> RelayResult {
    let system = if kernel { "Campana kernel_relay" } else { "Campana" };
    media.reset();
    media.learning.store(true, Ordering::Relaxed);
    let carrier_port = free_udp_port();
    let phones_port = free_udp_port();
    let carrier = spawn_sipp(dir, &format!("relay-carrier-{n}"), &uas_scenario(media.customers_port()), carrier_port, None, &[]);
    let phones = spawn_sipp(dir, &format!("relay-phones-{n}"), &uas_scenario(media.phones_port), phones_port, None, &[]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let agents: Vec<AgentCredential> =
        (1..=n).map(|i| AgentCredential { agent: UserId(i as i64), username: format!("a{i}"), password: format!("p{i}") }).collect();
    let mut config = TrunkConfig::new(SocketAddr::from((LOCALHOST, carrier_port)), "+15550001111");
    config.bind = SocketAddr::from((LOCALHOST, 0));
    config.calls_per_second = ramp_cps;
    config.max_channels = n + 16;
    config.event_queue_len = 65_536;
    config.registrar = Some(RegistrarConfig::new("campana.bench", agents));
    config.kernel_relay = kernel;
    let (tel, mut events) = match SipTelephony::start(config).await {
        Ok(x) => x,
        Err(e) => return RelayResult::failed(system, n, format!("start: {e}")),
    };
    // Agents register with digest (one user per agent; see `register_agents`).
    let reg = tokio::task::block_in_place(|| register_agents(tel.local_sip_addr(), phones_port, n));
    let registered = (1..=n).filter(|i| tel.agent_contact(UserId(*i as i64)).is_some()).count();
    if registered < n {
        return RelayResult::failed(system, n, format!("only {registered} of {n} agents registered ({reg:?})"));
    }
    // Ramp: dial n customers (Campana paces at ramp_cps), connect each to its agent.
    let commands = tel.commands();
    let t0 = Instant::now();
    let dials = {
        let commands = commands.clone();
        async move {
            for i in 1..=n as u64 {
                if commands.send(dial(i)).await.is_err() {
                    return;
                }
            }
        }
    };
    let mut connected = 0usize;
    let mut ended_early = 0usize;
    let ramp = async {
        let mut pending: VecDeque<(tokio::time::Instant, CallId)> = VecDeque::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(n as u64 / u64::from(ramp_cps.max(1)) + 60);
        while connected + ended_early < n {
            let next_connect = pending.front().map(|(at, _)| *at).unwrap_or(deadline);
            tokio::select! {
                ev = events.recv() => match ev {
                    Some(TelephonyEvent::Answered { call_id, .. }) => pending.push_back((tokio::time::Instant::now() + Duration::from_millis(CONNECT_DELAY_MS), call_id)),
                    Some(TelephonyEvent::Connected { .. }) => connected += 1,
                    Some(TelephonyEvent::Ended { .. }) => ended_early += 1,
                    Some(_) => {}
                    None => break,
                },
                _ = tokio::time::sleep_until(next_connect) => {
                    if next_connect >= deadline { break; }
                    if let Some((_, call_id)) = pending.pop_front() {
                        let _ = commands.send(TelephonyCommand::Connect { call_id, agent: UserId(call_id.0 as i64) }).await;
                    }
                }
            }
        }
    };
    tokio::join!(dials, ramp);
    let setup_s = t0.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_millis(300)).await;
    media.learning.store(false, Ordering::Relaxed);
    let targets: Vec<SocketAddr> = media.learned.lock().expect("learned").iter().copied().collect();
    let mut note = format!("{} customer-leg addresses learnt", targets.len());
    // Hold: the generator runs; any call ending now is dropped.
    let hold = Duration::from_secs(hold_s);
    let hold_fut = hold_media(media, targets, hold, campana_cpu_ns);
    let mut dropped = 0usize;
    let watch = async {
        loop {
            match events.recv().await {
                Some(TelephonyEvent::Ended { .. }) => dropped += 1,
                Some(_) => {}
                None => break,
            }
        }
    };
    let (held, cpu_s, loadgen_cpu_s, machine_cpu_s, load) = tokio::select! {
        r = hold_fut => r,
        _ = watch => (0.0, 0.0, 0.0, 0.0, String::new()),
    };
    let kernel_bridged = tel.stats().kernel_bridged;
    if kernel {
        note.push_str(&format!("; {kernel_bridged} calls forwarded in the kernel"));
    }
    let (sent, echoed, returned) = (
        media.counters.sent.load(Ordering::Relaxed),
        media.counters.echoed.load(Ordering::Relaxed),
        media.counters.returned.load(Ordering::Relaxed),
    );
    // Tear down: hang up every call (at the ramp's rate, as the calls came), wait for the
    // ends, read Campana's counters once the agent legs have reported theirs.
    let mut pace = tokio::time::interval(Duration::from_secs(1) / ramp_cps.max(1));
    for i in 1..=n as u64 {
        pace.tick().await;
        let _ = commands.send(TelephonyCommand::HangUp { call_id: CallId(i) }).await;
    }
    let mut ended = 0usize;
    let until = tokio::time::Instant::now() + Duration::from_secs(30);
    while ended + ended_early + dropped < n {
        match tokio::time::timeout_at(until, events.recv()).await {
            Ok(Some(TelephonyEvent::Ended { .. })) => ended += 1,
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    let mut stats = tel.stats();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = tel.stats();
        if (now.rtp_packets_received, now.rtp_packets_relayed) == (stats.rtp_packets_received, stats.rtp_packets_relayed) {
            break;
        }
        stats = now;
    }
    if ended_early > 0 {
        note.push_str(&format!("; {ended_early} calls ended during the ramp"));
    }
    tel.shutdown();
    drop(tel);
    drop((carrier, phones));
    let (c, p) = (sipp_events(dir, &format!("relay-carrier-{n}")), sipp_events(dir, &format!("relay-phones-{n}")));
    if c.1 + p.1 > 0 {
        note.push_str(&format!("; sipp errors {}", c.1 + p.1));
    }
    if c.0 + p.0 > 0 {
        note.push_str(&format!("; BYE retransmissions after sipp closed the call {}", c.0 + p.0));
    }
    RelayResult {
        system,
        calls: n,
        connected,
        dropped,
        setup_s,
        hold_s: held,
        sent,
        echoed,
        returned,
        cpu_s,
        loadgen_cpu_s,
        machine_cpu_s,
        relay_counters: Some((stats.rtp_packets_received, stats.rtp_packets_relayed)),
        note,
        load,
        rtt: media.counters.rtt_summary(),
    }
}

// ---------------------------------------------------------------------------------------------
// rtpengine over the ng protocol (bencode over UDP)

#[allow(dead_code)] // lists are parsed (rtpengine replies carry them) but not read
enum Bencode {
    Bytes(Vec<u8>),
    Int(i64),
    List(Vec<Bencode>),
    Dict(Vec<(Vec<u8>, Bencode)>),
}

fn bencode_dict(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut sorted = pairs.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = b"d".to_vec();
    for (k, v) in sorted {
        out.extend_from_slice(format!("{}:{k}{}:", k.len(), v.len()).as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out.push(b'e');
    out
}

fn bdecode(input: &[u8], pos: &mut usize) -> Option<Bencode> {
    match *input.get(*pos)? {
        b'i' => {
            let end = *pos + input[*pos..].iter().position(|c| *c == b'e')?;
            let v = std::str::from_utf8(&input[*pos + 1..end]).ok()?.parse().ok()?;
            *pos = end + 1;
            Some(Bencode::Int(v))
        }
        b'l' => {
            *pos += 1;
            let mut items = Vec::new();
            while *input.get(*pos)? != b'e' {
                items.push(bdecode(input, pos)?);
            }
            *pos += 1;
            Some(Bencode::List(items))
        }
        b'd' => {
            *pos += 1;
            let mut items = Vec::new();
            while *input.get(*pos)? != b'e' {
                let Bencode::Bytes(k) = bdecode(input, pos)? else { return None };
                items.push((k, bdecode(input, pos)?));
            }
            *pos += 1;
            Some(Bencode::Dict(items))
        }
        b'0'..=b'9' => {
            let colon = *pos + input[*pos..].iter().position(|c| *c == b':')?;
            let len: usize = std::str::from_utf8(&input[*pos..colon]).ok()?.parse().ok()?;
            let bytes = input.get(colon + 1..colon + 1 + len)?.to_vec();
            *pos = colon + 1 + len;
            Some(Bencode::Bytes(bytes))
        }
        _ => None,
    }
}

fn dict_get<'a>(d: &'a Bencode, key: &str) -> Option<&'a Bencode> {
    let Bencode::Dict(items) = d else { return None };
    items.iter().find(|(k, _)| k == key.as_bytes()).map(|(_, v)| v)
}

fn dict_int(d: &Bencode, key: &str) -> Option<u64> {
    match dict_get(d, key)? {
        Bencode::Int(i) => u64::try_from(*i).ok(),
        Bencode::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

fn dict_str(d: &Bencode, key: &str) -> Option<String> {
    let Bencode::Dict(items) = d else { return None };
    items.iter().find(|(k, _)| k == key.as_bytes()).and_then(|(_, v)| match v {
        Bencode::Bytes(b) => Some(String::from_utf8_lossy(b).to_string()),
        Bencode::Int(i) => Some(i.to_string()),
        _ => None,
    })
}

struct Ng {
    socket: UdpSocket,
    server: SocketAddr,
    cookie: u64,
}

impl Ng {
    fn request(&mut self, pairs: &[(&str, &str)]) -> Result<Bencode, String> {
        self.cookie += 1;
        let cookie = format!("b{}", self.cookie);
        let mut msg = format!("{cookie} ").into_bytes();
        msg.extend_from_slice(&bencode_dict(pairs));
        let mut buf = vec![0u8; 65_536];
        for _attempt in 0..5 {
            self.socket.send_to(&msg, self.server).map_err(|e| e.to_string())?;
            let until = Instant::now() + Duration::from_secs(1);
            while Instant::now() < until {
                let Ok((len, _)) = self.socket.recv_from(&mut buf) else { continue };
                let reply = &buf[..len];
                let Some(space) = reply.iter().position(|c| *c == b' ') else { continue };
                if &reply[..space] != cookie.as_bytes() {
                    continue;
                }
                let mut pos = space + 1;
                let d = bdecode(reply, &mut pos).ok_or("undecodable ng reply")?;
                return match dict_str(&d, "result").as_deref() {
                    Some("ok") => Ok(d),
                    other => Err(format!("ng {other:?}: {}", dict_str(&d, "error-reason").unwrap_or_default())),
                };
            }
        }
        Err("rtpengine did not answer".into())
    }
}

fn sdp(session: usize, port: u16) -> String {
    format!("v=0\r\no=- {session} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n")
}

fn sdp_audio(sdp: &str) -> Option<SocketAddr> {
    let port: u16 = sdp.lines().find_map(|l| l.strip_prefix("m=audio "))?.split_whitespace().next()?.parse().ok()?;
    let ip = sdp
        .lines()
        .filter_map(|l| l.strip_prefix("c=IN IP4 "))
        .next_back()
        .and_then(|ip| ip.trim().parse().ok())
        .unwrap_or(std::net::Ipv4Addr::LOCALHOST);
    Some(SocketAddr::from((ip, port)))
}

async fn relay_rtpengine(n: usize, hold_s: u64, dir: &Path, media: &Media) -> RelayResult {
    media.reset();
    let ng_port = free_udp_port();
    let log = std::fs::File::create(dir.join(format!("rtpengine-{n}.out"))).expect("log file");
    let child = Command::new("rtpengine")
        .args(["--foreground", "--log-stderr", "--config-file=none", "--table=-1", "--interface=127.0.0.1"])
        .arg(format!("--listen-ng=127.0.0.1:{ng_port}"))
        .args(["--port-min=20000", "--port-max=29999", "--num-threads=2", "--timeout=600", "--log-level=4"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn();
    let rtpengine = match child {
        Ok(child) => Peer { child },
        Err(e) => return RelayResult::failed("rtpengine", n, format!("rtpengine does not start ({e}): apt-get install rtpengine-daemon")),
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let socket = UdpSocket::bind(SocketAddr::from((LOCALHOST, 0))).expect("ng socket");
    socket.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let mut ng = Ng { socket, server: SocketAddr::from((LOCALHOST, ng_port)), cookie: 0 };
    let t0 = Instant::now();
    let mut targets = Vec::with_capacity(n);
    let mut note = String::new();
    let customers_port = media.customers_port();
    let setup = tokio::task::block_in_place(|| -> Result<(), String> {
        for i in 0..n {
            let call_id = format!("bench-{i}");
            let offer = sdp(i, customers_port);
            ng.request(&[("command", "offer"), ("call-id", &call_id), ("from-tag", "customer"), ("sdp", &offer)])?;
            let answer = sdp(i, media.phones_port);
            let d = ng.request(&[
                ("command", "answer"),
                ("call-id", &call_id),
                ("from-tag", "customer"),
                ("to-tag", "agent"),
                ("sdp", &answer),
            ])?;
            // The answer's SDP goes to the offerer: where the customer sends.
            let to_customer = dict_str(&d, "sdp").ok_or("answer without sdp")?;
            targets.push(sdp_audio(&to_customer).ok_or("no m=audio in rtpengine's answer")?);
        }
        Ok(())
    });
    if let Err(e) = setup {
        note = format!("setup failed after {} calls: {e}", targets.len());
    }
    let connected = targets.len();
    let setup_s = t0.elapsed().as_secs_f64();
    let pid = rtpengine.pid();
    let (held, cpu_s, loadgen_cpu_s, machine_cpu_s, load) =
        hold_media(media, targets, Duration::from_secs(hold_s), || cpu_ns(pid, None)).await;
    let (sent, echoed, returned) = (
        media.counters.sent.load(Ordering::Relaxed),
        media.counters.echoed.load(Ordering::Relaxed),
        media.counters.returned.load(Ordering::Relaxed),
    );
    // Each delete reply carries the call's totals: RTP packets received (both directions).
    let totals = tokio::task::block_in_place(|| {
        let (mut received, mut errors, mut known) = (0u64, 0u64, true);
        for i in 0..connected {
            match ng.request(&[("command", "delete"), ("call-id", &format!("bench-{i}")), ("from-tag", "customer")]) {
                Ok(d) => match dict_get(&d, "totals").and_then(|t| dict_get(t, "RTP")) {
                    Some(rtp) => {
                        received += dict_int(rtp, "packets").unwrap_or(0);
                        errors += dict_int(rtp, "errors").unwrap_or(0);
                    }
                    None => known = false,
                },
                Err(_) => known = false,
            }
        }
        known.then_some((received, received.saturating_sub(errors)))
    });
    drop(rtpengine);
    RelayResult {
        system: "rtpengine",
        calls: n,
        connected,
        dropped: 0,
        setup_s,
        hold_s: held,
        sent,
        echoed,
        returned,
        cpu_s,
        loadgen_cpu_s,
        machine_cpu_s,
        relay_counters: totals,
        note: if note.is_empty() { "userspace forwarding (--table=-1)".into() } else { note },
        load,
        rtt: media.counters.rtt_summary(),
    }
}
