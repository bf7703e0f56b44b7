//! Webhook delivery (Standard Webhooks): signs each event the store's outbox holds and POSTs it
//! to the endpoints that take it, with retries, until delivered or the retry period (72 h by
//! default) is over.
//!
//! - **At least once, same id.** The store writes an event and its deliveries in the
//!   transaction of the change it announces; this worker claims due deliveries with a lease
//!   (a crash mid-attempt only delays one), so a receiver may see an event twice, never with a
//!   changed `webhook-id`.
//! - **Signatures**: `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per
//!   secret: two during a rotation, so receivers can switch secrets without a gap.
//! - **Retries**: the schedule (default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, then every 10 h) with
//!   ±20% jitter, a `Retry-After` answer honoured when it asks for longer, a last attempt at
//!   the end of the period. A 410 Gone fails the delivery and disables the endpoint.
//! - **Destinations**: a dialer must not be a request-forgery tool. Addresses on loopback,
//!   private, link-local, shared (CGNAT), multicast and reserved ranges are refused unless the
//!   operator allows them (`--webhooks-allow-private`); the check runs on the addresses the
//!   request actually connects to (a DNS resolver that filters), so a name that resolves to a
//!   private address is refused too, and redirects are not followed.

use base64::Engine as _;
use campana_store::webhooks::{AttemptOutcome, ClaimedDelivery};
use campana_store::Store;
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt as _;
use hmac::{Hmac, Mac};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Deliveries attempted at once at most.
pub const MAX_IN_FLIGHT: usize = 8;
/// Deliveries claimed per poll at most.
pub const CLAIM_BATCH: usize = 32;
/// How often the outbox is polled when it was empty (the p95 target is 2 s from change to 200).
pub const POLL_MS: u64 = 250;
/// Longest wait for an answer.
pub const TIMEOUT_S: u64 = 10;
/// Answer bytes kept in the delivery log at most.
pub const MAX_ERROR_CHARS: usize = 300;
/// The default retry schedule, seconds after each failed attempt (the last repeats).
pub const DEFAULT_RETRY_S: &[u64] = &[5, 300, 1800, 7200, 18_000, 36_000];
/// How long a delivery is retried by default.
pub const DEFAULT_GIVE_UP_H: u64 = 72;

#[derive(Debug, Clone)]
pub struct WebhookOptions {
    /// Allow destinations on loopback, private and link-local ranges (tests, on-premises CRMs).
    pub allow_private: bool,
    pub retry_s: Vec<u64>,
    pub give_up_after: Duration,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        WebhookOptions { allow_private: false, retry_s: DEFAULT_RETRY_S.to_vec(), give_up_after: Duration::hours(DEFAULT_GIVE_UP_H as i64) }
    }
}

/// `whsec_` and the base64 of 24 random bytes: a new endpoint secret.
pub fn new_secret() -> String {
    use rand::RngCore as _;
    let mut key = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut key);
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key))
}

/// The `v1,<base64>` signature of `msg_id.timestamp.body` with a `whsec_` secret.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> String {
    let raw = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD.decode(raw).unwrap_or_else(|_| raw.as_bytes().to_vec());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(msg_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// multicast, documentation or otherwise reserved).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (b == 18 || b == 19)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x64 && s[1] == 0xff9b))
        }
    }
}

/// A DNS resolver that drops the addresses [`is_public`] refuses (unless allowed), so the
/// connection is made only to addresses that passed the check.
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ok: Vec<SocketAddr> = all.iter().copied().filter(|a| allow_private || is_public(a.ip())).collect();
            if ok.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> = if all.is_empty() {
                    format!("{host} has no address").into()
                } else {
                    format!("{host} resolves only to private or reserved addresses ({}); refused", all[0].ip()).into()
                };
                return Err(e);
            }
            let addrs: reqwest::dns::Addrs = Box::new(ok.into_iter());
            Ok(addrs)
        })
    }
}

