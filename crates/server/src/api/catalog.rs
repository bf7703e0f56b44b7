//! CRUD routes for the catalogue objects over [`crate::service::catalog`]; one macro writes the
//! five handlers of each, with their OpenAPI descriptions.

use super::*;
use crate::service::catalog;
use crate::service::{Actor, Principal, Via};
use axum::extract::Path;
use axum::Extension;
use campana_core::campaign::{DispositionInput, ManagerTagInput, NamedInput, ScriptInput};
use campana_core::settings::SettingsProfileInput;
use campana_core::stored::*;
use campana_core::user::RoleInput;

macro_rules! crud {
    ($module:ident, $entity:ty, $input:ty, $coll:literal, $item:literal) => {
        pub mod $module {
            use super::*;

            #[utoipa::path(get, operation_id = concat!(stringify!($module), "_list"), path = $coll, tag = "catalogue", params(PageQuery), responses((status = 200, body = Page<$entity>), (status = 422, body = Problem)))]
            pub async fn list(State(s): State<AppState>, Extension(p): Extension<Principal>, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<$entity>>> {
                Ok(Json(catalog::list::<$entity>(&s, &p, q.params()?).await?))
            }

            #[utoipa::path(post, operation_id = concat!(stringify!($module), "_create"), path = $coll, tag = "catalogue", request_body = $input,
                responses((status = 201, body = $entity), (status = 409, body = Problem), (status = 422, body = Problem)))]
            pub async fn create(State(s): State<AppState>, Extension(p): Extension<Principal>, ApiJson(input): ApiJson<$input>) -> ApiResult<(StatusCode, Json<$entity>)> {
                Ok(created(catalog::create::<$entity>(&s, &Actor::of(&p, Via::Api), &p, &input).await?))
            }

            #[utoipa::path(get, operation_id = concat!(stringify!($module), "_get"), path = $item, tag = "catalogue", params(("id" = i64, Path)), responses((status = 200, body = $entity), (status = 404, body = Problem)))]
            pub async fn get(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<Json<$entity>> {
                Ok(Json(catalog::get::<$entity>(&s, &p, id).await?))
            }

            #[utoipa::path(put, operation_id = concat!(stringify!($module), "_update"), path = $item, tag = "catalogue", params(("id" = i64, Path)), request_body = $input,
                responses((status = 200, body = $entity), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
            pub async fn update(
                State(s): State<AppState>,
                Extension(p): Extension<Principal>,
                Path(id): Path<i64>,
                ApiJson(input): ApiJson<$input>,
            ) -> ApiResult<Json<$entity>> {
                Ok(Json(catalog::update::<$entity>(&s, &Actor::of(&p, Via::Api), &p, id, &input).await?))
            }

            #[utoipa::path(delete, operation_id = concat!(stringify!($module), "_delete"), path = $item, tag = "catalogue", params(("id" = i64, Path)),
                responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
            pub async fn delete(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
                catalog::delete::<$entity>(&s, &Actor::of(&p, Via::Api), &p, id).await?;
                Ok(StatusCode::NO_CONTENT)
            }

            pub fn router() -> OpenApiRouter<AppState> {
                OpenApiRouter::new().routes(utoipa_axum::routes!(list, create)).routes(utoipa_axum::routes!(get, update, delete))
            }
        }
    };
}

crud!(campaign_groups, CampaignGroup, NamedInput, "/api/v1/campaign-groups", "/api/v1/campaign-groups/{id}");
crud!(agent_groups, AgentGroup, NamedInput, "/api/v1/agent-groups", "/api/v1/agent-groups/{id}");
crud!(scripts, Script, ScriptInput, "/api/v1/scripts", "/api/v1/scripts/{id}");
crud!(settings_profiles, SettingsProfile, SettingsProfileInput, "/api/v1/settings-profiles", "/api/v1/settings-profiles/{id}");
crud!(dispositions, Disposition, DispositionInput, "/api/v1/dispositions", "/api/v1/dispositions/{id}");
crud!(manager_tags, ManagerTag, ManagerTagInput, "/api/v1/manager-tags", "/api/v1/manager-tags/{id}");
crud!(dnc_lists, DncList, NamedInput, "/api/v1/dnc-lists", "/api/v1/dnc-lists/{id}");
crud!(roles, Role, RoleInput, "/api/v1/roles", "/api/v1/roles/{id}");
crud!(contact_lists, ContactList, ContactListInput, "/api/v1/contact-lists", "/api/v1/contact-lists/{id}");

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(campaign_groups::router())
        .merge(agent_groups::router())
        .merge(scripts::router())
        .merge(settings_profiles::router())
        .merge(dispositions::router())
        .merge(manager_tags::router())
        .merge(dnc_lists::router())
        .merge(roles::router())
        .merge(contact_lists::router())
}
