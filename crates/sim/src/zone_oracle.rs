//! The simulator's own answer to "which zones may this record be in", written apart from the
//! engine's resolver (`campana_engine::zones`) so that the simulator's calling-hours check does
//! not share the code it checks. It reads the same public tables (libphonenumber's prefix map and
//! the ZIP table, themselves checked against libphonenumber by `crates/engine/tests/zone_oracle.rs`)
//! with its own plain lookup and applies the documented rule (docs/dialing.md): a geographic
//! number's longest-prefix zones, plus the ZIP code's zone. The simulator only makes US
//! geographic numbers (`+1 AAA EEE LLLL`, exchange 200-899), so no number-type rule is needed;
//! [`zones`] refuses any other number.

use chrono_tz::Tz;
use std::collections::BTreeMap;
use std::sync::OnceLock;

const PREFIX_TSV: &str = include_str!("../../../data/phone-prefix-timezones.tsv");
const ZIP_TSV: &str = include_str!("../../../data/us-zip-timezones.tsv");

struct Tables {
    prefixes: BTreeMap<String, Vec<Tz>>,
    zips: BTreeMap<String, Tz>,
}

fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines().filter(|l| !l.starts_with('#')).skip(1).map(|l| l.split('\t').collect())
}

fn tables() -> &'static Tables {
    static T: OnceLock<Tables> = OnceLock::new();
    T.get_or_init(|| {
        let zone = |s: &str| s.trim().parse::<Tz>().unwrap_or_else(|_| panic!("zone {s:?} in the prefix table is an IANA zone"));
        let prefixes = rows(PREFIX_TSV).filter(|f| f.len() >= 2).map(|f| (f[0].to_string(), f[1].split('&').map(zone).collect())).collect();
        // A ZIP row whose zone is no IANA zone (one row of the source, 99634) gives no zone.
        let zips =
            rows(ZIP_TSV).filter(|f| f.len() >= 3).filter_map(|f| Some((f[0].to_string(), f[2].trim().parse::<Tz>().ok()?))).collect();
        Tables { prefixes, zips }
    })
}

/// Every zone a simulated record may be in: its number's (longest table prefix) and its ZIP
/// code's. `None` for a number the simulator does not make (not a US geographic number), or when
/// the tables know no zone.
pub fn zones(e164: &str, zip: Option<&str>) -> Option<Vec<Tz>> {
    let digits = e164.strip_prefix("+1")?;
    let exchange: u32 = digits.get(3..6)?.parse().ok()?;
    if digits.len() != 10 || !(200..=899).contains(&exchange) {
        return None;
    }
    let t = tables();
    let full = format!("1{digits}");
    let mut out: Vec<Tz> = (1..=full.len()).rev().find_map(|n| t.prefixes.get(&full[..n])).cloned()?;
    if let Some(z) = zip.and_then(|z| t.zips.get(z.get(..5)?)) {
        if !out.contains(z) {
            out.insert(0, *z);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America;

    #[test]
    fn known_answers() {
        // From libphonenumber (phonenumbers 9.0.43) and the USPS ZIP areas, written by hand.
        assert_eq!(zones("+12125550143", None), Some(vec![America::New_York]));
        assert_eq!(zones("+13125550143", None), Some(vec![America::Chicago]));
        assert_eq!(zones("+16025550143", None), Some(vec![America::Phoenix]));
        assert_eq!(zones("+18085550143", None), Some(vec![chrono_tz::Pacific::Honolulu]));
        assert_eq!(zones("+19075550143", None).map(|z| z.len()), Some(2), "Alaska: Adak and Anchorage");
        assert_eq!(zones("+12125550143", Some("90012")), Some(vec![America::Los_Angeles, America::New_York]));
        assert_eq!(zones("+12125550143", Some("10001")), Some(vec![America::New_York]));
        assert_eq!(zones("+447700900123", None), None);
    }
}