/// Refuses a destination before any request: literal private addresses (names are checked by
/// the resolver at connection time).
pub fn check_destination(url: &str, allow_private: bool) -> Result<(), String> {
    let u = campana_core::webhook::check_url(url).map_err(|e| e.reason)?;
    if allow_private {
        return Ok(());
    }
    let literal = match u.host() {
        Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
        _ => None,
    };
    if let Some(ip) = literal {
        if !is_public(ip) {
            return Err(format!("{ip} is a loopback, private, link-local or reserved address; refused (an operator may allow it)"));
        }
    }
    if u.host_str().is_some_and(|h| h.eq_ignore_ascii_case("localhost") || h.to_ascii_lowercase().ends_with(".localhost")) {
        return Err("localhost is refused (an operator may allow private destinations)".into());
    }
    Ok(())
}

/// The HTTP client deliveries use: the guarded resolver, no redirects, no proxy, a timeout.
pub fn client(opts: &WebhookOptions) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { allow_private: opts.allow_private }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(std::time::Duration::from_secs(TIMEOUT_S))
        .user_agent(concat!("Campana-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the webhook HTTP client builds")
}

/// When to try again after the `attempts`-th failed attempt (1-based), or `None` to give up.
pub fn next_attempt(
    opts: &WebhookOptions,
    created_at: DateTime<Utc>,
    attempts: i64,
    now: DateTime<Utc>,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Option<DateTime<Utc>> {
    assert!((0.8..=1.2).contains(&jitter), "jitter {jitter} is outside 0.8..=1.2");
    let end = created_at + opts.give_up_after;
    if now >= end {
        return None;
    }
    let i = (attempts.max(1) as usize - 1).min(opts.retry_s.len().saturating_sub(1));
    let base = opts.retry_s.get(i).copied().unwrap_or(DEFAULT_RETRY_S[0]) as f64 * jitter;
    let mut delay = Duration::milliseconds((base * 1000.0) as i64);
    if let Some(r) = retry_after {
        delay = delay.max(r);
    }
    Some((now + delay).min(end))
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(h: &reqwest::header::HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(s) = v.parse::<i64>() {
        return Some(Duration::seconds(s.clamp(0, 86_400)));
    }
    let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
    Some((at - now).clamp(Duration::zero(), Duration::days(1)))
}

/// One attempt: sign, POST, classify the answer.
pub async fn attempt(http: &reqwest::Client, opts: &WebhookOptions, d: &ClaimedDelivery, now: DateTime<Utc>) -> AttemptOutcome {
    let jitter = {
        use rand::Rng as _;
        rand::thread_rng().gen_range(0.8..=1.2)
    };
    let attempts = d.attempts + 1;
    let retry = |status: Option<u16>, error: String, after: Option<Duration>| AttemptOutcome::Retry {
        status,
        error,
        retry_at: next_attempt(opts, d.created_at, attempts, now, after, jitter),
    };
    if let Err(e) = check_destination(&d.endpoint.url, opts.allow_private) {
        return retry(None, e, None);
    }
    let ts = now.timestamp();
    let signatures: Vec<String> = d.endpoint.signing_secrets(now).iter().map(|s| sign(s, &d.msg_id, ts, &d.payload)).collect();
    let sent = http
        .post(&d.endpoint.url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.msg_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signatures.join(" "))
        .body(d.payload.clone())
        .send()
        .await;
    match sent {
        Err(e) => {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            retry(None, truncate(msg), None)
        }
        Ok(r) => {
            let status = r.status();
            if status.is_success() {
                return AttemptOutcome::Delivered { status: status.as_u16() };
            }
            if status == reqwest::StatusCode::GONE {
                return AttemptOutcome::Gone;
            }
            let after = retry_after(r.headers(), now);
            let body = r.text().await.unwrap_or_default();
            let why = if status.is_redirection() {
                format!("answered {status}: redirects are not followed (give the final address)")
            } else {
                format!("answered {status}: {}", body.trim())
            };
            retry(Some(status.as_u16()), truncate(why), after)
        }
    }
}

fn truncate(mut s: String) -> String {
    if s.chars().count() > MAX_ERROR_CHARS {
        s = s.chars().take(MAX_ERROR_CHARS).collect::<String>() + "…";
    }
    s
}

/// The delivery worker: polls the outbox, attempts due deliveries ([`MAX_IN_FLIGHT`] at once),
/// records each outcome. Runs until the process ends.
pub async fn run(store: Store, opts: WebhookOptions) {
    let http = client(&opts);
    // A claim outlives the longest attempt, so no two workers post one delivery at once.
    let lease_s = TIMEOUT_S as i64 + 5;
    loop {
        let now = Utc::now();
        let claimed = match store.claim_webhook_deliveries(now, CLAIM_BATCH, lease_s).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "webhook outbox unreadable; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                continue;
            }
        };
        if claimed.is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(POLL_MS)).await;
            continue;
        }
        futures::stream::iter(claimed)
            .for_each_concurrent(MAX_IN_FLIGHT, |d| {
                let (store, http, opts) = (&store, &http, &opts);
                async move {
                    let at = Utc::now();
                    let outcome = attempt(http, opts, &d, at).await;
                    let label = match &outcome {
                        AttemptOutcome::Delivered { .. } => {
                            let age = (Utc::now() - d.created_at).num_milliseconds().max(0) as f64 / 1000.0;
                            metrics::histogram!("campana_webhook_delivery_seconds").record(age);
                            "delivered"
                        }
                        AttemptOutcome::Retry { retry_at: Some(_), .. } => "retry",
                        AttemptOutcome::Retry { retry_at: None, .. } => "gave_up",
                        AttemptOutcome::Gone => "gone",
                    };
                    metrics::counter!("campana_webhook_attempts_total", "outcome" => label).increment(1);
                    if let Err(e) = store.record_webhook_attempt(&d, Utc::now(), &outcome).await {
                        tracing::warn!(delivery = %d.id, error = %e, "could not record a webhook attempt (it is retried after its lease)");
                    }
                }
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_reserved_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        assert!(check_destination("http://127.0.0.1:9/h", false).is_err());
        assert!(check_destination("http://[::1]:9/h", false).is_err());
        assert!(check_destination("http://localhost:9/h", false).is_err());
        assert!(check_destination("http://127.0.0.1:9/h", true).is_ok());
        assert!(check_destination("https://crm.example.com/h", false).is_ok());
    }

    #[test]
    fn retries_follow_the_schedule_honour_retry_after_and_end_after_the_period() {
        let o = WebhookOptions::default();
        let t0 = DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z").unwrap().with_timezone(&Utc);
        assert_eq!(next_attempt(&o, t0, 1, t0, None, 1.0), Some(t0 + Duration::seconds(5)));
        assert_eq!(next_attempt(&o, t0, 2, t0, None, 1.2), Some(t0 + Duration::seconds(360)));
        assert_eq!(next_attempt(&o, t0, 1, t0, Some(Duration::seconds(120)), 1.0), Some(t0 + Duration::seconds(120)));
        // The schedule's last step repeats, and the last attempt is at the end of the period.
        let late = t0 + Duration::hours(70);
        assert_eq!(next_attempt(&o, t0, 12, late, None, 1.0), Some(t0 + Duration::hours(72)));
        assert_eq!(next_attempt(&o, t0, 13, t0 + Duration::hours(72), None, 1.0), None);
        // Retried for at least 72 hours with the worst jitter: count the attempts.
        let (mut at, mut n) = (t0, 0);
        while let Some(next) = next_attempt(&o, t0, n + 1, at, None, 0.8) {
            at = next;
            n += 1;
        }
        assert!(at >= t0 + Duration::hours(72) && n < 20, "{n} attempts, last at {at}");
    }

    #[test]
    fn signatures_follow_standard_webhooks() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
