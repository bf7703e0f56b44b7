//! List, create, edit and delete pages written once for every catalogue object (settings
//! profiles, campaign groups, agent groups, scripts, dispositions, manager tags, DNC lists,
//! roles, contact lists) and users. Each object says its fields, columns and store calls in a
//! [`Screen`]; the handlers are generic.

use super::form::{self, Field, FormView, Values};
use super::*;
use crate::service::{catalog, users, Actor, Via};
use axum::routing::MethodRouter;
use campana_core::stored::*;
use campana_core::user::{User, UserInput};
use campana_core::{FieldError, UserId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::future::Future;

/// A kind of object with pages under `/{PATH}`.
pub trait Screen: Sized + Send + Sync + 'static {
    type Input: Serialize + DeserializeOwned + Send + Sync;
    /// URL segment, the same as the API's (`campaign-groups`), so the privilege table applies.
    const PATH: &'static str;
    /// Catalogue key of the page title (plural).
    const TITLE: &'static str;
    /// Catalogue keys of the extra list columns (after id and name).
    const COLUMNS: &'static [&'static str] = &[];

    fn fields() -> Vec<Field>;
    fn id(&self) -> i64;
    fn name(&self) -> String;
    fn input(&self) -> &Self::Input;
    /// Extra list cells, in the order of [`Screen::COLUMNS`].
    fn cells(&self, _ctx: &Ctx) -> Vec<Markup> {
        Vec::new()
    }
    /// Values of a new object's form.
    fn blank() -> Values {
        Values::default()
    }
    /// Adjusts the submitted JSON before it is parsed (e.g. drop fields that do not apply).
    fn adjust(_json: &mut serde_json::Value) {}
    /// The link shown on each row besides "edit" (e.g. a list's records).
    fn open_link(&self) -> Option<String> {
        None
    }
    /// Notes under fields of the edit form of object `id` (e.g. effective values and their source).
    fn hints(_s: &AppState, _ctx: &Ctx, _id: Option<i64>) -> impl Future<Output = WebResult<HashMap<String, Markup>>> + Send {
        async { Ok(HashMap::new()) }
    }

    fn list(s: &AppState, ctx: &Ctx) -> impl Future<Output = WebResult<Vec<Self>>> + Send;
    /// 404 for an object the user may not see.
    fn get(s: &AppState, ctx: &Ctx, id: i64) -> impl Future<Output = WebResult<Self>> + Send;
    fn create(s: &AppState, ctx: &Ctx, input: Self::Input) -> impl Future<Output = Result<Self, WebError>> + Send;
    fn update(s: &AppState, ctx: &Ctx, id: i64, input: Self::Input) -> impl Future<Output = Result<Self, WebError>> + Send;
    fn delete(s: &AppState, ctx: &Ctx, id: i64) -> impl Future<Output = WebResult<()>> + Send;
}

/// Field errors keep the form on screen; anything else is an error page.
pub enum SaveError {
    Fields(Vec<FieldError>),
    Page(WebError),
}

/// Validation errors (and name conflicts, on `name`) stay on the form.
pub fn save_error_of(e: WebError) -> SaveError {
    if !e.errors.is_empty() {
        SaveError::Fields(e.errors)
    } else if e.status == StatusCode::CONFLICT {
        SaveError::Fields(vec![FieldError::new("name", e.message)])
    } else {
        SaveError::Page(e)
    }
}

fn url<E: Screen>(rest: &str) -> String {
    format!("/{}{rest}", E::PATH)
}

async fn list<E: Screen>(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> WebResult<Markup> {
    let items = E::list(&s, &ctx).await?;
    let may_edit = ctx.may(Method::POST, &url::<E>(""));
    let mut headers = vec!["common.id", "common.name"];
    headers.extend_from_slice(E::COLUMNS);
    headers.push("common.actions");
    let rows = items
        .iter()
        .map(|e| {
            let mut row = vec![html! { (e.id()) }, html! { a href=(url::<E>(&format!("/{}", e.id()))) { (e.name()) } }];
            row.extend(e.cells(&ctx));
            row.push(html! {
                @if let Some(l) = e.open_link() { a.button href=(l) { (ctx.t("common.open")) } " " }
                @if may_edit {
                    a.button href=(url::<E>(&format!("/{}", e.id()))) { (ctx.t("common.edit")) } " "
                    (post_button(&ctx, &url::<E>(&format!("/{}/delete", e.id())), ctx.t("common.delete"), Some(ctx.t("common.confirm_delete")), "danger"))
                }
            });
            row
        })
        .collect();
    Ok(page(
        &ctx,
        ctx.t(E::TITLE),
        html! {
            @if may_edit { p { a.button.primary href=(url::<E>("/new")) id="new" { (ctx.t("common.new")) } } }
            (table(&ctx, "items", &headers, rows))
        },
    ))
}

/// The edit page of one object (or a new one): the form, with errors when a save failed.
pub async fn form_page<E: Screen>(s: &AppState, ctx: &Ctx, id: Option<i64>, v: &Values, errors: &[FieldError]) -> WebResult<Response> {
    let fields = E::fields();
    let options = form::load_options(s, &ctx.p, &fields).await?;
    let action = match id {
        Some(id) => url::<E>(&format!("/{id}")),
        None => url::<E>(""),
    };
    let title = match id {
        Some(id) => format!("{} #{id}", ctx.t(E::TITLE)),
        None => format!("{} · {}", ctx.t(E::TITLE), ctx.t("common.new")),
    };
    let hints = E::hints(s, ctx, id).await?;
    let view = FormView { action: &action, fields: &fields, values: v, errors, options: &options, hints, submit: ctx.t("common.save") };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, page(ctx, &title, form::render(ctx, &view))).into_response())
}

