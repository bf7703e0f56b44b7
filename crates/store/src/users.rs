//! Users and do-not-call entries.

use crate::catalog::{bind_all, Ref, V};
use crate::*;
use campana_core::record::{DncEntry, DncEntryInput};
use campana_core::stored::{DncList, Page};
use campana_core::user::{User, UserInput};
use campana_core::{DncListId, PhoneNumber, UserId};

fn user_from_row(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get::<i64, _>("id")?.into(),
        input: UserInput {
            username: row.try_get("username")?,
            display_name: row.try_get("display_name")?,
            role_id: row.try_get::<i64, _>("role_id")?.into(),
            campaigns_profile: get_json(row, "campaigns_profile")?,
            agent_group_ids: get_json(row, "agent_group_ids")?,
            password: None,
            active: get_bool(row, "active")?,
        },
        created_at: get_time(row, "created_at")?,
    })
}

fn user_refs(i: &UserInput) -> Vec<Ref> {
    let mut r = vec![Ref { field: "role_id".into(), table: "roles", kind: "role", id: Some(i.role_id.0) }];
    for g in &i.agent_group_ids {
        r.push(Ref { field: "agent_group_ids".into(), table: "agent_groups", kind: "agent group", id: Some(g.0) });
    }
    if let campana_core::user::CampaignsProfile::Only { campaign_ids } = &i.campaigns_profile {
        for c in campaign_ids {
            r.push(Ref { field: "campaigns_profile.campaign_ids".into(), table: "campaigns", kind: "campaign", id: Some(c.0) });
        }
    }
    r
}

/// Active users whose role holds `users_roles`: the people who can still manage accounts.
const ACCOUNT_MANAGERS_SQL: &str = "SELECT COUNT(*) FROM users u JOIN roles r ON r.id = u.role_id \
     WHERE u.active = 1 AND r.privileges LIKE '%\"users_roles\"%'";

impl Store {
    /// Runs at the start of a write transaction that may change who manages accounts, and
    /// answers how many do now. Locking the built-in roles' rows serialises such transactions
    /// on PostgreSQL too (SQLite's write lock already does), so two administrators demoting
    /// each other at once cannot both succeed.
    pub(crate) async fn account_managers_before(&self, tx: &mut sqlx::AnyConnection) -> Result<i64> {
        sqlx::query("UPDATE roles SET builtin = builtin WHERE builtin = 1").execute(&mut *tx).await?;
        Ok(sqlx::query_scalar(ACCOUNT_MANAGERS_SQL).fetch_one(&mut *tx).await?)
    }

    /// Refuses a change that leaves no active user able to manage users and roles (nothing
    /// would ever recreate one), when there was one before it.
    pub(crate) async fn account_managers_after(&self, tx: &mut sqlx::AnyConnection, before: i64, what: &str) -> Result<()> {
        let after: i64 = sqlx::query_scalar(ACCOUNT_MANAGERS_SQL).fetch_one(&mut *tx).await?;
        if before > 0 && after == 0 {
            return Err(StoreError::Conflict(format!(
                "{what} would leave no active user with the users_roles privilege; give it to another user first"
            )));
        }
        Ok(())
    }

