//! The candidates a campaign holds (dialable now, or deferred to a known moment) and the
//! customer (chain) key.

use super::*;

#[derive(Debug, Clone)]
pub(super) struct Buffered {
    pub(super) cand: Candidate,
    pub(super) zones: Option<ContactZones>,
    pub(super) not_before: DateTime<Utc>,
}

/// A campaign's candidates: dialable-now queue in dialing order, plus those deferred to a
/// known moment (ordered by it). Bounded by `max_buffer_per_campaign` together.
#[derive(Debug, Default)]
pub(super) struct Buffer {
    pub(super) ready: VecDeque<Buffered>,
    pub(super) deferred: BTreeMap<(DateTime<Utc>, RecordId), Buffered>,
    pub(super) ids: HashSet<RecordId>,
    /// Personal callbacks were added since the last scan found none.
    pub(super) personal_hint: bool,
}

impl Buffer {
    pub(super) fn len(&self) -> usize {
        self.ids.len()
    }
    pub(super) fn contains(&self, id: RecordId) -> bool {
        self.ids.contains(&id)
    }
    pub(super) fn note(&mut self, b: &Buffered) {
        self.ids.insert(b.cand.record.id);
        if b.cand.record.record_type == RecordType::PersonalCallback {
            self.personal_hint = true;
        }
    }
    pub(super) fn push_back(&mut self, b: Buffered) {
        self.note(&b);
        self.ready.push_back(b);
    }
    pub(super) fn push_front(&mut self, b: Buffered) {
        self.note(&b);
        self.ready.push_front(b);
    }
    pub(super) fn defer(&mut self, b: Buffered) {
        self.note(&b);
        self.deferred.insert((b.not_before, b.cand.record.id), b);
    }
    pub(super) fn take_ready(&mut self, i: usize) -> Option<Buffered> {
        let b = self.ready.remove(i)?;
        self.ids.remove(&b.cand.record.id);
        Some(b)
    }
    /// Moves deferred candidates that are due to the ready queue.
    pub(super) fn promote(&mut self, now: DateTime<Utc>) {
        while let Some(e) = self.deferred.first_entry() {
            if e.key().0 > now {
                break;
            }
            let b = e.remove();
            self.ready.push_back(b);
        }
    }
    pub(super) fn reset(&mut self, now: DateTime<Utc>) {
        let all = std::mem::take(&mut self.deferred);
        for (_, mut b) in all {
            b.not_before = now;
            self.ready.push_back(b);
        }
    }
    pub(super) fn next_deferred(&self) -> Option<DateTime<Utc>> {
        self.deferred.keys().next().map(|k| k.0)
    }
    pub(super) fn find(&self, id: RecordId) -> Option<&Buffered> {
        self.ready.iter().find(|b| b.cand.record.id == id).or_else(|| self.deferred.values().find(|b| b.cand.record.id == id))
    }
    /// Drops every candidate of the customer's chain; returns how many.
    pub(super) fn remove_chain(&mut self, key: ChainKey) -> usize {
        let before = self.ready.len() + self.deferred.len();
        self.ready.retain(|b| chain_key(&b.cand) != key);
        self.deferred.retain(|_, b| chain_key(&b.cand) != key);
        self.ids = self.ready.iter().chain(self.deferred.values()).map(|b| b.cand.record.id).collect();
        before - self.ready.len() - self.deferred.len()
    }
    pub(super) fn clear(&mut self) {
        self.ready.clear();
        self.deferred.clear();
        self.ids.clear();
    }
    pub(super) fn has_due_personal(&mut self, agent: UserId, now: DateTime<Utc>) -> bool {
        if !self.personal_hint {
            return false;
        }
        let mut any = false;
        let mut mine = false;
        for b in self.ready.iter().chain(self.deferred.values()) {
            if b.cand.record.record_type == RecordType::PersonalCallback {
                any = true;
                if b.cand.callback_agent == Some(agent) && b.cand.record.callback_at.is_some_and(|t| t <= now) && b.not_before <= now {
                    mine = true;
                    break;
                }
            }
        }
        if !any {
            self.personal_hint = false;
        }
        mine
    }
}

/// A customer: the chain of numbers of one list.
pub(super) type ChainKey = (ContactListId, ChainId);

pub(super) fn chain_key(c: &Candidate) -> ChainKey {
    (c.record.list_id, c.record.chain_id)
}

pub(super) fn ctx_in_call<'a>(
    records: &'a HashSet<RecordId>,
    numbers: &'a HashSet<PhoneNumber>,
    chains: &'a HashSet<ChainKey>,
) -> impl Fn(&Candidate) -> bool + 'a {
    move |c: &Candidate| records.contains(&c.record.id) || numbers.contains(&c.record.phone) || chains.contains(&chain_key(c))
}
