//! Campaigns: definition, contact lists, life cycle, effective settings.

use crate::catalog::{bind_all, settings_refs, Ref, V};
use crate::*;
use campana_core::campaign::{Campaign, CampaignAction, CampaignInput, CampaignState};
use campana_core::settings::{effective, DialingMode, Effective};
use campana_core::stored::{Page, SettingsProfile};
use campana_core::time::{DailyHours, LocalTime, TimeZone, Weekdays};
use campana_core::{CampaignGroupId, CampaignId};

/// Filters for listing campaigns.
#[derive(Debug, Clone, Default)]
pub struct CampaignFilter {
    pub state: Option<CampaignState>,
    /// `Some(None)` lists campaigns without a group.
    pub group_id: Option<Option<CampaignGroupId>>,
    /// Only these campaigns (a user's campaigns profile); `None` means all.
    pub only: Option<Vec<CampaignId>>,
}

const COLUMNS: &[&str] = &[
    "name",
    "description",
    "agent_notes",
    "start_date",
    "end_date",
    "daily_start",
    "daily_end",
    "weekdays",
    "time_zone",
    "priority",
    "group_id",
    "profile_id",
    "overrides",
];

fn values(i: &CampaignInput) -> Vec<V> {
    vec![
        V::S(i.name.clone()),
        V::S(i.description.clone()),
        V::S(i.agent_notes.clone()),
        V::OS(i.start_date.map(|d| d.to_string())),
        V::OS(i.end_date.map(|d| d.to_string())),
        V::S(i.daily_hours.start.to_string()),
        V::S(i.daily_hours.end.to_string()),
        V::S(i.weekdays.to_csv()),
        V::S(i.time_zone.name().to_string()),
        V::I(i64::from(i.priority)),
        V::OI(i.group_id.map(|g| g.0)),
        V::OI(i.profile_id.map(|g| g.0)),
        V::S(to_json(&i.overrides)),
    ]
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn from_row(row: &AnyRow, lists: Vec<campana_core::ContactListId>) -> Result<Campaign> {
    let date = |c: &str| -> Result<Option<chrono::NaiveDate>> {
        row.try_get::<Option<String>, _>(c)?.map(|s| s.parse().map_err(corrupt)).transpose()
    };
    let start = LocalTime::parse(&row.try_get::<String, _>("daily_start")?).map_err(corrupt)?;
    let end = LocalTime::parse(&row.try_get::<String, _>("daily_end")?).map_err(corrupt)?;
    Ok(Campaign {
        id: row.try_get::<i64, _>("id")?.into(),
        state: get_parsed(row, "state")?,
        input: CampaignInput {
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            agent_notes: row.try_get("agent_notes")?,
            start_date: date("start_date")?,
            end_date: date("end_date")?,
            daily_hours: DailyHours::new(start, end).map_err(corrupt)?,
            weekdays: Weekdays::from_csv(&row.try_get::<String, _>("weekdays")?).map_err(corrupt)?,
            time_zone: TimeZone::parse(&row.try_get::<String, _>("time_zone")?).map_err(corrupt)?,
            priority: row.try_get::<i64, _>("priority")? as i32,
            group_id: row.try_get::<Option<i64>, _>("group_id")?.map(Into::into),
            profile_id: row.try_get::<Option<i64>, _>("profile_id")?.map(Into::into),
            overrides: get_json(row, "overrides")?,
            contact_list_ids: lists,
        },
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

fn refs(i: &CampaignInput) -> Vec<Ref> {
    let mut r = vec![
        Ref { field: "group_id".into(), table: "campaign_groups", kind: "campaign group", id: i.group_id.map(|g| g.0) },
        Ref { field: "profile_id".into(), table: "settings_profiles", kind: "settings profile", id: i.profile_id.map(|g| g.0) },
    ];
    for l in &i.contact_list_ids {
        r.push(Ref { field: "contact_list_ids".into(), table: "contact_lists", kind: "contact list", id: Some(l.0) });
    }
    r.extend(settings_refs(&i.overrides, "overrides"));
    r
}

impl Store {
    async fn write_campaign_lists(&self, conn: &mut sqlx::AnyConnection, id: i64, lists: &[campana_core::ContactListId]) -> Result<()> {
        sqlx::query("DELETE FROM campaign_lists WHERE campaign_id = $1").bind(id).execute(&mut *conn).await?;
        for (pos, l) in lists.iter().enumerate() {
            sqlx::query("INSERT INTO campaign_lists (campaign_id, list_id, position) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(l.0)
                .bind(pos as i64)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    pub async fn create_campaign(&self, input: &CampaignInput) -> Result<Campaign> {
        input.validate().map_err(StoreError::Invalid)?;
        let mut tx = self.begin_write().await?;
        self.check_refs(&mut tx, refs(input)).await?;
        let n = COLUMNS.len();
        let params: Vec<String> = (1..=n + 2).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO campaigns ({}, state, created_at, updated_at) VALUES ({}, ${}) RETURNING id",
            COLUMNS.join(", "),
            params.join(", "),
            n + 2
        );
        let mut vals = values(input);
        vals.push(V::S(CampaignState::Draft.as_str().into()));
        vals.push(V::I(now_ms()));
        let id: i64 = bind_all(sqlx::query(&sql), vals)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| unique_as_conflict(e, || format!("a campaign named '{}' already exists", input.name)))?
            .try_get("id")?;
        self.write_campaign_lists(&mut tx, id, &input.contact_list_ids).await?;
        tx.commit().await?;
        self.get_campaign(CampaignId(id)).await
    }

    async fn campaign_lists(&self, id: i64) -> Result<Vec<campana_core::ContactListId>> {
        let ids: Vec<i64> = sqlx::query_scalar("SELECT list_id FROM campaign_lists WHERE campaign_id = $1 ORDER BY position")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(Into::into).collect())
    }

    pub async fn get_campaign(&self, id: CampaignId) -> Result<Campaign> {
        let row = sqlx::query("SELECT * FROM campaigns WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("campaign", id))?;
        from_row(&row, self.campaign_lists(id.0).await?)
    }

    pub async fn list_campaigns(&self, filter: &CampaignFilter, page: PageParams) -> Result<Page<Campaign>> {
        let limit = page.limit();
        let mut sql = String::from("SELECT * FROM campaigns WHERE id > $1");
        let mut vals = vec![V::I(page.after())];
        if let Some(s) = filter.state {
            vals.push(V::S(s.as_str().into()));
            sql.push_str(&format!(" AND state = ${}", vals.len()));
        }
        match filter.group_id {
            Some(Some(g)) => {
                vals.push(V::I(g.0));
                sql.push_str(&format!(" AND group_id = ${}", vals.len()));
            }
            Some(None) => sql.push_str(" AND group_id IS NULL"),
            None => {}
        }
        if let Some(only) = &filter.only {
            if only.is_empty() {
                return Ok(Page { items: vec![], next_cursor: None });
            }
            let list: Vec<String> = only.iter().map(|c| c.0.to_string()).collect();
            sql.push_str(&format!(" AND id IN ({})", list.join(",")));
        }
        vals.push(V::I(limit + 1));
        sql.push_str(&format!(" ORDER BY id LIMIT ${}", vals.len()));
        let rows = bind_all(sqlx::query(&sql), vals).fetch_all(&self.pool).await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let id: i64 = row.try_get("id")?;
            items.push(from_row(row, self.campaign_lists(id).await?)?);
        }
        Ok(paginate(items, limit, |c| c.id.0))
    }

    pub async fn update_campaign(&self, id: CampaignId, input: &CampaignInput) -> Result<Campaign> {
        input.validate().map_err(StoreError::Invalid)?;
        let current = self.get_campaign(id).await?;
        if !current.state.is_editable() {
            return Err(StoreError::Conflict(format!("campaign {id} is {}; it can no longer be edited", current.state)));
        }
        let mut tx = self.begin_write().await?;
        self.check_refs(&mut tx, refs(input)).await?;
        let sets: Vec<String> = COLUMNS.iter().enumerate().map(|(i, c)| format!("{c} = ${}", i + 1)).collect();
        let n = COLUMNS.len();
        let sql = format!("UPDATE campaigns SET {}, updated_at = ${} WHERE id = ${}", sets.join(", "), n + 1, n + 2);
        let mut vals = values(input);
        vals.push(V::I(now_ms()));
        vals.push(V::I(id.0));
        bind_all(sqlx::query(&sql), vals)
            .execute(&mut *tx)
            .await
            .map_err(|e| unique_as_conflict(e, || format!("a campaign named '{}' already exists", input.name)))?;
        self.write_campaign_lists(&mut tx, id.0, &input.contact_list_ids).await?;
        tx.commit().await?;
        self.get_campaign(id).await
    }

    pub async fn delete_campaign(&self, id: CampaignId) -> Result<()> {
        let c = self.get_campaign(id).await?;
        if matches!(c.state, CampaignState::Running | CampaignState::Paused) {
            return Err(StoreError::Conflict(format!("campaign {id} is {}; stop it before deleting it", c.state)));
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM campaigns WHERE id = $1").bind(id.0).execute(&mut *tx).await?;
        // SQLite may give a deleted campaign's id to the next campaign: nothing may keep
        // pointing at it. Users' profiles forget it (else they would see that next campaign),
        // and its audit entries stop naming it (they stay readable by users with every campaign).
        let users = sqlx::query("SELECT id, campaigns_profile FROM users").fetch_all(&mut *tx).await?;
        for u in &users {
            let mut profile: campana_core::user::CampaignsProfile = get_json(u, "campaigns_profile")?;
            if let campana_core::user::CampaignsProfile::Only { campaign_ids } = &mut profile {
                if campaign_ids.contains(&id) {
                    campaign_ids.retain(|c| *c != id);
                    sqlx::query("UPDATE users SET campaigns_profile = $1 WHERE id = $2")
                        .bind(to_json(&profile))
                        .bind(u.try_get::<i64, _>("id")?)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        sqlx::query("DELETE FROM audit_campaigns WHERE campaign_id = $1").bind(id.0).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Applies a life-cycle action; refuses illegal transitions and starting a campaign that
    /// cannot dial (no contact list, no agent group outside agentless mode).
    pub async fn campaign_action(&self, id: CampaignId, action: CampaignAction) -> Result<Campaign> {
        let c = self.get_campaign(id).await?;
        let next = c.state.apply(action)?;
        if next == CampaignState::Running {
            let eff = self.effective_settings(&c).await?;
            let mut problems = Vec::new();
            if c.input.contact_list_ids.is_empty() {
                problems.push(FieldError::new("contact_list_ids", "a campaign needs at least one contact list to start"));
            }
            if eff.settings.agent_group_id.is_none() && eff.settings.dialing_mode != DialingMode::Agentless {
                problems.push(FieldError::new(
                    "agent_group_id",
                    format!(
                        "a {} campaign needs an agent group to start (set it on the profile or as an override)",
                        eff.settings.dialing_mode
                    ),
                ));
            }
            if !problems.is_empty() {
                return Err(StoreError::Invalid(problems));
            }
        }
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("UPDATE campaigns SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4")
            .bind(next.as_str())
            .bind(now_ms())
            .bind(id.0)
            .bind(c.state.as_str())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("campaign {id} changed state meanwhile; try again")));
        }
        if next != c.state {
            let data = serde_json::json!({
                "campaign_id": id, "name": c.input.name, "action": action, "from": c.state.as_str(), "to": next.as_str(),
            });
            crate::webhooks::emit(&mut tx, campana_core::webhook::EventType::CampaignStateChanged, data, chrono::Utc::now()).await?;
        }
        tx.commit().await?;
        self.get_campaign(id).await
    }

    /// The contact lists the given campaigns use.
    pub async fn lists_of_campaigns(&self, campaigns: &[CampaignId]) -> Result<Vec<i64>> {
        if campaigns.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<String> = campaigns.iter().map(|c| c.0.to_string()).collect();
        Ok(sqlx::query_scalar(&format!(
            "SELECT DISTINCT list_id FROM campaign_lists WHERE campaign_id IN ({}) ORDER BY list_id",
            ids.join(",")
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The campaigns that use a contact list.
    pub async fn campaigns_of_list(&self, list: campana_core::ContactListId) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar("SELECT DISTINCT campaign_id FROM campaign_lists WHERE list_id = $1 ORDER BY campaign_id")
            .bind(list.0)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The contact lists a user limited to `campaigns` sees: those their campaigns use, and
    /// those no campaign uses yet (they hold no campaign's data). A list shared with a campaign
    /// outside `campaigns` is visible through the user's own campaign.
    pub async fn lists_visible_with(&self, campaigns: &[CampaignId]) -> Result<Vec<i64>> {
        let mine = if campaigns.is_empty() {
            String::new()
        } else {
            format!(
                "id IN (SELECT list_id FROM campaign_lists WHERE campaign_id IN ({})) OR ",
                campaigns.iter().map(|c| c.0.to_string()).collect::<Vec<_>>().join(",")
            )
        };
        Ok(sqlx::query_scalar(&format!(
            "SELECT id FROM contact_lists WHERE {mine}id NOT IN (SELECT list_id FROM campaign_lists) ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The profile a campaign uses: its own, or the default one.
    pub async fn campaign_profile(&self, c: &Campaign) -> Result<SettingsProfile> {
        match c.input.profile_id {
            Some(p) => self.get::<SettingsProfile>(p.0).await,
            None => {
                let id: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM settings_profiles WHERE is_default = 1").fetch_optional(&self.pool).await?;
                let id = id.ok_or_else(|| {
                    StoreError::Conflict("no settings profile is marked default; mark one or give the campaign a profile".into())
                })?;
                self.get::<SettingsProfile>(id).await
            }
        }
    }

    pub async fn effective_settings(&self, c: &Campaign) -> Result<Effective> {
        let profile = self.campaign_profile(c).await?;
        Ok(effective(&profile.input.settings, &c.input.overrides))
    }
}