    /// Creates a user; `password_hash` is the PHC string computed by the caller (argon2).
    pub async fn create_user(&self, input: &UserInput, password_hash: Option<String>) -> Result<User> {
        input.validate().map_err(StoreError::Invalid)?;
        let mut tx = self.begin_write().await?;
        self.check_refs(&mut tx, user_refs(input)).await?;
        let now = now_ms();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (username, display_name, role_id, campaigns_profile, agent_group_ids, password_hash, active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
        )
        .bind(&input.username)
        .bind(&input.display_name)
        .bind(input.role_id.0)
        .bind(to_json(&input.campaigns_profile))
        .bind(to_json(&input.agent_group_ids))
        .bind(password_hash)
        .bind(i64::from(input.active))
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| unique_as_conflict(e, || format!("a user named '{}' already exists", input.username)))?;
        tx.commit().await?;
        self.get_user(UserId(id)).await
    }

    pub async fn get_user(&self, id: UserId) -> Result<User> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("user", id))?;
        user_from_row(&row)
    }

    /// The user and their password hash, for login.
    pub async fn user_login(&self, username: &str) -> Result<Option<(User, Option<String>)>> {
        let row = sqlx::query("SELECT * FROM users WHERE username = $1").bind(username).fetch_optional(&self.pool).await?;
        row.map(|r| Ok((user_from_row(&r)?, r.try_get("password_hash")?))).transpose()
    }

    pub async fn list_users(&self, page: PageParams) -> Result<Page<User>> {
        let limit = page.limit();
        let rows = sqlx::query("SELECT * FROM users WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(page.after())
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let items = rows.iter().map(user_from_row).collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, limit, |u| u.id.0))
    }

    /// Every user (bounded by the number of accounts of the company).
    pub async fn list_all_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Replaces a user's fields; the password changes only when `password_hash` is given.
    pub async fn update_user(&self, id: UserId, input: &UserInput, password_hash: Option<String>) -> Result<User> {
        input.validate().map_err(StoreError::Invalid)?;
        let mut tx = self.begin_write().await?;
        self.check_refs(&mut tx, user_refs(input)).await?;
        let managers = self.account_managers_before(&mut tx).await?;
        let done = sqlx::query(
            "UPDATE users SET username = $1, display_name = $2, role_id = $3, campaigns_profile = $4, agent_group_ids = $5, \
             password_hash = COALESCE($6, password_hash), active = $7, updated_at = $8 WHERE id = $9",
        )
        .bind(&input.username)
        .bind(&input.display_name)
        .bind(input.role_id.0)
        .bind(to_json(&input.campaigns_profile))
        .bind(to_json(&input.agent_group_ids))
        .bind(password_hash)
        .bind(i64::from(input.active))
        .bind(now_ms())
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_as_conflict(e, || format!("a user named '{}' already exists", input.username)))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("user", id));
        }
        self.account_managers_after(&mut tx, managers, &format!("changing user '{}' this way", input.username)).await?;
        tx.commit().await?;
        self.get_user(id).await
    }

    /// Sets a user's password (the PHC hash computed by the caller).
    pub async fn set_password(&self, id: UserId, password_hash: &str) -> Result<()> {
        let done = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(now_ms())
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("user", id));
        }
        Ok(())
    }

    /// The stored password hash of a user (none for users who cannot sign in with one).
    pub async fn password_hash(&self, id: UserId) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1").bind(id.0).fetch_optional(&self.pool).await?.flatten())
    }

    /// Ends a user's browser sessions except `keep` (after a password change).
    pub async fn end_sessions(&self, user: UserId, keep: Option<i64>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM auth_tokens WHERE user_id = $1 AND kind = 'session' AND id <> $2")
            .bind(user.0)
            .bind(keep.unwrap_or(0))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn delete_user(&self, id: UserId) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let managers = self.account_managers_before(&mut tx).await?;
        let done = sqlx::query("DELETE FROM users WHERE id = $1").bind(id.0).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("user", id));
        }
        self.account_managers_after(&mut tx, managers, &format!("deleting user {id}")).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- do-not-call ----

    /// Adds or replaces a number on a DNC list.
    pub async fn put_dnc_entry(&self, list: DncListId, e: &DncEntryInput) -> Result<DncEntry> {
        self.get::<DncList>(list.0).await?;
        sqlx::query(
            "INSERT INTO dnc_entries (list_id, phone, expires_at, reason, source, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (list_id, phone) DO UPDATE SET expires_at = excluded.expires_at, reason = excluded.reason, source = excluded.source",
        )
        .bind(list.0)
        .bind(e.phone.as_str())
        .bind(e.expires_at.map(ms))
        .bind(&e.reason)
        .bind(&e.source)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        self.get_dnc_entry(list, &e.phone).await
    }

    /// Adds or replaces many numbers on a DNC list in one transaction (all or nothing).
    pub async fn put_dnc_entries(&self, list: DncListId, entries: &[DncEntryInput]) -> Result<u64> {
        self.get::<DncList>(list.0).await?;
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        for chunk in entries.chunks(500) {
            let sql = format!(
                "INSERT INTO dnc_entries (list_id, phone, expires_at, reason, source, created_at) VALUES {} \
                 ON CONFLICT (list_id, phone) DO UPDATE SET expires_at = excluded.expires_at, reason = excluded.reason, source = excluded.source",
                self.values_groups(chunk.len(), 6)
            );
            let mut vals = Vec::with_capacity(chunk.len() * 6);
            for e in chunk {
                vals.extend([
                    V::I(list.0),
                    V::S(e.phone.to_string()),
                    V::OI(e.expires_at.map(ms)),
                    V::S(e.reason.clone()),
                    V::S(e.source.clone()),
                    V::I(now),
                ]);
            }
            bind_all(sqlx::query(&sql), vals).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(entries.len() as u64)
    }

    pub async fn get_dnc_entry(&self, list: DncListId, phone: &PhoneNumber) -> Result<DncEntry> {
        let row = sqlx::query("SELECT * FROM dnc_entries WHERE list_id = $1 AND phone = $2")
            .bind(list.0)
            .bind(phone.as_str())
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("DNC entry", phone))?;
        dnc_from_row(&row)
    }

    pub async fn list_dnc_entries(&self, list: DncListId, page: PageParams, after_phone: Option<&str>) -> Result<Page<DncEntry>> {
        self.get::<DncList>(list.0).await?;
        let limit = page.limit();
        let rows = bind_all(
            sqlx::query("SELECT * FROM dnc_entries WHERE list_id = $1 AND phone > $2 ORDER BY phone LIMIT $3"),
            vec![V::I(list.0), V::S(after_phone.unwrap_or("").to_string()), V::I(limit + 1)],
        )
        .fetch_all(&self.pool)
        .await?;
        let mut items = rows.iter().map(dnc_from_row).collect::<Result<Vec<_>>>()?;
        let next_cursor = if items.len() as i64 > limit {
            items.truncate(limit as usize);
            items.last().map(|e| e.input.phone.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    pub async fn delete_dnc_entry(&self, list: DncListId, phone: &PhoneNumber) -> Result<()> {
        let done = sqlx::query("DELETE FROM dnc_entries WHERE list_id = $1 AND phone = $2")
            .bind(list.0)
            .bind(phone.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("DNC entry", phone));
        }
        Ok(())
    }

    /// The entries in force at `at` for `phone` on the given lists plus the internal list.
    pub async fn dnc_hits(&self, phone: &PhoneNumber, lists: &[DncListId], at: chrono::DateTime<chrono::Utc>) -> Result<Vec<DncEntry>> {
        let ids: Vec<String> = lists.iter().map(|l| l.0.to_string()).collect();
        let in_lists = if ids.is_empty() { String::new() } else { format!(" OR list_id IN ({})", ids.join(",")) };
        let rows = sqlx::query(&format!(
            "SELECT * FROM dnc_entries WHERE phone = $1 AND (expires_at IS NULL OR expires_at > $2) \
             AND (list_id IN (SELECT id FROM dnc_lists WHERE is_internal = 1){in_lists})"
        ))
        .bind(phone.as_str())
        .bind(ms(at))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(dnc_from_row).collect()
    }

    /// DNC entries in force at `at` for any of `phones` on the internal list or `lists`, as
    /// (phone, list id, internal?, expires_at). Queried 500 numbers at a time.
    pub async fn dnc_entries_for(
        &self,
        phones: &[PhoneNumber],
        lists: &[DncListId],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(PhoneNumber, DncListId, bool, Option<chrono::DateTime<chrono::Utc>>)>> {
        let mut out = Vec::new();
        let list_filter = if lists.is_empty() {
            String::new()
        } else {
            format!(" OR e.list_id IN ({})", lists.iter().map(|l| l.0.to_string()).collect::<Vec<_>>().join(","))
        };
        for chunk in phones.chunks(500) {
            let sql = format!(
                "SELECT e.phone, e.list_id, l.is_internal, e.expires_at FROM dnc_entries e JOIN dnc_lists l ON l.id = e.list_id \
                 WHERE e.phone IN ({}) AND (e.expires_at IS NULL OR e.expires_at > ${}) AND (l.is_internal = 1{list_filter})",
                self.values_groups(1, chunk.len()).trim_start_matches('(').trim_end_matches(')'),
                chunk.len() + 1
            );
            let mut vals: Vec<V> = chunk.iter().map(|p| V::S(p.to_string())).collect();
            vals.push(V::I(ms(at)));
            for r in bind_all(sqlx::query(&sql), vals).fetch_all(&self.pool).await? {
                out.push((
                    PhoneNumber::from_e164_unchecked_store(r.try_get("phone")?),
                    DncListId(r.try_get("list_id")?),
                    get_bool(&r, "is_internal")?,
                    get_opt_time(&r, "expires_at")?,
                ));
            }
        }
        Ok(out)
    }

    /// Every DNC list as (id, internal?).
    pub async fn dnc_list_ids(&self) -> Result<Vec<(DncListId, bool)>> {
        let rows = sqlx::query("SELECT id, is_internal FROM dnc_lists ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((DncListId(r.try_get("id")?), get_bool(r, "is_internal")?))).collect()
    }

    /// One page of every DNC entry in force at `at`, in (list, phone) order, after `after`:
    /// (list, phone, expires_at). The dialer reads all its lists this way.
    pub async fn dnc_entries_page(
        &self,
        after: Option<(DncListId, &str)>,
        limit: usize,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(DncListId, PhoneNumber, Option<chrono::DateTime<chrono::Utc>>)>> {
        let (l, p) = after.map(|(l, p)| (l.0, p.to_string())).unwrap_or((i64::MIN, String::new()));
        let rows = bind_all(
            sqlx::query(
                "SELECT list_id, phone, expires_at FROM dnc_entries WHERE (list_id > $1 OR (list_id = $1 AND phone > $2)) \
                 AND (expires_at IS NULL OR expires_at > $3) ORDER BY list_id, phone LIMIT $4",
            ),
            vec![V::I(l), V::S(p), V::I(ms(at)), V::I(limit as i64)],
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    DncListId(r.try_get("list_id")?),
                    PhoneNumber::from_e164_unchecked_store(r.try_get("phone")?),
                    get_opt_time(r, "expires_at")?,
                ))
            })
            .collect()
    }

    /// The id of the internal DNC list.
    pub async fn internal_dnc_list(&self) -> Result<DncListId> {
        let id: i64 =
            sqlx::query_scalar("SELECT id FROM dnc_lists WHERE is_internal = 1 ORDER BY id LIMIT 1").fetch_one(&self.pool).await?;
        Ok(DncListId(id))
    }
}

fn dnc_from_row(row: &AnyRow) -> Result<DncEntry> {
    Ok(DncEntry {
        list_id: row.try_get::<i64, _>("list_id")?.into(),
        input: DncEntryInput {
            phone: PhoneNumber::from_e164_unchecked_store(row.try_get("phone")?),
            expires_at: get_opt_time(row, "expires_at")?,
            reason: row.try_get("reason")?,
            source: row.try_get("source")?,
        },
        created_at: get_time(row, "created_at")?,
    })
}
