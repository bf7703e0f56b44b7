//! Who is calling and what they may do.
//!
//! Every `/api/v1` route except `POST /api/v1/auth/login` needs a principal: a browser session
//! (cookie `campana_session`, HttpOnly, SameSite=Lax) or an API token (`Authorization: Bearer`).
//! State-changing requests made with a session cookie must echo the session's CSRF token in
//! `X-CSRF-Token`. The privilege each route needs is decided in one table, [`required`], so the
//! rules can be read (and tested) in one place; the campaigns profile (all, or listed campaigns)
//! is applied by the campaign handlers through [`Principal::campaign_scope`].

use crate::api::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use campana_core::stored::Role;
use campana_core::user::{CampaignsProfile, Privilege, User};
use campana_core::CampaignId;
use campana_store::auth::{Authenticated, LoginGate, TokenKind};

pub const SESSION_COOKIE: &str = "campana_session";
/// Browser sessions last this long.
pub const SESSION_TTL_S: i64 = 12 * 3600;

/// The authenticated caller, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub privileges: Vec<Privilege>,
    pub kind: TokenKind,
    pub token_id: i64,
}

impl Principal {
    pub fn has(&self, p: Privilege) -> bool {
        self.privileges.contains(&p)
    }
    /// `None`: every campaign; `Some(ids)`: only these.
    pub fn campaign_scope(&self) -> Option<Vec<CampaignId>> {
        match &self.user.input.campaigns_profile {
            CampaignsProfile::All => None,
            CampaignsProfile::Only { campaign_ids } => Some(campaign_ids.clone()),
        }
    }
    pub fn sees_campaign(&self, id: CampaignId) -> bool {
        self.user.input.campaigns_profile.allows(id)
    }
    /// The contact lists this user may see: `None` for all, else those of their campaigns.
    pub async fn visible_lists(&self, store: &campana_store::Store) -> Result<Option<Vec<i64>>, ApiError> {
        match self.campaign_scope() {
            None => Ok(None),
            Some(c) => Ok(Some(store.lists_visible_with(&c).await?)),
        }
    }
    /// A campaign referenced in an input (a disposition's, a manager tag's) must be one the user
    /// sees; otherwise the answer is the store's own for a campaign that does not exist.
    pub fn check_campaign_ref(&self, field: &str, id: Option<CampaignId>) -> Result<(), ApiError> {
        match id {
            Some(c) if !self.sees_campaign(c) => Err(ApiError::field(field, format!("campaign {c} does not exist"))),
            _ => Ok(()),
        }
    }
    /// The contact lists a campaign input names must be lists the user sees (else a user
    /// limited to some campaigns could attach another campaign's list to theirs and read it).
    pub async fn check_campaign_input(
        &self,
        store: &campana_store::Store,
        input: &campana_core::campaign::CampaignInput,
    ) -> Result<(), ApiError> {
        let Some(visible) = self.visible_lists(store).await? else { return Ok(()) };
        let errors: Vec<campana_core::FieldError> = input
            .contact_list_ids
            .iter()
            .filter(|l| !visible.contains(&l.0))
            .map(|l| campana_core::FieldError::new("contact_list_ids", format!("contact list {l} does not exist")))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(errors))
        }
    }
    /// Users a reader limited to some campaigns sees (and, with `users_roles`, manages): those
    /// limited to campaigns all of theirs. A user with an empty list belongs to no campaign, so
    /// to no limited reader (else "all of theirs" would hold for nothing at all).
    pub fn sees_user(&self, u: &User) -> bool {
        match (&self.user.input.campaigns_profile, &u.input.campaigns_profile) {
            (CampaignsProfile::All, _) => true,
            (CampaignsProfile::Only { .. }, CampaignsProfile::All) => false,
            (CampaignsProfile::Only { .. }, CampaignsProfile::Only { campaign_ids }) => {
                !campaign_ids.is_empty() && campaign_ids.iter().all(|c| self.sees_campaign(*c))
            }
        }
    }
    /// Nobody grants what they do not hold: the privileges of `privileges` this user lacks.
    fn lacks(&self, privileges: &[Privilege]) -> Vec<&'static str> {
        privileges.iter().filter(|p| !self.has(**p)).map(|p| p.as_str()).collect()
    }
    /// A user this caller creates (`before` = `None`) or changes: a campaigns profile within
    /// theirs ([`Principal::check_grant`]), and a new role giving only privileges they hold.
    pub async fn check_user_change(
        &self,
        store: &campana_store::Store,
        before: Option<&User>,
        input: &campana_core::user::UserInput,
    ) -> Result<(), ApiError> {
        self.check_grant(&input.campaigns_profile)?;
        if before.is_some_and(|b| b.input.role_id == input.role_id) {
            return Ok(());
        }
        // A role that does not exist is the store's to report, by field.
        let Ok(role) = store.get::<Role>(input.role_id.0).await else { return Ok(()) };
        let lacking = self.lacks(&role.input.privileges);
        if lacking.is_empty() {
            Ok(())
        } else {
            Err(ApiError::field(
                "role_id",
                format!(
                    "role '{}' gives privileges you do not hold ({}); you may grant only your own",
                    role.input.name,
                    lacking.join(", ")
                ),
            ))
        }
    }
    /// A role this caller creates (`before` = `None`), changes (`input` given) or deletes:
    /// the privileges it adds must be the caller's own; a user limited to some campaigns
    /// changes no built-in role (every campaign's users hold them) and no role held by a user
    /// outside their campaigns.
    pub async fn check_role_change(
        &self,
        store: &campana_store::Store,
        before: Option<&Role>,
        input: Option<&campana_core::user::RoleInput>,
    ) -> Result<(), ApiError> {
        if let Some(i) = input {
            let added: Vec<Privilege> =
                i.privileges.iter().filter(|p| before.is_none_or(|b| !b.input.privileges.contains(p))).copied().collect();
            let lacking = self.lacks(&added);
            if !lacking.is_empty() {
                return Err(ApiError::field(
                    "privileges",
                    format!("you may grant only privileges you hold; you do not hold {}", lacking.join(", ")),
                ));
            }
        }
        let (Some(b), Some(_)) = (before, self.campaign_scope()) else { return Ok(()) };
        if b.builtin {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("'{}' is a built-in role held across campaigns; only a user with every campaign may change it", b.input.name),
            ));
        }
        let holders = store.list_all_users().await?;
        if holders.iter().any(|u| u.input.role_id == b.id && !self.sees_user(u)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("role '{}' is held by users outside your campaigns; only a user with every campaign may change it", b.input.name),
            ));
        }
        Ok(())
    }
    /// A user limited to some campaigns grants at most those.
    pub fn check_grant(&self, profile: &CampaignsProfile) -> Result<(), ApiError> {
        match (&self.user.input.campaigns_profile, profile) {
            (CampaignsProfile::All, _) => Ok(()),
            (CampaignsProfile::Only { .. }, CampaignsProfile::All) => Err(ApiError::field(
                "campaigns_profile.scope",
                "your own campaigns profile lists specific campaigns; you may grant only those",
            )),
            (CampaignsProfile::Only { .. }, CampaignsProfile::Only { campaign_ids }) => {
                let errors: Vec<campana_core::FieldError> = campaign_ids
                    .iter()
                    .filter(|c| !self.sees_campaign(**c))
                    .map(|c| campana_core::FieldError::new("campaigns_profile.campaign_ids", format!("campaign {c} does not exist")))
                    .collect();
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(ApiError::invalid(errors))
                }
            }
        }
    }
    /// 404 for a contact list outside the user's campaigns (it does not exist for them).
    pub async fn check_list(&self, store: &campana_store::Store, list: i64) -> Result<(), ApiError> {
        match self.visible_lists(store).await? {
            Some(ids) if !ids.contains(&list) => Err(ApiError::not_found(format!("contact list {list} does not exist"))),
            _ => Ok(()),
        }
    }
}

