"""`@teamhanko/passkeys-sdk` (npm), pointed at `passgate serve` with only its base URL changed, registers
and signs in a user, lists and removes the credential and reads the JWKS; the token it gets verifies
through `passgate.client`. The test plays the browser with the software authenticator."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from clientkit import BROWSER_ORIGIN, IN_CI, RemoteTenant
from passgate.client import PasskeyClient
from softkey import SoftAuthenticator

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / ".ci" / "node" / "node_modules" / "@teamhanko" / "passkeys-sdk" / "dist" / "src" / "index.js"
DRIVER = Path(__file__).with_name("hanko_sdk.mjs")


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found and SDK.is_file():
        return found
    message = "node or @teamhanko/passkeys-sdk missing (npm install --no-save --prefix .ci/node "
    message += "@teamhanko/passkeys-sdk@0.2.1)"
    if IN_CI:
        pytest.fail(f"{message}; required under CI=true")
    pytest.skip(message)


def sdk(node: str, tenant: RemoteTenant, step: str, argument: Any = None) -> Any:
    args = [node, str(DRIVER), str(SDK), tenant.base_url, tenant.id, tenant.api_key, step]
    if argument is not None:
        args.append(json.dumps(argument))
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True)
    answer = json.loads(done.stdout)
    assert "ok" in answer, answer
    return answer["ok"]


def test_hanko_js_sdk_registers_and_signs_in(node: str, remote_tenant: RemoteTenant) -> None:
    user, browser = str(uuid.uuid4()), SoftAuthenticator()
    options = sdk(node, remote_tenant, "registration.initialize", {"userId": user, "username": "ann"})
    created = browser.create(options, origin=BROWSER_ORIGIN)
    registered = sdk(node, remote_tenant, "registration.finalize", created)["token"]
    options = sdk(node, remote_tenant, "login.initialize")  # a bodiless POST
    assert "allowCredentials" not in options["publicKey"] or not options["publicKey"]["allowCredentials"]
    signed_in = sdk(node, remote_tenant, "login.finalize", browser.get(options, origin=BROWSER_ORIGIN))[
        "token"
    ]
    with PasskeyClient(remote_tenant.base_url, remote_tenant.id, remote_tenant.api_key) as client:
        assert client.verify_token(registered).subject == user
        claims = client.verify_token(signed_in)
    assert claims.subject == user
    (listed,) = sdk(node, remote_tenant, "user.credentials", user)
    assert listed["id"] == claims.credential_id and listed["user_id"] == user
    assert sdk(node, remote_tenant, "credential.remove", listed["id"]) == {}
    assert sdk(node, remote_tenant, "user.credentials", user) == []
    keys = sdk(node, remote_tenant, "jwks")["keys"]
    assert keys and all(key["kty"] == "RSA" and key["alg"] == "RS256" for key in keys)
