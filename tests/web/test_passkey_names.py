"""Passkeys people can tell apart: with no authenticator known by its AAGUID, a passkey is named after the
device and browser that created it ("Chrome on Linux", "Chrome on Linux 2" when repeated on the account),
whether made at sign-up, added on the account page, or added through a device link; the name can be
edited like any other."""

from __future__ import annotations

from typing import Any

import httpx

from appkit import app_client
from flows import ORIGIN, Passkeys, unique_name
from passgate.services.context import Context
from passgate.useragent import passkey_name
from softkey import SoftAuthenticator

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)


async def _names(http: httpx.AsyncClient) -> list[str]:
    info = await http.post("/auth/user-info", json={})
    assert info.status_code == 200, info.text
    credentials: list[dict[str, Any]] = info.json()["credentials"]
    return [item["name"] for item in credentials]


async def test_passkeys_are_named_after_the_device_and_numbered(ctx: Context) -> None:
    async with app_client(ctx) as laptop:
        laptop.headers["user-agent"] = CHROME_LINUX
        browser = Passkeys(laptop)
        assert (await browser.register(unique_name())).status_code == 200
        assert (await browser.add_passkey(SoftAuthenticator())).status_code == 200
        assert await _names(laptop) == ["Chrome on Linux", "Chrome on Linux 2"]

        link = (await browser.post("/auth/create-device-link")).json()
        async with app_client(ctx) as phone:
            phone.headers["user-agent"] = SAFARI_IPHONE
            begin = await phone.post("/auth/device/begin", json={"token": link["passphrase"]})
            assert begin.status_code == 200, begin.text
            finish = await phone.post(
                "/auth/device/finish", json=SoftAuthenticator().create(begin.json(), origin=ORIGIN)
            )
            assert finish.status_code == 200, finish.text
        assert await _names(laptop) == ["Chrome on Linux", "Chrome on Linux 2", "Safari on iPhone"]

        info = (await laptop.post("/auth/user-info", json={})).json()
        first = info["credentials"][0]["credential_id"]
        renamed = await laptop.post(
            "/auth/rename-credential", json={"credential_id": first, "name": "Work laptop"}
        )
        assert renamed.status_code == 200, renamed.text
        assert (await _names(laptop))[0] == "Work laptop"


def test_names_without_a_known_device() -> None:
    assert passkey_name("", []) == "Passkey"
    assert passkey_name("curl/8.0", ["Passkey"]) == "Passkey 2"
    assert passkey_name(SAFARI_IPHONE, ["Safari on iPhone", "Safari on iPhone 2"]) == "Safari on iPhone 3"
