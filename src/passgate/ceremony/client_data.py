"""Reading `clientDataJSON` before verification: to find the ceremony by its challenge, and to make
the checks py_webauthn does not (crossOrigin, topOrigin)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from passgate.ceremony.encoding import b64url_decode
from passgate.errors import CeremonyFailed


@dataclass(frozen=True, slots=True)
class ClientData:
    """The members of `clientDataJSON` the server reads itself ("" for a missing or non-string one)."""

    type: str
    challenge: bytes
    origin: str
    cross_origin: bool = False
    has_top_origin: bool = False

    def require_top_level(self) -> None:
        """W3C WebAuthn L3 §7.1 steps 10-11, §7.2 steps 13-14: cross-origin embedding is not supported,
        so `crossOrigin: true` and any `topOrigin` are refused."""
        if self.cross_origin:
            raise CeremonyFailed(detail="crossOrigin ceremonies are not allowed")
        if self.has_top_origin:
            raise CeremonyFailed(detail="topOrigin present but embedding is not allowed")


def read_client_data(credential: dict[str, Any]) -> ClientData:
    """Decode `response.clientDataJSON` far enough to find the ceremony by its challenge.

    CeremonyFailed when it is not UTF-8 JSON (a leading BOM is allowed, §7.1 step 5) holding an object
    with a base64url challenge (§7.1 steps 5-6, §7.2 steps 8-9). Every other member is judged after the
    challenge was consumed, so that a response failing any later check has still burnt its challenge.
    """
    response = credential.get("response")
    if not isinstance(response, dict):
        raise CeremonyFailed(detail="response is not an object")
    raw = b64url_decode(response.get("clientDataJSON"), field="clientDataJSON")
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CeremonyFailed(detail=f"clientDataJSON unreadable: {exc}") from None
    if not isinstance(data, dict):
        raise CeremonyFailed(detail="clientDataJSON is not an object")
    kind, challenge, origin = data.get("type"), data.get("challenge"), data.get("origin")
    if not isinstance(challenge, str) or not challenge:
        raise CeremonyFailed(detail="clientDataJSON lacks a challenge")
    try:
        challenge_bytes = b64url_decode(challenge, field="challenge")
    except Exception:
        raise CeremonyFailed(detail="challenge is not base64url") from None
    return ClientData(
        type=kind if isinstance(kind, str) else "",
        challenge=challenge_bytes,
        origin=origin if isinstance(origin, str) else "",
        cross_origin=data.get("crossOrigin") not in (None, False),
        has_top_origin="topOrigin" in data,
    )
