#!/usr/bin/env bash
# Installs the SIP test peer used by crates/sip's tests: sipp (Debian package sip-tester).
# Called by scripts/test; safe to run again (does nothing when sipp is present).
set -euo pipefail
if command -v sipp >/dev/null 2>&1; then
  exit 0
fi
echo "[install-sip-deps] installing sipp (Debian package sip-tester)" >&2
DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sip-tester >/dev/null
command -v sipp >/dev/null
