"""Device-link passphrases use plain words: none unpleasant or odd, and enough of them to stay strong."""

from __future__ import annotations

import math

from passgate.services.device_links import _wordlist, new_passphrase
from passgate.services.wordlist import pleasant


def test_unpleasant_and_odd_words_never_reach_a_passphrase() -> None:
    words = set(_wordlist())
    for word in ("stinky", "flakily", "dirtiness", "vomit", "grime", "maggot", "sweat"):
        assert word not in words
    assert {"apple", "poser"} <= words
    assert math.log2(len(words)) > 12.5  # bits per word: the filter costs almost nothing
    for _ in range(200):
        assert all(pleasant(word) and word in words for word in new_passphrase().split("."))
