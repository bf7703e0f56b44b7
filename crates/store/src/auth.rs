//! Sessions, API tokens and login throttling. Secrets are random 256-bit values handed to the
//! client once; the store keeps only their SHA-256.

use crate::*;
use campana_core::stored::Role;
use campana_core::user::User;
use campana_core::UserId;
use sha2::Digest;

/// Failed logins in a row that lock an account.
pub const MAX_FAILED_LOGINS: i64 = 5;
/// How long a locked account stays locked.
pub const LOCKOUT_S: i64 = 15 * 60;

campana_core::string_enum! {
    pub enum TokenKind { Session = "session", Api = "api" }
}

/// Who a presented secret belongs to.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub user: User,
    pub role: Role,
    pub kind: TokenKind,
    pub token_id: i64,
    /// For sessions: the value state-changing requests must echo in `X-CSRF-Token`.
    pub csrf_token: Option<String>,
}

/// A newly issued secret (shown once).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub id: i64,
    pub token: String,
    pub csrf_token: Option<String>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An API token as listed (never the secret).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub kind: TokenKind,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// What a login attempt may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginGate {
    /// Verify the password against this hash.
    Check { user_id: UserId, password_hash: String },
    /// Locked until this moment.
    Locked(chrono::DateTime<chrono::Utc>),
    /// No such active user with a password.
    Unknown,
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex(&b)
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn digest(secret: &str) -> String {
    hex(&sha2::Sha256::digest(secret.as_bytes()))
}

impl Store {
    /// Looks a user up for login, honouring the lockout.
    pub async fn login_gate(&self, username: &str) -> Result<LoginGate> {
        let row = sqlx::query("SELECT id, password_hash, active, locked_until FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(LoginGate::Unknown) };
        if let Some(until) = row.try_get::<Option<i64>, _>("locked_until")? {
            if until > now_ms() {
                return Ok(LoginGate::Locked(from_ms(until)));
            }
        }
        let hash: Option<String> = row.try_get("password_hash")?;
        match (hash, get_bool(&row, "active")?) {
            (Some(h), true) => Ok(LoginGate::Check { user_id: row.try_get::<i64, _>("id")?.into(), password_hash: h }),
            _ => Ok(LoginGate::Unknown),
        }
    }

    /// Counts a failed login; locks the account after [`MAX_FAILED_LOGINS`] in a row.
    pub async fn login_failed(&self, user: UserId) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins")
            .bind(user.0)
            .fetch_one(&self.pool)
            .await?;
        if n >= MAX_FAILED_LOGINS {
            sqlx::query("UPDATE users SET locked_until = $1, failed_logins = 0 WHERE id = $2")
                .bind(now_ms() + LOCKOUT_S * 1000)
                .bind(user.0)
                .execute(&self.pool)
                .await?;
            return Ok(true);
        }
        Ok(false)
    }

    pub async fn login_succeeded(&self, user: UserId) -> Result<()> {
        sqlx::query("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = $1").bind(user.0).execute(&self.pool).await?;
        Ok(())
    }

    /// Issues a session (with a CSRF token) or an API token for a user.
    pub async fn issue_token(&self, user: UserId, kind: TokenKind, name: &str, ttl_s: Option<i64>) -> Result<IssuedToken> {
        let secret = random_secret();
        let csrf = (kind == TokenKind::Session).then(random_secret);
        let expires = ttl_s.map(|t| now_ms() + t * 1000);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO auth_tokens (token_hash, user_id, kind, name, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(digest(&secret))
        .bind(user.0)
        .bind(kind.as_str())
        .bind(name)
        .bind(csrf.clone())
        .bind(now_ms())
        .bind(expires)
        .fetch_one(&self.pool)
        .await?;
        Ok(IssuedToken { id, token: secret, csrf_token: csrf, expires_at: expires.map(from_ms) })
    }

    /// The user behind a presented secret, if it is valid, unexpired and the user active.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Authenticated>> {
        let row = sqlx::query("SELECT id, user_id, kind, csrf_token, expires_at FROM auth_tokens WHERE token_hash = $1")
            .bind(digest(secret))
            .fetch_optional(&self.pool)
            .await?;
        self.authenticated(row, true).await
    }

    /// [`Store::authenticate`] again for a token already presented (a long-lived stream checks
    /// every few seconds that its token, user and role still allow it).
    pub async fn reauthenticate(&self, token_id: i64) -> Result<Option<Authenticated>> {
        let row = sqlx::query("SELECT id, user_id, kind, csrf_token, expires_at FROM auth_tokens WHERE id = $1")
            .bind(token_id)
            .fetch_optional(&self.pool)
            .await?;
        self.authenticated(row, false).await
    }

    /// `touch`: note the use (`last_used_at`); a stream's rechecks do not.
    async fn authenticated(&self, row: Option<AnyRow>, touch: bool) -> Result<Option<Authenticated>> {
        let Some(row) = row else { return Ok(None) };
        if row.try_get::<Option<i64>, _>("expires_at")?.is_some_and(|e| e <= now_ms()) {
            return Ok(None);
        }
        let user = self.get_user(row.try_get::<i64, _>("user_id")?.into()).await?;
        if !user.input.active {
            return Ok(None);
        }
        let role = self.get::<Role>(user.input.role_id.0).await?;
        let token_id: i64 = row.try_get("id")?;
        if touch {
            sqlx::query("UPDATE auth_tokens SET last_used_at = $1 WHERE id = $2").bind(now_ms()).bind(token_id).execute(&self.pool).await?;
        }
        Ok(Some(Authenticated { user, role, kind: get_parsed(&row, "kind")?, token_id, csrf_token: row.try_get("csrf_token")? }))
    }

    pub async fn revoke_token(&self, user: UserId, token_id: i64) -> Result<()> {
        let done =
            sqlx::query("DELETE FROM auth_tokens WHERE id = $1 AND user_id = $2").bind(token_id).bind(user.0).execute(&self.pool).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("token", token_id));
        }
        Ok(())
    }

    /// A user's API tokens, without secrets.
    pub async fn list_tokens(&self, user: UserId) -> Result<Vec<TokenInfo>> {
        self.list_tokens_of(user, TokenKind::Api).await
    }

    /// A user's unexpired tokens of one kind (API tokens or browser sessions), without secrets.
    pub async fn list_tokens_of(&self, user: UserId, kind: TokenKind) -> Result<Vec<TokenInfo>> {
        let rows = sqlx::query(
            "SELECT * FROM auth_tokens WHERE user_id = $1 AND kind = $2 AND (expires_at IS NULL OR expires_at > $3) ORDER BY id",
        )
        .bind(user.0)
        .bind(kind.as_str())
        .bind(now_ms())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    kind: get_parsed(r, "kind")?,
                    created_at: get_time(r, "created_at")?,
                    expires_at: get_opt_time(r, "expires_at")?,
                    last_used_at: get_opt_time(r, "last_used_at")?,
                })
            })
            .collect()
    }

    /// How many users exist (a fresh installation has none and creates its administrator).
    pub async fn user_count(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
    }
}
