//! The caller's own account: password sign-in, sign-out, password change, API tokens and
//! browser sessions. The API (`/api/v1/auth/...`) and the console (sign-in page, account page)
//! both come here, so lockout, uniform refusals, session ends and audit entries are the same.

use super::{audit, Actor, Principal, ServiceError, ServiceResult, Via};
use crate::state::AppState;
use campana_core::user::CampaignsProfile;
use campana_core::UserId;
use campana_store::auth::{IssuedToken, LoginGate, TokenInfo, TokenKind};
use serde_json::json;

/// Browser sessions last this long.
pub const SESSION_TTL_S: i64 = 12 * 3600;
/// The longest lifetime of an API token, in days (ten years).
pub const MAX_TOKEN_TTL_DAYS: u32 = 3650;
/// The longest name of an API token, in bytes.
pub const MAX_TOKEN_NAME_BYTES: usize = 100;

/// Hashes a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> String {
    metrics::counter!("campana_password_hashes_total", "op" => "hash").increment(1);
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with default parameters cannot fail")
        .to_string()
}

/// A browser session for a user who just signed in.
pub async fn open_session(s: &AppState, user: UserId) -> ServiceResult<IssuedToken> {
    Ok(s.store.issue_token(user, TokenKind::Session, "browser", Some(SESSION_TTL_S)).await?)
}

/// Ends the session (or revokes the API token) the caller is using.
pub async fn sign_out(s: &AppState, p: &Principal, via: Via) -> ServiceResult<()> {
    s.store.revoke_token(p.user.id, p.token_id).await?;
    audit::session(s, &Actor::of(p, via), "logout", "session", p.user.id, None).await
}

/// A new API token of the caller: `name` 1 to 100 characters, `ttl_days` 1 to 3650 (never
/// expires when `None`). The secret is in the answer only.
pub async fn create_token(s: &AppState, p: &Principal, via: Via, name: &str, ttl_days: Option<u32>) -> ServiceResult<IssuedToken> {
    if name.trim().is_empty() || name.len() > MAX_TOKEN_NAME_BYTES {
        return Err(ServiceError::field("name", "must be 1 to 100 characters"));
    }
    if let Some(d) = ttl_days {
        if !(1..=MAX_TOKEN_TTL_DAYS).contains(&d) {
            return Err(ServiceError::field(
                "ttl_days",
                format!("{d} is outside 1..={MAX_TOKEN_TTL_DAYS}; leave it out for a token that never expires"),
            ));
        }
    }
    let ttl = ttl_days.map(|d| i64::from(d) * 86_400);
    let t = s.store.issue_token(p.user.id, TokenKind::Api, name, ttl).await?;
    let after = json!({"id": t.id, "name": name, "expires_at": t.expires_at});
    audit::session(s, &Actor::of(p, via), "create", "api_token", p.user.id, Some(after)).await?;
    Ok(t)
}

/// The caller's API tokens, without secrets.
pub async fn list_tokens(s: &AppState, p: &Principal) -> ServiceResult<Vec<TokenInfo>> {
    Ok(s.store.list_tokens(p.user.id).await?)
}

/// The caller's open browser sessions (their current one among them: [`Principal::token_id`]).
pub async fn list_sessions(s: &AppState, p: &Principal) -> ServiceResult<Vec<TokenInfo>> {
    Ok(s.store.list_tokens_of(p.user.id, TokenKind::Session).await?)
}

/// Revokes one of the caller's API tokens (404 for any other id).
pub async fn revoke_token(s: &AppState, p: &Principal, via: Via, id: i64) -> ServiceResult<()> {
    s.store.revoke_token(p.user.id, id).await?;
    audit::session(s, &Actor::of(p, via), "delete", "api_token", p.user.id, Some(json!({"id": id}))).await
}

/// Ends one of the caller's browser sessions other than the one in use (404 for any other id,
/// API tokens included: they are revoked with [`revoke_token`]).
pub async fn end_session(s: &AppState, p: &Principal, via: Via, id: i64) -> ServiceResult<()> {
    let sessions = list_sessions(s, p).await?;
    if id == p.token_id || !sessions.iter().any(|t| t.id == id) {
        let why = if id == p.token_id { "; sign out to end the session in use" } else { "" };
        return Err(ServiceError::not_found(format!("session {id} does not exist{why}")));
    }
    s.store.revoke_token(p.user.id, id).await?;
    audit::session(s, &Actor::of(p, via), "delete", "session", p.user.id, Some(json!({"id": id}))).await
}

/// The caller changes their own password, proving the current one. Their other browser
/// sessions end; the one in use and their API tokens stay.
pub async fn change_password(s: &AppState, p: &Principal, via: Via, current: &str, new: &str) -> ServiceResult<()> {
    let hash = s.store.password_hash(p.user.id).await?.unwrap_or_else(|| dummy_hash().to_string());
    if !verify_password(current.to_string(), hash).await {
        return Err(ServiceError::field("current_password", "is not your current password"));
    }
    audit::change_own_password(s, p, via, new).await
}

/// A password sign-in, shared by the API and the console. Every refusal (unknown user, inactive
/// user, locked account, wrong password) costs the same work, one argon2 verification (against
/// a fixed hash when there is no user or the account is locked), and gets the same answer, so
/// neither the time nor the wording tells whether a user name exists or is locked. `None`:
/// refused; the caller answers "invalid username or password".
pub async fn sign_in(s: &AppState, username: &str, password: &str, via: Via) -> ServiceResult<Option<UserId>> {
    let gate = s.store.login_gate(username).await?;
    let hash = match &gate {
        LoginGate::Check { password_hash, .. } => password_hash.clone(),
        LoginGate::Locked(_) | LoginGate::Unknown => dummy_hash().to_string(),
    };
    let verified = verify_password(password.to_string(), hash).await;
    let LoginGate::Check { user_id, .. } = gate else { return Ok(None) };
    let actor = Actor::user(user_id, username, via);
    if !verified {
        let locked = s.store.login_failed(user_id).await?;
        if locked {
            tracing::warn!(user = %username, "account locked after repeated failed sign-ins");
        }
        audit::session(s, &actor, if locked { "locked" } else { "login_failed" }, "session", user_id, None).await?;
        return Ok(None);
    }
    s.store.login_succeeded(user_id).await?;
    audit::session(s, &actor, "login", "session", user_id, None).await?;
    Ok(Some(user_id))
}

/// The one refusal of a sign-in, whatever the reason.
pub const SIGN_IN_REFUSED: &str = "invalid username or password";

/// A hash of no one's password, verified when there is no user to check (computed once).
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("no user has this password; it only takes time"))
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
    store.create_user(&input, Some(hash_password(&password))).await?;
    Ok(())
}
