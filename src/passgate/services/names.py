"""User-supplied names: display names and labels (`clean`), and user names (`user_name`), which must
stay one name per person.

A user name is shown as typed (trimmed, NFC, runs of white space as one space) and is unique through
its *key*, computed by `user_name` and nowhere else:

1. each space-separated part goes through the PRECIS `UsernameCaseMapped:CaseFold` profile (RFC 8265
   §3.3, §3.5: width mapping, Unicode default case folding, NFC; invisible, control, symbol and
   compatibility characters are refused);
2. the parts, joined by one space, are reduced to their confusable *skeleton* (UTS #39 §4), so
   `Alice`, `ALICE`, `Alice` in fullwidth letters and `alice` with a Cyrillic `a` have one key.

A new name (sign-up, `passgate user add`, `passgate user rename`) is refused when PRECIS refuses a
part, when one word mixes scripts beyond UTS #39 §5.2 "Highly Restrictive" (e.g. Latin with Cyrillic;
Han with Hiragana and Katakana is fine), or when it is longer than `MAX_NAME`. A name whose key is
taken is "taken", whichever name holds it: the answer never says which. A lookup (named sign-in, the
admin commands) computes the same key but only refuses what could never be stored (empty, too long,
control characters); a part PRECIS refuses is then folded leniently (NFKC, invisible characters
dropped, case folded), which for every accepted name gives the very same key.
"""

from __future__ import annotations

import functools
import hashlib
import json
import unicodedata
from dataclasses import dataclass
from typing import Any

from confusable_homoglyphs import categories
from confusable_homoglyphs.utils import path
from precis_i18n import get_profile
from precis_i18n.unicode import UnicodeData

from passgate.errors import BadRequest

MAX_NAME = 64
MAX_KEY = 256  # characters; a longer skeleton is kept as a prefix and a SHA-256 digest of the whole

_PROFILE = get_profile("UsernameCaseMapped:CaseFold")
_UCD = UnicodeData()
_NEUTRAL_SCRIPTS = frozenset({"COMMON", "INHERITED"})
# UTS #39 §5.2 "Highly Restrictive": one script, or Latin + Han + one of Japanese, Chinese, Korean.
_SCRIPT_SETS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)


@dataclass(frozen=True, slots=True)
class UserName:
    shown: str  # as typed: what pages, passkeys and `Remote-User` show
    key: str  # unique per tenant: the confusable skeleton of the PRECIS form


def user_name(value: str, *, new: bool, field: str = "user_name") -> UserName:
    """The one canonicalisation of user names. `new=True` for a name about to be stored (refuses
    look-alike bait); `new=False` to find an existing account (refuses only what cannot exist)."""
    shown = _shown(value)
    if not shown:
        raise BadRequest(f"{field} is required.", code="invalid_name")
    if len(shown) > MAX_NAME:
        raise BadRequest(f"{field} is longer than {MAX_NAME} characters.", code="invalid_name")
    if any(unicodedata.category(char) == "Cc" for char in shown):
        raise BadRequest(f"{field} contains control characters.", code="invalid_name")
    key = _key(shown, refuse=field if new else None)
    if new and _mixes_scripts(shown):
        raise BadRequest(
            f"{field} mixes letters of different alphabets in one word (e.g. Latin and Cyrillic).",
            code="invalid_name",
        )
    return UserName(shown=shown, key=key)


def stored_key(value: str) -> str:
    """The key of a name already stored (the schema migration, `doctor`): never refuses."""
    return _key(_shown(value), refuse=None)


def _shown(value: str) -> str:
    return " ".join(unicodedata.normalize("NFC", value).split())


@functools.lru_cache(maxsize=4096)  # a named sign-in computes it per request; PRECIS costs 40 to 80 µs
def _key(shown: str, *, refuse: str | None) -> str:
    forms: list[str] = []
    for part in shown.split(" "):
        if _printable_ascii(part):  # (no spaces in a part) what PRECIS makes of it, without its tables
            forms.append(part.lower())
            continue
        try:
            forms.append(_PROFILE.enforce(part))
        except UnicodeEncodeError:
            if refuse is not None:
                raise BadRequest(
                    f"{refuse} contains a character that is not allowed in names "
                    "(invisible, control, symbol or compatibility characters).",
                    code="invalid_name",
                ) from None
            forms.append(_lenient(part))
    return _bounded(skeleton(" ".join(forms)))


