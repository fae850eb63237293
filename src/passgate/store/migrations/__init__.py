"""Alembic migrations (env.py, versions/), and the newest revision read without importing Alembic.

Importing and running Alembic costs a few hundred milliseconds of every start; `Database.migrate`
skips it when the database already records `head_revision()`.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from importlib.resources import files

_ASSIGNMENT = re.compile(r"^(revision|down_revision)\s*(?::[^=]+)?=\s*(.+?)\s*$", re.MULTILINE)


@cache
def head_revision() -> str | None:
    """The one revision no other revision revises, from the scripts' `revision` / `down_revision`
    lines; `None` when that is not plain (several heads, a merge, a line not a literal), and then
    Alembic decides."""
    revisions: dict[str, object] = {}
    for script in (files(__name__) / "versions").iterdir():
        if not script.name.endswith(".py"):
            continue
        found = dict(_ASSIGNMENT.findall(script.read_text(encoding="utf-8")))
        try:
            revision, down = ast.literal_eval(found["revision"]), ast.literal_eval(found["down_revision"])
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str) or not (down is None or isinstance(down, str)):
            return None
        revisions[revision] = down
    heads = set(revisions) - set(revisions.values())
    return heads.pop() if len(heads) == 1 else None
