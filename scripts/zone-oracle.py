#!/usr/bin/env python3
"""Zone oracle for crates/engine/tests/zone_oracle.rs: libphonenumber's answer, not Campana's.

Prints a generated, deterministic sample of valid numbers from every region and every number
type, one per line, tab-separated:

    e164  type  region  time_zones_for_number  time_zones_for_geographical_number

(zone lists `&`-separated). The zones come from Python `phonenumbers`
(`phonenumbers.timezone.time_zones_for_number`, the port of libphonenumber's
PhoneNumberToTimeZonesMapper.getTimeZonesForNumber). The first line is `# phonenumbers VERSION`.
Usage: zone-oracle.py [PER_REGION_TYPE] [SEED]   (defaults 4 and 13).
"""
import random
import sys

try:
    import phonenumbers
    from phonenumbers import timezone
except ImportError:
    sys.stderr.write("zone-oracle.py: Python package 'phonenumbers' is missing (pip install phonenumbers==9.0.43; scripts/install-phonenumbers-deps.sh does it)\n")
    sys.exit(3)

T = phonenumbers.PhoneNumberType
TYPES = [
    ("fixed_line", T.FIXED_LINE), ("mobile", T.MOBILE), ("toll_free", T.TOLL_FREE),
    ("premium_rate", T.PREMIUM_RATE), ("shared_cost", T.SHARED_COST), ("voip", T.VOIP),
    ("personal_number", T.PERSONAL_NUMBER), ("pager", T.PAGER), ("uan", T.UAN), ("voicemail", T.VOICEMAIL),
]
NAMES = {v: k for k, v in TYPES}
NAMES[T.FIXED_LINE_OR_MOBILE] = "fixed_line_or_mobile"
NAMES[T.UNKNOWN] = "unknown"


def variants(rng, example, n):
    """`n` valid numbers near `example`: its last 1 to 4 digits redrawn (same length)."""
    out = [example]
    nsn = str(example.national_number)
    lead = "0" * (example.number_of_leading_zeros or 0) if example.italian_leading_zero else ""
    tries = 0
    while len(out) < n + 1 and tries < 40 * n:
        tries += 1
        k = rng.randint(1, min(4, len(nsn) - 1))
        cand = nsn[:-k] + "".join(rng.choice("0123456789") for _ in range(k))
        try:
            p = phonenumbers.parse("+%d%s%s" % (example.country_code, lead, cand))
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(p) and p not in out:
            out.append(p)
    return out


def main():
    per = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 13)
    print("# phonenumbers %s" % phonenumbers.__version__)
    seen = set()
    examples = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for _, t in TYPES:
            ex = phonenumbers.example_number_for_type(region, t)
            if ex is not None:
                examples.append(ex)
    for cc in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        ex = phonenumbers.example_number_for_non_geo_entity(cc)
        if ex is not None:
            examples.append(ex)
    # Every NANP area code the zone table knows, with a common exchange.
    for prefix in sorted(timezone.TIMEZONE_DATA):
        if len(prefix) == 4 and prefix.startswith("1"):
            for line in ("2345678", "4561234", "7654321"):
                try:
                    p = phonenumbers.parse("+%s%s" % (prefix, line))
                except phonenumbers.NumberParseException:
                    continue
                if phonenumbers.is_valid_number(p):
                    examples.append(p)
                    break
    for ex in examples:
        for p in variants(rng, ex, per):
            e164 = phonenumbers.format_number(p, phonenumbers.PhoneNumberFormat.E164)
            if e164 in seen or not phonenumbers.is_valid_number(p):
                continue
            seen.add(e164)
            print("\t".join([
                e164,
                NAMES.get(phonenumbers.number_type(p), "unknown"),
                phonenumbers.region_code_for_number(p) or "",
                "&".join(timezone.time_zones_for_number(p)),
                "&".join(timezone.time_zones_for_geographical_number(p)),
            ]))


main()
