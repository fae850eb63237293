"""User-supplied names: trimmed, normalised (NFKC), bounded, free of control characters."""

from __future__ import annotations

import unicodedata

from passgate.errors import BadRequest

MAX_NAME = 64


def clean(value: str, *, field: str, required: bool = True, max_length: int = MAX_NAME) -> str:
    text = unicodedata.normalize("NFKC", value).strip()
    if required and not text:
        raise BadRequest(f"{field} is required.", code="invalid_name")
    if len(text) > max_length:
        raise BadRequest(f"{field} is longer than {max_length} characters.", code="invalid_name")
    if any(unicodedata.category(char).startswith("C") for char in text):
        raise BadRequest(f"{field} contains control characters.", code="invalid_name")
    return text
