#!/usr/bin/env bash
# Installs the browser used by the web console's tests (crates/server/tests/it/browser.rs):
# Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver).
# Called by scripts/test; safe to run again (does nothing when both are present).
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
  exit 0
fi
echo "[install-browser-deps] installing chromium and chromium-driver (Debian packages)" >&2
DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
[ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]
