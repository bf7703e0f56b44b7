//! One form engine for every edit page. A form is a list of [`Field`]s whose names are dotted
//! JSON paths (`overrides.abandon_rate_max`). Submitted values become a JSON object that is
//! deserialised into the same input type the API takes, so the console accepts exactly what the
//! API accepts; errors (from serde or the store's validation) are shown next to the field they
//! name, and the form is shown again with what the user typed.

use super::{Ctx, WebError};
use crate::service::Principal;
use crate::state::AppState;
use campana_core::FieldError;
use maud::{html, Markup};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Where the choices of a reference field come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    CampaignGroups,
    SettingsProfiles,
    AgentGroups,
    Scripts,
    DncLists,
    ContactLists,
    Campaigns,
    Roles,
}

#[derive(Clone, Copy)]
pub enum Kind {
    Text,
    LongText,
    Password,
    Int,
    Float,
    /// A checkbox: unchecked is `false`.
    Check,
    /// A select of inherit / yes / no (optional booleans of settings).
    YesNo,
    Colour,
    Date,
    Time,
    /// One of the values (the list of a string enum).
    Choice(fn() -> Vec<&'static str>),
    /// Any of the values, as checkboxes; a JSON array of strings.
    Choices(fn() -> Vec<&'static str>),
    /// One id of another object.
    Ref(Source),
    /// Several ids of other objects.
    Refs(Source),
    /// Structured values (treatments, sort order, filters) as JSON text.
    Json,
}

#[derive(Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    /// An optional setting whose absence means "inherited" (a profile's settings, a campaign's
    /// overrides): a field the user did not touch must stay unset. A kind whose untouched input
    /// still submits a value (an unticked list of checkboxes submits nothing, which would read as
    /// "none") is unset when empty; "none" is said with the field's own `<name>!none` checkbox.
    pub inherit: bool,
}

/// The form key of the "set to none" checkbox of an inheritable multi-value field.
pub fn none_key(name: &str) -> String {
    format!("{name}!none")
}

impl Field {
    pub const fn new(name: &'static str, kind: Kind) -> Field {
        Field { name, kind, required: false, inherit: false }
    }
    pub const fn req(name: &'static str, kind: Kind) -> Field {
        Field { name, kind, required: true, inherit: false }
    }
    /// An inheritable setting (see [`Field::inherit`]). Panics (at compile time in a `const`)
    /// for the kinds that cannot say "not set": a checkbox (unticked is `false`) and a colour.
    pub const fn inherited(name: &'static str, kind: Kind) -> Field {
        assert!(!matches!(kind, Kind::Check | Kind::Colour), "a checkbox or colour cannot be left unset: use YesNo or Text");
        Field { name, kind, required: false, inherit: true }
    }
    /// The label's catalogue key: `field.` and the last segment of the name.
    fn label_key(&self) -> String {
        format!("field.{}", self.name.rsplit('.').next().unwrap_or(self.name))
    }
    fn id(&self) -> String {
        format!("f-{}", self.name.replace('.', "-"))
    }
}

/// The values of a form as submitted or as loaded from an object: name -> values.
#[derive(Debug, Clone, Default)]
pub struct Values(pub Vec<(String, String)>);

impl Values {
    pub fn get(&self, name: &str) -> &str {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// The values of `fields` read from an object serialised to JSON.
    pub fn from_json(fields: &[Field], v: &Value) -> Values {
        let mut out = Vec::new();
        for f in fields {
            let Some(x) = lookup(v, f.name) else { continue };
            match (f.kind, x) {
                (Kind::Json, x) => out.push((f.name.to_string(), serde_json::to_string_pretty(x).unwrap_or_default())),
                (Kind::Password, _) | (_, Value::Null) => {}
                (_, Value::Array(items)) if items.is_empty() && f.inherit => out.push((none_key(f.name), "true".to_string())),
                (_, Value::Array(items)) => out.extend(items.iter().map(|i| (f.name.to_string(), scalar(i)))),
                (_, x) => out.push((f.name.to_string(), scalar(x))),
            }
        }
        Values(out)
    }

    /// Builds the JSON object the input type deserialises from; empty fields are left out
    /// (optional, or inherited for settings). An inheritable field is left out whenever the user
    /// gave it no value, whatever its kind: an empty selection of an inheritable list is "not
    /// set", and only its "none" checkbox sets it to the empty list.
    pub fn to_json(&self, fields: &[Field]) -> Result<Value, Vec<FieldError>> {
        let mut root = Value::Object(Map::new());
        let mut errors = Vec::new();
        for f in fields {
            let raw = self.get(f.name).trim();
            let parsed: Result<Option<Value>, String> = match f.kind {
                Kind::Check => Ok(Some(Value::Bool(!raw.is_empty()))),
                Kind::Choices(_) | Kind::Refs(_)
                    if f.inherit && self.all(f.name).iter().all(|s| s.trim().is_empty()) && self.get(&none_key(f.name)).is_empty() =>
                {
                    Ok(None)
                }
                Kind::Choices(_) | Kind::Refs(_) => {
                    let items = self.all(f.name).into_iter().filter(|s| !s.is_empty());
                    if matches!(f.kind, Kind::Refs(_)) {
                        items
                            .map(|s| s.parse::<i64>().map(Value::from).map_err(|_| format!("'{s}' is not an id")))
                            .collect::<Result<Vec<_>, _>>()
                            .map(|v| Some(Value::Array(v)))
                    } else {
                        Ok(Some(Value::Array(items.map(|s| Value::String(s.to_string())).collect())))
                    }
                }
                _ if raw.is_empty() => Ok(None),
                Kind::Int | Kind::Ref(_) => {
                    raw.parse::<i64>().map(|n| Some(Value::from(n))).map_err(|_| format!("'{raw}' is not a whole number"))
                }
                Kind::Float => raw.parse::<f64>().map(|n| Some(Value::from(n))).map_err(|_| format!("'{raw}' is not a number")),
                Kind::YesNo => Ok(Some(Value::Bool(raw == "true"))),
                Kind::Json => serde_json::from_str(raw).map(Some).map_err(|e| format!("not valid JSON: {e}")),
                Kind::LongText => Ok(Some(Value::String(self.get(f.name).to_string()))),
                _ => Ok(Some(Value::String(raw.to_string()))),
            };
            match parsed {
                Ok(Some(v)) => insert(&mut root, f.name, v),
                Ok(None) if f.required => errors.push(FieldError::new(f.name, "is required")),
                Ok(None) => {}
                Err(reason) => errors.push(FieldError::new(f.name, reason)),
            }
        }
        if errors.is_empty() {
            Ok(root)
        } else {
            Err(errors)
        }
    }

    /// Parses the form into `T` (the API's input type), naming the field of any error.
    pub fn parse<T: serde::de::DeserializeOwned>(&self, fields: &[Field]) -> Result<T, Vec<FieldError>> {
        let json = self.to_json(fields)?;
        serde_path_to_error::deserialize(json).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." { String::new() } else { path };
            vec![FieldError::new(field, e.inner().to_string())]
        })
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

fn insert(root: &mut Value, path: &str, v: Value) {
    let mut cur = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, k) in parts.iter().enumerate() {
        let obj = match cur {
            Value::Object(m) => m,
            _ => return,
        };
        if i + 1 == parts.len() {
            obj.insert(k.to_string(), v);
            return;
        }
        cur = obj.entry(k.to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
}

/// The id/name pairs a form's reference fields offer, loaded once per form.
pub type Options = HashMap<Source, Vec<(i64, String)>>;

/// Loads the choices of every reference field, limited to what the user may see.
pub async fn load_options(s: &AppState, p: &Principal, fields: &[Field]) -> Result<Options, WebError> {
    use campana_core::stored::*;
    async fn named<E: HasInput>(s: &AppState, only: Option<&[i64]>) -> Result<Vec<(i64, String)>, WebError> {
        let page = campana_store::PageParams { limit: Some(campana_store::MAX_PAGE), cursor: None };
        Ok(s.store.list_in::<E>(page, only).await?.items.iter().map(|e| (e.raw_id(), E::name(e.input_of()).to_string())).collect())
    }
    let mut out = Options::new();
    for f in fields {
        let src = match f.kind {
            Kind::Ref(s) | Kind::Refs(s) => s,
            _ => continue,
        };
        if out.contains_key(&src) {
            continue;
        }
        let items = match src {
            Source::CampaignGroups => named::<CampaignGroup>(s, None).await?,
            Source::SettingsProfiles => named::<SettingsProfile>(s, None).await?,
            Source::AgentGroups => named::<AgentGroup>(s, None).await?,
            Source::Scripts => named::<Script>(s, None).await?,
            Source::DncLists => named::<DncList>(s, None).await?,
            Source::Roles => named::<Role>(s, None).await?,
            Source::ContactLists => named::<ContactList>(s, p.visible_lists(&s.store).await?.as_deref()).await?,
            Source::Campaigns => super::campaigns::visible_campaigns(s, p).await?.into_iter().map(|c| (c.id.0, c.input.name)).collect(),
        };
        out.insert(src, items);
    }
    Ok(out)
}

/// Access to the input of the stored catalogue objects.
pub trait HasInput: campana_store::Entity {
    fn input_of(&self) -> &Self::Input;
}

macro_rules! has_input {
    ($($t:ty),+) => {$( impl HasInput for $t { fn input_of(&self) -> &Self::Input { &self.input } } )+};
}
has_input!(
    campana_core::stored::CampaignGroup,
    campana_core::stored::AgentGroup,
    campana_core::stored::DncList,
    campana_core::stored::Script,
    campana_core::stored::Disposition,
    campana_core::stored::ManagerTag,
    campana_core::stored::Role,
    campana_core::stored::SettingsProfile,
    campana_core::stored::ContactList
);

/// Renders the fields; `hints` adds a note under a field (e.g. the effective value and its source).
pub fn fields(ctx: &Ctx, fields: &[Field], v: &Values, errors: &[FieldError], opts: &Options, hints: &HashMap<String, Markup>) -> Markup {
    // An error belongs to the first field it names (or whose name it starts with).
    let error_for = |name: &str| -> Vec<&FieldError> {
        errors
            .iter()
            .filter(|e| e.field == name || e.field.starts_with(&format!("{name}.")) || e.field.starts_with(&format!("{name}[")))
            .collect()
    };
    html! {
        @for f in fields {
            @let errs = error_for(f.name);
            div class={ "field" @if !errs.is_empty() { " invalid" } } {
                label for=(f.id()) { (ctx.t(&f.label_key())) @if f.required { " *" } }
                (input(ctx, f, v, opts))
                @for e in &errs { p.field-error data-field=(e.field) { (e.field) ": " (e.reason) } }
                @if let Some(h) = hints.get(f.name) { p.hint { (h) } }
            }
        }
    }
}

fn input(ctx: &Ctx, f: &Field, v: &Values, opts: &Options) -> Markup {
    let (name, id, val) = (f.name, f.id(), v.get(f.name));
    let inherit = ctx.t("form.inherit");
    let choice_label = |c: &str| ctx.lang.try_t(&format!("enum.{c}")).unwrap_or(c).to_string();
    html! {
        @match f.kind {
            Kind::Text => input type="text" id=(id) name=(name) value=(val);
            Kind::Password => input type="password" id=(id) name=(name) autocomplete="new-password";
            Kind::LongText => textarea id=(id) name=(name) rows="4" { (val) }
            Kind::Json => textarea.code id=(id) name=(name) rows="6" placeholder=(inherit) { (val) }
            Kind::Int => input type="text" inputmode="numeric" id=(id) name=(name) value=(val);
            Kind::Float => input type="text" inputmode="decimal" id=(id) name=(name) value=(val);
            Kind::Date => input type="date" id=(id) name=(name) value=(val);
            Kind::Time => input type="time" id=(id) name=(name) value=(val);
            Kind::Colour => input type="color" id=(id) name=(name) value=(if val.is_empty() { "#1e88e5" } else { val });
            Kind::Check => input type="checkbox" id=(id) name=(name) value="true" checked[val == "true"];
            Kind::YesNo => select id=(id) name=(name) {
                option value="" selected[val.is_empty()] { (inherit) }
                option value="true" selected[val == "true"] { (ctx.t("common.yes")) }
                option value="false" selected[val == "false"] { (ctx.t("common.no")) }
            },
            Kind::Choice(all) => select id=(id) name=(name) {
                @if !f.required { option value="" selected[val.is_empty()] { (inherit) } }
                @for c in all() { option value=(c) selected[val == c] { (choice_label(c)) } }
            },
            Kind::Choices(all) => span.checks id=(id) {
                @for c in all() { label.check { input type="checkbox" name=(name) value=(c) checked[v.all(name).contains(&c)]; (choice_label(c)) } }
                (none_box(ctx, f, v))
            },
            Kind::Ref(src) => select id=(id) name=(name) {
                option value="" selected[val.is_empty()] { (inherit) }
                @for (oid, label) in opts.get(&src).into_iter().flatten() {
                    @let s = oid.to_string();
                    option value=(s) selected[val == s] { (label) " (#" (oid) ")" }
                }
            },
            Kind::Refs(src) => span.checks id=(id) {
                @for (oid, label) in opts.get(&src).into_iter().flatten() {
                    @let s = oid.to_string();
                    label.check { input type="checkbox" name=(name) value=(s) checked[v.all(name).contains(&s.as_str())]; (label) }
                }
                (none_box(ctx, f, v))
            },
        }
    }
}

/// The "none" checkbox of an inheritable multi-value field: with nothing ticked the field is
/// inherited; ticking this sets it to the empty list.
fn none_box(ctx: &Ctx, f: &Field, v: &Values) -> Markup {
    let key = none_key(f.name);
    html! {
        @if f.inherit {
            label.check.none { input type="checkbox" name=(key) value="true" checked[!v.get(&key).is_empty()]; (ctx.t("form.set_none")) }
            span.hint { (ctx.t("form.empty_inherits")) }
        }
    }
}

/// A whole edit form: error summary, fields, CSRF, submit.
pub struct FormView<'a> {
    pub action: &'a str,
    pub fields: &'a [Field],
    pub values: &'a Values,
    pub errors: &'a [FieldError],
    pub options: &'a Options,
    pub hints: HashMap<String, Markup>,
    pub submit: &'a str,
}

pub fn render(ctx: &Ctx, f: &FormView) -> Markup {
    html! {
        @if !f.errors.is_empty() {
            div.errors id="form-errors" role="alert" {
                p { (ctx.t("form.fix_errors")) }
                ul { @for e in f.errors { li { @if !e.field.is_empty() { strong { (e.field) } ": " } (e.reason) } } }
            }
        }
        form.edit method="post" action=(f.action) {
            (ctx.csrf_field())
            (fields(ctx, f.fields, f.values, f.errors, f.options, &f.hints))
            div.actions { button type="submit" id="save" { (f.submit) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_json() {
        fn modes() -> Vec<&'static str> {
            vec!["preview", "predictive"]
        }
        let fields = [
            Field::req("name", Kind::Text),
            Field::new("overrides.dialing_mode", Kind::Choice(modes)),
            Field::new("overrides.abandon_rate_max", Kind::Float),
            Field::new("contact_list_ids", Kind::Refs(Source::ContactLists)),
            Field::new("is_final", Kind::Check),
        ];
        let v = Values(vec![
            ("name".into(), "Spring".into()),
            ("overrides.dialing_mode".into(), "predictive".into()),
            ("overrides.abandon_rate_max".into(), "".into()),
            ("contact_list_ids".into(), "3".into()),
            ("contact_list_ids".into(), "4".into()),
        ]);
        let json = v.to_json(&fields).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name":"Spring","overrides":{"dialing_mode":"predictive"},"contact_list_ids":[3,4],"is_final":false})
        );
        let back = Values::from_json(&fields, &json);
        assert_eq!(back.get("overrides.dialing_mode"), "predictive");
        assert_eq!(back.all("contact_list_ids"), ["3", "4"]);
        let bad = Values(vec![("overrides.abandon_rate_max".into(), "lots".into())]);
        let errs = bad.to_json(&fields).unwrap_err();
        assert_eq!(errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["name", "overrides.abandon_rate_max"]);
    }
}