async fn new_form<E: Screen>(State(s): State<AppState>, Extension(ctx): Extension<Ctx>) -> WebResult<Response> {
    form_page::<E>(&s, &ctx, None, &E::blank(), &[]).await
}

async fn edit_form<E: Screen>(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> WebResult<Response> {
    let e = E::get(&s, &ctx, id).await?;
    let json = serde_json::to_value(e.input()).unwrap_or_default();
    form_page::<E>(&s, &ctx, Some(id), &Values::from_json(&E::fields(), &json), &[]).await
}

/// Parses a submitted form into the input type, with the screen's adjustment.
pub fn parse_input<E: Screen>(v: &Values) -> Result<E::Input, Vec<FieldError>> {
    let fields = E::fields();
    let mut json = v.to_json(&fields)?;
    E::adjust(&mut json);
    serde_path_to_error::deserialize(json).map_err(|e| vec![FieldError::new(e.path().to_string(), e.inner().to_string())])
}

async fn save<E: Screen>(s: &AppState, ctx: &Ctx, id: Option<i64>, v: Vec<(String, String)>) -> WebResult<Response> {
    let v = Values(v);
    let input = match parse_input::<E>(&v) {
        Ok(i) => i,
        Err(errs) => return form_page::<E>(s, ctx, id, &v, &errs).await,
    };
    let saved = match id {
        Some(id) => E::update(s, ctx, id, input).await,
        None => E::create(s, ctx, input).await,
    };
    match saved {
        Ok(_) => Ok(see_other(&url::<E>(""))),
        Err(e) => match save_error_of(e) {
            SaveError::Fields(errs) => form_page::<E>(s, ctx, id, &v, &errs).await,
            SaveError::Page(e) => Err(e),
        },
    }
}

async fn create<E: Screen>(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Form(v): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    save::<E>(&s, &ctx, None, v).await
}

async fn update<E: Screen>(
    State(s): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<i64>,
    Form(v): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    E::get(&s, &ctx, id).await?;
    save::<E>(&s, &ctx, Some(id), v).await
}

async fn delete<E: Screen>(State(s): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<i64>) -> WebResult<Response> {
    E::get(&s, &ctx, id).await?;
    E::delete(&s, &ctx, id).await?;
    Ok(see_other(&url::<E>("")))
}

/// The routes of a screen; a custom list or object page replaces the generic one (the edit
/// form then moves to `/{PATH}/{id}/edit`).
pub fn routes<E: Screen>(custom_list: Option<MethodRouter<AppState>>, custom_view: Option<MethodRouter<AppState>>) -> Router<AppState> {
    let r = Router::new()
        .route(&url::<E>(""), custom_list.unwrap_or_else(|| get(list::<E>)).post(create::<E>))
        .route(&url::<E>("/new"), get(new_form::<E>))
        .route(&url::<E>("/{id}/delete"), post(delete::<E>));
    match custom_view {
        Some(view) => r.route(&url::<E>("/{id}/edit"), get(edit_form::<E>)).route(&url::<E>("/{id}"), view.post(update::<E>)),
        None => r.route(&url::<E>("/{id}"), get(edit_form::<E>).post(update::<E>)),
    }
}

// ---- the catalogue objects ----

/// Store-backed screens: which rows a user sees, what an input may name and what a reader sees
/// of a row are the service's [`catalog::Rules`], as in the API.
macro_rules! entity_screen {
    ($t:ty, $path:literal, $title:literal, $fields:expr) => {
        impl Screen for $t {
            type Input = <$t as campana_store::Entity>::Input;
            const PATH: &'static str = $path;
            const TITLE: &'static str = $title;
            const COLUMNS: &'static [&'static str] = columns::<$t>();
            fn fields() -> Vec<Field> {
                $fields.to_vec()
            }
            fn id(&self) -> i64 {
                self.id.0
            }
            fn name(&self) -> String {
                campana_core::Validated::name(&self.input).to_string()
            }
            fn input(&self) -> &Self::Input {
                &self.input
            }
            fn cells(&self, ctx: &Ctx) -> Vec<Markup> {
                cells(self, ctx)
            }
            fn blank() -> Values {
                blank::<$t>()
            }
            fn open_link(&self) -> Option<String> {
                open_link(self)
            }
            async fn list(s: &AppState, ctx: &Ctx) -> WebResult<Vec<Self>> {
                Ok(catalog::list_all::<$t>(s, &ctx.p).await?)
            }
            async fn get(s: &AppState, ctx: &Ctx, id: i64) -> WebResult<Self> {
                Ok(catalog::get::<$t>(s, &ctx.p, id).await?)
            }
            async fn create(s: &AppState, ctx: &Ctx, input: Self::Input) -> Result<Self, WebError> {
                Ok(catalog::create::<$t>(s, &Actor::of(&ctx.p, Via::Console), &ctx.p, &input).await?)
            }
            async fn update(s: &AppState, ctx: &Ctx, id: i64, input: Self::Input) -> Result<Self, WebError> {
                Ok(catalog::update::<$t>(s, &Actor::of(&ctx.p, Via::Console), &ctx.p, id, &input).await?)
            }
            async fn delete(s: &AppState, ctx: &Ctx, id: i64) -> WebResult<()> {
                Ok(catalog::delete::<$t>(s, &Actor::of(&ctx.p, Via::Console), &ctx.p, id).await?)
            }
        }
    };
}

