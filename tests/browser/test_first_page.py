"""The `/` page in real headless Chromium with its virtual authenticator: sign up, sign in, who am I and
sign out by clicking the page's buttons, with ES256, RS256 and EdDSA; a bogus signature and a
rolled-back signature counter are refused with the server's message and leave no session."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key

from browsing import PageFactory, PasskeyPage, ServerFactory, cdp_to_b64url

pytestmark = pytest.mark.browser

# The server's algorithm list puts the one under test first; the virtual authenticator takes the first
# it supports. Expected: the COSE identifier the server stores, and the key type the authenticator made.
ALGORITHMS: dict[str, tuple[str, int, type]] = {
    "ES256": ("ES256,EdDSA,RS256", -7, ec.EllipticCurvePrivateKey),
    "RS256": ("RS256,ES256,EdDSA", -257, rsa.RSAPrivateKey),
    "EdDSA": ("EdDSA,ES256,RS256", -8, ed25519.Ed25519PrivateKey),
}
SIGN_IN_FAILED = "Sign-in failed. Try again or use another passkey."
NOT_SIGNED_IN = "Not signed in."
SHOWN = "() => document.getElementById('output').textContent !== ''"


@pytest.fixture(params=list(ALGORITHMS))
def alg(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def tab(alg: str, passgate_server: ServerFactory, passkey_page: PageFactory) -> PasskeyPage:
    """The `/` page of a server whose first algorithm is `alg`, with a fresh authenticator and no cookie."""
    server = passgate_server(PASSGATE_ALGORITHMS=ALGORITHMS[alg][0])
    return await passkey_page(f"{server.url}/")


async def click(tab: PasskeyPage, button: str) -> tuple[str, Any]:
    """Click one of the page's buttons and wait for its result; return `#status`'s text and the JSON the
    page shows in `#output` (the server's answer, or `{"error", "code"}` when the action failed)."""
    await tab.page.eval_on_selector("#output", "(output) => { output.textContent = ''; }")
    await tab.page.click(f"#{button}")
    await tab.page.wait_for_function(SHOWN)  # polls every animation frame
    status = await tab.page.text_content("#status") or ""
    return status, json.loads(await tab.page.text_content("#output") or "null")


async def succeeds(tab: PasskeyPage, button: str) -> Any:
    status, output = await click(tab, button)
    assert "error" not in output and "failed" not in status, (status, output)
    return output


async def fails(tab: PasskeyPage, button: str, message: str, code: str) -> None:
    """The action fails, and the page shows the server's message (status) and `{error, code}` (output)."""
    status, output = await click(tab, button)
    assert output == {"error": message, "code": code}
    assert message in status


async def sign_up(tab: PasskeyPage) -> str:
    name = f"browser-{uuid.uuid4().hex[:10]}@example.com"
    await tab.page.fill("#user_name", "")
    await tab.page.locator("#user_name").press_sequentially(name)
    output = await succeeds(tab, "signup")
    assert output["status"] == "success" and output["user_name"] == name
    return name


async def sign_out(tab: PasskeyPage) -> None:
    await succeeds(tab, "logout")
    await fails(tab, "whoami", NOT_SIGNED_IN, "not_authenticated")


async def assert_sign_in_refused(tab: PasskeyPage) -> None:
    await fails(tab, "signin", SIGN_IN_FAILED, "sign_in_failed")
    status, body = await tab.api("/auth/me")
    assert status == 401 and body["code"] == "not_authenticated"
    await fails(tab, "whoami", NOT_SIGNED_IN, "not_authenticated")


async def stored_credential(tab: PasskeyPage) -> dict[str, Any]:
    """The server's record of the signed-in user's only passkey, fetched through the page."""
    status, info = await tab.api("/auth/user-info", {})
    assert status == 200, info
    (credential,) = info["credentials"]
    assert isinstance(credential, dict)
    return credential


async def test_sign_up_who_am_i_sign_out_sign_in(alg: str, tab: PasskeyPage) -> None:
    _, cose_id, key_type = ALGORITHMS[alg]
    name = await sign_up(tab)

    (held,) = await tab.credentials()
    assert held["rpId"] == "localhost" and held["isResidentCredential"] and held["userName"] == name
    assert isinstance(load_der_private_key(base64.b64decode(held["privateKey"]), password=None), key_type)
    stored = await stored_credential(tab)
    assert stored["credential_id"] == cdp_to_b64url(held["credentialId"])
    assert stored["algorithm"] == cose_id
    assert stored["sign_count"] == held["signCount"]

    me = await succeeds(tab, "whoami")
    assert me["user_name"] == name and me["user_verified"] is True

    await sign_out(tab)

    signed_in = await succeeds(tab, "signin")
    assert signed_in["status"] == "success" and signed_in["user_name"] == name
    assert (await succeeds(tab, "whoami"))["user_name"] == name
    (held_after,) = await tab.credentials()
    assert held_after["signCount"] > held["signCount"]
    stored_after = await stored_credential(tab)
    assert stored_after["sign_count"] == held_after["signCount"] and stored_after["flagged"] is False
    assert tab.errors == []


async def test_bogus_signature_is_refused(tab: PasskeyPage) -> None:
    name = await sign_up(tab)
    await sign_out(tab)

    await tab.set_response_override_bits(isBogusSignature=True)
    await assert_sign_in_refused(tab)

    # The same passkey with a real signature still works: the refusal was the signature's.
    await tab.set_response_override_bits(isBogusSignature=False)
    assert (await succeeds(tab, "signin"))["user_name"] == name


async def test_rolled_back_counter_is_refused_and_flags_the_passkey(tab: PasskeyPage) -> None:
    name = await sign_up(tab)
    await sign_out(tab)
    assert (await succeeds(tab, "signin"))["user_name"] == name
    (held,) = await tab.credentials()
    stored = await stored_credential(tab)
    assert stored["sign_count"] == held["signCount"] >= 2
    await sign_out(tab)

    # The authenticator increments before signing: its next assertion carries 1, below the stored count.
    await tab.set_credential_properties(held["credentialId"], signCount=0)
    assert (await tab.credentials())[0]["signCount"] == 0
    await assert_sign_in_refused(tab)

    # The passkey is now flagged: even a counter well above the stored one is refused.
    await tab.set_credential_properties(held["credentialId"], signCount=1000)
    await assert_sign_in_refused(tab)
