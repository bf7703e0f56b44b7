#!/usr/bin/env bash
# Installs what crates/sip's tests need: the SIP test peer sipp (Debian package sip-tester) and
# nftables' `nft` (package nftables), which the kernel relay (kernel_relay) drives.
# Called by scripts/test; safe to run again (does nothing when both are present).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"
missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sip-tester)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "[install-sip-deps] installing ${missing[*]} (Debian packages)" >&2
DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
command -v sipp >/dev/null
command -v nft >/dev/null
