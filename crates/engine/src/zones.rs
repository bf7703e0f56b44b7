//! Which IANA zone(s) a contact may be in, from every source at once: the record's explicit zone,
//! the US ZIP code and the number (its digit prefix when its type is geographic, else every zone
//! of its country, as libphonenumber's `getTimeZonesForNumber`). A check must pass in every zone,
//! under the rules of every state and country the sources name (the most restrictive
//! combination); a profile may let an explicit zone win. Data: `data/us-zip-timezones.tsv` and
//! `data/phone-prefix-timezones.tsv`, embedded at build time. docs/dialing.md explains it.

use crate::fxhash::FxHashMap as HashMap;
use campana_core::phone::{NumberKind, PhoneNumber};
use chrono_tz::Tz;
use serde::Serialize;
use std::sync::OnceLock;

const ZIP_TSV: &str = include_str!("../../../data/us-zip-timezones.tsv");
const PREFIX_TSV: &str = include_str!("../../../data/phone-prefix-timezones.tsv");

/// Where a contact's zone came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ZoneSource {
    /// The record's explicit `time_zone`.
    Record,
    /// The US ZIP code (`postal_code`).
    PostalCode,
    /// The digit prefix of a number of a geographic type (fixed line...).
    NumberPrefix,
    /// Every zone of the country calling code, for a number of a non-geographic type (mobile,
    /// toll-free, VoIP...) or of an unknown type.
    NumberCountry,
    /// The one zone of a NANP territory's area code, for its non-geographic numbers.
    NanpTerritory,
}

/// The zones that apply to a contact, the sources they came from, and the regions whose
/// stricter calling-hours rules apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactZones {
    /// Every zone whose local time must be inside the window (all of them must allow a call):
    /// the union of the sources' zones, explicit zone first, then the ZIP's, then the number's.
    #[serde(serialize_with = "ser_zones")]
    pub zones: Vec<Tz>,
    /// Every source that gave zones, in that order.
    pub sources: Vec<ZoneEvidence>,
    /// US states (`US-FL`) whose rules apply: the ZIP code's and the area code's (when the area
    /// code is used in one state only). Every one of them must allow a call.
    pub us_states: Vec<String>,
    /// E.164 country prefix such as `+33` (the matching prefix's leading country code).
    pub country_prefix: String,
    /// Zones the number alone gives (to show disagreement with the other sources).
    #[serde(serialize_with = "ser_zones")]
    pub number_zones: Vec<Tz>,
    /// True when `zones` is the explicit zone alone ([`ContactZones::applied`]).
    pub explicit_wins: bool,
}

fn ser_zones<S: serde::Serializer>(z: &[Tz], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(z.iter().map(|t| t.name()))
}

struct ZoneData {
    /// ZIP -> (index into `states`, zone).
    zips: HashMap<u32, (u8, Tz)>,
    /// `US-XX` names.
    states: Vec<String>,
    /// Area code (NANP, 3 digits) -> state, when the area code is used in one state only.
    area_states: HashMap<u16, u8>,
    /// (prefix length, prefix digits as a number) -> (prefix text, zones).
    prefixes: HashMap<(u8, u64), (String, Vec<Tz>)>,
    max_prefix_len: usize,
}

fn data() -> &'static ZoneData {
    static DATA: OnceLock<ZoneData> = OnceLock::new();
    DATA.get_or_init(|| {
        let mut zips = HashMap::with_capacity_and_hasher(42_000, Default::default());
        let mut area: HashMap<u16, Option<u8>> = HashMap::default();
        let mut states: Vec<String> = Vec::new();
        let mut state_idx: HashMap<&str, u8> = HashMap::default();
        let mut tz_cache: HashMap<&str, Tz> = HashMap::default();
        for line in ZIP_TSV.lines().filter(|l| !l.starts_with('#')).skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 3 {
                continue;
            }
            let Ok(zip) = f[0].parse::<u32>() else { continue };
            let tz = match tz_cache.get(f[2]) {
                Some(t) => *t,
                None => {
                    let Ok(t) = f[2].parse::<Tz>() else { continue };
                    tz_cache.insert(f[2], t);
                    t
                }
            };
            let state = match state_idx.get(f[1]) {
                Some(i) => *i,
                None => {
                    let i = states.len().min(255) as u8;
                    states.push(format!("US-{}", f[1]));
                    state_idx.insert(f[1], i);
                    i
                }
            };
            if let Some(codes) = f.get(3) {
                for c in codes.split(',').filter_map(|c| c.trim().parse::<u16>().ok()) {
                    let e = area.entry(c).or_insert(Some(state));
                    if *e != Some(state) {
                        *e = None;
                    }
                }
            }
            zips.insert(zip, (state, tz));
        }
        let area_states = area.into_iter().filter_map(|(k, v)| v.map(|s| (k, s))).collect();
        let mut prefixes = HashMap::with_capacity_and_hasher(3_300, Default::default());
        let mut max_prefix_len = 0;
        for line in PREFIX_TSV.lines().filter(|l| !l.starts_with('#')).skip(1) {
            let Some((p, zs)) = line.split_once('\t') else { continue };
            let zones: Vec<Tz> = zs.split('&').filter_map(|z| z.trim().parse::<Tz>().ok()).collect();
            if zones.is_empty() {
                continue;
            }
            let Ok(v) = p.parse::<u64>() else { continue };
            if p.len() > 18 {
                continue;
            }
            max_prefix_len = max_prefix_len.max(p.len());
            prefixes.insert((p.len() as u8, v), (p.to_string(), zones));
        }
        ZoneData { zips, states, area_states, prefixes, max_prefix_len }
    })
}

