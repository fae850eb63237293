"""base64url as WebAuthn's JSON forms use it: URL-safe alphabet, no padding, strict."""

from __future__ import annotations

import base64
import re

from passgate.errors import BadRequest

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: object, *, field: str = "value") -> bytes:
    """Decode strict base64url (no padding, no standard-alphabet characters); BadRequest otherwise."""
    if not isinstance(value, str) or not _B64URL.fullmatch(value) or len(value) % 4 == 1:
        raise BadRequest(f"{field} is not valid base64url.", code="invalid_base64url")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
