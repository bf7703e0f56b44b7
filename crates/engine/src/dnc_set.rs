//! An exact, compact set of phone numbers: every do-not-call number the dialer must refuse, at
//! any size, in less than one byte per number for a national registry.
//!
//! Numbers are E.164 digits read as an integer ([`campana_core::PhoneNumber::as_u64`]).
//! The key space is cut into pages of 2^[`PAGE_BITS`] consecutive values; each non-empty page
//! is an Elias-Fano code of its values (high bits in unary, low bits packed), with the split
//! between high and low bits chosen per page from that page's own density, so a dense exchange
//! and a sparse one both cost close to the information-theoretic minimum (about
//! `2 + log2(2048 / count)` bits a number). A directory holds one 64-bit word per page (bit
//! offset, low-bit width, count), so a lookup reads one directory word and one page: two
//! cache misses, no search. Runs of pages with numbers form segments; a long empty run (more
//! than [`MAX_GAP_PAGES`]) starts a new segment instead of empty directory words, so sparse
//! international numbers cost a segment each rather than a directory over the whole space.
//!
//! The set is immutable: changes build a new set ([`DncSet::apply_changes`] merges a change
//! list in one sequential pass) that the owner swaps in whole. It never forgets a number it
//! was built with (the property tests compare it with a sorted `Vec<u64>`).

/// log2 of the values a page covers.
pub const PAGE_BITS: u32 = 11;
const PAGE_VALUES: u64 = 1 << PAGE_BITS;
/// Numbers whose memory reads [`DncSet::contains_many`] issues together.
pub const BATCH: usize = 32;
/// Empty pages kept inside a segment (8 bytes each) before a new segment (16 bytes) is cheaper.
pub const MAX_GAP_PAGES: u64 = 16;

// A directory word: bit offset (44 bits) | low-bit width (5 bits) | count (14 bits).
const OFF_MASK: u64 = (1 << 44) - 1;
const L_SHIFT: u32 = 44;
const C_SHIFT: u32 = 49;

/// An immutable, exact set of `u64` numbers (see the module documentation).
#[derive(Clone, Default)]
pub struct DncSet {
    /// Pages, back to back; two spare words at the end let a lookup read 64 bits anywhere.
    bits: Vec<u64>,
    dir: Vec<u64>,
    /// First page of each segment, ascending.
    seg_first_page: Vec<u64>,
    /// Index in `dir` of each segment's first page; one more entry (`dir.len()`) at the end.
    seg_dir_start: Vec<u64>,
    len: u64,
}

impl std::fmt::Debug for DncSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DncSet").field("len", &self.len).field("bytes", &self.memory_bytes()).finish()
    }
}

impl DncSet {
    /// A set of `numbers` in any order, duplicates allowed.
    pub fn from_unsorted(mut numbers: Vec<u64>) -> DncSet {
        numbers.sort_unstable();
        numbers.dedup();
        Self::from_sorted(&numbers)
    }

    /// A set of strictly increasing `numbers`.
    pub fn from_sorted(numbers: &[u64]) -> DncSet {
        let mut b = DncSetBuilder::default();
        for &x in numbers {
            b.push(x);
        }
        b.finish()
    }

    /// How many numbers the set holds.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Heap bytes held (what the set costs in memory).
    pub fn memory_bytes(&self) -> usize {
        (self.bits.capacity() + self.dir.capacity() + self.seg_first_page.capacity() + self.seg_dir_start.capacity()) * 8
            + std::mem::size_of::<Self>()
    }

    /// Is `x` in the set?
    #[inline]
    pub fn contains(&self, x: u64) -> bool {
        self.dir_entry(x).is_some_and(|e| self.page_contains(e, x & (PAGE_VALUES - 1)))
    }

    /// The directory word of `x`'s page, if the set has that page.
    #[inline]
    fn dir_entry(&self, x: u64) -> Option<u64> {
        let page = x >> PAGE_BITS;
        let s = self.seg_first_page.partition_point(|&f| f <= page);
        if s == 0 {
            return None;
        }
        let idx = page - self.seg_first_page[s - 1];
        let start = self.seg_dir_start[s - 1];
        if idx >= self.seg_dir_start[s] - start {
            return None;
        }
        Some(self.dir[(start + idx) as usize])
    }

