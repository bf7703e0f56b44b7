#!/usr/bin/env bash
# Installs Python `phonenumbers` (libphonenumber's Python port) at the version the zone table
# data/phone-prefix-timezones.tsv was dumped from, for the zone oracle test
# (crates/engine/tests/zone_oracle.rs). Idempotent: does nothing when it is already there.
set -euo pipefail
want=9.0.43
have=$(python3 -c 'import phonenumbers; print(phonenumbers.__version__)' 2>/dev/null || true)
if [ "$have" != "$want" ]; then
  echo "[install-phonenumbers-deps] pip install phonenumbers==$want (found '${have:-none}')" >&2
  python3 -m pip install -q "phonenumbers==$want" 2>&1 | grep -v "Running pip as the 'root' user" >&2 || true
  python3 -c 'import phonenumbers' || { echo "phonenumbers did not install" >&2; exit 1; }
fi
