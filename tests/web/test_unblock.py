"""The owner clears the block a sign-count regression put on a passkey, after a fresh check with another
passkey; the admin path (`passgate user unflag`) is in the security and CLI tests."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from flows import Passkeys, fresh
from passgate.services.context import Context
from passgate.store.models import sessions
from softkey import SoftAuthenticator


async def _flagged_account(client: httpx.AsyncClient) -> tuple[Passkeys, SoftAuthenticator, bytes]:
    """An account with passkeys A (flagged after a counter regression) and B; signed in with B."""
    browser = Passkeys(client)
    assert (await browser.register()).status_code == 200
    second = fresh()
    assert (await browser.add_passkey(second)).status_code == 200
    first = browser.authenticator
    flagged_id = first.last_credential.credential_id
    assert (await browser.login()).status_code == 200  # A's counter is now 1
    replay = await browser.login(credential_id=flagged_id, sign_count=1)  # not increasing → flagged
    assert replay.json()["code"] == "sign_in_failed"
    # Nobody can tell the clone from the original: every session A opened has ended with the flag.
    assert (await browser.me()).json()["code"] == "session_ended"
    browser.authenticator = second
    assert (await browser.login()).status_code == 200  # a fresh check with the other passkey
    info = (await browser.post("/auth/user-info")).json()
    assert [
        c["flagged"] for c in info["credentials"] if c["credential_id"] == first.last_credential.id_b64
    ] == [True]
    return browser, first, flagged_id


async def test_owner_unblocks_after_a_fresh_check_and_the_passkey_signs_in_again(
    client: httpx.AsyncClient,
) -> None:
    browser, first, flagged_id = await _flagged_account(client)
    credential_id = first.last_credential.id_b64
    second = browser.authenticator
    browser.authenticator = first
    blocked = await browser.login(credential_id=flagged_id, sign_count=50)
    assert blocked.status_code == 400  # still blocked, even with a higher counter
    browser.authenticator = second
    assert (await browser.login()).status_code == 200  # signed in again with B, freshly

    cleared = await browser.post("/auth/clear-credential-flag", {"credential_id": credential_id})
    assert cleared.status_code == 200, cleared.text
    info = (await browser.post("/auth/user-info")).json()
    assert not any(c["flagged"] for c in info["credentials"])

    browser.authenticator = first
    assert (await browser.login(credential_id=flagged_id, sign_count=60)).status_code == 200


async def test_unblocking_needs_a_recent_check(client: httpx.AsyncClient, ctx: Context) -> None:
    browser, first, _ = await _flagged_account(client)
    ctx.db.transact(lambda connection: connection.execute(update(sessions).values(auth_time=0)))
    response = await browser.post(
        "/auth/clear-credential-flag", {"credential_id": first.last_credential.id_b64}
    )
    assert response.status_code == 401 and response.json()["code"] == "reauth_required"
    info = (await browser.post("/auth/user-info")).json()
    assert any(c["flagged"] for c in info["credentials"])


async def test_another_accounts_passkey_cannot_be_unblocked(client: httpx.AsyncClient, ctx: Context) -> None:
    _victim, victim_key, _ = await _flagged_account(client)
    client.cookies.clear()
    attacker = Passkeys(client)
    assert (await attacker.register()).status_code == 200
    response = await attacker.post(
        "/auth/clear-credential-flag", {"credential_id": victim_key.last_credential.id_b64}
    )
    assert response.status_code == 404 and response.json()["code"] == "credential_not_found"


async def test_account_page_offers_unblock_for_a_flagged_passkey(client: httpx.AsyncClient) -> None:
    browser, _, _ = await _flagged_account(client)
    page = await browser.http.get("/account")
    assert page.status_code == 200
    assert page.text.count('data-action="unblock"') == 1
