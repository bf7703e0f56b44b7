//! Campaigns: list, get, create, update, delete, life-cycle actions and forecasts, for the API
//! and the console alike. A campaign outside the caller's campaigns profile does not exist for
//! them; only a user with every campaign creates one; a campaign names only contact lists the
//! caller sees.

use super::audit::{self, Actor};
use super::{Principal, ServiceError, ServiceResult};
use crate::state::AppState;
use campana_core::campaign::{Campaign, CampaignAction, CampaignInput};
use campana_core::CampaignId;
use campana_store::{CampaignFilter, PageParams, MAX_PAGE};
use chrono::{DateTime, Utc};

/// A campaign the caller sees (404 otherwise).
pub async fn get(s: &AppState, p: &Principal, id: CampaignId) -> ServiceResult<Campaign> {
    p.visible_campaign(id)?;
    Ok(s.store.get_campaign(id).await?)
}

/// Every campaign the caller sees, all pages.
pub async fn list_all(s: &AppState, p: &Principal) -> ServiceResult<Vec<Campaign>> {
    let filter = CampaignFilter { only: p.campaign_scope(), ..Default::default() };
    let mut all = Vec::new();
    let mut page = PageParams { limit: Some(MAX_PAGE), cursor: None };
    loop {
        let got = s.store.list_campaigns(&filter, page).await?;
        all.extend(got.items);
        match got.next_cursor {
            Some(c) => page.cursor = Some(PageParams::parse_cursor(&c)?),
            None => return Ok(all),
        }
    }
}

pub async fn create(s: &AppState, a: &Actor, p: &Principal, input: &CampaignInput) -> ServiceResult<Campaign> {
    if p.campaign_scope().is_some() {
        return Err(ServiceError::forbidden(
            "your campaigns profile lists specific campaigns; only users with all campaigns may create one",
        ));
    }
    p.check_campaign_input(&s.store, input).await?;
    audit::create_campaign(s, a, input).await
}

pub async fn update(s: &AppState, a: &Actor, p: &Principal, id: CampaignId, input: &CampaignInput) -> ServiceResult<Campaign> {
    p.visible_campaign(id)?;
    p.check_campaign_input(&s.store, input).await?;
    audit::update_campaign(s, a, id, input).await
}

pub async fn delete(s: &AppState, a: &Actor, p: &Principal, id: CampaignId) -> ServiceResult<()> {
    p.visible_campaign(id)?;
    audit::delete_campaign(s, a, id).await
}

/// Start, pause, resume, stop, complete or archive (409 for a transition the state forbids).
pub async fn action(s: &AppState, a: &Actor, p: &Principal, id: CampaignId, action: CampaignAction) -> ServiceResult<Campaign> {
    p.visible_campaign(id)?;
    audit::campaign_action(s, a, id, action).await
}

/// A forecast by simulation for a campaign the caller sees (off the async threads, bounded).
pub async fn forecast(
    s: &AppState,
    p: &Principal,
    id: CampaignId,
    req: &crate::explain::ForecastRequest,
    now: DateTime<Utc>,
) -> ServiceResult<campana_sim::Forecast> {
    let c = get(s, p, id).await?;
    Ok(crate::explain::forecast(&s.store, &c, req, now).await?)
}