/// The privileges (any one suffices) a request needs; `Some(vec![])` means "signed in";
/// `None` means public.
pub fn required(method: &Method, path: &str) -> Option<Vec<Privilege>> {
    use Privilege::*;
    let read = matches!(*method, Method::GET | Method::HEAD);
    let Some(rest) = path.strip_prefix("/api/v1/") else { return None };
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

fn bearer(req: &Request) -> Option<String> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

pub fn session_cookie(req: &axum::http::HeaderMap) -> Option<String> {
    for v in req.get_all(header::COOKIE) {
        for part in v.to_str().ok()?.split(';') {
            if let Some((k, val)) = part.trim().split_once('=') {
                if k == SESSION_COOKIE {
                    return Some(val.to_string());
                }
            }
        }
    }
    None
}

/// Authenticates and authorises every API request (see the module docs).
pub async fn guard(State(s): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let Some(needed) = required(req.method(), req.uri().path()) else { return Ok(next.run(req).await) };
    let (secret, via_cookie) = match bearer(&req) {
        Some(t) => (t, false),
        None => match session_cookie(req.headers()) {
            Some(c) => (c, true),
            None => return Err(unauthorized("sign in (POST /api/v1/auth/login) or send an API token as 'Authorization: Bearer …'")),
        },
    };
    let Some(auth) = s.store.authenticate(&secret).await? else {
        return Err(unauthorized("the session or token is unknown or expired; sign in again"));
    };
    if via_cookie && !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        let sent = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok());
        if sent.is_none() || sent != auth.csrf_token.as_deref() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "missing or wrong X-CSRF-Token header for a request made with a session cookie",
            ));
        }
    }
    let principal = principal(auth);
    if !needed.is_empty() && !needed.iter().any(|p| principal.has(*p)) {
        let names: Vec<&str> = needed.iter().map(|p| p.as_str()).collect();
        return Err(ApiError::new(StatusCode::FORBIDDEN, format!("your role lacks the privilege for this ({})", names.join(" or "))));
    }
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
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
    let fresh = principal(a);
    let needed = required(&Method::GET, path).unwrap_or_default();
    (needed.is_empty() || needed.iter().any(|x| fresh.has(*x))).then_some(fresh)
}

