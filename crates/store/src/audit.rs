//! The audit log: one row per change (who, when, what, before and after as JSON), inserted and
//! never updated. Each entry says which campaigns it is about, so a user limited to some
//! campaigns sees only the entries about those (see [`AuditFilter::only_campaigns`]).

use crate::catalog::{bind_all, V};
use crate::*;
use campana_core::stored::Page;
use serde_json::Value;

/// Which campaigns an entry is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Concerns {
    /// Not about any campaign (a script, a DNC list, a campaign group, ...).
    Global,
    /// About these campaigns; an empty list means "about campaign data that belongs to no
    /// campaign yet" (a contact list used by no campaign, a user with every campaign), which
    /// only users with every campaign see.
    Campaigns(Vec<i64>),
}

/// An entry to write.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub actor_id: Option<i64>,
    pub actor_name: String,
    pub via: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub summary: String,
    pub concerns: Concerns,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// An entry as listed.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    /// The user who made the change (absent once that user is deleted, or for failed sign-ins
    /// of unknown names, which are not logged).
    pub actor_id: Option<i64>,
    pub actor_name: String,
    /// `api` or `console`.
    pub via: String,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub summary: String,
    /// The campaigns the entry is about.
    pub campaign_ids: Vec<i64>,
    #[schema(value_type = Option<Object>)]
    pub before: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<Value>,
}

/// Which entries to list; every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<i64>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub action: Option<String>,
    pub campaign_id: Option<i64>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// The reader's campaigns profile: `Some(ids)` keeps only entries not about any campaign
    /// and entries about at least one campaign, all of them in `ids`.
    pub only_campaigns: Option<Vec<i64>>,
    /// Entity types the reader may see (`None`: all).
    pub entity_types_in: Option<Vec<String>>,
    /// Entity types the reader may not see.
    pub entity_types_not_in: Vec<String>,
}

