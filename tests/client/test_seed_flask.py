"""Hanko's Flask tutorial backend, with only its base URL changed, registers a passkey for its signed-in
user and signs them in again through `passgate serve`; and the token verifies through the JWKS with
PyJWT as docs/passkey-api.md shows (instead of the tutorial's `verify_signature: False`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import jwt
import pytest
import requests

from clientkit import BROWSER_ORIGIN, RemoteTenant
from softkey import SoftAuthenticator


@pytest.fixture
def seed(remote_tenant: RemoteTenant, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("PASSKEY_TENANT_ID", remote_tenant.id)
    monkeypatch.setenv("PASSKEY_API_KEY", remote_tenant.api_key)
    monkeypatch.setenv("PASSGATE_URL", remote_tenant.server.url)
    spec = importlib.util.spec_from_file_location(
        "seed_flask_app", Path(__file__).with_name("seed_flask_app.py")
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "seed_flask_app", module)
    spec.loader.exec_module(module)
    return module


def test_the_tutorials_flask_routes_work_with_only_the_base_url_changed(seed: ModuleType) -> None:
    browser, (ann,) = SoftAuthenticator(), seed.users
    signed_in = seed.app.test_client()
    assert signed_in.post("/login", json={"email": ann["email"]}).status_code == 200
    options = signed_in.post("/passkey/start-registration").get_json()
    created = browser.create(options, origin=BROWSER_ORIGIN)
    assert signed_in.post("/passkey/finalize-registration", json=created).status_code == 200

    visitor = seed.app.test_client()  # a new browser session: no password, only the passkey
    body = {"start": True, "finish": False, "credential": None}  # what the tutorial's front end sends
    options = visitor.post("/passkey/start-login", json=body).get_json()
    answer = visitor.post("/passkey/finalize-login", json=browser.get(options, origin=BROWSER_ORIGIN))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {"message": "Login successful", "user": ann}
    with visitor.session_transaction() as session:
        assert session["user_id"] == ann["id"]


def test_the_token_verifies_through_the_jwks_as_the_docs_show(
    seed: ModuleType, remote_tenant: RemoteTenant
) -> None:
    browser, user = SoftAuthenticator(), "user-docs"
    base_url = seed.baseUrl
    options = requests.post(
        f"{base_url}/registration/initialize", headers=seed.headers, json={"user_id": user, "username": user}
    ).json()
    created = browser.create(options, origin=BROWSER_ORIGIN)
    token = requests.post(f"{base_url}/registration/finalize", headers=seed.headers, json=created).json()[
        "token"
    ]

    # docs/passkey-api.md, "The token":
    jwks = jwt.PyJWKClient(f"{base_url}/.well-known/jwks.json")

    def verified_claims(token: str) -> dict[str, Any]:
        key = jwks.get_signing_key_from_jwt(token).key
        return jwt.decode(token, key, algorithms=["RS256"], audience="localhost")

    assert verified_claims(token)["sub"] == user
    head, payload, signature = token.split(".")
    forged = ".".join((head, payload, signature[:-8] + ("A" * 8 if signature[-8:] != "A" * 8 else "B" * 8)))
    with pytest.raises(jwt.InvalidSignatureError):
        verified_claims(forged)