fn principal(a: Authenticated) -> Principal {
    Principal { privileges: a.role.input.privileges.clone(), user: a.user, kind: a.kind, token_id: a.token_id }
}

pub fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, detail)
}

/// A password sign-in, shared by the API and the console. Every refusal (unknown user, inactive
/// user, locked account, wrong password) costs the same work, one argon2 verification (against
/// a fixed hash when there is no user or the account is locked), and gets the same answer, so
/// neither the time nor the wording tells whether a user name exists or is locked. `None`:
/// refused; the caller answers "invalid username or password".
pub async fn sign_in(
    s: &AppState,
    username: &str,
    password: &str,
    via: crate::audit::Via,
) -> Result<Option<campana_core::UserId>, ApiError> {
    let gate = s.store.login_gate(username).await?;
    let hash = match &gate {
        LoginGate::Check { password_hash, .. } => password_hash.clone(),
        LoginGate::Locked(_) | LoginGate::Unknown => dummy_hash().to_string(),
    };
    let verified = verify_password(password.to_string(), hash).await;
    let LoginGate::Check { user_id, .. } = gate else { return Ok(None) };
    let actor = crate::audit::Actor::user(user_id, username, via);
    if !verified {
        let locked = s.store.login_failed(user_id).await?;
        if locked {
            tracing::warn!(user = %username, "account locked after repeated failed sign-ins");
        }
        crate::audit::session(s, &actor, if locked { "locked" } else { "login_failed" }, "session", user_id, None).await?;
        return Ok(None);
    }
    s.store.login_succeeded(user_id).await?;
    crate::audit::session(s, &actor, "login", "session", user_id, None).await?;
    Ok(Some(user_id))
}

/// The one refusal of a sign-in, whatever the reason.
pub const SIGN_IN_REFUSED: &str = "invalid username or password";

/// A hash of no one's password, verified when there is no user to check (computed once).
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| crate::api::users::hash_password("no user has this password; it only takes time"))
}

/// Verifies a password against a PHC hash (argon2) off the async threads.
/// Counted in `campana_password_hashes_total{op="verify"}` (so a test can check that every
/// refusal does the same work).
pub async fn verify_password(password: String, hash: String) -> bool {
    metrics::counter!("campana_password_hashes_total", "op" => "verify").increment(1);
    tokio::task::spawn_blocking(move || {
        use argon2::password_hash::{PasswordHash, PasswordVerifier};
        PasswordHash::new(&hash).map(|h| argon2::Argon2::default().verify_password(password.as_bytes(), &h).is_ok()).unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A fresh installation gets one administrator: `admin`, with the password from
/// `CAMPANA_ADMIN_PASSWORD`, or a random one printed once.
pub async fn ensure_admin(store: &campana_store::Store) -> anyhow::Result<()> {
    // Computed now rather than during the first refused sign-in, which would take longer.
    tokio::task::spawn_blocking(dummy_hash).await?;
    if store.user_count().await? > 0 {
        return Ok(());
    }
    let password = match std::env::var("CAMPANA_ADMIN_PASSWORD") {
        Ok(p) if p.chars().count() >= 10 => p,
        Ok(_) => anyhow::bail!("CAMPANA_ADMIN_PASSWORD must be at least 10 characters"),
        Err(_) => {
            use rand::Rng;
            let p: String = rand::thread_rng().sample_iter(&rand::distributions::Alphanumeric).take(20).map(char::from).collect();
            eprintln!(
                "Created the first administrator: login 'admin', password '{p}' (shown once; change it or set CAMPANA_ADMIN_PASSWORD)."
            );
            p
        }
    };
    let role = store
        .list_all::<campana_core::stored::Role>()
        .await?
        .into_iter()
        .find(|r| r.builtin && r.input.name == "administrator")
        .ok_or_else(|| anyhow::anyhow!("the built-in administrator role is missing"))?;
    let input = campana_core::user::UserInput {
        username: "admin".into(),
        display_name: "Administrator".into(),
        role_id: role.id,
        campaigns_profile: CampaignsProfile::All,
        agent_group_ids: vec![],
        password: None,
        active: true,
    };
    store.create_user(&input, Some(crate::api::users::hash_password(&password))).await?;
    Ok(())
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
