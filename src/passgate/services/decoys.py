"""Decoy allow lists: what a named sign-in answers for a name with no account (or a disabled one, or
one with no passkey), so the answer does not tell whether the account exists (W3C WebAuthn L3
§14.6.2, username enumeration).

A decoy copies the *shape* of a real account here: how many passkeys, each id's length, each one's
transports, in order. The shape is drawn from the accounts themselves, not from a fixed guess of what
authenticators people use: a server whose people all carry security keys with 64-byte ids and
`["usb","nfc"]` must answer unknown names with those, or one request tells them apart. The draw:

* the summary is the shapes of the `SAMPLE_ROWS` newest passkeys' enabled accounts (never ids or
  names), read at most once per `SUMMARY_TTL` per process; distinct shapes sorted, each weighted by
  how many accounts have it;
* a name picks one by inverse CDF with a uniform number from HMAC(decoy key, canonical name): every
  spelling of one name gets one answer, and a name keeps it until the summary's weights move across
  its point (rare, as it is for a real person to add a passkey);
* each id is HKDF-Expand(decoy key, name, position) of the copied length, its last bytes a tag
  (HMAC of the rest) by which `login.finish` knows a decoy replayed at it (`is_decoy`).

The decoy key comes from the *oldest* signing key: `passgate keys rotate` puts a new key first and
keeps the old ones, so no decoy changes then (a change would mark every unknown name asked before and
after). A decoy is recognised under any configured key, so one handed out before a key change still is.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import hmac
import time
import weakref
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand
from sqlalchemy import Connection

from passgate.services.context import Context
from passgate.store import account_shapes
from passgate.store.account_shapes import Shape

SUMMARY_TTL = 900.0  # seconds a process keeps its summary of real shapes
SAMPLE_ROWS = 5000  # passkeys read for the summary (the newest accounts')
MIN_ID = 16  # W3C WebAuthn L3 §6.1: at least 16 bytes of a credential id are random
DEFAULT_SHAPE: Shape = ((32, "hybrid,internal"),)  # no account yet: nothing to look like


@dataclass(frozen=True, slots=True)
class Summary:
    shapes: tuple[Shape, ...]  # distinct, sorted
    cumulative: tuple[int, ...]  # running account counts, same order
    read_at: float  # time.monotonic()

    @classmethod
    def of(cls, shapes: list[Shape]) -> Summary:
        counts: dict[Shape, int] = {}
        for shape in shapes:
            counts[shape] = counts.get(shape, 0) + 1
        if not counts:
            counts[DEFAULT_SHAPE] = 1
        ordered = tuple(sorted(counts))
        running, cumulative = 0, []
        for shape in ordered:
            running += counts[shape]
            cumulative.append(running)
        return cls(ordered, tuple(cumulative), time.monotonic())

    def pick(self, point: int) -> Shape:
        """The shape at `point` in [0, 2**64): inverse CDF over the accounts' weights."""
        target = point * self.cumulative[-1] >> 64
        return self.shapes[bisect.bisect_right(self.cumulative, target)]


_SUMMARIES: dict[int, tuple[weakref.ref[Context], Summary]] = {}


def decoy_allow_list(connection: Connection, ctx: Context, user_key: str) -> list[tuple[bytes, str]]:
    """(credential id, transports) pairs for a name with no usable account, stable per key."""
    signing_key = ctx.keys[-1]
    draw = hmac.new(_derive(signing_key, "decoy-shape"), user_key.encode(), hashlib.sha256).digest()
    shape = _summary(connection, ctx).pick(int.from_bytes(draw[:8]))
    return [
        (_decoy_id(signing_key, user_key, index, length), transports)
        for index, (length, transports) in enumerate(shape)
    ]


def is_decoy(ctx: Context, credential_id: bytes) -> bool:
    """True for an id `decoy_allow_list` made (under any configured signing key)."""
    if len(credential_id) < MIN_ID:
        return False
    cut = len(credential_id) - _tag_length(len(credential_id))
    seed, tag = credential_id[:cut], credential_id[cut:]
    return any(hmac.compare_digest(tag, _tag(key, seed, len(tag))) for key in ctx.keys)


def _summary(connection: Connection, ctx: Context) -> Summary:
    held = _SUMMARIES.get(id(ctx))
    if held is not None and held[0]() is ctx and time.monotonic() - held[1].read_at < SUMMARY_TTL:
        return held[1]
    summary = Summary.of(account_shapes.recent(connection, ctx.tenant_id, max_rows=SAMPLE_ROWS))
    for key in [key for key, (ref, _) in _SUMMARIES.items() if ref() is None]:
        del _SUMMARIES[key]
    _SUMMARIES[id(ctx)] = (weakref.ref(ctx), summary)
    return summary


def _decoy_id(signing_key: bytes, user_key: str, index: int, length: int) -> bytes:
    secret = _derive(signing_key, "decoy-credential")
    length = max(MIN_ID, length)
    tag_length = _tag_length(length)
    info = b"id\0" + index.to_bytes(2, "big") + user_key.encode()
    seed = HKDFExpand(hashes.SHA256(), length - tag_length, info).derive(secret)
    return seed + _tag(signing_key, seed, tag_length)


def _tag_length(id_length: int) -> int:
    return min(16, id_length // 2)  # at least 8 bytes: a random id passes for a decoy with p <= 2**-64


def _tag(signing_key: bytes, seed: bytes, length: int) -> bytes:
    return hmac.new(_derive(signing_key, "decoy-tag"), seed, hashlib.sha256).digest()[:length]


@functools.lru_cache(maxsize=32)
def _derive(signing_key: bytes, purpose: str) -> bytes:
    return hmac.new(signing_key, purpose.encode(), hashlib.sha256).digest()
