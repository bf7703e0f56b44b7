//! Records of contact lists: listing, CRM upserts by external id, the staged merge shared by
//! CSV imports and API upserts.

use crate::catalog::{bind_all, V};
use crate::*;
use campana_core::import::DedupePolicy;
use campana_core::record::{Contact, Record, RecordStatus};
use campana_core::stored::{ContactList, Page};
use campana_core::{ContactListId, PhoneNumber, RecordId};

/// Filters for listing records.
#[derive(Debug, Clone, Default)]
pub struct RecordFilterParams {
    pub status: Option<RecordStatus>,
    pub record_type: Option<campana_core::record::RecordType>,
    pub phone: Option<PhoneNumber>,
    pub external_id: Option<String>,
    pub chain_id: Option<i64>,
}

/// What an upsert or import merge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct UpsertOutcome {
    pub customers_created: i64,
    pub customers_updated: i64,
    /// Customers not imported because they were already in the list (policy `skip`).
    pub customers_duplicate: i64,
    pub records_created: i64,
}

/// Rows per multi-row INSERT: 15 columns x 400 rows stays far below both backends' parameter limits.
pub(crate) const STAGE_ROWS_PER_STATEMENT: usize = 400;

pub(crate) fn record_from_row(row: &AnyRow) -> Result<Record> {
    let tz: Option<String> = row.try_get("time_zone")?;
    let phone: String = row.try_get("phone")?;
    let opt_parse = |c: &str| -> Result<Option<String>> { Ok(row.try_get::<Option<String>, _>(c)?) };
    Ok(Record {
        id: row.try_get::<i64, _>("id")?.into(),
        list_id: row.try_get::<i64, _>("list_id")?.into(),
        chain_id: row.try_get::<i64, _>("chain_id")?.into(),
        chain_position: row.try_get::<i64, _>("chain_position")? as i32,
        external_id: row.try_get("external_id")?,
        phone: PhoneNumber::from_e164_unchecked_store(phone),
        phone_type: get_parsed(row, "phone_type")?,
        record_type: get_parsed(row, "record_type")?,
        record_status: get_parsed(row, "record_status")?,
        attempts_total: row.try_get::<i64, _>("attempts_total")? as i32,
        attempts_today: row.try_get::<i64, _>("attempts_today")? as i32,
        attempts_day: opt_parse("attempts_day")?
            .map(|s| s.parse())
            .transpose()
            .map_err(|e: chrono::ParseError| StoreError::Corrupt(e.to_string()))?,
        dial_from: get_opt_time(row, "dial_from")?,
        dial_until: get_opt_time(row, "dial_until")?,
        time_zone: tz.map(|z| campana_core::TimeZone::parse(&z)).transpose().map_err(|e| StoreError::Corrupt(e.to_string()))?,
        postal_code: row.try_get("postal_code")?,
        name: row.try_get("name")?,
        sort_value: row.try_get("sort_value")?,
        custom: get_json(row, "custom")?,
        last_result: opt_parse("last_result")?
            .map(|s| s.parse())
            .transpose()
            .map_err(|e: FieldError| StoreError::Corrupt(e.to_string()))?,
        last_call_at: get_opt_time(row, "last_call_at")?,
        callback_at: get_opt_time(row, "callback_at")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

impl Store {
    pub async fn list_records(&self, list: ContactListId, f: &RecordFilterParams, page: PageParams) -> Result<Page<Record>> {
        self.get::<ContactList>(list.0).await?;
        let limit = page.limit();
        let mut sql = String::from("SELECT * FROM records WHERE list_id = $1 AND id > $2");
        let mut vals = vec![V::I(list.0), V::I(page.after())];
        let mut add = |col: &str, v: V, vals: &mut Vec<V>| {
            vals.push(v);
            sql.push_str(&format!(" AND {col} = ${}", vals.len()));
        };
        if let Some(s) = f.status {
            add("record_status", V::S(s.as_str().into()), &mut vals);
        }
        if let Some(t) = f.record_type {
            add("record_type", V::S(t.as_str().into()), &mut vals);
        }
        if let Some(p) = &f.phone {
            add("phone", V::S(p.as_str().into()), &mut vals);
        }
        if let Some(e) = &f.external_id {
            add("external_id", V::S(e.clone()), &mut vals);
        }
        if let Some(c) = f.chain_id {
            add("chain_id", V::I(c), &mut vals);
        }
        vals.push(V::I(limit + 1));
        sql.push_str(&format!(" ORDER BY id LIMIT ${}", vals.len()));
        let rows = bind_all(sqlx::query(&sql), vals).fetch_all(&self.pool).await?;
        let items = rows.iter().map(record_from_row).collect::<Result<Vec<_>>>()?;
        Ok(paginate(items, limit, |r| r.id.0))
    }

    pub async fn get_record(&self, list: ContactListId, id: RecordId) -> Result<Record> {
        let row = sqlx::query("SELECT * FROM records WHERE list_id = $1 AND id = $2")
            .bind(list.0)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::not_found("record", id))?;
        record_from_row(&row)
    }

    /// Applies a supervisor's change to a record.
    pub async fn patch_record(&self, list: ContactListId, id: RecordId, patch: &campana_core::record::RecordPatch) -> Result<Record> {
        let current = self.get_record(list, id).await?;
        let n = patch.apply(&current).map_err(StoreError::Invalid)?;
        sqlx::query(
            "UPDATE records SET record_type = $1, record_status = $2, dial_from = $3, dial_until = $4, callback_at = $5, time_zone = $6, \
             updated_at = $7 WHERE list_id = $8 AND id = $9",
        )
        .bind(n.record_type.as_str())
        .bind(n.record_status.as_str())
        .bind(n.dial_from.map(ms))
        .bind(n.dial_until.map(ms))
        .bind(n.callback_at.map(ms))
        .bind(n.time_zone.map(|z| z.name().to_string()))
        .bind(now_ms())
        .bind(list.0)
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        self.get_record(list, id).await
    }

    /// Attempts per chain (customer) for the given chains of a list.
    pub async fn chain_attempts(&self, list: ContactListId, chains: &[i64]) -> Result<std::collections::HashMap<i64, i64>> {
        let mut out = std::collections::HashMap::new();
        for chunk in chains.chunks(500) {
            let ids: Vec<String> = chunk.iter().map(|c| c.to_string()).collect();
            let rows = sqlx::query(&format!(
                "SELECT chain_id, CAST(SUM(attempts_total) AS BIGINT) AS n FROM records WHERE list_id = $1 AND chain_id IN ({}) GROUP BY chain_id",
                ids.join(",")
            ))
            .bind(list.0)
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                out.insert(r.try_get::<i64, _>("chain_id")?, r.try_get::<i64, _>("n")?);
            }
        }
        Ok(out)
    }

    /// The records of one customer, by external id, in chain order.
    pub async fn records_by_external_id(&self, list: ContactListId, external_id: &str) -> Result<Vec<Record>> {
        let rows = sqlx::query("SELECT * FROM records WHERE list_id = $1 AND external_id = $2 ORDER BY chain_position")
            .bind(list.0)
            .bind(external_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(record_from_row).collect()
    }

    /// Record counts by status for a set of lists.
    pub async fn record_status_counts(&self, lists: &[ContactListId]) -> Result<Vec<(RecordStatus, i64)>> {
        if lists.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<String> = lists.iter().map(|l| l.0.to_string()).collect();
        let rows = sqlx::query(&format!(
            "SELECT record_status, COUNT(*) AS n FROM records WHERE list_id IN ({}) GROUP BY record_status ORDER BY record_status",
            ids.join(",")
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((get_parsed(r, "record_status")?, r.try_get::<i64, _>("n")?))).collect()
    }

    /// Creates or updates customers by external id (CRM sync), idempotently: pushing the same
    /// members again changes nothing but `updated_at`. Phones are matched by chain position;
    /// a number that changed starts with fresh attempt counters; positions the CRM no longer
    /// sends are cancelled (kept for history, never dialed).
    pub async fn upsert_contacts(&self, list: ContactListId, contacts: &[Contact]) -> Result<UpsertOutcome> {
        self.get::<ContactList>(list.0).await?;
        if contacts.iter().any(|c| c.external_id.is_none()) {
            return Err(StoreError::invalid("external_id", "every upserted customer needs an external id"));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, c) in contacts.iter().enumerate() {
            if !seen.insert(c.external_id.clone()) {
                return Err(StoreError::invalid(
                    &format!("[{i}].external_id"),
                    format!("'{}' appears twice in one request", c.external_id.as_deref().unwrap_or_default()),
                ));
            }
        }
        // A pseudo-import id that cannot collide with real imports (those are positive).
        let staging_id = -(now_ms() * 1000 + (rand_suffix() % 1000));
        let mut tx = self.begin_write().await?;
        let keyed: Vec<(u64, &Contact)> = contacts.iter().enumerate().map(|(i, c)| (i as u64 + 1, c)).collect();
        stage_contacts(self, &mut tx, staging_id, &keyed).await?;
        let outcome = merge_staged(self, &mut tx, "import_staging", staging_id, list, DedupePolicy::Update).await?;
        sqlx::query("DELETE FROM import_staging WHERE import_id = $1").bind(staging_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(outcome)
    }
}

fn rand_suffix() -> i64 {
    use std::sync::atomic::{AtomicI64, Ordering};
    static N: AtomicI64 = AtomicI64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The columns of a staged row, in the order [`StagingRows::rows`] yields their values. The
/// persistent `import_staging` table (CRM upserts) and each import's scratch table have them.
pub(crate) const STAGING_COLS: &str = "import_id, chain_key, chain_position, external_id, phone, phone_type, record_type, dial_from, dial_until, time_zone, postal_code, name, sort_value, custom";
pub(crate) const STAGING_NCOLS: usize = 14;

/// One value of a staged row, borrowed from its contact.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SV<'a> {
    I(i64),
    OI(Option<i64>),
    S(&'a str),
    OS(Option<&'a str>),
}

impl SV<'_> {
    fn owned(self) -> V {
        match self {
            SV::I(x) => V::I(x),
            SV::OI(x) => V::OI(x),
            SV::S(x) => V::S(x.to_string()),
            SV::OS(x) => V::OS(x.map(str::to_string)),
        }
    }
}

/// The staged rows of some contacts, one per phone, keyed by `chain_key` (the file row, or the
/// position in an upsert request): the one place that says what a staged row holds, shared by
/// every way of writing them (bound parameters, SQLite scratch files, PostgreSQL `COPY`).
pub(crate) struct StagingRows<'a> {
    contacts: &'a [(u64, &'a Contact)],
    custom: Vec<String>,
}

impl<'a> StagingRows<'a> {
    pub(crate) fn new(contacts: &'a [(u64, &'a Contact)]) -> Self {
        StagingRows { contacts, custom: contacts.iter().map(|(_, c)| to_json(&c.custom)).collect() }
    }

    pub(crate) fn rows(&self, import_id: i64) -> impl Iterator<Item = [SV<'_>; STAGING_NCOLS]> + '_ {
        self.contacts.iter().zip(&self.custom).flat_map(move |((key, c), custom)| {
            c.phones.iter().enumerate().map(move |(pos, (ptype, phone))| {
                [
                    SV::I(import_id),
                    SV::I(*key as i64),
                    SV::I(pos as i64 + 1),
                    SV::OS(c.external_id.as_deref()),
                    SV::S(phone.as_str()),
                    SV::S(ptype.as_str()),
                    SV::S(c.record_type.as_str()),
                    SV::OI(c.dial_from.map(ms)),
                    SV::OI(c.dial_until.map(ms)),
                    SV::OS(c.time_zone.map(|z| z.name())),
                    SV::OS(c.postal_code.as_deref()),
                    SV::S(&c.name),
                    SV::OS(c.sort_value.as_deref()),
                    SV::S(custom),
                ]
            })
        })
    }
}

/// Inserts contacts into the persistent staging table (CRM upserts), one row per phone.
pub(crate) async fn stage_contacts(
    store: &Store,
    conn: &mut sqlx::AnyConnection,
    import_id: i64,
    contacts: &[(u64, &Contact)],
) -> Result<()> {
    let staged = StagingRows::new(contacts);
    let mut rows: Vec<V> = Vec::new();
    let mut n = 0;
    for row in staged.rows(import_id) {
        rows.extend(row.into_iter().map(SV::owned));
        n += 1;
        if n == STAGE_ROWS_PER_STATEMENT {
            insert_staging_rows(store, conn, n, std::mem::take(&mut rows)).await?;
            n = 0;
        }
    }
    insert_staging_rows(store, conn, n, rows).await
}

async fn insert_staging_rows(store: &Store, conn: &mut sqlx::AnyConnection, n: usize, vals: Vec<V>) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let sql = format!("INSERT INTO import_staging ({STAGING_COLS}) VALUES {}", store.values_groups(n, STAGING_NCOLS));
    bind_all(sqlx::query(&sql), vals).execute(&mut *conn).await?;
    Ok(())
}