    /// Answers for many numbers at once (a list being scrubbed): the same answers as
    /// [`Self::contains`], faster, because the memory reads of [`BATCH`] numbers are issued
    /// together (directory words, then the pages) before any is decoded.
    pub fn contains_many(&self, xs: &[u64], out: &mut Vec<bool>) {
        let mut entries = [0u64; BATCH];
        out.reserve(xs.len());
        for chunk in xs.chunks(BATCH) {
            for (e, &x) in entries.iter_mut().zip(chunk) {
                *e = self.dir_entry(x).unwrap_or(0);
            }
            // Touch each page's high and low parts: independent loads the CPU overlaps.
            let mut touch = 0u64;
            for &e in &entries[..chunk.len()] {
                let c = e >> C_SHIFT;
                if c > 0 {
                    let off = e & OFF_MASK;
                    let nb = PAGE_VALUES >> ((e >> L_SHIFT) & 31);
                    touch ^= self.bits[(off >> 6) as usize] ^ self.bits[((off + nb + c) >> 6) as usize];
                }
            }
            std::hint::black_box(touch);
            for (&e, &x) in entries.iter().zip(chunk) {
                out.push(self.page_contains(e, x & (PAGE_VALUES - 1)));
            }
        }
    }

    #[inline]
    fn page_contains(&self, e: u64, r: u64) -> bool {
        let c = e >> C_SHIFT;
        if c == 0 {
            return false;
        }
        let off = e & OFF_MASK;
        let l = ((e >> L_SHIFT) & 31) as u32;
        let nb = PAGE_VALUES >> l;
        let h = r >> l;
        let lo = r & ((1u64 << l) - 1);
        // Start of bucket h: just after the h-th zero of the high part.
        let mut pos = 0u64;
        let mut need = h;
        while need > 0 {
            let w = !self.read64(off + pos);
            let z = u64::from(w.count_ones());
            if z < need {
                need -= z;
                pos += 64;
            } else {
                pos += u64::from(select_in_word(w, (need - 1) as u32)) + 1;
                break;
            }
        }
        let low_start = off + nb + c;
        // The bucket's ones are its numbers, in increasing order.
        loop {
            let w = self.read64(off + pos);
            if w & 1 == 0 {
                return false;
            }
            let j = pos - h;
            let v = if l == 0 { 0 } else { self.read64(low_start + j * u64::from(l)) & ((1u64 << l) - 1) };
            if v >= lo {
                return v == lo;
            }
            pos += 1;
        }
    }

    /// 64 bits starting at bit `p` (the bits after the last page are zero).
    #[inline]
    fn read64(&self, p: u64) -> u64 {
        let i = (p >> 6) as usize;
        let s = (p & 63) as u32;
        let a = self.bits[i] >> s;
        if s == 0 {
            a
        } else {
            a | (self.bits[i + 1] << (64 - s))
        }
    }

    /// The numbers in increasing order.
    pub fn iter(&self) -> Iter<'_> {
        Iter { set: self, seg: 0, page: 0, buf: Vec::new(), at: 0 }
    }

    /// A new set: this one with `additions` added and `deletions` removed (both strictly
    /// increasing; a number in both is added). One sequential pass over the set.
    pub fn apply_changes(&self, additions: &[u64], deletions: &[u64]) -> DncSet {
        assert!(additions.windows(2).all(|w| w[0] < w[1]), "additions must be strictly increasing");
        assert!(deletions.windows(2).all(|w| w[0] < w[1]), "deletions must be strictly increasing");
        let mut b = DncSetBuilder::with_capacity_words(self.bits.len() + additions.len() / 8 + 2, self.dir.len());
        let (mut ai, mut di) = (0usize, 0usize);
        for x in self.iter() {
            while ai < additions.len() && additions[ai] < x {
                b.push(additions[ai]);
                ai += 1;
            }
            if ai < additions.len() && additions[ai] == x {
                b.push(x);
                ai += 1;
                continue;
            }
            while di < deletions.len() && deletions[di] < x {
                di += 1;
            }
            if di < deletions.len() && deletions[di] == x {
                continue;
            }
            b.push(x);
        }
        for &a in &additions[ai..] {
            b.push(a);
        }
        b.finish()
    }

    fn decode_page(&self, page_id: u64, e: u64, out: &mut Vec<u64>) {
        out.clear();
        let c = e >> C_SHIFT;
        let off = e & OFF_MASK;
        let l = ((e >> L_SHIFT) & 31) as u32;
        let nb = PAGE_VALUES >> l;
        let low_start = off + nb + c;
        let base = page_id << PAGE_BITS;
        let (mut pos, mut bucket, mut j) = (0u64, 0u64, 0u64);
        while j < c {
            if self.read64(off + pos) & 1 == 1 {
                let v = if l == 0 { 0 } else { self.read64(low_start + j * u64::from(l)) & ((1u64 << l) - 1) };
                out.push(base + (bucket << l) + v);
                j += 1;
            } else {
                bucket += 1;
            }
            pos += 1;
        }
    }
}

