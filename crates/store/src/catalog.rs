//! Generic create/read/update/delete for the catalogue objects (groups, profiles, scripts,
//! dispositions, tags, DNC lists, roles, contact lists): each declares its table and columns
//! once; the SQL is written here once for all of them.

use crate::*;
use campana_core::campaign::{DispositionInput, ManagerTagInput, NamedInput, ScriptInput};
use campana_core::settings::SettingsProfileInput;
use campana_core::stored::*;
use campana_core::user::RoleInput;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

/// A value bound to a statement.
#[derive(Debug, Clone)]
#[doc(hidden)]
pub enum V {
    I(i64),
    OI(Option<i64>),
    S(String),
    OS(Option<String>),
}

pub(crate) fn bind_all<'q>(mut q: Query<'q, Any, AnyArguments<'q>>, vals: Vec<V>) -> Query<'q, Any, AnyArguments<'q>> {
    for v in vals {
        q = match v {
            V::I(x) => q.bind(x),
            V::OI(x) => q.bind(x),
            V::S(x) => q.bind(x),
            V::OS(x) => q.bind(x),
        };
    }
    q
}

pub(crate) fn b(v: bool) -> V {
    V::I(i64::from(v))
}

/// A reference from an input field to a row of another table, checked before writing.
#[doc(hidden)]
pub struct Ref {
    pub field: String,
    pub table: &'static str,
    pub kind: &'static str,
    pub id: Option<i64>,
}

pub trait Entity: campana_core::stored::Identified + Sized + Send + Unpin + 'static {
    type Input: campana_core::Validated + Send + Sync;
    const TABLE: &'static str;
    /// Singular noun for messages: "campaign group".
    const KIND: &'static str;
    /// Input columns, in the order of [`Entity::values`].
    const COLUMNS: &'static [&'static str];
    /// Extra computed columns for reads.
    const EXTRA_SELECT: &'static str = "";

    fn values(input: &Self::Input) -> Vec<V>;
    fn from_row(row: &AnyRow) -> Result<Self>;
    fn name(input: &Self::Input) -> &str {
        campana_core::Validated::name(input)
    }
    fn validate(input: &Self::Input) -> Result<(), Vec<FieldError>> {
        campana_core::Validated::validate(input)
    }
    fn refs(_input: &Self::Input) -> Vec<Ref> {
        Vec::new()
    }
    /// Marks this row as the only default of its table (unmarking the previous one).
    fn claims_default(_input: &Self::Input) -> bool {
        false
    }
    /// Refuses deleting rows that must stay (built-in roles, the internal DNC list).
    fn protected(&self) -> Option<String> {
        None
    }
    /// Refuses updates a row does not allow (a built-in role keeps its name).
    fn check_update(&self, _input: &Self::Input) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
    /// Updates may change who can manage users and roles (roles' privileges): the store keeps
    /// at least one active user with `users_roles`.
    const GRANTS_ACCOUNTS: bool = false;
}

fn select_sql<E: Entity>() -> String {
    format!("SELECT t.*{} FROM {} t", E::EXTRA_SELECT, E::TABLE)
}