/// The zones for a number's digits (no `+`): the longest matching prefix's zones.
pub fn zones_for_number(digits: &str) -> Option<(&'static str, &'static [Tz])> {
    let d = data();
    let max = digits.len().min(d.max_prefix_len);
    let mut vals = [0u64; 19];
    let mut acc = 0u64;
    for (i, c) in digits.bytes().take(max).enumerate() {
        if !c.is_ascii_digit() {
            return None;
        }
        acc = acc * 10 + u64::from(c - b'0');
        vals[i + 1] = acc;
    }
    (1..=max).rev().find_map(|n| d.prefixes.get(&(n as u8, vals[n])).map(|(k, v)| (k.as_str(), v.as_slice())))
}

/// State and zone for a US ZIP code (first five digits of `postal_code`).
pub fn zip_zone(postal_code: &str) -> Option<(&'static str, Tz)> {
    let five: String = postal_code.trim().chars().take(5).collect();
    if five.len() != 5 || !five.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let d = data();
    d.zips.get(&five.parse::<u32>().ok()?).map(|(s, z)| (d.states[*s as usize].as_str(), *z))
}

/// The longest prefix of `digits` (at most 3 digits, a country calling code) that the prefix
/// table knows, as `+NN`: libphonenumber's country-level lookup.
fn country_entry(cc_digits: &str) -> Option<(String, &'static [Tz])> {
    let d = data();
    (1..=cc_digits.len().min(3)).rev().find_map(|n| {
        let v = cc_digits[..n].parse::<u64>().ok()?;
        d.prefixes.get(&(n as u8, v)).map(|(k, z)| (format!("+{k}"), z.as_slice()))
    })
}

/// How the number's own zones were found (see docs/dialing.md, "Where a number may be").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NumberZones {
    pub zones: Vec<Tz>,
    /// [`ZoneSource::NumberPrefix`], [`ZoneSource::NumberCountry`] or [`ZoneSource::NanpTerritory`].
    pub source: ZoneSource,
    /// The number's type from the phone-number metadata.
    pub kind: NumberKind,
    /// The table prefix that gave the zones (`+1212`, `+61`).
    pub prefix: String,
}

/// The zones a number may be in, following libphonenumber's `getTimeZonesForNumber`: a number
/// of a geographic type (fixed line, fixed line or mobile, mobile in MX/AR/BR/ID/CN) gets the
/// zones of its longest digit prefix; any other type (mobile, toll-free, VoIP...) or an unknown
/// type gets every zone of its country calling code. One documented exception, stricter in its
/// evidence: a non-geographic number of a NANP territory other than the US and Canada (a Cayman
/// mobile) whose area code maps to one zone gets that zone, since the area code names the
/// territory. `None` when the table knows nothing of the number.
pub fn number_zones(number: &PhoneNumber) -> Option<NumberZones> {
    let facts = number.facts();
    let digits = number.digits();
    let by_prefix = zones_for_number(digits);
    if facts.geographic {
        let (p, z) = by_prefix?;
        return Some(NumberZones { zones: z.to_vec(), source: ZoneSource::NumberPrefix, kind: facts.kind, prefix: format!("+{p}") });
    }
    let territory = facts.country_code == Some(1) && facts.region.as_deref().is_some_and(|r| r != "US" && r != "CA");
    if let Some((p, [one])) = by_prefix.filter(|_| territory) {
        return Some(NumberZones { zones: vec![*one], source: ZoneSource::NanpTerritory, kind: facts.kind, prefix: format!("+{p}") });
    }
    let cc = match facts.country_code {
        Some(cc) => cc.to_string(),
        // Unreadable by the metadata: the shortest known prefix is the calling code.
        None => country_prefix(digits)[1..].to_string(),
    };
    let (p, z) = country_entry(&cc)?;
    Some(NumberZones { zones: z.to_vec(), source: ZoneSource::NumberCountry, kind: facts.kind, prefix: p })
}

