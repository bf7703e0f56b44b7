//! The catalogue objects (campaign and agent groups, scripts, settings profiles, dispositions,
//! manager tags, DNC lists, roles, contact lists): list, get, create, update, delete, for the
//! API and the console alike. How the campaigns profile applies to each type is its [`Rules`].

// The `Rules` methods return `impl Future + Send` by hand: `async fn` in a trait cannot say that its
// future is `Send`, which axum's handlers need.
#![allow(clippy::manual_async_fn)]

use super::audit::{self, Actor};
use super::{Principal, ServiceError, ServiceResult};
use crate::state::AppState;
use campana_core::campaign::{DispositionInput, ManagerTagInput};
use campana_core::stored::*;
use campana_core::user::RoleInput;

/// Which rows of a catalogue a user sees: `None` for all.
pub type Scope = ServiceResult<Option<Vec<i64>>>;

/// How the campaigns profile applies to a catalogue object, written once for the API and the
/// console: which rows a user sees, what an input may name, and what a reader sees of a row.
pub trait Rules: campana_store::Entity + super::audit::Audited {
    /// The rows the user sees (`None`: all).
    fn scope<'a>(_s: &'a AppState, _p: &'a Principal) -> impl std::future::Future<Output = Scope> + Send + 'a {
        async { Ok(None) }
    }
    /// Refuses an input naming something the user does not see.
    fn check(_p: &Principal, _input: &Self::Input) -> ServiceResult<()> {
        Ok(())
    }
    /// Refuses a create (`id` = `None`), change (`input` given) or delete the caller may not
    /// make (roles: see [`Principal::check_role_change`]).
    fn check_change<'a>(
        _s: &'a AppState,
        _p: &'a Principal,
        _id: Option<i64>,
        _input: Option<&'a Self::Input>,
    ) -> impl std::future::Future<Output = ServiceResult<()>> + Send + 'a {
        async { Ok(()) }
    }
    /// Adjusts rows for the reader (counts over their own campaigns only).
    fn for_reader<'a>(
        _items: &'a mut [Self],
        _s: &'a AppState,
        _p: &'a Principal,
    ) -> impl std::future::Future<Output = ServiceResult<()>> + Send + 'a {
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
    ) -> impl std::future::Future<Output = ServiceResult<()>> + Send + 'a {
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
            Ok(Some(all.into_iter().filter(|d| p.sees_campaign_of(d.input.campaign_id)).map(|d| d.id.0).collect()))
        }
    }
    fn check(p: &Principal, i: &DispositionInput) -> ServiceResult<()> {
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
            Ok(Some(all.into_iter().filter(|d| p.sees_campaign_of(d.input.campaign_id)).map(|d| d.id.0).collect()))
        }
    }
    fn check(p: &Principal, i: &ManagerTagInput) -> ServiceResult<()> {
        p.check_campaign_ref("campaign_id", i.campaign_id)
    }
}

impl Rules for SettingsProfile {
    /// `campaign_count` counts only the campaigns the reader sees.
    fn for_reader<'a>(
        items: &'a mut [Self],
        s: &'a AppState,
        p: &'a Principal,
    ) -> impl std::future::Future<Output = ServiceResult<()>> + Send + 'a {
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

fn check_visible(scope: &Option<Vec<i64>>, kind: &str, id: i64) -> ServiceResult<()> {
    match scope {
        Some(ids) if !ids.contains(&id) => Err(ServiceError::not_found(format!("{kind} {id} does not exist"))),
        _ => Ok(()),
    }
}

/// One page of the rows the caller sees, adjusted for them.
pub async fn list<E: Rules>(s: &AppState, p: &Principal, page: campana_store::PageParams) -> ServiceResult<Page<E>> {
    let only = E::scope(s, p).await?;
    let mut page = s.store.list_in::<E>(page, only.as_deref()).await?;
    E::for_reader(&mut page.items, s, p).await?;
    Ok(page)
}

/// Every row the caller sees (at most one page of the store's largest size).
pub async fn list_all<E: Rules>(s: &AppState, p: &Principal) -> ServiceResult<Vec<E>> {
    Ok(list::<E>(s, p, campana_store::PageParams { limit: Some(campana_store::MAX_PAGE), cursor: None }).await?.items)
}

/// One row, if the caller sees it (404 otherwise).
pub async fn get<E: Rules>(s: &AppState, p: &Principal, id: i64) -> ServiceResult<E> {
    check_visible(&E::scope(s, p).await?, E::KIND, id)?;
    let mut e = s.store.get::<E>(id).await?;
    E::for_reader(std::slice::from_mut(&mut e), s, p).await?;
    Ok(e)
}

pub async fn create<E: Rules>(s: &AppState, a: &Actor, p: &Principal, input: &E::Input) -> ServiceResult<E> {
    E::check(p, input)?;
    E::check_change(s, p, None, Some(input)).await?;
    audit::create::<E>(s, a, input).await
}

pub async fn update<E: Rules>(s: &AppState, a: &Actor, p: &Principal, id: i64, input: &E::Input) -> ServiceResult<E> {
    check_visible(&E::scope(s, p).await?, E::KIND, id)?;
    E::check(p, input)?;
    E::check_change(s, p, Some(id), Some(input)).await?;
    let mut e = audit::update::<E>(s, a, id, input).await?;
    E::for_reader(std::slice::from_mut(&mut e), s, p).await?;
    Ok(e)
}

pub async fn delete<E: Rules>(s: &AppState, a: &Actor, p: &Principal, id: i64) -> ServiceResult<()> {
    check_visible(&E::scope(s, p).await?, E::KIND, id)?;
    E::check_change(s, p, Some(id), None).await?;
    audit::delete::<E>(s, a, id).await
}