fn ids_sql(ids: &[i64]) -> String {
    ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

impl Store {
    /// Writes one entry; returns its id.
    pub async fn insert_audit(&self, e: &NewAuditEntry) -> Result<i64> {
        let mut tx = self.begin_write().await?;
        let (scoped, campaigns) = match &e.concerns {
            Concerns::Global => (false, Vec::new()),
            Concerns::Campaigns(c) => {
                let mut c = c.clone();
                c.sort_unstable();
                c.dedup();
                (true, c)
            }
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO audit_log (at, actor_id, actor_name, via, action, entity_type, entity_id, summary, scoped, before_value, after_value) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(now_ms())
        .bind(e.actor_id)
        .bind(&e.actor_name)
        .bind(&e.via)
        .bind(&e.action)
        .bind(&e.entity_type)
        .bind(e.entity_id.clone())
        .bind(&e.summary)
        .bind(i64::from(scoped))
        .bind(e.before.as_ref().map(to_json))
        .bind(e.after.as_ref().map(to_json))
        .fetch_one(&mut *tx)
        .await?;
        for c in campaigns {
            sqlx::query("INSERT INTO audit_campaigns (audit_id, campaign_id) VALUES ($1, $2)").bind(id).bind(c).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// Entries newest first, after the entry whose id is `page.cursor` (the previous page's
    /// `next_cursor`).
    pub async fn list_audit(&self, f: &AuditFilter, page: PageParams) -> Result<Page<AuditEntry>> {
        let limit = page.limit();
        let mut sql = String::from("SELECT a.* FROM audit_log a WHERE 1 = 1");
        let mut vals = Vec::new();
        let param = |v: V, sql: &mut String, vals: &mut Vec<V>, expr: &str| {
            vals.push(v);
            sql.push_str(&expr.replace('?', &format!("${}", vals.len())));
        };
        if let Some(c) = page.cursor {
            param(V::I(c), &mut sql, &mut vals, " AND a.id < ?");
        }
        if let Some(a) = f.actor_id {
            param(V::I(a), &mut sql, &mut vals, " AND a.actor_id = ?");
        }
        if let Some(t) = &f.entity_type {
            param(V::S(t.clone()), &mut sql, &mut vals, " AND a.entity_type = ?");
        }
        if let Some(i) = &f.entity_id {
            param(V::S(i.clone()), &mut sql, &mut vals, " AND a.entity_id = ?");
        }
        if let Some(a) = &f.action {
            param(V::S(a.clone()), &mut sql, &mut vals, " AND a.action = ?");
        }
        if let Some(c) = f.campaign_id {
            param(
                V::I(c),
                &mut sql,
                &mut vals,
                " AND EXISTS (SELECT 1 FROM audit_campaigns ac WHERE ac.audit_id = a.id AND ac.campaign_id = ?)",
            );
        }
        if let Some(t) = f.since {
            param(V::I(ms(t)), &mut sql, &mut vals, " AND a.at >= ?");
        }
        if let Some(t) = f.until {
            param(V::I(ms(t)), &mut sql, &mut vals, " AND a.at < ?");
        }
        if let Some(types) = &f.entity_types_in {
            if types.is_empty() {
                return Ok(Page { items: vec![], next_cursor: None });
            }
            let mut ors = Vec::new();
            for t in types {
                vals.push(V::S(t.clone()));
                ors.push(format!("${}", vals.len()));
            }
            sql.push_str(&format!(" AND a.entity_type IN ({})", ors.join(",")));
        }
        for t in &f.entity_types_not_in {
            param(V::S(t.clone()), &mut sql, &mut vals, " AND a.entity_type <> ?");
        }
        if let Some(ids) = &f.only_campaigns {
            let any = "EXISTS (SELECT 1 FROM audit_campaigns ac WHERE ac.audit_id = a.id)";
            if ids.is_empty() {
                sql.push_str(&format!(" AND a.scoped = 0 AND NOT {any}"));
            } else {
                sql.push_str(&format!(
                    " AND (a.scoped = 0 OR {any}) AND NOT EXISTS (SELECT 1 FROM audit_campaigns ac WHERE ac.audit_id = a.id AND ac.campaign_id NOT IN ({}))",
                    ids_sql(ids)
                ));
            }
        }
        vals.push(V::I(limit + 1));
        sql.push_str(&format!(" ORDER BY a.id DESC LIMIT ${}", vals.len()));
        let rows = bind_all(sqlx::query(&sql), vals).fetch_all(&self.pool).await?;
        let mut items = Vec::with_capacity(rows.len());
        for r in &rows {
            items.push(AuditEntry {
                id: r.try_get("id")?,
                at: get_time(r, "at")?,
                actor_id: r.try_get("actor_id")?,
                actor_name: r.try_get("actor_name")?,
                via: r.try_get("via")?,
                action: r.try_get("action")?,
                entity_type: r.try_get("entity_type")?,
                entity_id: r.try_get("entity_id")?,
                summary: r.try_get("summary")?,
                campaign_ids: Vec::new(),
                before: opt_json(r, "before_value")?,
                after: opt_json(r, "after_value")?,
            });
        }
        let mut page = paginate(items, limit, |e| e.id);
        if !page.items.is_empty() {
            let rows = sqlx::query(&format!(
                "SELECT audit_id, campaign_id FROM audit_campaigns WHERE audit_id IN ({}) ORDER BY campaign_id",
                ids_sql(&page.items.iter().map(|e| e.id).collect::<Vec<_>>())
            ))
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                let (a, c): (i64, i64) = (r.try_get("audit_id")?, r.try_get("campaign_id")?);
                if let Some(e) = page.items.iter_mut().find(|e| e.id == a) {
                    e.campaign_ids.push(c);
                }
            }
        }
        Ok(page)
    }
}

fn opt_json(row: &AnyRow, col: &str) -> Result<Option<Value>> {
    let s: Option<String> = row.try_get(col)?;
    s.map(|s| serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))).transpose()
}
