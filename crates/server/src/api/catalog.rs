//! CRUD routes for the catalogue objects; one macro writes the five handlers of each, with
//! their OpenAPI descriptions.

use super::*;
use crate::audit::{Actor, Via};
use crate::auth::Principal;
use axum::extract::Path;
use axum::Extension;
use campana_core::campaign::{DispositionInput, ManagerTagInput, NamedInput, ScriptInput};
use campana_core::settings::SettingsProfileInput;
use campana_core::stored::*;
use campana_core::user::RoleInput;

/// Which rows of a catalogue a user sees: `None` for all.
pub type Scope = ApiResult<Option<Vec<i64>>>;

/// How the campaigns profile applies to a catalogue object, written once for the API and the
/// console: which rows a user sees, what an input may name, and what a reader sees of a row.
pub trait Rules: campana_store::Entity + crate::audit::Audited {
    /// The rows the user sees (`None`: all).
    fn scope<'a>(_s: &'a AppState, _p: &'a Principal) -> impl std::future::Future<Output = Scope> + Send + 'a {
        async { Ok(None) }
    }
    /// Refuses an input naming something the user does not see.
    fn check(_p: &Principal, _input: &Self::Input) -> ApiResult<()> {
        Ok(())
    }
    /// Refuses a create (`id` = `None`), change (`input` given) or delete the caller may not
    /// make (roles: see [`Principal::check_role_change`]).
    fn check_change<'a>(
        _s: &'a AppState,
        _p: &'a Principal,
        _id: Option<i64>,
        _input: Option<&'a Self::Input>,
    ) -> impl std::future::Future<Output = ApiResult<()>> + Send + 'a {
        async { Ok(()) }
    }
    /// Adjusts rows for the reader (counts over their own campaigns only).
    fn for_reader<'a>(
        _items: &'a mut [Self],
        _s: &'a AppState,
        _p: &'a Principal,
    ) -> impl std::future::Future<Output = ApiResult<()>> + Send + 'a {
        async { Ok(()) }
    }
}

impl Rules for CampaignGroup {}
impl Rules for AgentGroup {}
impl Rules for Script {}
impl Rules for DncList {}
impl Rules for Role {
    fn check_change<'a>(
        s: &'a AppState,
        p: &'a Principal,
        id: Option<i64>,
        input: Option<&'a RoleInput>,
    ) -> impl std::future::Future<Output = ApiResult<()>> + Send + 'a {
        async move {
            let before = match id {
                Some(id) => Some(s.store.get::<Role>(id).await?),
                None => None,
            };
            p.check_role_change(&s.store, before.as_ref(), input).await
        }
    }
}

impl Rules for ContactList {
    /// Only the lists of the user's campaigns (and lists no campaign uses yet).
    fn scope<'a>(s: &'a AppState, p: &'a Principal) -> impl std::future::Future<Output = Scope> + Send + 'a {
        p.visible_lists(&s.store)
    }
}

impl Rules for Disposition {
    /// Those of no campaign and those of the user's campaigns.
    fn scope<'a>(s: &'a AppState, p: &'a Principal) -> impl std::future::Future<Output = Scope> + Send + 'a {
        async move {
            if p.campaign_scope().is_none() {
                return Ok(None);
            }
            let all = s.store.list_all::<Disposition>().await?;
            Ok(Some(all.into_iter().filter(|d| d.input.campaign_id.is_none_or(|c| p.sees_campaign(c))).map(|d| d.id.0).collect()))
        }
    }
    fn check(p: &Principal, i: &DispositionInput) -> ApiResult<()> {
        p.check_campaign_ref("campaign_id", i.campaign_id)
    }
}

impl Rules for ManagerTag {
    /// Those of no campaign and those of the user's campaigns.
    fn scope<'a>(s: &'a AppState, p: &'a Principal) -> impl std::future::Future<Output = Scope> + Send + 'a {
        async move {
            if p.campaign_scope().is_none() {
                return Ok(None);
            }
            let all = s.store.list_all::<ManagerTag>().await?;
            Ok(Some(all.into_iter().filter(|d| d.input.campaign_id.is_none_or(|c| p.sees_campaign(c))).map(|d| d.id.0).collect()))
        }
    }
    fn check(p: &Principal, i: &ManagerTagInput) -> ApiResult<()> {
        p.check_campaign_ref("campaign_id", i.campaign_id)
    }
}

