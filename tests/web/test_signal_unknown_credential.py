"""`login/finish` names a credential that no account owns (`unknown_credential`) so the sign-in page can
call `PublicKeyCredential.signalUnknownCredential` — and says nothing more than any failed sign-in
otherwise (W3C WebAuthn L3 §14.6.3): not in a named ceremony, not for an owned credential with a bad
signature, not for the decoy ids that a named `login/begin` hands out for unknown names."""

from __future__ import annotations

import os
from typing import Any

import httpx

from flows import ORIGIN, Passkeys, fresh, unique_name
from softkey import SoftAuthenticator, b64url_decode, b64url_encode

SIGN_IN_FAILED = {"error": "Sign-in failed. Try again or use another passkey.", "code": "sign_in_failed"}


async def stray_authenticator(passkeys: Passkeys) -> tuple[SoftAuthenticator, bytes]:
    """An authenticator holding a passkey for this RP that the server never stored (registration begun,
    never finished: like a passkey whose account row was deleted)."""
    begin = await passkeys.post("/auth/register/begin", {"user_name": unique_name()})
    stray = fresh()
    stray.create(begin.json(), origin=ORIGIN)
    return stray, stray.last_credential.credential_id


async def finish(passkeys: Passkeys, credential: dict[str, Any]) -> httpx.Response:
    return await passkeys.post("/auth/login/finish", credential)


async def test_usernameless_unknown_credential_is_named(passkeys: Passkeys) -> None:
    stray, credential_id = await stray_authenticator(passkeys)
    response = await finish(passkeys, stray.get(await passkeys.login_options(), origin=ORIGIN))
    assert response.status_code == 400
    assert response.json() == {**SIGN_IN_FAILED, "unknown_credential": b64url_encode(credential_id)}
    assert (await passkeys.me()).status_code == 401


async def test_named_ceremony_never_names_it(passkeys: Passkeys) -> None:
    user_name = unique_name()
    assert (await passkeys.register(user_name)).status_code == 200
    await passkeys.http.post("/auth/logout")
    stray, credential_id = await stray_authenticator(passkeys)
    options = await passkeys.login_options(user_name)
    response = await finish(passkeys, stray.get(options, origin=ORIGIN, credential_id=credential_id))
    assert response.status_code == 400 and response.json() == SIGN_IN_FAILED


async def test_owned_credential_with_bad_signature_is_not_named(passkeys: Passkeys) -> None:
    assert (await passkeys.register()).status_code == 200
    await passkeys.http.post("/auth/logout")
    response = await finish(
        passkeys,
        passkeys.authenticator.get(await passkeys.login_options(), origin=ORIGIN, tamper_signature=True),
    )
    assert response.status_code == 400 and response.json() == SIGN_IN_FAILED


async def test_replayed_decoy_does_not_reveal_a_missing_account(passkeys: Passkeys) -> None:
    """A named begin for an unknown name returns a decoy id; were it reported unknown when replayed in a
    usernameless finish, that would tell that the name has no account. A random id is reported."""
    decoy_options = await passkeys.login_options(unique_name("nobody"))
    (decoy,) = decoy_options["publicKey"]["allowCredentials"]
    stray, _ = await stray_authenticator(passkeys)

    def assertion_naming(raw_id: bytes, options: dict[str, Any]) -> dict[str, Any]:
        return stray.get(options, origin=ORIGIN, raw_id_override=raw_id, id_override=b64url_encode(raw_id))

    decoy_id = b64url_decode(decoy["id"])
    response = await finish(passkeys, assertion_naming(decoy_id, await passkeys.login_options()))
    assert response.status_code == 400 and response.json() == SIGN_IN_FAILED

    random_id = os.urandom(len(decoy_id))
    response = await finish(passkeys, assertion_naming(random_id, await passkeys.login_options()))
    assert response.json() == {**SIGN_IN_FAILED, "unknown_credential": b64url_encode(random_id)}


async def test_decoys_stay_stable_per_name(passkeys: Passkeys) -> None:
    name = unique_name("nobody")
    first = await passkeys.login_options(name)
    second = await passkeys.login_options(name)
    other = await passkeys.login_options(unique_name("nobody"))
    ids = [options["publicKey"]["allowCredentials"][0]["id"] for options in (first, second, other)]
    assert ids[0] == ids[1] != ids[2]
    assert len(b64url_decode(ids[0])) == 32
