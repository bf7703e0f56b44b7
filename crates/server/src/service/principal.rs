//! The caller of a command or query, and the rules of what they may see and grant.
//!
//! A user's campaigns profile (every campaign, or listed ones) limits what they see: a campaign
//! outside it, a contact list of no campaign of theirs, a user of other campaigns, does not
//! exist for them (404, the store's own answer for an id that does not exist). These rules are
//! here once; the front-ends and the other services ask them.

use super::{ServiceError, ServiceResult};
use campana_core::stored::Role;
use campana_core::user::{CampaignsProfile, Privilege, User};
use campana_core::CampaignId;
use campana_store::auth::{Authenticated, TokenKind};

/// The authenticated caller, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub privileges: Vec<Privilege>,
    pub kind: TokenKind,
    pub token_id: i64,
}

impl Principal {
    /// The caller a valid session or token stands for.
    pub fn from_authenticated(a: Authenticated) -> Principal {
        Principal { privileges: a.role.input.privileges.clone(), user: a.user, kind: a.kind, token_id: a.token_id }
    }
    pub fn has(&self, p: Privilege) -> bool {
        self.privileges.contains(&p)
    }
    /// `None`: every campaign; `Some(ids)`: only these.
    pub fn campaign_scope(&self) -> Option<Vec<CampaignId>> {
        match &self.user.input.campaigns_profile {
            CampaignsProfile::All => None,
            CampaignsProfile::Only { campaign_ids } => Some(campaign_ids.clone()),
        }
    }
    pub fn sees_campaign(&self, id: CampaignId) -> bool {
        self.user.input.campaigns_profile.allows(id)
    }
    /// The one rule for "only the campaigns you can see": a campaign outside the caller's
    /// profile does not exist for them (the store's own answer for an unknown id).
    pub fn visible_campaign(&self, id: CampaignId) -> ServiceResult<()> {
        if self.sees_campaign(id) {
            Ok(())
        } else {
            Err(ServiceError::not_found(format!("campaign {id} does not exist")))
        }
    }
    /// An object of one campaign (`Some`) or of none (`None`, seen by all): does the caller see it?
    pub fn sees_campaign_of(&self, id: Option<CampaignId>) -> bool {
        id.is_none_or(|c| self.sees_campaign(c))
    }
    /// The items about campaigns the caller sees (`campaign_of` tells an item's campaign).
    pub fn visible_items<T>(&self, items: Vec<T>, campaign_of: impl Fn(&T) -> CampaignId) -> Vec<T> {
        items.into_iter().filter(|x| self.sees_campaign(campaign_of(x))).collect()
    }
    /// The contact lists this user may see: `None` for all, else those of their campaigns.
    pub async fn visible_lists(&self, store: &campana_store::Store) -> ServiceResult<Option<Vec<i64>>> {
        match self.campaign_scope() {
            None => Ok(None),
            Some(c) => Ok(Some(store.lists_visible_with(&c).await?)),
        }
    }
    /// A campaign referenced in an input (a disposition's, a manager tag's) must be one the user
    /// sees; otherwise the answer is the store's own for a campaign that does not exist.
    pub fn check_campaign_ref(&self, field: &str, id: Option<CampaignId>) -> ServiceResult<()> {
        match id {
            Some(c) if !self.sees_campaign(c) => Err(ServiceError::field(field, format!("campaign {c} does not exist"))),
            _ => Ok(()),
        }
    }
    /// The contact lists a campaign input names must be lists the user sees (else a user
    /// limited to some campaigns could attach another campaign's list to theirs and read it).
    pub async fn check_campaign_input(
        &self,
        store: &campana_store::Store,
        input: &campana_core::campaign::CampaignInput,
    ) -> ServiceResult<()> {
        let Some(visible) = self.visible_lists(store).await? else { return Ok(()) };
        let errors: Vec<campana_core::FieldError> = input
            .contact_list_ids
            .iter()
            .filter(|l| !visible.contains(&l.0))
            .map(|l| campana_core::FieldError::new("contact_list_ids", format!("contact list {l} does not exist")))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::invalid(errors))
        }
    }
    /// Users a reader limited to some campaigns sees (and, with `users_roles`, manages): those
    /// limited to campaigns all of theirs. A user with an empty list belongs to no campaign, so
    /// to no limited reader (else "all of theirs" would hold for nothing at all).
    pub fn sees_user(&self, u: &User) -> bool {
        match (&self.user.input.campaigns_profile, &u.input.campaigns_profile) {
            (CampaignsProfile::All, _) => true,
            (CampaignsProfile::Only { .. }, CampaignsProfile::All) => false,
            (CampaignsProfile::Only { .. }, CampaignsProfile::Only { campaign_ids }) => {
                !campaign_ids.is_empty() && campaign_ids.iter().all(|c| self.sees_campaign(*c))
            }
        }
    }
    /// Nobody grants what they do not hold: the privileges of `privileges` this user lacks.
    fn lacks(&self, privileges: &[Privilege]) -> Vec<&'static str> {
        privileges.iter().filter(|p| !self.has(**p)).map(|p| p.as_str()).collect()
    }
    /// A user this caller creates (`before` = `None`) or changes: a campaigns profile within
    /// theirs ([`Principal::check_grant`]), and a new role giving only privileges they hold.
    pub async fn check_user_change(
        &self,
        store: &campana_store::Store,
        before: Option<&User>,
        input: &campana_core::user::UserInput,
    ) -> ServiceResult<()> {
        self.check_grant(&input.campaigns_profile)?;
        if before.is_some_and(|b| b.input.role_id == input.role_id) {
            return Ok(());
        }
        // A role that does not exist is the store's to report, by field.
        let Ok(role) = store.get::<Role>(input.role_id.0).await else { return Ok(()) };
        let lacking = self.lacks(&role.input.privileges);
        if lacking.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::field(
                "role_id",
                format!(
                    "role '{}' gives privileges you do not hold ({}); you may grant only your own",
                    role.input.name,
                    lacking.join(", ")
                ),
            ))
        }
    }
    /// A role this caller creates (`before` = `None`), changes (`input` given) or deletes:
    /// the privileges it adds must be the caller's own; a user limited to some campaigns
    /// changes no built-in role (every campaign's users hold them) and no role held by a user
    /// outside their campaigns.
    pub async fn check_role_change(
        &self,
        store: &campana_store::Store,
        before: Option<&Role>,
        input: Option<&campana_core::user::RoleInput>,
    ) -> ServiceResult<()> {
        if let Some(i) = input {
            let added: Vec<Privilege> =
                i.privileges.iter().filter(|p| before.is_none_or(|b| !b.input.privileges.contains(p))).copied().collect();
            let lacking = self.lacks(&added);
            if !lacking.is_empty() {
                return Err(ServiceError::field(
                    "privileges",
                    format!("you may grant only privileges you hold; you do not hold {}", lacking.join(", ")),
                ));
            }
        }
        let (Some(b), Some(_)) = (before, self.campaign_scope()) else { return Ok(()) };
        if b.builtin {
            return Err(ServiceError::forbidden(format!(
                "'{}' is a built-in role held across campaigns; only a user with every campaign may change it",
                b.input.name
            )));
        }
        let holders = store.list_all_users().await?;
        if holders.iter().any(|u| u.input.role_id == b.id && !self.sees_user(u)) {
            return Err(ServiceError::forbidden(format!(
                "role '{}' is held by users outside your campaigns; only a user with every campaign may change it",
                b.input.name
            )));
        }
        Ok(())
    }
    /// A user limited to some campaigns grants at most those.
    pub fn check_grant(&self, profile: &CampaignsProfile) -> ServiceResult<()> {
        match (&self.user.input.campaigns_profile, profile) {
            (CampaignsProfile::All, _) => Ok(()),
            (CampaignsProfile::Only { .. }, CampaignsProfile::All) => Err(ServiceError::field(
                "campaigns_profile.scope",
                "your own campaigns profile lists specific campaigns; you may grant only those",
            )),
            (CampaignsProfile::Only { .. }, CampaignsProfile::Only { campaign_ids }) => {
                let errors: Vec<campana_core::FieldError> = campaign_ids
                    .iter()
                    .filter(|c| !self.sees_campaign(**c))
                    .map(|c| campana_core::FieldError::new("campaigns_profile.campaign_ids", format!("campaign {c} does not exist")))
                    .collect();
                if errors.is_empty() {
                    Ok(())
                } else {
                    Err(ServiceError::invalid(errors))
                }
            }
        }
    }
    /// 404 for a contact list outside the user's campaigns (it does not exist for them).
    pub async fn check_list(&self, store: &campana_store::Store, list: i64) -> ServiceResult<()> {
        match self.visible_lists(store).await? {
            Some(ids) if !ids.contains(&list) => Err(ServiceError::not_found(format!("contact list {list} does not exist"))),
            _ => Ok(()),
        }
    }
}