/// Country calling code of an E.164 number (digits without `+`): 1 to 3 digits, taken from the
/// shortest prefix the prefix table knows.
fn country_prefix(digits: &str) -> String {
    let d = data();
    for n in 1..=3.min(digits.len()) {
        if let Ok(v) = digits[..n].parse::<u64>() {
            if d.prefixes.contains_key(&(n as u8, v)) {
                return format!("+{}", &digits[..n]);
            }
        }
    }
    format!("+{}", &digits[..digits.len().min(3)])
}

/// One source of a contact's zones and what it said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneEvidence {
    pub source: ZoneSource,
    #[serde(serialize_with = "ser_zones")]
    pub zones: Vec<Tz>,
    /// What it was read from: `ZIP 10001 (US-NY)`, `prefix +1212`, `mobile: every zone of +61`.
    pub detail: String,
}

/// Resolves a contact's zones from every source: the record's explicit zone, the US ZIP code and
/// the number. The result keeps them all; [`ContactZones::applied`] picks what a check uses.
/// Returns `None` when no source gives a zone.
pub fn resolve(number: &PhoneNumber, explicit: Option<Tz>, postal_code: Option<&str>) -> Option<ContactZones> {
    let digits = number.digits();
    let num = number_zones(number);
    let country = country_prefix(digits);
    let nanp = country == "+1";
    let zip = if nanp { postal_code.and_then(|p| zip_zone(p).map(|z| (p.trim(), z))) } else { None };
    let area_state = if nanp && digits.len() >= 4 {
        digits[1..4].parse::<u16>().ok().and_then(|a| data().area_states.get(&a).map(|i| data().states[*i as usize].clone()))
    } else {
        None
    };
    let mut sources = Vec::new();
    if let Some(z) = explicit {
        sources.push(ZoneEvidence { source: ZoneSource::Record, zones: vec![z], detail: "the record's time_zone".into() });
    }
    if let Some((code, (state, z))) = zip {
        sources.push(ZoneEvidence { source: ZoneSource::PostalCode, zones: vec![z], detail: format!("ZIP {code} ({state})") });
    }
    if let Some(n) = &num {
        let detail = match n.source {
            ZoneSource::NumberCountry => format!("{} number: every zone of {}", n.kind.as_str(), n.prefix),
            ZoneSource::NanpTerritory => format!("{} number of the one-zone territory {}", n.kind.as_str(), n.prefix),
            _ => format!("{} number, prefix {}", n.kind.as_str(), n.prefix),
        };
        sources.push(ZoneEvidence { source: n.source, zones: n.zones.clone(), detail });
    }
    if sources.is_empty() {
        return None;
    }
    let mut us_states: Vec<String> = Vec::new();
    for s in zip.map(|(_, (s, _))| s.to_string()).into_iter().chain(area_state) {
        if !us_states.contains(&s) {
            us_states.push(s);
        }
    }
    let mut c = ContactZones {
        zones: Vec::new(),
        sources,
        us_states,
        country_prefix: country,
        number_zones: num.map(|n| n.zones).unwrap_or_default(),
        explicit_wins: false,
    };
    c.zones = c.union();
    Some(c)
}

impl ContactZones {
    fn union(&self) -> Vec<Tz> {
        let mut out: Vec<Tz> = Vec::new();
        for z in self.sources.iter().flat_map(|s| s.zones.iter()) {
            if !out.contains(z) {
                out.push(*z);
            }
        }
        out
    }