impl Store {
    pub(crate) async fn check_refs(&self, conn: &mut sqlx::AnyConnection, refs: Vec<Ref>) -> Result<()> {
        let mut problems = Vec::new();
        for r in refs {
            if let Some(id) = r.id {
                let found: Option<i64> =
                    sqlx::query_scalar(&format!("SELECT id FROM {} WHERE id = $1", r.table)).bind(id).fetch_optional(&mut *conn).await?;
                if found.is_none() {
                    problems.push(FieldError::new(&r.field, format!("{} {id} does not exist", r.kind)));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Invalid(problems))
        }
    }

    pub async fn create<E: Entity>(&self, input: &E::Input) -> Result<E> {
        E::validate(input).map_err(StoreError::Invalid)?;
        let mut tx = self.begin_write().await?;
        self.check_refs(&mut tx, E::refs(input)).await?;
        self.before_write::<E>(&mut tx, input, None).await?;
        let n = E::COLUMNS.len();
        let cols = E::COLUMNS.join(", ");
        let params: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {} ({cols}, created_at, updated_at) VALUES ({}, ${}, ${}) RETURNING id",
            E::TABLE,
            params.join(", "),
            n + 1,
            n + 1
        );
        let mut vals = E::values(input);
        vals.push(V::I(now_ms()));
        let id: i64 = bind_all(sqlx::query(&sql), vals)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| unique_as_conflict(e, || format!("a {} named '{}' already exists", E::KIND, E::name(input))))?
            .try_get("id")?;
        tx.commit().await?;
        self.get::<E>(id).await
    }

    pub async fn get<E: Entity>(&self, id: i64) -> Result<E> {
        let row = sqlx::query(&format!("{} WHERE t.id = $1", select_sql::<E>()))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found(E::KIND, id))?;
        E::from_row(&row)
    }

    pub async fn list<E: Entity>(&self, page: PageParams) -> Result<Page<E>> {
        self.list_in::<E>(page, None).await
    }

    /// A page of the rows whose ids are in `only` (all rows when `None`).
    pub async fn list_in<E: Entity>(&self, page: PageParams, only: Option<&[i64]>) -> Result<Page<E>> {
        let limit = page.limit();
        let filter = match only {
            None => String::new(),
            Some([]) => return Ok(Page { items: vec![], next_cursor: None }),
            Some(ids) => format!(" AND t.id IN ({})", ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")),
        };
        let rows = sqlx::query(&format!("{} WHERE t.id > $1{filter} ORDER BY t.id LIMIT $2", select_sql::<E>()))
            .bind(page.after())
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(E::from_row).collect::<Result<Vec<E>>>()?;
        Ok(paginate(items, limit, E::raw_id))
    }

    /// Every row, for small catalogues (at most [`MAX_PAGE`]).
    pub async fn list_all<E: Entity>(&self) -> Result<Vec<E>> {
        Ok(self.list::<E>(PageParams { limit: Some(MAX_PAGE), cursor: None }).await?.items)
    }

    pub async fn update<E: Entity>(&self, id: i64, input: &E::Input) -> Result<E> {
        E::validate(input).map_err(StoreError::Invalid)?;
        self.get::<E>(id).await?.check_update(input).map_err(StoreError::Invalid)?;
        let mut tx = self.begin_write().await?;
        self.check_refs(&mut tx, E::refs(input)).await?;
        self.before_write::<E>(&mut tx, input, Some(id)).await?;
        let managers = if E::GRANTS_ACCOUNTS { Some(self.account_managers_before(&mut tx).await?) } else { None };
        let n = E::COLUMNS.len();
        let sets: Vec<String> = E::COLUMNS.iter().enumerate().map(|(i, c)| format!("{c} = ${}", i + 1)).collect();
        let sql = format!("UPDATE {} SET {}, updated_at = ${} WHERE id = ${}", E::TABLE, sets.join(", "), n + 1, n + 2);
        let mut vals = E::values(input);
        vals.push(V::I(now_ms()));
        vals.push(V::I(id));
        let done = bind_all(sqlx::query(&sql), vals)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_as_conflict(e, || format!("a {} named '{}' already exists", E::KIND, E::name(input))))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found(E::KIND, id));
        }
        if let Some(before) = managers {
            self.account_managers_after(&mut tx, before, &format!("changing {} '{}' this way", E::KIND, E::name(input))).await?;
        }
        tx.commit().await?;
        self.get::<E>(id).await
    }

    pub async fn delete<E: Entity>(&self, id: i64) -> Result<()> {
        let existing = self.get::<E>(id).await?;
        if let Some(why) = existing.protected() {
            return Err(StoreError::Conflict(why));
        }
        sqlx::query(&format!("DELETE FROM {} WHERE id = $1", E::TABLE))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| unique_as_conflict(e, String::new))
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("{} {id} is still in use; remove what refers to it first", E::KIND))
                }
                other => other,
            })?;
        Ok(())
    }

    /// Cross-row rules that plain constraints cannot state.
    async fn before_write<E: Entity>(&self, tx: &mut sqlx::AnyConnection, input: &E::Input, id: Option<i64>) -> Result<()> {
        if E::claims_default(input) {
            sqlx::query(&format!("UPDATE {} SET is_default = 0 WHERE is_default = 1 AND id <> $1", E::TABLE))
                .bind(id.unwrap_or(0))
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}

// ---- the catalogue ----

fn get_colour(row: &AnyRow) -> Result<campana_core::campaign::Colour> {
    campana_core::campaign::Colour::parse(&row.try_get::<String, _>("colour")?).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn named_values(i: &NamedInput) -> Vec<V> {
    vec![V::S(i.name.clone()), V::S(i.description.clone())]
}

fn named_from_row(row: &AnyRow) -> Result<NamedInput> {
    Ok(NamedInput { name: row.try_get("name")?, description: row.try_get("description")? })
}

macro_rules! named_entity {
    ($t:ident, $table:literal, $kind:literal) => {
        impl Entity for $t {
            type Input = NamedInput;
            const TABLE: &'static str = $table;
            const KIND: &'static str = $kind;
            const COLUMNS: &'static [&'static str] = &["name", "description"];
            fn values(i: &NamedInput) -> Vec<V> {
                named_values(i)
            }
            fn from_row(row: &AnyRow) -> Result<Self> {
                Ok($t {
                    id: row.try_get::<i64, _>("id")?.into(),
                    input: named_from_row(row)?,
                    created_at: get_time(row, "created_at")?,
                    updated_at: get_time(row, "updated_at")?,
                })
            }
        }
    };
}

named_entity!(CampaignGroup, "campaign_groups", "campaign group");
named_entity!(AgentGroup, "agent_groups", "agent group");

impl Entity for DncList {
    type Input = NamedInput;
    const TABLE: &'static str = "dnc_lists";
    const KIND: &'static str = "DNC list";
    const COLUMNS: &'static [&'static str] = &["name", "description"];
    fn values(i: &NamedInput) -> Vec<V> {
        named_values(i)
    }
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(DncList {
            id: row.try_get::<i64, _>("id")?.into(),
            input: named_from_row(row)?,
            is_internal: get_bool(row, "is_internal")?,
            created_at: get_time(row, "created_at")?,
            updated_at: get_time(row, "updated_at")?,
        })
    }
    fn protected(&self) -> Option<String> {
        self.is_internal.then(|| "the internal DNC list is checked by every campaign and cannot be deleted".to_string())
    }
}