def skeleton(text: str) -> str:
    """UTS #39 §4 skeleton: NFD, each character mapped to its prototype, NFD again (to a fixed point)."""
    prototypes = _PROTOTYPES
    current = unicodedata.normalize("NFD", text)
    for _ in range(4):  # the data is idempotent up to the relabelling in `_prototypes`: 2 rounds suffice
        mapped = unicodedata.normalize("NFD", "".join(prototypes.get(char, char) for char in current))
        if mapped == current:
            break
        current = mapped
    return current


def _prototypes() -> dict[str, str]:
    """Source character → prototype, rebuilt from `confusable-homoglyphs`' table of the Unicode
    confusables.txt data (UTS #39 §4). That table lists, for each `source → prototype` line, the
    prototype under the source and the source under the prototype. A source is never a prototype, so
    a character listing one single-character entry that lists it back is a prototype with one source:
    either way round, mapping both to the smaller one keeps exactly the same classes.

    The table is read from the package's data file, not through its `confusables` module, which keeps
    all of it (~6 MB per process, and as much again in RSS) for lookups Passgate never makes; each
    `{"c": character, "n": name}` entry becomes its character as it is parsed."""
    with open(path("confusables.json"), encoding="utf-8") as file:  # noqa: PTH123 (the package's path)
        data = json.load(file, object_hook=_entry_character)
    table: dict[str, list[str]] = {}
    for char, entries in data.items():
        table.setdefault(char.replace("\u200e", ""), []).extend(  # LRMs wrap right-to-left glyphs
            entry.replace("\u200e", "") for entry in entries
        )
    prototypes: dict[str, str] = {}
    for char, targets in table.items():
        if len(char) != 1 or len(targets) != 1 or targets[0] == char:
            continue
        target = targets[0]
        if len(target) == 1 and table.get(target) == [char]:
            if target < char:
                prototypes[char] = target
        else:
            prototypes[char] = target
    return prototypes


def _entry_character(entry: dict[str, Any]) -> Any:
    return entry["c"] if len(entry) == 2 and "c" in entry and "n" in entry else entry


_PROTOTYPES = _prototypes()  # built once at import (~40 ms), not on the first sign-in


def _lenient(part: str) -> str:
    """What PRECIS would make of a part it refuses, minus the refusal: NFKC, invisible and control
    characters dropped (Default_Ignorable_Code_Point, UAX #44), case folded, NFC."""
    text = unicodedata.normalize("NFKC", part)
    text = "".join(
        char for char in text if not _UCD.default_ignorable(ord(char)) and unicodedata.category(char) != "Cc"
    )
    return unicodedata.normalize("NFC", text.casefold())


def _printable_ascii(text: str) -> bool:
    """Only U+0020 to U+007E. Their scripts are Latin and Common, which never mix; and PRECIS's
    IdentifierClass holds U+0021 to U+007E as PVALID (RFC 8264 §9.11, ASCII7), which the profile only
    case-folds: no width or compatibility mapping, normalisation or Bidi Rule applies to them (RFC 8265
    §3.3). Most names are such, and the libraries' per-character work costs ~100 µs a new name."""
    return text.isascii() and text.isprintable()


def _mixes_scripts(text: str) -> bool:
    """True when a word (a run of letters between Common characters such as `@ . - _` and digits)
    uses scripts that no UTS #39 §5.2 Highly Restrictive set allows together."""
    if _printable_ascii(text):
        return False
    word: set[str] = set()
    for char in [*text, " "]:
        script = categories.alias(char)
        if script == "COMMON":
            if len(word) > 1 and not any(word <= allowed for allowed in _SCRIPT_SETS):
                return True
            word = set()
        elif script not in _NEUTRAL_SCRIPTS:
            word.add(script)
    return False


def _bounded(key: str) -> str:
    if len(key) <= MAX_KEY:
        return key
    return key[: MAX_KEY - 65] + "#" + hashlib.sha256(key.encode()).hexdigest()


def clean(value: str, *, field: str, required: bool = True, max_length: int = MAX_NAME) -> str:
    """Display names and labels: trimmed, normalised (NFKC), bounded, free of control characters."""
    text = unicodedata.normalize("NFKC", value).strip()
    if required and not text:
        raise BadRequest(f"{field} is required.", code="invalid_name")
    if len(text) > max_length:
        raise BadRequest(f"{field} is longer than {max_length} characters.", code="invalid_name")
    if any(unicodedata.category(char).startswith("C") for char in text):
        raise BadRequest(f"{field} contains control characters.", code="invalid_name")
    return text
