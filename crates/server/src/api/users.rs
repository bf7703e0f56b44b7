//! Users over [`crate::service::users`]. Passwords are hashed with argon2 (PHC strings) and
//! never returned.

use super::*;
use crate::service::{users, Actor, Principal, Via};
use axum::extract::Path;
use axum::Extension;
use campana_core::stored::Page;
use campana_core::user::{User, UserInput};
use campana_core::UserId;

#[utoipa::path(get, operation_id = "users_list", path = "/api/v1/users", tag = "users", params(PageQuery), responses((status = 200, body = Page<User>)))]
pub async fn list(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<User>>> {
    Ok(Json(users::list(&s, &p, q.params()?).await?))
}

#[utoipa::path(post, operation_id = "users_create", path = "/api/v1/users", tag = "users", request_body = UserInput,
    responses((status = 201, body = User), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    ApiJson(input): ApiJson<UserInput>,
) -> ApiResult<(StatusCode, Json<User>)> {
    Ok(created(users::create(&s, &Actor::of(&p, Via::Api), &p, &input).await?))
}

#[utoipa::path(get, operation_id = "users_get_one", path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), responses((status = 200, body = User), (status = 404, body = Problem)))]
pub async fn get_one(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<Json<User>> {
    Ok(Json(users::get(&s, &p, UserId(id)).await?))
}

#[utoipa::path(put, operation_id = "users_update", path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), request_body = UserInput,
    responses((status = 200, body = User), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<i64>,
    ApiJson(input): ApiJson<UserInput>,
) -> ApiResult<Json<User>> {
    Ok(Json(users::update(&s, &Actor::of(&p, Via::Api), &p, UserId(id), &input).await?))
}

#[utoipa::path(delete, operation_id = "users_delete", path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    users::delete(&s, &Actor::of(&p, Via::Api), &p, UserId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(utoipa_axum::routes!(list, create)).routes(utoipa_axum::routes!(get_one, update, delete))
}