/// Merges staged rows into the list in the caller's transaction (see the module docs of
/// `imports` for the rules). `staging` is the table holding them: `import_staging` for CRM
/// upserts, an import's scratch table for files. The caller clears the staged rows.
pub(crate) async fn merge_staged(
    store: &Store,
    conn: &mut sqlx::AnyConnection,
    staging: &str,
    import_id: i64,
    list: ContactListId,
    policy: DedupePolicy,
) -> Result<UpsertOutcome> {
    let now = now_ms();
    let t_merge = std::time::Instant::now();
    let step = |name: &str| tracing::debug!(step = name, elapsed_ms = t_merge.elapsed().as_millis() as u64, "merge");
    let q = |sql: &str| sql.replace("{staging}", staging);
    // Serialises merges into one list (row lock on PostgreSQL; SQLite already holds the write lock).
    sqlx::query("UPDATE contact_lists SET updated_at = $1 WHERE id = $2").bind(now).bind(list.0).execute(&mut *conn).await?;
    if store.backend() == Backend::Postgres {
        // Freshly staged rows have no statistics; without them the planner picks nested loops.
        sqlx::query(&q("ANALYZE {staging}")).execute(&mut *conn).await?;
    }
    // An empty list has nothing to match: steps 1, 2, 3 and 5 would scan every staged row for nothing.
    let list_has_records: bool = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM (SELECT 1 FROM records WHERE list_id = $1 LIMIT 1) x")
        .bind(list.0)
        .fetch_one(&mut *conn)
        .await?
        > 0;
    // Every step is a set-based join (no per-row subqueries), so merging is linear-ish on both backends.
    // 1. A customer with a known external id is that customer. (CROSS JOIN: SQLite keeps the
    // staged rows outside and looks each up in records_list_external; with an inner join it
    // walked every record of the list against every staged row, so a CRM pushing batches into
    // a growing list slowed down batch after batch. PostgreSQL plans it as the inner join.)
    step("1 external ids");
    if list_has_records {
        sqlx::query(&q("UPDATE {staging} SET target_chain_id = m.chain_id \
             FROM (SELECT r.external_id, MIN(r.chain_id) AS chain_id FROM {staging} s CROSS JOIN records r \
                   WHERE r.list_id = $2 AND r.external_id = s.external_id AND s.import_id = $1 GROUP BY r.external_id) m \
             WHERE {staging}.import_id = $1 AND {staging}.external_id = m.external_id"))
        .bind(import_id)
        .bind(list.0)
        .execute(&mut *conn)
        .await?;
    }
    // 2. Numbers already in the list: duplicates (skip), or the customer to update when the row has no external id (update).
    step("2 numbers");
    let phone_match = match policy {
        DedupePolicy::Skip => Some(""),
        DedupePolicy::Update => Some(" AND {staging}.external_id IS NULL"),
        DedupePolicy::KeepBoth => None,
    };
    if let (Some(extra), true) = (phone_match, list_has_records) {
        sqlx::query(&q(&format!(
            "UPDATE {{staging}} SET target_chain_id = m.chain_id \
             FROM (SELECT s2.chain_key, MIN(r.chain_id) AS chain_id FROM {{staging}} s2 JOIN records r ON r.list_id = $2 AND r.phone = s2.phone \
                   WHERE s2.import_id = $1 GROUP BY s2.chain_key) m \
             WHERE {{staging}}.import_id = $1 AND {{staging}}.chain_key = m.chain_key AND {{staging}}.target_chain_id IS NULL{extra}"
        )))
        .bind(import_id)
        .bind(list.0)
        .execute(&mut *conn)
        .await?;
    }
    // Counts: every staged customer has exactly one row at chain position 1, and target_chain_id
    // is the same on all rows of one customer (set by external id or by chain key).
    step("counts");
    let mut out = UpsertOutcome::default();
    if policy == DedupePolicy::Skip && list_has_records {
        out.customers_duplicate = sqlx::query_scalar(&q(
            "SELECT COUNT(*) FROM {staging} WHERE import_id = $1 AND chain_position = 1 AND target_chain_id IS NOT NULL",
        ))
        .bind(import_id)
        .fetch_one(&mut *conn)
        .await?;
        if out.customers_duplicate > 0 {
            sqlx::query(&q("DELETE FROM {staging} WHERE import_id = $1 AND target_chain_id IS NOT NULL"))
                .bind(import_id)
                .execute(&mut *conn)
                .await?;
        }
    }
    out.customers_created =
        sqlx::query_scalar(&q("SELECT COUNT(*) FROM {staging} WHERE import_id = $1 AND chain_position = 1 AND target_chain_id IS NULL"))
            .bind(import_id)
            .fetch_one(&mut *conn)
            .await?;
    if list_has_records {
        out.customers_updated = sqlx::query_scalar(&q(
            "SELECT COUNT(DISTINCT target_chain_id) FROM {staging} WHERE import_id = $1 AND target_chain_id IS NOT NULL",
        ))
        .bind(import_id)
        .fetch_one(&mut *conn)
        .await?;
    }
    // 3. Update existing records at the same chain position.
    step("3 updates");
    if out.customers_updated > 0 {
        sqlx::query(&q(
            "UPDATE records SET \
               attempts_total = CASE WHEN records.phone = s.phone THEN records.attempts_total ELSE 0 END, \
               attempts_today = CASE WHEN records.phone = s.phone THEN records.attempts_today ELSE 0 END, \
               phone = s.phone, phone_type = s.phone_type, name = s.name, time_zone = s.time_zone, postal_code = s.postal_code, \
               sort_value = s.sort_value, custom = s.custom, external_id = COALESCE(s.external_id, records.external_id), \
               dial_from = s.dial_from, dial_until = s.dial_until, \
               record_type = CASE WHEN s.record_type <> 'general' THEN s.record_type ELSE records.record_type END, \
               record_status = CASE WHEN records.record_status = 'cancelled' THEN 'ready' ELSE records.record_status END, \
               updated_at = $3 \
             FROM {staging} s \
             WHERE s.import_id = $1 AND records.list_id = $2 AND records.chain_id = s.target_chain_id AND records.chain_position = s.chain_position",
        ))
        .bind(import_id)
        .bind(list.0)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    // 4. New records: new customers get chain ids after the list's highest.
    step("4 inserts");
    let offset: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(chain_id), 0) FROM records WHERE list_id = $1").bind(list.0).fetch_one(&mut *conn).await?;
    out.records_created = sqlx::query(&q(
        "INSERT INTO records (list_id, chain_id, chain_position, external_id, phone, phone_type, record_type, record_status, dial_from, dial_until, \
                              time_zone, postal_code, name, sort_value, custom, created_at, updated_at) \
         SELECT $2, COALESCE(s.target_chain_id, $3 + s.chain_key), s.chain_position, s.external_id, s.phone, s.phone_type, s.record_type, 'ready', \
                s.dial_from, s.dial_until, s.time_zone, s.postal_code, s.name, s.sort_value, s.custom, $4, $4 \
         FROM {staging} s \
         WHERE s.import_id = $1 AND (s.target_chain_id IS NULL OR NOT EXISTS \
               (SELECT 1 FROM records r WHERE r.list_id = $2 AND r.chain_id = s.target_chain_id AND r.chain_position = s.chain_position))",
    ))
    .bind(import_id)
    .bind(list.0)
    .bind(offset)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected() as i64;
    // 5. Positions an updated customer no longer has are cancelled, not deleted (history stays).
    step("5 cancelled positions");
    if out.customers_updated > 0 {
        sqlx::query(&q("UPDATE records SET record_status = 'cancelled', updated_at = $3 \
             FROM (SELECT target_chain_id, MAX(chain_position) AS last_position FROM {staging} \
                   WHERE import_id = $1 AND target_chain_id IS NOT NULL GROUP BY target_chain_id) m \
             WHERE records.list_id = $2 AND records.chain_id = m.target_chain_id AND records.chain_position > m.last_position \
               AND records.record_status <> 'cancelled'"))
        .bind(import_id)
        .bind(list.0)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    step("done");
    Ok(out)
}
