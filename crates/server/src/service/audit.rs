//! Every change made through the API or the web console, written to the audit log with who made
//! it, when, and the object before and after (JSON).
//!
//! Both front-ends call these functions instead of the store's write methods, so a change cannot
//! be audited on one path and forgotten on the other; each function also tells the live dialer
//! what changed. An entry is written right after its change commits; if that write fails, the
//! request answers 500 (the change stays) and the server logs why.
//!
//! Each entry records the campaigns it is about ([`Concerns`]) so that a user limited to some
//! campaigns only reads entries about those (`GET /api/v1/audit`).

use super::{Principal, ServiceError, ServiceResult};
use crate::state::AppState;
use campana_core::campaign::{Campaign, CampaignAction, CampaignInput};
use campana_core::stored::*;
use campana_core::user::{CampaignsProfile, User, UserInput};
use campana_core::{CampaignId, ContactListId, DncListId, PhoneNumber, RecordId, UserId};
use campana_store::{Concerns, Entity, NewAuditEntry, Store, StoreError};
use serde::Serialize;
use serde_json::{json, Value};
use std::future::Future;

/// Entity types about users, roles and sign-ins: readable with the `users_roles` privilege;
/// every other entry is readable with `reports`.
pub const USER_TYPES: &[&str] = &["user", "role", "session", "api_token"];

/// Where a change came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    Api,
    Console,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Api => "api",
            Via::Console => "console",
        }
    }
}

/// Who made a change.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: Option<i64>,
    pub name: String,
    pub via: Via,
    /// The actor's campaigns profile (limits what they may reference).
    pub principal: Option<Principal>,
}

impl Actor {
    pub fn of(p: &Principal, via: Via) -> Actor {
        Actor { user_id: Some(p.user.id.0), name: p.user.input.username.clone(), via, principal: Some(p.clone()) }
    }
    pub fn user(id: UserId, name: &str, via: Via) -> Actor {
        Actor { user_id: Some(id.0), name: name.to_string(), via, principal: None }
    }
}

