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
    type: str
    challenge: bytes
    origin: str


def read_client_data(credential: dict[str, Any]) -> ClientData:
    """Decode `response.clientDataJSON`; CeremonyFailed when it is not a well-formed client data object.

    Implements W3C WebAuthn L3 §7.1 steps 5-6, 10-11 and §7.2 steps 8-9, 13-14 (cross-origin embedding is
    not supported, so `crossOrigin: true` and any `topOrigin` are refused).
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
    if not isinstance(kind, str) or not isinstance(origin, str) or not isinstance(challenge, str) or not challenge:
        raise CeremonyFailed(detail="clientDataJSON lacks type, challenge or origin")
    if data.get("crossOrigin") not in (None, False):
        raise CeremonyFailed(detail="crossOrigin ceremonies are not allowed")
    if "topOrigin" in data:
        raise CeremonyFailed(detail="topOrigin present but embedding is not allowed")
    try:
        challenge_bytes = b64url_decode(challenge, field="challenge")
    except Exception:
        raise CeremonyFailed(detail="challenge is not base64url") from None
    return ClientData(type=kind, challenge=challenge_bytes, origin=origin)