impl Entity for Script {
    type Input = ScriptInput;
    const TABLE: &'static str = "scripts";
    const KIND: &'static str = "script";
    const COLUMNS: &'static [&'static str] = &["name", "body"];
    fn values(i: &ScriptInput) -> Vec<V> {
        vec![V::S(i.name.clone()), V::S(i.body.clone())]
    }
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Script {
            id: row.try_get::<i64, _>("id")?.into(),
            input: ScriptInput { name: row.try_get("name")?, body: row.try_get("body")? },
            created_at: get_time(row, "created_at")?,
            updated_at: get_time(row, "updated_at")?,
        })
    }
}

impl Entity for SettingsProfile {
    type Input = SettingsProfileInput;
    const TABLE: &'static str = "settings_profiles";
    const KIND: &'static str = "settings profile";
    const COLUMNS: &'static [&'static str] = &["name", "description", "is_default", "settings"];
    const EXTRA_SELECT: &'static str = ", (SELECT COUNT(*) FROM campaigns c WHERE c.profile_id = t.id) AS campaign_count";
    fn values(i: &SettingsProfileInput) -> Vec<V> {
        vec![V::S(i.name.clone()), V::S(i.description.clone()), b(i.is_default), V::S(to_json(&i.settings))]
    }
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(SettingsProfile {
            id: row.try_get::<i64, _>("id")?.into(),
            input: SettingsProfileInput {
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                is_default: get_bool(row, "is_default")?,
                settings: get_json(row, "settings")?,
            },
            campaign_count: row.try_get("campaign_count")?,
            created_at: get_time(row, "created_at")?,
            updated_at: get_time(row, "updated_at")?,
        })
    }
    fn refs(i: &SettingsProfileInput) -> Vec<Ref> {
        settings_refs(&i.settings, "settings")
    }
    fn claims_default(i: &SettingsProfileInput) -> bool {
        i.is_default
    }
    fn protected(&self) -> Option<String> {
        if self.input.is_default {
            Some("the default profile cannot be deleted; make another profile the default first".into())
        } else if self.campaign_count > 0 {
            Some(format!("{} campaigns use this profile; move them to another profile first", self.campaign_count))
        } else {
            None
        }
    }
}

/// References held inside a settings object (agent group, script, DNC lists).
pub(crate) fn settings_refs(s: &campana_core::settings::SettingsFields, prefix: &'static str) -> Vec<Ref> {
    let field = |f: &str| format!("{prefix}.{f}");
    let mut refs = vec![
        Ref { field: field("agent_group_id"), table: "agent_groups", kind: "agent group", id: s.agent_group_id.flatten().map(|i| i.0) },
        Ref { field: field("script_id"), table: "scripts", kind: "script", id: s.script_id.flatten().map(|i| i.0) },
    ];
    for d in s.dnc_list_ids.iter().flatten() {
        refs.push(Ref { field: field("dnc_list_ids"), table: "dnc_lists", kind: "DNC list", id: Some(d.0) });
    }
    refs
}