/// Per-type extras, dispatched on the type so the macro stays one definition.
trait Extras {
    const COLUMNS: &'static [&'static str] = &[];
    fn cells(&self, _ctx: &Ctx) -> Vec<Markup> {
        Vec::new()
    }
    fn blank() -> Values {
        Values::default()
    }
    fn open_link(&self) -> Option<String> {
        None
    }
}
const fn columns<T: Extras>() -> &'static [&'static str] {
    T::COLUMNS
}
fn cells<T: Extras>(t: &T, ctx: &Ctx) -> Vec<Markup> {
    t.cells(ctx)
}
fn blank<T: Extras>() -> Values {
    T::blank()
}
fn open_link<T: Extras>(t: &T) -> Option<String> {
    t.open_link()
}

fn yes_no(ctx: &Ctx, b: bool) -> Markup {
    html! { (if b { ctx.t("common.yes") } else { ctx.t("common.no") }) }
}

impl Extras for CampaignGroup {}
impl Extras for AgentGroup {}
impl Extras for Script {}
impl Extras for SettingsProfile {
    const COLUMNS: &'static [&'static str] = &["field.is_default", "profiles.campaigns", "profiles.settings_set"];
    fn cells(&self, ctx: &Ctx) -> Vec<Markup> {
        vec![yes_no(ctx, self.input.is_default), html! { (self.campaign_count) }, html! { (self.input.settings.set_fields().join(", ")) }]
    }
}
impl Extras for Disposition {
    const COLUMNS: &'static [&'static str] =
        &["field.colour", "field.is_success", "field.is_final", "field.is_callback", "field.is_do_not_call"];
    fn cells(&self, ctx: &Ctx) -> Vec<Markup> {
        let i = &self.input;
        vec![
            swatch(i.colour.as_str(), i.colour.as_str()),
            yes_no(ctx, i.is_success),
            yes_no(ctx, i.is_final),
            yes_no(ctx, i.is_callback),
            yes_no(ctx, i.is_do_not_call),
        ]
    }
    fn blank() -> Values {
        Values(vec![("colour".into(), "#1e88e5".into())])
    }
}
impl Extras for ManagerTag {
    const COLUMNS: &'static [&'static str] = &["field.colour", "field.campaign_id"];
    fn cells(&self, _ctx: &Ctx) -> Vec<Markup> {
        vec![swatch(self.input.colour.as_str(), self.input.colour.as_str()), html! { @if let Some(c) = self.input.campaign_id { (c) } }]
    }
    fn blank() -> Values {
        Values(vec![("colour".into(), "#8e24aa".into())])
    }
}
impl Extras for DncList {
    const COLUMNS: &'static [&'static str] = &["dnc.internal"];
    fn cells(&self, ctx: &Ctx) -> Vec<Markup> {
        vec![yes_no(ctx, self.is_internal)]
    }
    fn open_link(&self) -> Option<String> {
        Some(format!("/dnc-lists/{}/entries", self.id))
    }
}
impl Extras for Role {
    const COLUMNS: &'static [&'static str] = &["field.privileges", "roles.builtin"];
    fn cells(&self, ctx: &Ctx) -> Vec<Markup> {
        let p: Vec<&str> = self.input.privileges.iter().map(|p| p.as_str()).collect();
        vec![html! { (p.join(", ")) }, yes_no(ctx, self.builtin)]
    }
}
impl Extras for ContactList {
    const COLUMNS: &'static [&'static str] = &["lists.records", "field.default_country"];
    fn cells(&self, _ctx: &Ctx) -> Vec<Markup> {
        vec![
            html! { (self.record_count) },
            html! { @if let Some(c) = &self.input.default_country { (serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()) } },
        ]
    }
    fn open_link(&self) -> Option<String> {
        Some(format!("/contact-lists/{}/records", self.id))
    }
}

