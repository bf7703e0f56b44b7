//! Users. Passwords are hashed with argon2 (PHC strings) and never returned.

use super::*;
use crate::audit::{self, Actor, Via};
use crate::auth::Principal;
use axum::extract::Path;
use axum::Extension;
use campana_core::stored::Page;
use campana_core::user::{User, UserInput};
use campana_core::UserId;

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

#[utoipa::path(get, operation_id = "users_list", path = "/api/v1/users", tag = "users", params(PageQuery), responses((status = 200, body = Page<User>)))]
pub async fn list(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<User>>> {
    if p.campaign_scope().is_none() {
        return Ok(Json(s.store.list_users(q.params()?).await?));
    }
    // A reader limited to some campaigns sees the users limited to campaigns of theirs.
    let mut page = q.params()?;
    let want = page.limit.unwrap_or(campana_store::DEFAULT_PAGE) as usize;
    let mut items = Vec::new();
    loop {
        page.limit = Some(campana_store::MAX_PAGE);
        let got = s.store.list_users(page).await?;
        for u in got.items {
            if p.sees_user(&u) {
                items.push(u);
                if items.len() > want {
                    break;
                }
            }
        }
        if items.len() > want {
            break;
        }
        match got.next_cursor {
            Some(c) => page.cursor = Some(campana_store::PageParams::parse_cursor(&c)?),
            None => break,
        }
    }
    let next_cursor = if items.len() > want {
        items.truncate(want);
        items.last().map(|u| u.id.0.to_string())
    } else {
        None
    };
    Ok(Json(Page { items, next_cursor }))
}

/// 404 for a user outside a limited reader's campaigns (they do not exist for them).
async fn visible_user(s: &AppState, p: &Principal, id: i64) -> ApiResult<User> {
    let u = s.store.get_user(UserId(id)).await?;
    if p.sees_user(&u) {
        Ok(u)
    } else {
        Err(ApiError::not_found(format!("user {id} does not exist")))
    }
}

#[utoipa::path(post, operation_id = "users_create", path = "/api/v1/users", tag = "users", request_body = UserInput,
    responses((status = 201, body = User), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(input): ApiJson<UserInput>,
) -> ApiResult<(StatusCode, Json<User>)> {
    p.check_user_change(&s.store, None, &input).await?;
    Ok(created(audit::create_user(&s, &Actor::of(&p, Via::Api), &input).await?))
}

#[utoipa::path(get, operation_id = "users_get_one", path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), responses((status = 200, body = User), (status = 404, body = Problem)))]
pub async fn get_one(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<Json<User>> {
    Ok(Json(visible_user(&s, &p, id).await?))
}

#[utoipa::path(put, operation_id = "users_update", path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), request_body = UserInput,
    responses((status = 200, body = User), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<UserInput>,
) -> ApiResult<Json<User>> {
    let before = visible_user(&s, &p, id).await?;
    p.check_user_change(&s.store, Some(&before), &input).await?;
    Ok(Json(audit::update_user(&s, &Actor::of(&p, Via::Api), UserId(id), &input).await?))
}

#[utoipa::path(delete, operation_id = "users_delete", path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    visible_user(&s, &p, id).await?;
    audit::delete_user(&s, &Actor::of(&p, Via::Api), UserId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(utoipa_axum::routes!(list, create)).routes(utoipa_axum::routes!(get_one, update, delete))
}