impl Rules for SettingsProfile {
    /// `campaign_count` counts only the campaigns the reader sees.
    fn for_reader<'a>(
        items: &'a mut [Self],
        s: &'a AppState,
        p: &'a Principal,
    ) -> impl std::future::Future<Output = ApiResult<()>> + Send + 'a {
        async move {
            let Some(only) = p.campaign_scope() else { return Ok(()) };
            let filter = campana_store::CampaignFilter { only: Some(only), ..Default::default() };
            let page = campana_store::PageParams { limit: Some(campana_store::MAX_PAGE), cursor: None };
            let mine = s.store.list_campaigns(&filter, page).await?;
            for sp in items.iter_mut() {
                sp.campaign_count = mine.items.iter().filter(|c| c.input.profile_id == Some(sp.id)).count() as i64;
            }
            Ok(())
        }
    }
}

fn check_visible(scope: &Option<Vec<i64>>, kind: &str, id: i64) -> ApiResult<()> {
    match scope {
        Some(ids) if !ids.contains(&id) => Err(ApiError::not_found(format!("{kind} {id} does not exist"))),
        _ => Ok(()),
    }
}

macro_rules! crud {
    ($module:ident, $entity:ty, $input:ty, $coll:literal, $item:literal) => {
        pub mod $module {
            use super::*;
            const KIND: &str = <$entity as campana_store::Entity>::KIND;

            #[utoipa::path(get, operation_id = concat!(stringify!($module), "_list"), path = $coll, tag = "catalogue", params(PageQuery), responses((status = 200, body = Page<$entity>), (status = 422, body = Problem)))]
            pub async fn list(State(s): State<AppState>, Extension(p): Extension<Principal>, ApiQuery(q): ApiQuery<PageQuery>) -> ApiResult<Json<Page<$entity>>> {
                let only = <$entity as Rules>::scope(&s, &p).await?;
                let mut page = s.store.list_in::<$entity>(q.params()?, only.as_deref()).await?;
                <$entity as Rules>::for_reader(&mut page.items, &s, &p).await?;
                Ok(Json(page))
            }

            #[utoipa::path(post, operation_id = concat!(stringify!($module), "_create"), path = $coll, tag = "catalogue", request_body = $input,
                responses((status = 201, body = $entity), (status = 409, body = Problem), (status = 422, body = Problem)))]
            pub async fn create(State(s): State<AppState>, Extension(p): Extension<Principal>, ApiJson(input): ApiJson<$input>) -> ApiResult<(StatusCode, Json<$entity>)> {
                <$entity as Rules>::check(&p, &input)?;
                <$entity as Rules>::check_change(&s, &p, None, Some(&input)).await?;
                Ok(created(crate::audit::create::<$entity>(&s, &Actor::of(&p, Via::Api), &input).await?))
            }

            #[utoipa::path(get, operation_id = concat!(stringify!($module), "_get"), path = $item, tag = "catalogue", params(("id" = i64, Path)), responses((status = 200, body = $entity), (status = 404, body = Problem)))]
            pub async fn get(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<Json<$entity>> {
                check_visible(&<$entity as Rules>::scope(&s, &p).await?, KIND, id)?;
                let mut e = s.store.get::<$entity>(id).await?;
                <$entity as Rules>::for_reader(std::slice::from_mut(&mut e), &s, &p).await?;
                Ok(Json(e))
            }

            #[utoipa::path(put, operation_id = concat!(stringify!($module), "_update"), path = $item, tag = "catalogue", params(("id" = i64, Path)), request_body = $input,
                responses((status = 200, body = $entity), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
            pub async fn update(
                State(s): State<AppState>,
                Extension(p): Extension<Principal>,
                Path(id): Path<i64>,
                ApiJson(input): ApiJson<$input>,
            ) -> ApiResult<Json<$entity>> {
                check_visible(&<$entity as Rules>::scope(&s, &p).await?, KIND, id)?;
                <$entity as Rules>::check(&p, &input)?;
                <$entity as Rules>::check_change(&s, &p, Some(id), Some(&input)).await?;
                let mut e = crate::audit::update::<$entity>(&s, &Actor::of(&p, Via::Api), id, &input).await?;
                <$entity as Rules>::for_reader(std::slice::from_mut(&mut e), &s, &p).await?;
                Ok(Json(e))
            }

            #[utoipa::path(delete, operation_id = concat!(stringify!($module), "_delete"), path = $item, tag = "catalogue", params(("id" = i64, Path)),
                responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
            pub async fn delete(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
                check_visible(&<$entity as Rules>::scope(&s, &p).await?, KIND, id)?;
                <$entity as Rules>::check_change(&s, &p, Some(id), None).await?;
                crate::audit::delete::<$entity>(&s, &Actor::of(&p, Via::Api), id).await?;
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
