"""`@teamhanko/passkeys-sdk` (npm), pointed at `passgate serve` with only its base URL changed, registers
and signs in a user, registers and checks a second factor (MFA), lists and removes the credentials and
reads the JWKS; the tokens it gets verify through `passgate.client`. The test plays the browser with the
software authenticator."""

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


def run(node: str, tenant: RemoteTenant, step: str, argument: Any = None) -> dict[str, Any]:
    """One SDK call in Node: `{"ok": result}` or `{"error": message}`."""
    args = [node, str(DRIVER), str(SDK), tenant.base_url, tenant.id, tenant.api_key, step]
    if argument is not None:
        args.append(json.dumps(argument))
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=True)
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def sdk(node: str, tenant: RemoteTenant, step: str, argument: Any = None) -> Any:
    answer = run(node, tenant, step, argument)
    assert "ok" in answer, answer
    return answer["ok"]


def sdk_error(node: str, tenant: RemoteTenant, step: str, argument: Any) -> str:
    answer = run(node, tenant, step, argument)
    assert "error" in answer, answer
    return str(answer["error"])


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


def test_hanko_js_sdk_runs_mfa(node: str, remote_tenant: RemoteTenant) -> None:
    user, laptop, security_key = str(uuid.uuid4()), SoftAuthenticator(), SoftAuthenticator()
    options = sdk(node, remote_tenant, "registration.initialize", {"userId": user, "username": "ann"})
    sdk(node, remote_tenant, "registration.finalize", laptop.create(options, origin=BROWSER_ORIGIN))
    options = sdk(node, remote_tenant, "mfa.registration.initialize", {"userId": user, "username": "ann"})
    selection = options["publicKey"]["authenticatorSelection"]
    assert selection["authenticatorAttachment"] == "cross-platform"
    assert selection["residentKey"] == "discouraged" and selection["userVerification"] == "preferred"
    created = security_key.create(options, origin=BROWSER_ORIGIN)
    registered = sdk(
        node, remote_tenant, "mfa.registration.finalize", {"userId": user, "credential": created}
    )
    options = sdk(node, remote_tenant, "mfa.login.initialize", {"userId": user})
    assert len(options["publicKey"]["allowCredentials"]) == 2  # the passkey and the security key
    signed = security_key.get(options, origin=BROWSER_ORIGIN, user_handle=None, uv=False)
    checked = sdk(node, remote_tenant, "mfa.login.finalize", {"userId": user, "credential": signed})
    with PasskeyClient(remote_tenant.base_url, remote_tenant.id, remote_tenant.api_key) as client:
        mfa_cred = client.verify_token(registered["token"]).credential_id
        claims = client.verify_token(checked["token"])
    assert (claims.subject, claims.credential_id, claims.user_verified) == (user, mfa_cred, False)
    listed = {item["id"]: item["is_mfa"] for item in sdk(node, remote_tenant, "user.credentials", user)}
    assert listed[mfa_cred] is True and list(listed.values()).count(False) == 1
    # the SDK surfaces the API's refusal as its PasskeyError, with the contract's body
    options = sdk(node, remote_tenant, "login.initialize")
    refused = sdk_error(
        node, remote_tenant, "login.finalize", security_key.get(options, origin=BROWSER_ORIGIN)
    )
    assert "MFA credentials are not usable for normal login" in refused and '"status":400' in refused
