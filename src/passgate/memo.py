"""`Memo`: the one kind of per-process memory Passgate keeps of what strangers send (tokens, Cookie
headers, forwarded headers, queries) and of what it read for them (sessions).

Each is bounded in bytes, not only in entries: a key can be as long as a request head may be
(`PASSGATE_MAX_HEADER_BYTES`, 64 KiB by default), so 4,096 entries of such keys would be hundreds of MB
per worker. A memo keeps at most `entries` keys, each at most `longest` bytes or characters long
(longer ones are worked out on every request and never kept); when full, it forgets its oldest quarter
(dicts keep insertion order). Reads are plain dict reads: the hot paths pay nothing for the bound.
"""

from __future__ import annotations

from itertools import islice
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")
LONGEST = 512  # the default longest key kept: forwarded header values, queries, paths


class Memo(dict[K, V]):
    """A dict that stays small; write to it with `remember` only."""

    def __init__(self, entries: int, *, longest: int = LONGEST):
        super().__init__()
        self.entries = max(1, entries)
        self.longest = longest

    def remember(self, key: K, value: V, *, size: int) -> V:
        """Keep `value` under `key` when `size` (the key's length) is at most `longest`; returns `value`."""
        if size <= self.longest:
            if key in self:
                del self[key]  # remembered again: to the end, so the oldest quarter is the stalest
            elif len(self) >= self.entries:
                for old in list(islice(self, max(1, self.entries // 4))):
                    del self[old]
            self[key] = value
        return value
