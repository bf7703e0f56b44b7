"""Schemathesis hooks for tests/contract.rs: authenticate as the administrator, and keep the
fuzzer from locking itself out (it may do anything else the API allows).

- Every request carries the administrator's API token (CAMPANA_FUZZ_TOKEN), except the sign-out,
  which revokes the token it is sent with: it gets a fresh token each time.
- A request that would delete, revoke, replace or deactivate the administrator, its role or its
  tokens is sent to an id that does not exist instead (404), so the rest of the run stays signed in.
"""

import os

import requests
import schemathesis

BASE = os.environ["CAMPANA_FUZZ_BASE"]
TOKEN = os.environ["CAMPANA_FUZZ_TOKEN"]
MISSING = 999_999_999

_session = requests.Session()
_session.headers["Authorization"] = f"Bearer {TOKEN}"
_me = _session.get(f"{BASE}/api/v1/auth/me", timeout=30).json()
ADMIN_USER = _me["user"]["id"]
ADMIN_ROLE = _me["user"]["role_id"]


def _admin_tokens():
    return {t["id"] for t in _session.get(f"{BASE}/api/v1/auth/tokens", timeout=30).json()}


def _fresh_token():
    r = _session.post(f"{BASE}/api/v1/auth/tokens", json={"name": "fuzz-logout"}, timeout=30)
    r.raise_for_status()
    return r.json()["token"]


# The operations that could lock the run out, and the id parameter naming their target.
PROTECTED = {
    "/api/v1/users/{id}": lambda: {ADMIN_USER},
    "/api/v1/roles/{id}": lambda: {ADMIN_ROLE},
    "/api/v1/auth/tokens/{id}": _admin_tokens,
}


@schemathesis.auth()
class AdminToken:
    def get(self, case, ctx):
        return TOKEN

    def set(self, case, data, ctx):
        case.headers = case.headers or {}
        if case.operation.path == "/api/v1/auth/logout":
            case.headers["Authorization"] = f"Bearer {_fresh_token()}"
        else:
            case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def before_call(context, case, kwargs):
    protected = PROTECTED.get(case.operation.path)
    if protected is None or case.method.upper() == "GET" or not case.path_parameters:
        return
    value = case.path_parameters.get("id")
    try:
        target = int(value)
    except (TypeError, ValueError):
        return
    if target in protected():
        case.path_parameters["id"] = MISSING
