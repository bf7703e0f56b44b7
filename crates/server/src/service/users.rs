//! Users: list, get, create, update, delete, for the API and the console alike. A reader
//! limited to some campaigns sees (and with `users_roles` manages) only the users limited to
//! campaigns of theirs ([`Principal::sees_user`]); the others do not exist for them.

use super::audit::{self, Actor};
use super::{Principal, ServiceError, ServiceResult};
use crate::state::AppState;
use campana_core::stored::Page;
use campana_core::user::{User, UserInput};
use campana_core::UserId;

/// One page of the users the caller sees.
pub async fn list(s: &AppState, p: &Principal, mut page: campana_store::PageParams) -> ServiceResult<Page<User>> {
    if p.campaign_scope().is_none() {
        return Ok(s.store.list_users(page).await?);
    }
    // A reader limited to some campaigns sees the users limited to campaigns of theirs.
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
    Ok(Page { items, next_cursor })
}

/// Every user the caller sees (at most one page of the store's largest size).
pub async fn list_all(s: &AppState, p: &Principal) -> ServiceResult<Vec<User>> {
    let page = campana_store::PageParams { limit: Some(campana_store::MAX_PAGE), cursor: None };
    Ok(s.store.list_users(page).await?.items.into_iter().filter(|u| p.sees_user(u)).collect())
}

/// A user, if the caller sees them (404 otherwise).
pub async fn get(s: &AppState, p: &Principal, id: UserId) -> ServiceResult<User> {
    let u = s.store.get_user(id).await?;
    if p.sees_user(&u) {
        Ok(u)
    } else {
        Err(ServiceError::not_found(format!("user {id} does not exist")))
    }
}

pub async fn create(s: &AppState, a: &Actor, p: &Principal, input: &UserInput) -> ServiceResult<User> {
    p.check_user_change(&s.store, None, input).await?;
    audit::create_user(s, a, input).await
}

pub async fn update(s: &AppState, a: &Actor, p: &Principal, id: UserId, input: &UserInput) -> ServiceResult<User> {
    let before = get(s, p, id).await?;
    p.check_user_change(&s.store, Some(&before), input).await?;
    audit::update_user(s, a, id, input).await
}

pub async fn delete(s: &AppState, a: &Actor, p: &Principal, id: UserId) -> ServiceResult<()> {
    get(s, p, id).await?;
    audit::delete_user(s, a, id).await
}