impl Entity for Disposition {
    type Input = DispositionInput;
    const TABLE: &'static str = "dispositions";
    const KIND: &'static str = "disposition";
    const COLUMNS: &'static [&'static str] =
        &["name", "colour", "is_success", "is_final", "is_callback", "is_do_not_call", "profile_id", "campaign_id"];
    fn values(i: &DispositionInput) -> Vec<V> {
        vec![
            V::S(i.name.clone()),
            V::S(i.colour.as_str().to_string()),
            b(i.is_success),
            b(i.is_final),
            b(i.is_callback),
            b(i.is_do_not_call),
            V::OI(i.profile_id.map(|p| p.0)),
            V::OI(i.campaign_id.map(|p| p.0)),
        ]
    }
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Disposition {
            id: row.try_get::<i64, _>("id")?.into(),
            input: DispositionInput {
                name: row.try_get("name")?,
                colour: get_colour(row)?,
                is_success: get_bool(row, "is_success")?,
                is_final: get_bool(row, "is_final")?,
                is_callback: get_bool(row, "is_callback")?,
                is_do_not_call: get_bool(row, "is_do_not_call")?,
                profile_id: row.try_get::<Option<i64>, _>("profile_id")?.map(Into::into),
                campaign_id: row.try_get::<Option<i64>, _>("campaign_id")?.map(Into::into),
            },
            created_at: get_time(row, "created_at")?,
            updated_at: get_time(row, "updated_at")?,
        })
    }
    fn refs(i: &DispositionInput) -> Vec<Ref> {
        vec![
            Ref { field: "profile_id".into(), table: "settings_profiles", kind: "settings profile", id: i.profile_id.map(|p| p.0) },
            Ref { field: "campaign_id".into(), table: "campaigns", kind: "campaign", id: i.campaign_id.map(|p| p.0) },
        ]
    }
}

impl Entity for ManagerTag {
    type Input = ManagerTagInput;
    const TABLE: &'static str = "manager_tags";
    const KIND: &'static str = "manager tag";
    const COLUMNS: &'static [&'static str] = &["name", "colour", "campaign_id"];
    fn values(i: &ManagerTagInput) -> Vec<V> {
        vec![V::S(i.name.clone()), V::S(i.colour.as_str().to_string()), V::OI(i.campaign_id.map(|p| p.0))]
    }
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(ManagerTag {
            id: row.try_get::<i64, _>("id")?.into(),
            input: ManagerTagInput {
                name: row.try_get("name")?,
                colour: get_colour(row)?,
                campaign_id: row.try_get::<Option<i64>, _>("campaign_id")?.map(Into::into),
            },
            created_at: get_time(row, "created_at")?,
            updated_at: get_time(row, "updated_at")?,
        })
    }
    fn refs(i: &ManagerTagInput) -> Vec<Ref> {
        vec![Ref { field: "campaign_id".into(), table: "campaigns", kind: "campaign", id: i.campaign_id.map(|p| p.0) }]
    }
}

impl Entity for Role {
    type Input = RoleInput;
    const TABLE: &'static str = "roles";
    const KIND: &'static str = "role";
    const COLUMNS: &'static [&'static str] = &["name", "description", "privileges"];
    fn values(i: &RoleInput) -> Vec<V> {
        vec![V::S(i.name.clone()), V::S(i.description.clone()), V::S(to_json(&i.privileges))]
    }
    fn from_row(row: &AnyRow) -> Result<Self> {
        Ok(Role {
            id: row.try_get::<i64, _>("id")?.into(),
            input: RoleInput {
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                privileges: get_json(row, "privileges")?,
            },
            builtin: get_bool(row, "builtin")?,
            created_at: get_time(row, "created_at")?,
            updated_at: get_time(row, "updated_at")?,
        })
    }
    fn protected(&self) -> Option<String> {
        self.builtin.then(|| format!("'{}' is a built-in role and cannot be deleted", self.input.name))
    }
    fn check_update(&self, input: &RoleInput) -> Result<(), Vec<FieldError>> {
        if self.builtin && input.name != self.input.name {
            return Err(vec![FieldError::new("name", format!("'{}' is a built-in role; its name cannot change", self.input.name))]);
        }
        Ok(())
    }
    const GRANTS_ACCOUNTS: bool = true;
}

impl Entity for ContactList {
    type Input = ContactListInput;
    const TABLE: &'static str = "contact_lists";
    const KIND: &'static str = "contact list";
    const COLUMNS: &'static [&'static str] = &["name", "description", "columns", "default_country"];
    const EXTRA_SELECT: &'static str = ", (SELECT COUNT(*) FROM records r WHERE r.list_id = t.id) AS record_count";
    fn values(i: &ContactListInput) -> Vec<V> {
        vec![V::S(i.name.clone()), V::S(i.description.clone()), V::S(to_json(&i.columns)), V::OS(i.default_country.map(|c| c.as_string()))]
    }
    fn from_row(row: &AnyRow) -> Result<Self> {
        let country: Option<String> = row.try_get("default_country")?;
        let mapping: Option<String> = row.try_get("mapping")?;
        Ok(ContactList {
            id: row.try_get::<i64, _>("id")?.into(),
            input: ContactListInput {
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                columns: get_json(row, "columns")?,
                default_country: country
                    .map(|c| campana_core::CountryCode::parse(&c))
                    .transpose()
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            },
            mapping: mapping.map(|m| serde_json::from_str(&m)).transpose().map_err(|e| StoreError::Corrupt(format!("mapping: {e}")))?,
            record_count: row.try_get("record_count")?,
            created_at: get_time(row, "created_at")?,
            updated_at: get_time(row, "updated_at")?,
        })
    }
}
