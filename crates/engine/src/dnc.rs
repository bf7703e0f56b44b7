//! Every do-not-call entry the dialer must honour, in memory: one [`DncSet`] of permanent
//! numbers per list plus the list's entries that expire (sorted, with their expiry). Registries
//! whose copy is too old to trust are told apart ([`crate::Input::DncStale`]): every number
//! they cover is refused ([`stale_hit`]).
//!
//! A [`DncLists`] is built from the store's entries, never changed, and replaced whole by the
//! driver ([`crate::Input::DncReplaced`]); changes between two builds reach the engine as
//! [`crate::Input::DncChanged`] (authoritative per number). Nothing is ever dropped for size:
//! the lookup answers "not on the list" only for a number no list holds.

use crate::dnc_set::DncSet;
use crate::eligibility::{DncHit, DncLookup};
use campana_core::{DncListId, PhoneNumber};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// One list's entries.
#[derive(Debug, Clone, Default)]
pub struct ListSet {
    pub internal: bool,
    /// Numbers without an expiry.
    pub permanent: DncSet,
    /// (number, expiry in ms since the epoch), sorted by number.
    pub expiring: Vec<(u64, i64)>,
}

/// Numbers a registry covers whose copy is older than the registry's limit: refused until the
/// registry is refreshed. `prefixes` are E.164 digit prefixes (`"1212"` for area code 212,
/// `"44"` for the UK).
#[derive(Debug, Clone, PartialEq)]
pub struct StaleCoverage {
    pub list_id: DncListId,
    pub prefixes: Vec<String>,
}

/// Every DNC list, built once and read by the engine before each dial.
#[derive(Debug, Clone, Default)]
pub struct DncLists {
    lists: BTreeMap<DncListId, ListSet>,
}

/// The refusal of a stale registry covering `number`, for a campaign using `lists`.
pub fn stale_hit(stale: &[StaleCoverage], number: &PhoneNumber, lists: &[DncListId]) -> Option<DncHit> {
    stale.iter().find(|s| lists.contains(&s.list_id) && covers(s, number)).map(|s| DncHit { list_id: Some(s.list_id), expires_at: None })
}

impl DncLists {
    /// Numbers held over all lists (a number on two lists counts twice).
    pub fn len(&self) -> u64 {
        self.lists.values().map(|l| l.permanent.len() + l.expiring.len() as u64).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.lists.values().map(|l| l.permanent.memory_bytes() + l.expiring.capacity() * 16).sum()
    }

    /// Every entry in force at `now` for `number`, over all lists.
    pub fn hits(&self, number: &PhoneNumber, now: DateTime<Utc>) -> Vec<DncHit> {
        let x = number.as_u64();
        self.lists.iter().filter_map(|(id, l)| hit_in(*id, l, x, now)).collect()
    }
}

fn covers(s: &StaleCoverage, number: &PhoneNumber) -> bool {
    s.prefixes.iter().any(|p| number.digits().starts_with(p.as_str()))
}

fn hit_in(id: DncListId, l: &ListSet, x: u64, now: DateTime<Utc>) -> Option<DncHit> {
    let list_id = if l.internal { None } else { Some(id) };
    if l.permanent.contains(x) {
        return Some(DncHit { list_id, expires_at: None });
    }
    let i = l.expiring.binary_search_by_key(&x, |e| e.0).ok()?;
    let at = DateTime::<Utc>::from_timestamp_millis(l.expiring[i].1)?;
    (at > now).then_some(DncHit { list_id, expires_at: Some(at) })
}

impl DncLookup for DncLists {
    fn lookup(&self, number: &PhoneNumber, lists: &[DncListId], now: DateTime<Utc>) -> Option<DncHit> {
        let x = number.as_u64();
        for (id, l) in &self.lists {
            if l.internal || lists.contains(id) {
                if let Some(h) = hit_in(*id, l, x, now) {
                    return Some(h);
                }
            }
        }
        None
    }
}

/// A list being built: internal or not, its permanent numbers, its (number, expiry in ms) entries.
type ListParts = (bool, Vec<u64>, Vec<(u64, i64)>);

/// Collects entries in any order, then builds a [`DncLists`].
#[derive(Debug, Default)]
pub struct DncListsBuilder {
    lists: BTreeMap<DncListId, ListParts>,
}

impl DncListsBuilder {
    /// Declares a list (also one without entries, so that it is known).
    pub fn list(&mut self, id: DncListId, internal: bool) {
        self.lists.entry(id).or_default().0 = internal;
    }

    /// Adds an entry of list `id` (declared with [`Self::list`] or not: then not internal).
    pub fn add(&mut self, id: DncListId, number: u64, expires_at: Option<DateTime<Utc>>) {
        let l = self.lists.entry(id).or_default();
        match expires_at {
            None => l.1.push(number),
            Some(e) => l.2.push((number, e.timestamp_millis())),
        }
    }

    pub fn build(self) -> DncLists {
        let lists = self
            .lists
            .into_iter()
            .map(|(id, (internal, permanent, mut expiring))| {
                expiring.sort_unstable();
                // One entry per (list, number) in the store; keep the latest expiry if repeated.
                expiring.dedup_by(|b, a| {
                    if a.0 == b.0 {
                        a.1 = a.1.max(b.1);
                        true
                    } else {
                        false
                    }
                });
                (id, ListSet { internal, permanent: DncSet::from_unsorted(permanent), expiring })
            })
            .collect();
        DncLists { lists }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn p(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s, None).unwrap()
    }

    #[test]
    fn lists_expiry_internal_and_stale_registries() {
        let now = Utc::now();
        let mut b = DncListsBuilder::default();
        b.list(DncListId(1), true);
        b.add(DncListId(1), p("+12125550100").as_u64(), None);
        b.add(DncListId(7), p("+12125550101").as_u64(), Some(now + Duration::hours(1)));
        b.add(DncListId(8), p("+12125550102").as_u64(), None);
        let d = b.build();
        let stale = [StaleCoverage { list_id: DncListId(9), prefixes: vec!["1305".into()] }];
        assert_eq!(d.lookup(&p("+12125550100"), &[], now), Some(DncHit { list_id: None, expires_at: None }), "internal: every campaign");
        assert!(d.lookup(&p("+12125550101"), &[DncListId(7)], now).is_some());
        assert!(d.lookup(&p("+12125550101"), &[DncListId(8)], now).is_none(), "another campaign's list");
        assert!(d.lookup(&p("+12125550101"), &[DncListId(7)], now + Duration::hours(2)).is_none(), "expired");
        assert!(d.lookup(&p("+12125550102"), &[DncListId(8)], now).is_some());
        assert!(stale_hit(&stale, &p("+13055550000"), &[DncListId(9)]).is_some(), "a stale registry refuses what it covers");
        assert!(stale_hit(&stale, &p("+13055550000"), &[DncListId(8)]).is_none(), "only for campaigns that use it");
        assert!(stale_hit(&stale, &p("+12125550000"), &[DncListId(9)]).is_none(), "only the area codes it covers");
        assert_eq!(d.hits(&p("+12125550101"), now).len(), 1);
    }
}