/// The numbers of a [`DncSet`] in increasing order.
pub struct Iter<'a> {
    set: &'a DncSet,
    seg: usize,
    /// Page index within the segment.
    page: u64,
    buf: Vec<u64>,
    at: usize,
}

impl Iterator for Iter<'_> {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        loop {
            if self.at < self.buf.len() {
                self.at += 1;
                return Some(self.buf[self.at - 1]);
            }
            let s = self.set;
            if self.seg >= s.seg_first_page.len() {
                return None;
            }
            let start = s.seg_dir_start[self.seg];
            let n = s.seg_dir_start[self.seg + 1] - start;
            if self.page >= n {
                self.seg += 1;
                self.page = 0;
                continue;
            }
            let e = s.dir[(start + self.page) as usize];
            s.decode_page(s.seg_first_page[self.seg] + self.page, e, &mut self.buf);
            self.at = 0;
            self.page += 1;
        }
    }
}

/// Position of the `k`-th (0-based) set bit of `w` (which has more than `k`).
#[inline]
fn select_in_word(mut w: u64, mut k: u32) -> u32 {
    let mut shift = 0;
    loop {
        let c = (w & 0xff).count_ones();
        if k < c {
            break;
        }
        k -= c;
        w >>= 8;
        shift += 8;
    }
    for _ in 0..k {
        w &= w - 1;
    }
    shift + w.trailing_zeros()
}

/// Builds a [`DncSet`] from strictly increasing numbers, one page at a time.
#[derive(Default)]
pub struct DncSetBuilder {
    set: DncSet,
    bit_len: u64,
    page: Option<u64>,
    /// The current page's values, relative to the page.
    cur: Vec<u64>,
    last: Option<u64>,
}

impl DncSetBuilder {
    /// A builder that expects about this many bit words and pages.
    pub fn with_capacity_words(words: usize, pages: usize) -> Self {
        let mut b = DncSetBuilder::default();
        b.set.bits.reserve(words);
        b.set.dir.reserve(pages);
        b
    }

    /// Adds `x`, which must be larger than every number added before.
    pub fn push(&mut self, x: u64) {
        assert!(self.last.is_none_or(|l| l < x), "numbers must be strictly increasing ({x} after {:?})", self.last);
        self.last = Some(x);
        let page = x >> PAGE_BITS;
        if self.page != Some(page) {
            self.flush();
            self.page = Some(page);
        }
        self.cur.push(x & (PAGE_VALUES - 1));
    }

    fn flush(&mut self) {
        let Some(page) = self.page else { return };
        let s = &mut self.set;
        let c = self.cur.len() as u64;
        debug_assert!(c > 0 && c <= PAGE_VALUES);
        // Segment: continue the current one (filling empty pages) or start a new one.
        let next_page = s.seg_first_page.last().map(|f| f + (s.dir.len() as u64 - s.seg_dir_start.last().copied().unwrap_or(0)));
        match next_page {
            Some(n) if page >= n && page - n <= MAX_GAP_PAGES => {
                for _ in n..page {
                    s.dir.push(self.bit_len);
                }
            }
            _ => {
                s.seg_first_page.push(page);
                s.seg_dir_start.push(s.dir.len() as u64);
            }
        }
        // The low-bit width that makes this page smallest.
        let l = (0..=PAGE_BITS).min_by_key(|&l| (PAGE_VALUES >> l) + c * u64::from(l)).expect("a non-empty range");
        let nb = PAGE_VALUES >> l;
        let off = self.bit_len;
        let total = nb + c + c * u64::from(l);
        let end = off + total;
        let words = (end as usize).div_ceil(64);
        if s.bits.len() < words {
            s.bits.resize(words, 0);
        }
        for (i, &r) in self.cur.iter().enumerate() {
            let p = off + (r >> l) + i as u64;
            s.bits[(p >> 6) as usize] |= 1 << (p & 63);
            if l > 0 {
                let q = off + nb + c + i as u64 * u64::from(l);
                let v = r & ((1u64 << l) - 1);
                let (wi, sh) = ((q >> 6) as usize, (q & 63) as u32);
                s.bits[wi] |= v << sh;
                if sh + l > 64 {
                    s.bits[wi + 1] |= v >> (64 - sh);
                }
            }
        }
        assert!(off <= OFF_MASK, "a DNC set larger than 2^44 bits");
        s.dir.push(off | u64::from(l) << L_SHIFT | c << C_SHIFT);
        s.len += c;
        self.bit_len = end;
        self.cur.clear();
    }

