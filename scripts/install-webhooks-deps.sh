#!/usr/bin/env bash
# Installs the independent webhook verifier the tests use (crates/server/tests/it/webhooks.rs):
# PyPI `standardwebhooks`, the Standard Webhooks project's reference library, pinned.
set -euo pipefail
version=1.1.0
if python3 -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('standardwebhooks') == '$version' else 1)" 2>/dev/null; then
  exit 0
fi
echo "[install-webhooks-deps] pip install standardwebhooks==$version" >&2
python3 -m pip install -q "standardwebhooks==$version"
