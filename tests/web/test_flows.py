"""End-to-end `/auth` flows through the ASGI app with the software authenticator."""

from __future__ import annotations

import httpx
import pytest

from flows import Passkeys, fresh, unique_name
from softkey import rsa_key


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
async def test_sign_up_then_sign_in_usernameless_and_named(client: httpx.AsyncClient, alg: str) -> None:
    authenticator = fresh(alg, private_key=rsa_key()) if alg == "RS256" else fresh(alg)  # type: ignore[arg-type]
    browser = Passkeys(client, authenticator)
    name = unique_name()
    signed_up = await browser.register(name)
    assert signed_up.status_code == 200, signed_up.text
    assert (await browser.me()).json()["user_name"] == name

    await browser.post("/auth/logout")
    assert (await browser.me()).status_code == 401

    assert (await browser.login()).status_code == 200
    assert (await browser.me()).json()["user_name"] == name
    await browser.post("/auth/logout")
    assert (await browser.login(name)).status_code == 200
    assert (await browser.me()).json()["amr"] == ["hwk", "user", "mfa"]