    pub fn finish(mut self) -> DncSet {
        self.flush();
        let mut s = self.set;
        s.seg_dir_start.push(s.dir.len() as u64);
        // Spare words: a lookup reads 64 bits from any position inside a page.
        let words = (self.bit_len as usize).div_ceil(64) + 2;
        s.bits.resize(words, 0);
        s.bits.shrink_to_fit();
        s.dir.shrink_to_fit();
        s.seg_first_page.shrink_to_fit();
        s.seg_dir_start.shrink_to_fit();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(numbers: Vec<u64>, probes: &[u64]) {
        let mut sorted = numbers.clone();
        sorted.sort_unstable();
        sorted.dedup();
        let set = DncSet::from_unsorted(numbers);
        assert_eq!(set.len(), sorted.len() as u64);
        assert_eq!(set.iter().collect::<Vec<_>>(), sorted, "iteration gives the numbers back in order");
        for &x in &sorted {
            assert!(set.contains(x), "{x} was given and must be found");
        }
        for &p in probes {
            assert_eq!(set.contains(p), sorted.binary_search(&p).is_ok(), "probe {p}");
        }
        let mut many = Vec::new();
        set.contains_many(probes, &mut many);
        assert_eq!(many, probes.iter().map(|p| sorted.binary_search(p).is_ok()).collect::<Vec<_>>(), "contains_many");
    }

    /// Numbers clustered the way registries are: a few prefixes, dense and sparse runs.
    fn clustered() -> impl Strategy<Value = Vec<u64>> {
        prop::collection::vec((0u64..6, 0u64..40_000, 1u64..5), 0..3000)
            .prop_map(|v| v.into_iter().map(|(prefix, off, step)| 12_120_000_000 + prefix * 10_000_000 + off * step).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn same_answers_as_a_sorted_vec_on_clustered_numbers(numbers in clustered(), probes in prop::collection::vec(12_120_000_000u64..12_180_000_000, 0..500)) {
            let mut all_probes = probes.clone();
            all_probes.extend(numbers.iter().flat_map(|&x| [x.wrapping_sub(1), x + 1]));
            check(numbers, &all_probes);
        }

        #[test]
        fn same_answers_as_a_sorted_vec_on_any_u64(numbers in prop::collection::vec(any::<u64>(), 0..500), probes in prop::collection::vec(any::<u64>(), 0..200)) {
            check(numbers, &probes);
        }

        #[test]
        fn changes_give_the_same_set_as_a_sorted_vec(numbers in clustered(), adds in clustered(), dels in clustered()) {
            let mut sorted = numbers.clone();
            sorted.sort_unstable();
            sorted.dedup();
            let set = DncSet::from_sorted(&sorted);
            let mut a = adds.clone(); a.sort_unstable(); a.dedup();
            let mut d: Vec<u64> = dels.iter().copied().chain(sorted.iter().step_by(3).copied()).collect(); d.sort_unstable(); d.dedup();
            let got = set.apply_changes(&a, &d);
            let mut want: Vec<u64> = sorted.iter().copied().filter(|x| d.binary_search(x).is_err()).chain(a.iter().copied()).collect();
            want.sort_unstable(); want.dedup();
            prop_assert_eq!(got.iter().collect::<Vec<_>>(), want.clone());
            for x in &want { prop_assert!(got.contains(*x)); }
            for x in &d { prop_assert_eq!(got.contains(*x), a.binary_search(x).is_ok()); }
        }
    }

    #[test]
    fn full_pages_empty_pages_and_edges() {
        // A whole page, a page with one number, the first and last values, gaps of every size.
        let mut v: Vec<u64> = (0..PAGE_VALUES).collect();
        v.push(PAGE_VALUES * 3 + 5);
        v.push(PAGE_VALUES * (3 + MAX_GAP_PAGES + 1));
        v.push(PAGE_VALUES * (3 + MAX_GAP_PAGES + 2) + PAGE_VALUES - 1);
        v.push(u64::MAX);
        v.push(u64::MAX - 1);
        v.push(999_999_999_999_999);
        let probes: Vec<u64> = v.iter().flat_map(|&x| [x.wrapping_sub(1), x.wrapping_add(1), x]).collect();
        check(v, &probes);
        check(vec![], &[0, 1, u64::MAX]);
    }

    #[test]
    fn under_one_byte_a_number_at_registry_density() {
        // One number in 8 over two area codes: a registry's density in its exchanges.
        let v: Vec<u64> = (0..2_500_000u64).map(|i| 12_120_000_000 + i * 8 + (i * 7919 % 8)).collect();
        let set = DncSet::from_sorted(&{
            let mut s = v.clone();
            s.sort_unstable();
            s.dedup();
            s
        });
        let per = set.memory_bytes() as f64 / set.len() as f64;
        assert!(per < 1.0, "{per} bytes a number");
    }
}
