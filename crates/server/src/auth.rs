//! Who is calling, shared by the two front-ends: the session cookie, the privilege table, and
//! the re-check of long-lived streams.
//!
//! Every `/api/v1` route except `POST /api/v1/auth/login` needs a principal: a browser session
//! (cookie `campana_session`, HttpOnly, SameSite=Lax) or an API token (`Authorization: Bearer`).
//! State-changing requests made with a session cookie must echo the session's CSRF token in
//! `X-CSRF-Token` (the API's guard, `crate::api::guard`) or the form's `csrf_token` (the
//! console's gate, `crate::web::gate`). The privilege each route needs is decided in one table,
//! [`required`], so the rules can be read (and tested) in one place; the console asks it with
//! its page's path under `/api/v1`. The campaigns profile (all, or listed campaigns) is applied
//! by the service layer through [`Principal`]'s rules.

use crate::service::Principal;
use crate::state::AppState;
use axum::http::{header, HeaderMap, Method};
use campana_core::user::Privilege;

pub use crate::service::account::SESSION_TTL_S;

pub const SESSION_COOKIE: &str = "campana_session";

/// The privileges (any one suffices) a request needs; `Some(vec![])` means "signed in";
/// `None` means public.
pub fn required(method: &Method, path: &str) -> Option<Vec<Privilege>> {
    use Privilege::*;
    let read = matches!(*method, Method::GET | Method::HEAD);
    let rest = path.strip_prefix("/api/v1/")?;
    let first = rest.split('/').next().unwrap_or("");
    Some(match first {
        "auth" if rest == "auth/login" => return None,
        "auth" | "call-results" => vec![],
        "users" | "roles" | "webhooks" => vec![UsersRoles],
        // Audit entries: user, role and sign-in entries with users_roles, the rest with reports.
        "audit" => vec![Reports, UsersRoles],
        // A forecast changes nothing: it is a read sent as POST for its body.
        "campaigns" if *method == Method::POST && rest.ends_with("/forecast") => vec![CampaignsView],
        "dnc-lists" => vec![Dnc],
        "agent" => vec![Agent],
        "dialer" | "calling-hours" => vec![CampaignsView],
        "contact-lists" | "imports" if read => vec![CampaignsView, ListsImport],
        "contact-lists" | "imports" => vec![ListsImport],
        "dispositions" | "scripts" | "manager-tags" if read => vec![CampaignsView, Agent],
        "campaigns" | "campaign-groups" | "settings-profiles" | "agent-groups" | "dispositions" | "scripts" | "manager-tags" if read => {
            vec![CampaignsView]
        }
        "campaigns" | "campaign-groups" | "settings-profiles" | "agent-groups" | "dispositions" | "scripts" | "manager-tags" => {
            vec![CampaignsEdit]
        }
        // Unknown routes fall through to the 404 handler, but only for signed-in callers.
        _ => vec![],
    })
}

/// The session cookie's secret, if the request carries one.
pub fn session_cookie(h: &HeaderMap) -> Option<String> {
    cookie(h, SESSION_COOKIE)
}

/// A cookie's value from the request headers.
pub fn cookie(h: &HeaderMap, name: &str) -> Option<String> {
    for v in h.get_all(header::COOKIE) {
        for part in v.to_str().ok()?.split(';') {
            if let Some((k, val)) = part.trim().split_once('=') {
                if k == name {
                    return Some(val.to_string());
                }
            }
        }
    }
    None
}

/// The address users reach Campana at, from `CAMPANA_PUBLIC_URL` (e.g. `https://dialer.example.com`
/// behind a TLS-terminating proxy); read once.
pub fn public_url() -> Option<&'static str> {
    static URL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    URL.get_or_init(|| std::env::var("CAMPANA_PUBLIC_URL").ok().filter(|u| !u.trim().is_empty())).as_deref()
}

/// Did the request reach us over TLS (a public URL in https, or a proxy that says so)?
pub fn over_tls(h: &HeaderMap) -> bool {
    let proxied = h.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("https"));
    proxied || public_url().is_some_and(|u| u.starts_with("https://"))
}

/// `Set-Cookie` value with the flags Campana always uses, and `Secure` on TLS.
pub fn cookie_header(name: &str, value: &str, max_age_s: i64, http_only: bool, secure: bool) -> String {
    format!(
        "{name}={value}; Path=/; SameSite=Lax; Max-Age={max_age_s}{}{}",
        if http_only { "; HttpOnly" } else { "" },
        if secure { "; Secure" } else { "" }
    )
}

/// The session cookie for a session secret (an empty secret and no age clear it).
pub fn session_cookie_header(secret: &str, max_age_s: i64, headers: &HeaderMap) -> String {
    cookie_header(SESSION_COOKIE, secret, max_age_s, true, over_tls(headers))
}

/// How often a long-lived stream (progress, agent notices) checks that its caller may still
/// read it.
pub const STREAM_RECHECK_S: u64 = 2;

/// The caller of a long-lived stream, read again: `None` when its token was revoked or
/// expired, the user deactivated, or their role no longer gives what `path` needs (the
/// privilege table decides, as when the stream opened). Their campaigns profile comes back
/// as it is now, so a narrowed profile applies at once.
pub async fn recheck(s: &AppState, p: &Principal, path: &str) -> Option<Principal> {
    let a = s.store.reauthenticate(p.token_id).await.ok().flatten()?;
    let fresh = Principal::from_authenticated(a);
    let needed = required(&Method::GET, path).unwrap_or_default();
    (needed.is_empty() || needed.iter().any(|x| fresh.has(*x))).then_some(fresh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privilege_table() {
        use Privilege::*;
        assert_eq!(required(&Method::POST, "/api/v1/auth/login"), None);
        assert_eq!(required(&Method::GET, "/healthz"), None);
        assert_eq!(required(&Method::GET, "/api/v1/campaigns"), Some(vec![CampaignsView]));
        assert_eq!(required(&Method::POST, "/api/v1/campaigns/4/start"), Some(vec![CampaignsEdit]));
        assert_eq!(required(&Method::GET, "/api/v1/dispositions"), Some(vec![CampaignsView, Agent]));
        assert_eq!(required(&Method::POST, "/api/v1/contact-lists/1/imports"), Some(vec![ListsImport]));
        assert_eq!(required(&Method::DELETE, "/api/v1/users/3"), Some(vec![UsersRoles]));
        assert_eq!(required(&Method::GET, "/api/v1/auth/me"), Some(vec![]));
        assert_eq!(required(&Method::POST, "/api/v1/campaigns/4/forecast"), Some(vec![CampaignsView]));
        assert_eq!(required(&Method::GET, "/api/v1/audit"), Some(vec![Reports, UsersRoles]));
    }
}
