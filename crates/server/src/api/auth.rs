//! Sign-in, sign-out, the current user, and API tokens.

use super::guard::unauthorized;
use super::*;
use crate::auth;
use crate::service::account::{self, SESSION_TTL_S};
use crate::service::{Principal, Via};
use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use campana_core::user::{Privilege, User};
use campana_store::auth::{IssuedToken, TokenInfo};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub role: String,
    pub privileges: Vec<Privilege>,
    /// For browser sessions: send it back as `X-CSRF-Token` on every POST, PUT, PATCH, DELETE.
    pub csrf_token: Option<String>,
}

/// Signs in with a password and sets the session cookie. Five failures in a row lock the
/// account for 15 minutes. Every refusal (unknown user, wrong password, locked or inactive
/// account) answers the same 401 after the same work.
#[utoipa::path(post, operation_id = "auth_login", path = "/api/v1/auth/login", tag = "users", request_body = Login,
    responses((status = 200, body = Me), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn login(State(s): State<AppState>, headers: HeaderMap, ApiJson(body): ApiJson<Login>) -> ApiResult<Response> {
    let Some(user_id) = account::sign_in(&s, &body.username, &body.password, Via::Api).await? else {
        return Err(unauthorized(account::SIGN_IN_REFUSED));
    };
    let issued = account::open_session(&s, user_id).await?;
    let user = s.store.get_user(user_id).await?;
    let role = s.store.get::<campana_core::stored::Role>(user.input.role_id.0).await?;
    let cookie = auth::session_cookie_header(&issued.token, SESSION_TTL_S, &headers);
    let me = Me { user, role: role.input.name, privileges: role.input.privileges, csrf_token: issued.csrf_token };
    Ok(([(axum::http::header::SET_COOKIE, cookie)], Json(me)).into_response())
}

/// Ends the current browser session (or revokes the API token used).
#[utoipa::path(post, operation_id = "auth_logout", path = "/api/v1/auth/logout", tag = "users", responses((status = 204)))]
pub async fn logout(State(s): State<AppState>, Extension(p): Extension<Principal>, headers: HeaderMap) -> ApiResult<Response> {
    account::sign_out(&s, &p, Via::Api).await?;
    let clear = auth::session_cookie_header("", 0, &headers);
    Ok((StatusCode::NO_CONTENT, [(axum::http::header::SET_COOKIE, clear)]).into_response())
}

#[utoipa::path(get, operation_id = "auth_me", path = "/api/v1/auth/me", tag = "users", responses((status = 200, body = Me), (status = 401, body = Problem)))]
pub async fn me(State(s): State<AppState>, Extension(p): Extension<Principal>, headers: HeaderMap) -> ApiResult<Json<Me>> {
    let role = s.store.get::<campana_core::stored::Role>(p.user.input.role_id.0).await?;
    let csrf_token = match auth::session_cookie(&headers) {
        Some(secret) => s.store.authenticate(&secret).await?.and_then(|a| a.csrf_token),
        None => None,
    };
    Ok(Json(Me { user: p.user, role: role.input.name, privileges: p.privileges, csrf_token }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for (shown in the token list).
    pub name: String,
    /// Days until it expires (1 to 3650); never when absent.
    #[schema(minimum = 1, maximum = 3650)]
    pub ttl_days: Option<u32>,
}

/// Creates an API token for the signed-in user. The secret is in the answer only.
#[utoipa::path(post, operation_id = "auth_create_token", path = "/api/v1/auth/tokens", tag = "users", request_body = NewToken,
    responses((status = 201, body = IssuedToken), (status = 422, body = Problem)))]
pub async fn create_token(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(b): ApiJson<NewToken>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    let t = account::create_token(&s, &p, Via::Api, &b.name, b.ttl_days).await?;
    Ok(created(t))
}

#[utoipa::path(get, operation_id = "auth_list_tokens", path = "/api/v1/auth/tokens", tag = "users", responses((status = 200, body = Vec<TokenInfo>)))]
pub async fn list_tokens(State(s): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult<Json<Vec<TokenInfo>>> {
    Ok(Json(account::list_tokens(&s, &p).await?))
}

#[utoipa::path(delete, operation_id = "auth_revoke_token", path = "/api/v1/auth/tokens/{id}", tag = "users", params(("id" = i64, Path)), responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke_token(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    account::revoke_token(&s, &p, Via::Api, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    /// At least 10 characters.
    pub new_password: String,
}

/// Changes the signed-in user's password. Their other browser sessions end; this one and
/// their API tokens stay (listed at `/api/v1/auth/tokens`, revocable).
#[utoipa::path(post, operation_id = "auth_change_password", path = "/api/v1/auth/password", tag = "users", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn change_password(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(b): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    account::change_password(&s, &p, Via::Api, &b.current_password, &b.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(utoipa_axum::routes!(login))
        .routes(utoipa_axum::routes!(logout))
        .routes(utoipa_axum::routes!(me))
        .routes(utoipa_axum::routes!(create_token, list_tokens))
        .routes(utoipa_axum::routes!(revoke_token))
        .routes(utoipa_axum::routes!(change_password))
}
