"""The step-up rule shared by the FastAPI dependency and the Flask decorator: "a passkey check with user
verification, newer than N seconds, for this transaction".

A protected request without a valid token gets `401` and, under `detail`, the transaction's request
options for the front end (`publicKey`) and its `transaction_id`. The front end runs
`navigator.credentials.get`, posts the result to the app's finalize route (which calls
`transaction/finalize` with the API key and answers `{"token": …}`), then repeats the request with the
token in the `X-Passkey-Token` header.

The transaction id is `<random>.<digest>`, where the digest is the SHA-256 of what the request asks
for (by default its method, path, query and body): the token's `trans` claim must end in the digest
of the repeated request, so a token for one action never lets another through. The token must also
be signed by the tenant's key, be for the signed-in user, carry `uv`, and be at most N seconds old.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from typing import Any

from passgate.client.errors import ApiError, PasskeyError, TokenInvalid
from passgate.client.models import JSONObject, TokenClaims

TOKEN_HEADER = "X-Passkey-Token"  # noqa: S105 (a header name)
DEFAULT_MAX_AGE = 300


def request_data(method: str, path: str, query: str, body: bytes) -> JSONObject:
    """The default transaction data: what the request asks the app to do."""
    return {
        "method": method.upper(),
        "path": path,
        "query": query,
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }


def digest(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def new_transaction_id(data: Any) -> str:
    return f"{secrets.token_urlsafe(16)}.{digest(data)}"


def check(claims: TokenClaims, *, user_id: str, data: Any) -> TokenClaims:
    """The claims (already verified for signature, age and UV) if they are this user's, for this data."""
    if claims.subject != user_id:
        raise TokenInvalid("for another user")
    trans = claims.transaction_id or ""
    if not trans.endswith("." + digest(data)):
        raise TokenInvalid("for another transaction")
    return claims


def required(transaction_id: str, options: JSONObject, reason: str) -> JSONObject:
    """The body of the `401` that asks for a passkey check."""
    return {
        "detail": {
            "title": "passkey check required",
            "details": reason,
            "status": 401,
            "transaction_id": transaction_id,
            "publicKey": options.get("publicKey", {}),
        }
    }


def refused(error: PasskeyError) -> tuple[int, JSONObject]:
    """Status and body when no check can be offered: the user has no passkey (403), or the passkey API
    failed (502; its key is wrong, it is down)."""
    if isinstance(error, ApiError) and error.status in (400, 404):
        problem: JSONObject = {"title": "no passkey to check", "details": error.title, "status": 403}
        return 403, {"detail": problem}
    return 502, {"detail": {"title": "passkey check unavailable", "details": error.title, "status": 502}}


def not_signed_in() -> JSONObject:
    return {"detail": {"title": "not signed in", "details": "", "status": 401}}