entity_screen!(CampaignGroup, "campaign-groups", "nav.campaign_groups", super::fields::NAMED);
entity_screen!(AgentGroup, "agent-groups", "nav.agent_groups", super::fields::NAMED);
entity_screen!(Script, "scripts", "nav.scripts", super::fields::SCRIPT);
entity_screen!(SettingsProfile, "settings-profiles", "nav.profiles", super::fields::profile());
entity_screen!(Disposition, "dispositions", "nav.dispositions", super::fields::DISPOSITION);
entity_screen!(ManagerTag, "manager-tags", "nav.tags", super::fields::MANAGER_TAG);
entity_screen!(DncList, "dnc-lists", "nav.dnc", super::fields::NAMED);
entity_screen!(Role, "roles", "nav.roles", super::fields::ROLE);
entity_screen!(ContactList, "contact-lists", "nav.lists", super::fields::CONTACT_LIST);

// ---- users ----

impl Screen for User {
    type Input = UserInput;
    const PATH: &'static str = "users";
    const TITLE: &'static str = "nav.users";
    const COLUMNS: &'static [&'static str] = &["field.username", "field.role_id", "field.scope", "field.active"];
    fn fields() -> Vec<Field> {
        super::fields::USER.to_vec()
    }
    fn id(&self) -> i64 {
        self.id.0
    }
    fn name(&self) -> String {
        if self.input.display_name.is_empty() {
            self.input.username.clone()
        } else {
            self.input.display_name.clone()
        }
    }
    fn input(&self) -> &UserInput {
        &self.input
    }
    fn cells(&self, ctx: &Ctx) -> Vec<Markup> {
        let scope = match &self.input.campaigns_profile {
            campana_core::user::CampaignsProfile::All => ctx.t("enum.all").to_string(),
            campana_core::user::CampaignsProfile::Only { campaign_ids } => {
                format!("{}: {}", ctx.t("enum.only"), campaign_ids.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", "))
            }
        };
        vec![html! { (self.input.username) }, html! { (self.input.role_id) }, html! { (scope) }, yes_no(ctx, self.input.active)]
    }
    fn blank() -> Values {
        Values(vec![("campaigns_profile.scope".into(), "all".into()), ("active".into(), "true".into())])
    }
    fn adjust(json: &mut serde_json::Value) {
        if let Some(cp) = json.get_mut("campaigns_profile").and_then(|v| v.as_object_mut()) {
            if cp.get("scope").and_then(|s| s.as_str()) == Some("all") {
                cp.remove("campaign_ids");
            }
        }
    }
    async fn list(s: &AppState, ctx: &Ctx) -> WebResult<Vec<Self>> {
        Ok(users::list_all(s, &ctx.p).await?)
    }
    async fn get(s: &AppState, ctx: &Ctx, id: i64) -> WebResult<Self> {
        Ok(users::get(s, &ctx.p, UserId(id)).await?)
    }
    async fn create(s: &AppState, ctx: &Ctx, input: UserInput) -> Result<Self, WebError> {
        Ok(users::create(s, &Actor::of(&ctx.p, Via::Console), &ctx.p, &input).await?)
    }
    async fn update(s: &AppState, ctx: &Ctx, id: i64, input: UserInput) -> Result<Self, WebError> {
        Ok(users::update(s, &Actor::of(&ctx.p, Via::Console), &ctx.p, UserId(id), &input).await?)
    }
    async fn delete(s: &AppState, ctx: &Ctx, id: i64) -> WebResult<()> {
        Ok(users::delete(s, &Actor::of(&ctx.p, Via::Console), &ctx.p, UserId(id)).await?)
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(routes::<CampaignGroup>(None, None))
        .merge(routes::<AgentGroup>(None, None))
        .merge(routes::<Script>(None, None))
        .merge(routes::<SettingsProfile>(None, None))
        .merge(routes::<Disposition>(None, None))
        .merge(routes::<ManagerTag>(None, None))
        .merge(routes::<DncList>(None, None))
        .merge(routes::<Role>(None, None))
        .merge(routes::<ContactList>(None, None))
        .merge(routes::<User>(None, None))
}