    /// The zones a check uses under the profile's `explicit_zone_wins`: by default every
    /// source's zones (the most restrictive combination); with the setting on and an explicit
    /// zone on the record, that zone alone. State and country rules are never dropped: an
    /// explicit zone says nothing about a state.
    pub fn applied(&self, explicit_zone_wins: bool) -> std::borrow::Cow<'_, ContactZones> {
        match self.sources.iter().find(|s| s.source == ZoneSource::Record) {
            Some(rec) if explicit_zone_wins => {
                let mut c = self.clone();
                c.zones.clone_from(&rec.zones);
                c.explicit_wins = true;
                std::borrow::Cow::Owned(c)
            }
            _ => std::borrow::Cow::Borrowed(self),
        }
    }

    /// The sources that decided the zones, for explanations: `ZIP 10001 (US-NY): America/New_York;
    /// fixed_line_or_mobile number, prefix +1305: America/New_York`.
    pub fn describe(&self) -> String {
        let used = |s: &ZoneEvidence| !self.explicit_wins || s.source == ZoneSource::Record;
        let mut parts: Vec<String> = self
            .sources
            .iter()
            .filter(|s| used(s))
            .map(|s| format!("{}: {}", s.detail, s.zones.iter().map(|z| z.name()).collect::<Vec<_>>().join(", ")))
            .collect();
        if self.explicit_wins {
            parts.push("the explicit zone wins (explicit_zone_wins)".into());
        }
        if !self.us_states.is_empty() {
            parts.push(format!("state rules of {}", self.us_states.join(" and ")));
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Asia, Atlantic, Australia, Europe, Pacific};

    fn num(s: &str) -> PhoneNumber {
        PhoneNumber::parse(s, None).expect("valid test number")
    }

    #[test]
    fn longest_prefix_and_zip_both_count() {
        let (p, z) = zones_for_number("12125550143").expect("NANP");
        assert_eq!(p, "1212");
        assert_eq!(z, &[America::New_York]);
        assert_eq!(zip_zone("60601").expect("Chicago").1, America::Chicago);
        let c = resolve(&num("+12125550143"), None, Some("60601")).expect("zones");
        let kinds: Vec<ZoneSource> = c.sources.iter().map(|s| s.source).collect();
        assert_eq!(kinds, vec![ZoneSource::PostalCode, ZoneSource::NumberPrefix]);
        assert_eq!(c.zones, vec![America::Chicago, America::New_York], "the ZIP no longer replaces the number");
        assert_eq!(c.us_states[0], "US-IL");
        let c = resolve(&num("+33612345678"), None, None).expect("zones");
        assert_eq!(c.country_prefix, "+33");
        assert_eq!(c.zones, vec![Europe::Paris]);
    }

    #[test]
    fn mobiles_get_every_zone_of_their_country() {
        let au = number_zones(&num("+61412345678")).expect("AU mobile");
        assert_eq!(au.source, ZoneSource::NumberCountry);
        assert!(au.zones.contains(&Australia::Perth) && au.zones.contains(&Australia::Sydney), "{:?}", au.zones);
        let ru = number_zones(&num("+79123456789")).expect("RU mobile");
        assert!(ru.zones.contains(&Europe::Moscow) && ru.zones.contains(&Asia::Vladivostok), "{:?}", ru.zones);
        let es = number_zones(&num("+34612345678")).expect("ES mobile");
        assert!(es.zones.contains(&Atlantic::Canary) && es.zones.contains(&Europe::Madrid));
        let nz = number_zones(&num("+64211234567")).expect("NZ mobile");
        assert!(nz.zones.contains(&Pacific::Chatham) && nz.zones.contains(&Pacific::Auckland), "{:?}", nz.zones);
        let kz = number_zones(&num("+77012345678")).expect("KZ mobile");
        assert!(kz.zones.len() > 2 && kz.zones.contains(&Asia::Almaty), "{:?}", kz.zones);
        // A Sydney landline keeps its precise prefix zone.
        let syd = number_zones(&num("+61291234567")).expect("AU fixed");
        assert_eq!(syd.source, ZoneSource::NumberPrefix);
        assert_eq!(syd.zones, vec![Australia::Sydney]);
    }

    #[test]
    fn nanp_territory_mobile_keeps_its_one_zone() {
        let ky = number_zones(&num("+13453231234")).expect("Cayman mobile");
        assert_eq!(ky.kind, NumberKind::Mobile);
        assert_eq!(ky.source, ZoneSource::NanpTerritory);
        assert_eq!(ky.zones, vec![America::Cayman]);
        // A US toll-free number may be anywhere in NANP.
        let tf = number_zones(&num("+18005550199")).expect("US toll-free");
        assert_eq!(tf.source, ZoneSource::NumberCountry);
        assert!(tf.zones.len() > 20);
    }

    #[test]
    fn explicit_zone_joins_unless_configured_to_win() {
        let c = resolve(&num("+13055550143"), Some(America::Los_Angeles), Some("10001")).expect("zones");
        assert_eq!(c.zones, vec![America::Los_Angeles, America::New_York]);
        assert_eq!(c.us_states, vec!["US-NY".to_string(), "US-FL".to_string()]);
        let w = c.applied(true);
        assert_eq!(w.zones, vec![America::Los_Angeles]);
        assert_eq!(w.us_states, c.us_states, "state rules stay");
        assert!(w.describe().contains("explicit zone wins"), "{}", w.describe());
        assert_eq!(c.applied(false).zones, c.zones);
        assert!(c.describe().contains("ZIP 10001 (US-NY)"), "{}", c.describe());
    }
}
