//! The dialer's copy of every DNC list ([`DncLists`]): read from the store page by page and
//! built off the async runtime. The dialer builds one before it dials anything, and rebuilds
//! it in the background when the changes told since the last build pass
//! [`CHANGES_BEFORE_REBUILD`]; the new copy replaces the old one whole (an `Arc` swap).

use campana_core::PhoneNumber;
use campana_engine::dnc::{DncLists, DncListsBuilder, StaleCoverage};
use campana_engine::DncHit;
use campana_store::dnc_registry::Registry;
use campana_store::{Store, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Entries read from the store in one query.
pub const PAGE_ROWS: usize = 50_000;
/// Numbers changed since the last build (held one by one by the engine) before a rebuild.
pub use campana_dialer::CHANGES_BEFORE_REBUILD;

/// Reads every DNC entry in force at `now` and builds the lists.
pub async fn load(store: &Store, now: DateTime<Utc>) -> Result<DncLists, StoreError> {
    let mut b = DncListsBuilder::default();
    for (id, internal) in store.dnc_list_ids().await? {
        b.list(id, internal);
    }
    let mut after: Option<(campana_core::DncListId, PhoneNumber)> = None;
    loop {
        let page = store.dnc_entries_page(after.as_ref().map(|(l, p)| (*l, p.as_str())), PAGE_ROWS, now).await?;
        let full = page.len() == PAGE_ROWS;
        for (list, phone, expires_at) in &page {
            b.add(*list, phone.as_u64(), *expires_at);
        }
        after = page.into_iter().last().map(|(l, p, _)| (l, p));
        if !full {
            break;
        }
    }
    let built = tokio::task::spawn_blocking(move || b.build()).await.expect("the DNC build does not panic");
    Ok(built)
}

/// The entries in force at `now` of each of `phones` (over all lists), as the engine holds them.
pub async fn entries_of(store: &Store, phones: &[PhoneNumber], now: DateTime<Utc>) -> Result<Vec<(PhoneNumber, Vec<DncHit>)>, StoreError> {
    let mut by: HashMap<PhoneNumber, Vec<DncHit>> = phones.iter().map(|p| (p.clone(), Vec::new())).collect();
    for (phone, list, internal, expires_at) in store.dnc_entries_all_lists(phones, now).await? {
        by.entry(phone).or_default().push(DncHit { list_id: if internal { None } else { Some(list) }, expires_at });
    }
    Ok(by.into_iter().map(|(p, mut h)| (p, normalize(&mut h))).collect())
}

/// Hits in one order, so that two answers compare equal when they say the same.
pub use campana_dialer::normalize_hits as normalize;

/// The registries whose copy is older than their limit at `now` (never imported counts as too
/// old), and a warning for each saying what it stops.
pub fn stale_registries(registries: &[Registry], now: DateTime<Utc>) -> (Vec<StaleCoverage>, Vec<String>) {
    let mut stale = Vec::new();
    let mut warnings = Vec::new();
    for r in registries {
        let limit = r.max_age_days();
        let why = match r.refreshed_at {
            None => "has never been imported".to_string(),
            Some(at) if now - at > chrono::Duration::days(limit as i64) => {
                format!("was last refreshed on {} ({} days ago; the limit is {limit} days)", at.format("%Y-%m-%d"), (now - at).num_days())
            }
            Some(_) => continue,
        };
        let covers = if r.input.covers.len() > 10 {
            format!(
                "{} and {} more",
                r.input.covers[..10].iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(", "),
                r.input.covers.len() - 10
            )
        } else {
            r.input.covers.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(", ")
        };
        warnings.push(format!(
            "DNC registry list {} ({:?}) {why}: campaigns that use it dial no number starting with {covers} until it is refreshed",
            r.list_id, r.input.kind
        ));
        stale.push(StaleCoverage { list_id: r.list_id, prefixes: r.input.covers.clone() });
    }
    (stale, warnings)
}
