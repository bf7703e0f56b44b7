//! The API's guard: authenticates and authorises every `/api/v1` request (see [`crate::auth`]).

use super::ApiError;
use crate::auth::{required, session_cookie};
use crate::service::Principal;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

fn bearer(req: &Request) -> Option<String> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    v.strip_prefix("Bearer ").map(|t| t.trim().to_string())
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
    let principal = Principal::from_authenticated(auth);
    if !needed.is_empty() && !needed.iter().any(|p| principal.has(*p)) {
        let names: Vec<&str> = needed.iter().map(|p| p.as_str()).collect();
        return Err(ApiError::new(StatusCode::FORBIDDEN, format!("your role lacks the privilege for this ({})", names.join(" or "))));
    }
    req.extensions_mut().insert(principal);
    Ok(next.run(req).await)
}

pub fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, detail)
}
