//! Which IANA zone(s) a contact is in: explicit record zone, else US ZIP, else the number's
//! prefix (longest prefix wins, every country). Data: `data/us-zip-timezones.tsv` and
//! `data/phone-prefix-timezones.tsv`, embedded at build time.

use crate::fxhash::FxHashMap as HashMap;
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
    /// The phone number's prefix.
    NumberPrefix,
}

/// The zones that apply to a contact and the region used to pick stricter calling-hours rules.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactZones {
    /// Every zone whose local time must be inside the window (the intersection applies).
    #[serde(serialize_with = "ser_zones")]
    pub zones: Vec<Tz>,
    pub source: ZoneSource,
    /// US state (`US-FL`) when known, from the ZIP code or an area code used in one state only.
    pub us_state: Option<String>,
    /// E.164 country prefix such as `+33` (the matching prefix's leading country code).
    pub country_prefix: String,
    /// Zones the number's prefix alone would give (to show disagreement with an explicit zone).
    #[serde(serialize_with = "ser_zones")]
    pub number_zones: Vec<Tz>,
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
        acc = acc * 10 + (c - b'0') as u64;
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

/// Resolves a contact's zones. Returns `None` when no zone can be determined.
pub fn resolve(digits: &str, explicit: Option<Tz>, postal_code: Option<&str>) -> Option<ContactZones> {
    let number_zones: Vec<Tz> = zones_for_number(digits).map(|(_, z)| z.to_vec()).unwrap_or_default();
    let country = country_prefix(digits);
    let nanp = country == "+1";
    let zip = if nanp { postal_code.and_then(zip_zone) } else { None };
    let area_state = if nanp && digits.len() >= 4 {
        digits[1..4].parse::<u16>().ok().and_then(|a| data().area_states.get(&a).map(|i| data().states[*i as usize].clone()))
    } else {
        None
    };
    let us_state = zip.map(|(s, _)| s.to_string()).or(area_state);
    let (zones, source) = if let Some(z) = explicit {
        (vec![z], ZoneSource::Record)
    } else if let Some((_, z)) = zip {
        (vec![z], ZoneSource::PostalCode)
    } else if !number_zones.is_empty() {
        (number_zones.clone(), ZoneSource::NumberPrefix)
    } else {
        return None;
    };
    Some(ContactZones { zones, source, us_state, country_prefix: country, number_zones })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_and_zip() {
        let (p, z) = zones_for_number("12125550143").expect("NANP");
        assert_eq!(p, "1212");
        assert_eq!(z, &[chrono_tz::America::New_York]);
        assert_eq!(zip_zone("60601").expect("Chicago").1, chrono_tz::America::Chicago);
        let c = resolve("12125550143", None, Some("60601")).expect("zones");
        assert_eq!(c.source, ZoneSource::PostalCode);
        assert_eq!(c.zones, vec![chrono_tz::America::Chicago]);
        assert_eq!(c.us_state.as_deref(), Some("US-IL"));
        let c = resolve("33612345678", None, None).expect("zones");
        assert_eq!(c.country_prefix, "+33");
        assert_eq!(c.zones, vec![chrono_tz::Europe::Paris]);
    }
}
