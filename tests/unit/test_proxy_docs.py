"""docs/proxies.md shows every proxy snippet exactly as the proxy tests run it (docs/proxies/*)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize("snippet", ["proxies/Caddyfile", "proxies/nginx.conf"])
def test_the_recipe_shows_the_tested_file(snippet: str) -> None:
    text = (DOCS / "proxies.md").read_text(encoding="utf-8")
    shown = re.search(rf"<!-- snippet: docs/{re.escape(snippet)} -->\n```\w+\n(.*?)```", text, re.DOTALL)
    assert shown is not None, f"docs/proxies.md no longer shows {snippet}"
    assert shown.group(1) == (DOCS / snippet).read_text(encoding="utf-8")
