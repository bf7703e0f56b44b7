//! Users. Passwords are hashed with argon2 (PHC strings) and never returned.

use super::*;
use axum::extract::Path;
use campana_core::stored::Page;
use campana_core::user::{User, UserInput};
use campana_core::UserId;

/// Hashes a password with argon2id and a random salt.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with default parameters cannot fail")
        .to_string()
}

#[utoipa::path(get, operation_id = "users_list", path = "/api/v1/users", tag = "users", params(PageQuery), responses((status = 200, body = Page<User>)))]
pub async fn list(State(s): State<AppState>, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<User>>> {
    Ok(Json(s.store.list_users(q.params()?).await?))
}

#[utoipa::path(post, operation_id = "users_create", path = "/api/v1/users", tag = "users", request_body = UserInput,
    responses((status = 201, body = User), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(State(s): State<AppState>, ApiJson(input): ApiJson<UserInput>) -> ApiResult<(StatusCode, Json<User>)> {
    input.validate()?;
    let hash = input.password.as_deref().map(hash_password);
    Ok(created(s.store.create_user(&input, hash).await?))
}

#[utoipa::path(get, operation_id = "users_get_one", path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), responses((status = 200, body = User), (status = 404, body = Problem)))]
pub async fn get_one(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<User>> {
    Ok(Json(s.store.get_user(UserId(id)).await?))
}

#[utoipa::path(put, operation_id = "users_update", path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), request_body = UserInput,
    responses((status = 200, body = User), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn update(State(s): State<AppState>, Path(id): Path<i64>, ApiJson(input): ApiJson<UserInput>) -> ApiResult<Json<User>> {
    input.validate()?;
    let hash = input.password.as_deref().map(hash_password);
    Ok(Json(s.store.update_user(UserId(id), &input, hash).await?))
}

#[utoipa::path(delete, operation_id = "users_delete", path = "/api/v1/users/{id}", tag = "users", params(("id" = i64, Path)), responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    s.store.delete_user(UserId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(utoipa_axum::routes!(list, create)).routes(utoipa_axum::routes!(get_one, update, delete))
}