/// One entry before it is written.
pub struct Change {
    pub action: String,
    pub entity_type: &'static str,
    pub entity_id: Option<String>,
    pub summary: String,
    pub concerns: Concerns,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Writes an entry.
pub async fn log(s: &AppState, a: &Actor, c: Change) -> ServiceResult<()> {
    let e = NewAuditEntry {
        actor_id: a.user_id,
        actor_name: a.name.clone(),
        via: a.via.as_str().to_string(),
        action: c.action,
        entity_type: c.entity_type.to_string(),
        entity_id: c.entity_id,
        summary: c.summary,
        concerns: c.concerns,
        before: c.before,
        after: c.after,
    };
    s.store.insert_audit(&e).await.map_err(|err| {
        tracing::error!(error = %err, entity = e.entity_type, action = e.action, "audit entry not written");
        ServiceError::Internal("the change was saved, but its audit entry could not be written; see the server log".into())
    })?;
    Ok(())
}

fn union(a: Concerns, b: Concerns) -> Concerns {
    match (a, b) {
        (Concerns::Global, Concerns::Global) => Concerns::Global,
        (Concerns::Campaigns(x), Concerns::Global) | (Concerns::Global, Concerns::Campaigns(x)) => Concerns::Campaigns(x),
        (Concerns::Campaigns(mut x), Concerns::Campaigns(y)) => {
            x.extend(y);
            Concerns::Campaigns(x)
        }
    }
}

fn value<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The campaigns using a contact list. A list no campaign uses yet gives an empty set: only
/// readers with every campaign see its entries (it may be attached to any campaign later, and
/// its entries must not show its name to users who will not see it then).
pub async fn list_concerns(store: &Store, list: i64) -> Result<Concerns, StoreError> {
    Ok(Concerns::Campaigns(store.campaigns_of_list(ContactListId(list)).await?))
}

fn campaign_concerns(id: Option<CampaignId>) -> Concerns {
    match id {
        Some(c) => Concerns::Campaigns(vec![c.0]),
        None => Concerns::Global,
    }
}

/// A user's entries are about the campaigns of their profile; a user with every campaign is
/// about all of them (only readers with every campaign see those entries).
pub fn user_concerns(u: &UserInput) -> Concerns {
    match &u.campaigns_profile {
        CampaignsProfile::All => Concerns::Campaigns(vec![]),
        CampaignsProfile::Only { campaign_ids } => Concerns::Campaigns(campaign_ids.iter().map(|c| c.0).collect()),
    }
}

// ---- catalogue objects ----

/// A catalogue object the log can describe: its type name and the campaigns it is about.
pub trait Audited: Entity<Input: Serialize> + Sync {
    const TYPE: &'static str;
    fn input(&self) -> &Self::Input;
    fn concerns<'a>(&'a self, _store: &'a Store) -> impl Future<Output = Result<Concerns, StoreError>> + Send + 'a {
        async { Ok(Concerns::Global) }
    }
    /// What the entry keeps: the id and the editable fields (never computed counts, which
    /// could count campaigns the reader may not see).
    fn snapshot(&self) -> Value {
        let mut v = value(self.input());
        if let Some(o) = v.as_object_mut() {
            o.insert("id".into(), json!(self.raw_id()));
        }
        v
    }
}

macro_rules! audited {
    ($t:ty, $name:literal) => {
        impl Audited for $t {
            const TYPE: &'static str = $name;
            fn input(&self) -> &Self::Input {
                &self.input
            }
        }
    };
    ($t:ty, $name:literal, |$self_:ident, $store:ident| $concerns:expr) => {
        impl Audited for $t {
            const TYPE: &'static str = $name;
            fn input(&self) -> &Self::Input {
                &self.input
            }
            fn concerns<'a>(&'a self, $store: &'a Store) -> impl Future<Output = Result<Concerns, StoreError>> + Send + 'a {
                let $self_ = self;
                async move { $concerns }
            }
        }
    };
}

audited!(CampaignGroup, "campaign_group");
audited!(AgentGroup, "agent_group");
audited!(Script, "script");
audited!(SettingsProfile, "settings_profile");
audited!(DncList, "dnc_list");
audited!(Role, "role");
audited!(Disposition, "disposition", |d, _s| Ok(campaign_concerns(d.input.campaign_id)));
audited!(ManagerTag, "manager_tag", |t, _s| Ok(campaign_concerns(t.input.campaign_id)));
audited!(ContactList, "contact_list", |l, s| list_concerns(s, l.id.0).await);

fn name_of<E: Audited>(e: &E) -> String {
    campana_core::Validated::name(e.input()).to_string()
}

pub async fn create<E: Audited>(s: &AppState, a: &Actor, input: &E::Input) -> ServiceResult<E> {
    let e = s.store.create::<E>(input).await?;
    let concerns = e.concerns(&s.store).await?;
    let c = Change {
        action: "create".into(),
        entity_type: E::TYPE,
        entity_id: Some(e.raw_id().to_string()),
        summary: name_of(&e),
        concerns,
        before: None,
        after: Some(e.snapshot()),
    };
    log(s, a, c).await?;
    Ok(e)
}

pub async fn update<E: Audited>(s: &AppState, a: &Actor, id: i64, input: &E::Input) -> ServiceResult<E> {
    let before = s.store.get::<E>(id).await?;
    let after = s.store.update::<E>(id, input).await?;
    let concerns = union(before.concerns(&s.store).await?, after.concerns(&s.store).await?);
    let c = Change {
        action: "update".into(),
        entity_type: E::TYPE,
        entity_id: Some(id.to_string()),
        summary: name_of(&after),
        concerns,
        before: Some(before.snapshot()),
        after: Some(after.snapshot()),
    };
    log(s, a, c).await?;
    Ok(after)
}

pub async fn delete<E: Audited>(s: &AppState, a: &Actor, id: i64) -> ServiceResult<()> {
    let before = s.store.get::<E>(id).await?;
    let concerns = before.concerns(&s.store).await?;
    s.store.delete::<E>(id).await?;
    let c = Change {
        action: "delete".into(),
        entity_type: E::TYPE,
        entity_id: Some(id.to_string()),
        summary: name_of(&before),
        concerns,
        before: Some(before.snapshot()),
        after: None,
    };
    log(s, a, c).await
}

// ---- campaigns ----

fn campaign_change(action: &str, c: &Campaign, before: Option<Value>, after: Option<Value>) -> Change {
    Change {
        action: action.into(),
        entity_type: "campaign",
        entity_id: Some(c.id.0.to_string()),
        summary: c.input.name.clone(),
        concerns: Concerns::Campaigns(vec![c.id.0]),
        before,
        after,
    }
}

pub async fn create_campaign(s: &AppState, a: &Actor, input: &CampaignInput) -> ServiceResult<Campaign> {
    let c = s.store.create_campaign(input).await?;
    log(s, a, campaign_change("create", &c, None, Some(value(&c)))).await?;
    s.dialer.campaigns_changed();
    Ok(c)
}

pub async fn update_campaign(s: &AppState, a: &Actor, id: CampaignId, input: &CampaignInput) -> ServiceResult<Campaign> {
    let before = s.store.get_campaign(id).await?;
    let c = s.store.update_campaign(id, input).await?;
    s.dialer.campaigns_changed();
    log(s, a, campaign_change("update", &c, Some(value(&before)), Some(value(&c)))).await?;
    Ok(c)
}

pub async fn delete_campaign(s: &AppState, a: &Actor, id: CampaignId) -> ServiceResult<()> {
    let before = s.store.get_campaign(id).await?;
    s.store.delete_campaign(id).await?;
    s.dialer.campaigns_changed();
    // The store forgot the id in the log (it may be reused); so does this entry: users with
    // every campaign read the history of deleted campaigns.
    let mut c = campaign_change("delete", &before, Some(value(&before)), None);
    c.concerns = Concerns::Campaigns(vec![]);
    log(s, a, c).await
}

/// Start, pause, resume, stop, complete, archive: the entry keeps the state before and after.
pub async fn campaign_action(s: &AppState, a: &Actor, id: CampaignId, action: CampaignAction) -> ServiceResult<Campaign> {
    let before = s.store.get_campaign(id).await?;
    let c = s.store.campaign_action(id, action).await?;
    s.dialer.campaigns_changed();
    log(s, a, campaign_change(action.as_str(), &c, Some(json!({"state": before.state})), Some(json!({"state": c.state})))).await?;
    Ok(c)
}

// ---- users ----

fn user_snapshot(u: &User, password_changed: bool) -> Value {
    let mut v = value(u);
    if let Some(o) = v.as_object_mut() {
        o.insert("password_changed".into(), json!(password_changed));
    }
    v
}

fn user_change(action: &str, u: &User, concerns: Concerns, before: Option<Value>, after: Option<Value>) -> Change {
    Change {
        action: action.into(),
        entity_type: "user",
        entity_id: Some(u.id.0.to_string()),
        summary: u.input.username.clone(),
        concerns,
        before,
        after,
    }
}

pub async fn create_user(s: &AppState, a: &Actor, input: &UserInput) -> ServiceResult<User> {
    input.validate()?;
    let hash = input.password.as_deref().map(super::account::hash_password);
    let u = s.store.create_user(input, hash).await?;
    log(s, a, user_change("create", &u, user_concerns(&u.input), None, Some(user_snapshot(&u, input.password.is_some())))).await?;
    Ok(u)
}

pub async fn update_user(s: &AppState, a: &Actor, id: UserId, input: &UserInput) -> ServiceResult<User> {
    input.validate()?;
    let before = s.store.get_user(id).await?;
    let hash = input.password.as_deref().map(super::account::hash_password);
    let u = s.store.update_user(id, input, hash).await?;
    if input.password.is_some() {
        // A new password ends the user's other browser sessions (the one making the change, if
        // it is theirs, stays); API tokens stay, listed and revocable.
        let keep = a.principal.as_ref().filter(|p| p.user.id == id).map(|p| p.token_id);
        s.store.end_sessions(id, keep).await?;
    }
    let concerns = union(user_concerns(&before.input), user_concerns(&u.input));
    let c = user_change("update", &u, concerns, Some(user_snapshot(&before, false)), Some(user_snapshot(&u, input.password.is_some())));
    log(s, a, c).await?;
    Ok(u)
}

pub async fn delete_user(s: &AppState, a: &Actor, id: UserId) -> ServiceResult<()> {
    let before = s.store.get_user(id).await?;
    s.store.delete_user(id).await?;
    log(s, a, user_change("delete", &before, user_concerns(&before.input), Some(user_snapshot(&before, false)), None)).await
}

/// A user changes their own password: the other browser sessions end (this one stays).
pub async fn change_own_password(s: &AppState, p: &Principal, via: Via, password: &str) -> ServiceResult<()> {
    let mut probe = p.user.input.clone();
    probe.password = Some(password.to_string());
    probe.validate().map_err(|errs| {
        ServiceError::invalid(
            errs.into_iter().filter(|e| e.field == "password").map(|e| campana_core::FieldError::new("new_password", e.reason)).collect(),
        )
    })?;
    s.store.set_password(p.user.id, &super::account::hash_password(password)).await?;
    let ended = s.store.end_sessions(p.user.id, Some(p.token_id)).await?;
    session(s, &Actor::of(p, via), "password", "user", p.user.id, Some(json!({"sessions_ended": ended}))).await
}

/// Sign-ins (`login`, `login_failed`, `locked`), sign-outs and API tokens, about the user.
pub async fn session(
    s: &AppState,
    a: &Actor,
    action: &str,
    entity_type: &'static str,
    user: UserId,
    after: Option<Value>,
) -> ServiceResult<()> {
    let concerns = match s.store.get_user(user).await {
        Ok(u) => user_concerns(&u.input),
        Err(_) => Concerns::Campaigns(vec![]),
    };
    let c = Change {
        action: action.into(),
        entity_type,
        entity_id: Some(user.0.to_string()),
        summary: a.name.clone(),
        concerns,
        before: None,
        after,
    };
    log(s, a, c).await
}

/// An agent joining or leaving the dialer, ready or not ready (with the pause code): the input is
/// given to the dialer, then written as an `agent_state` entry about the signed-in agent
/// (readable with `reports` by those who may see every campaign of the agent's profile).
pub async fn agent_state(s: &AppState, p: &Principal, via: Via, input: campana_engine::Input) -> ServiceResult<()> {
    use campana_engine::Input;
    let (action, after) = match &input {
        Input::AgentLogin { groups, .. } => ("login", json!({"agent_group_ids": groups})),
        Input::AgentReady { .. } => ("ready", json!({})),
        Input::AgentNotReady { pause_code, .. } => ("not_ready", json!({"pause_code": pause_code})),
        Input::AgentLogout { .. } => ("logout", json!({})),
        _ => return Err(ServiceError::Internal("not an agent state change".into())),
    };
    s.dialer.agent(input).await?;
    let c = Change {
        action: action.into(),
        entity_type: "agent_state",
        entity_id: Some(p.user.id.0.to_string()),
        summary: p.user.input.username.clone(),
        concerns: user_concerns(&p.user.input),
        before: None,
        after: Some(after),
    };
    log(s, &Actor::of(p, via), c).await
}

// ---- records, upserts, imports ----

pub async fn patch_record(
    s: &AppState,
    a: &Actor,
    list: ContactListId,
    id: RecordId,
    patch: &campana_core::record::RecordPatch,
) -> ServiceResult<campana_core::record::Record> {
    let before = s.store.get_record(list, id).await?;
    let r = s.store.patch_record(list, id, patch).await?;
    // The dialer offers an edited record again (a deferral may no longer hold).
    s.store.clear_deferral(r.id).await?;
    let c = Change {
        action: "update".into(),
        entity_type: "record",
        entity_id: Some(id.0.to_string()),
        summary: format!("list {} · {}", list.0, r.phone),
        concerns: list_concerns(&s.store, list.0).await?,
        before: Some(value(&before)),
        after: Some(value(&r)),
    };
    log(s, a, c).await?;
    Ok(r)
}

/// One customer pushed by external id: the entry keeps their records before and after.
pub async fn upsert_one(
    s: &AppState,
    a: &Actor,
    list: ContactListId,
    ext: &str,
    contact: campana_core::record::Contact,
) -> ServiceResult<(campana_store::UpsertOutcome, Vec<campana_core::record::Record>)> {
    let before = s.store.records_by_external_id(list, ext).await?;
    let outcome = s.store.upsert_contacts(list, &[contact]).await?;
    let after = s.store.records_by_external_id(list, ext).await?;
    let c = Change {
        action: "upsert".into(),
        entity_type: "customer",
        entity_id: Some(format!("{}/{ext}", list.0)),
        summary: format!("list {} · external id {ext}", list.0),
        concerns: list_concerns(&s.store, list.0).await?,
        before: (!before.is_empty()).then(|| value(&before)),
        after: Some(value(&after)),
    };
    log(s, a, c).await?;
    Ok((outcome, after))
}

/// A bulk upsert: the entry keeps the external ids pushed and what the merge did.
pub async fn bulk_upsert(
    s: &AppState,
    a: &Actor,
    list: ContactListId,
    contacts: &[campana_core::record::Contact],
) -> ServiceResult<campana_store::UpsertOutcome> {
    let outcome = s.store.upsert_contacts(list, contacts).await?;
    let ids: Vec<&str> = contacts.iter().filter_map(|c| c.external_id.as_deref()).collect();
    let c = Change {
        action: "bulk_upsert".into(),
        entity_type: "contact_list",
        entity_id: Some(list.0.to_string()),
        summary: format!("{} customers", contacts.len()),
        concerns: list_concerns(&s.store, list.0).await?,
        before: None,
        after: Some(json!({"external_ids": ids, "outcome": outcome})),
    };
    log(s, a, c).await?;
    Ok(outcome)
}

/// An import started or cancelled.
pub async fn import(s: &AppState, a: &Actor, action: &str, st: &campana_store::ImportStatus) -> ServiceResult<()> {
    let c = Change {
        action: action.into(),
        entity_type: "import",
        entity_id: Some(st.id.0.to_string()),
        summary: format!("list {}", st.list_id.0),
        concerns: list_concerns(&s.store, st.list_id.0).await?,
        before: None,
        after: Some(value(st)),
    };
    log(s, a, c).await
}

// ---- do-not-call ----

fn dnc_change(action: &str, list: DncListId, phone: &PhoneNumber, before: Option<Value>, after: Option<Value>) -> Change {
    Change {
        action: action.into(),
        entity_type: "dnc_entry",
        entity_id: Some(format!("{}/{phone}", list.0)),
        summary: phone.to_string(),
        concerns: Concerns::Global,
        before,
        after,
    }
}

pub async fn put_dnc_entry(
    s: &AppState,
    a: &Actor,
    list: DncListId,
    e: &campana_core::record::DncEntryInput,
) -> ServiceResult<campana_core::record::DncEntry> {
    let before = s.store.get_dnc_entry(list, &e.phone).await.ok();
    let entry = s.store.put_dnc_entry(list, e).await?;
    s.dialer.dnc_changed(vec![e.phone.clone()]);
    let action = if before.is_some() { "update" } else { "create" };
    log(s, a, dnc_change(action, list, &e.phone, before.as_ref().map(value), Some(value(&entry)))).await?;
    Ok(entry)
}

pub async fn put_dnc_entries(
    s: &AppState,
    a: &Actor,
    list: DncListId,
    entries: &[campana_core::record::DncEntryInput],
) -> ServiceResult<u64> {
    let applied = s.store.put_dnc_entries(list, entries).await?;
    s.dialer.dnc_changed(entries.iter().map(|e| e.phone.clone()).collect());
    let c = Change {
        action: "bulk_add".into(),
        entity_type: "dnc_list",
        entity_id: Some(list.0.to_string()),
        summary: format!("{applied} numbers"),
        concerns: Concerns::Global,
        before: None,
        after: Some(json!({"entries": value(&entries)})),
    };
    log(s, a, c).await?;
    Ok(applied)
}

pub async fn delete_dnc_entry(s: &AppState, a: &Actor, list: DncListId, phone: &PhoneNumber) -> ServiceResult<()> {
    let before = s.store.get_dnc_entry(list, phone).await?;
    s.store.delete_dnc_entry(list, phone).await?;
    s.dialer.dnc_changed(vec![phone.clone()]);
    log(s, a, dnc_change("delete", list, phone, Some(value(&before)), None)).await
}
