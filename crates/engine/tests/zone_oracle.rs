//! The engine's zones for a number, checked against libphonenumber's own answer
//! (`phonenumbers.timezone.time_zones_for_number`, Python), never against our resolver.
//!
//! `scripts/zone-oracle.py` generates a deterministic sample (every region, every number type,
//! every NANP area code, the global non-geographic codes; ~7,500 numbers) and prints
//! libphonenumber's zones for each. Agreement, for a number valid in both libraries:
//!
//! * our zones contain every zone libphonenumber gives, and we add none (set equality), except
//! * **E1, NANP territory**: a non-geographic number (mobile...) of a NANP region other than the
//!   US and Canada whose area code maps to one zone (a Cayman mobile). libphonenumber gives all 42
//!   NANP zones (country level); we give that one zone, which must be in libphonenumber's set
//!   and equal its geographical answer for the number's prefix. The area code names the
//!   territory, which has one zone.
//! * libphonenumber's `Etc/Unknown` (the global codes +800, +808, +870, +878, +881, +882, +883,
//!   +888, +979) must be "no zone" for us: such a record is never dialed without an explicit zone.
//!
//! A number valid in one library only (metadata versions differ) fails the test, listed.
//! Python 3 with `phonenumbers` 9.0.43 (the data's version) is required: CI installs it
//! (scripts/install-phonenumbers-deps.sh); without it this test fails, it never skips.

use campana_core::phone::PhoneNumber;
use campana_engine::zones::{number_zones, ZoneSource};
use std::collections::BTreeSet;
use std::process::Command;

const DATA_VERSION: &str = "9.0.43";

fn oracle() -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/zone-oracle.py");
    let out = Command::new("python3")
        .arg(script)
        .output()
        .unwrap_or_else(|e| panic!("python3 is required for the zone oracle ({e}); run scripts/install-phonenumbers-deps.sh"));
    assert!(
        out.status.success(),
        "zone-oracle.py failed (is the phonenumbers package installed? scripts/install-phonenumbers-deps.sh): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("oracle output is UTF-8")
}

#[test]
fn number_zones_agree_with_libphonenumber() {
    let text = oracle();
    let mut lines = text.lines();
    let header = lines.next().expect("version line");
    assert_eq!(
        header,
        format!("# phonenumbers {DATA_VERSION}"),
        "the oracle must be the version data/phone-prefix-timezones.tsv was dumped from"
    );
    let (mut checked, mut exceptions, mut unknown) = (0usize, 0usize, 0usize);
    let mut kinds = BTreeSet::new();
    let mut failures: Vec<String> = Vec::new();
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 5, "oracle line: {line}");
        let (e164, kind, region, theirs, geo) = (f[0], f[1], f[2], f[3], f[4]);
        let theirs: BTreeSet<&str> = theirs.split('&').collect();
        let number = match PhoneNumber::parse(e164, None) {
            Ok(n) => n,
            Err(e) => {
                failures.push(format!("{e164} ({kind}, {region}): valid for libphonenumber, not for us: {e}"));
                continue;
            }
        };
        checked += 1;
        kinds.insert(kind.to_string());
        let ours = number_zones(&number);
        if theirs == BTreeSet::from(["Etc/Unknown"]) {
            unknown += 1;
            if let Some(o) = ours {
                failures.push(format!("{e164}: libphonenumber knows no zone, we give {:?}", o.zones));
            }
            continue;
        }
        let Some(ours) = ours else {
            failures.push(format!("{e164} ({kind}, {region}): no zone for us, libphonenumber gives {theirs:?}"));
            continue;
        };
        let our_set: BTreeSet<&str> = ours.zones.iter().map(|z| z.name()).collect();
        if ours.kind.as_str() != kind {
            failures.push(format!("{e164}: type {} for us, {kind} for libphonenumber", ours.kind.as_str()));
        }
        if ours.source == ZoneSource::NanpTerritory {
            exceptions += 1;
            let geo: BTreeSet<&str> = geo.split('&').collect();
            let ok = e164.starts_with("+1")
                && region != "US"
                && region != "CA"
                && our_set.len() == 1
                && our_set.is_subset(&theirs)
                && our_set == geo;
            if !ok {
                failures.push(format!(
                    "{e164} ({kind}, {region}): E1 exception does not hold: ours {our_set:?}, country {theirs:?}, prefix {geo:?}"
                ));
            }
            continue;
        }
        if our_set != theirs {
            let missing: Vec<_> = theirs.difference(&our_set).collect();
            let extra: Vec<_> = our_set.difference(&theirs).collect();
            failures.push(format!("{e164} ({kind}, {region}, {:?}): missing {missing:?}, extra {extra:?}", ours.source));
        }
    }
    eprintln!("zone oracle: {checked} numbers, {exceptions} NANP-territory exceptions, {unknown} without a zone, types {kinds:?}");
    assert!(checked > 5000, "the sample is too small: {checked}");
    assert!(exceptions > 0 && unknown > 0, "the exceptions are exercised");
    for k in ["fixed_line", "mobile", "fixed_line_or_mobile", "toll_free", "premium_rate", "voip", "uan", "personal_number"] {
        assert!(kinds.contains(k), "no {k} number in the sample");
    }
    assert!(failures.is_empty(), "{} of {checked} numbers disagree with libphonenumber:\n{}", failures.len(), failures.join("\n"));
}
