"""Seed 003's WebSocket ceremonies end to end over ASGI: options as `{"publicKey": …}`, the credential
back, `{"status": "success", "token"}` out, and that token turned into a cookie by `/auth/set-session`."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning
from starlette.websockets import WebSocketDisconnect

from flows import ORIGIN, unique_name
from passgate.config import Settings
from passgate.services.context import Context
from passgate.web.app import create_app
from softkey import SoftAuthenticator

with warnings.catch_warnings():  # starlette prefers `httpx2`; the `httpx` it finds here works the same
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

WS = "ws://localhost:8000/auth/ws"
HEADERS = {"origin": ORIGIN}


@pytest.fixture
def browser(settings: Settings, ctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(settings, ctx), base_url=ORIGIN, headers=HEADERS) as client:
        yield client


def _register_over_ws(browser: TestClient, authenticator: SoftAuthenticator, name: str) -> dict[str, Any]:
    with browser.websocket_connect(f"{WS}/register_new?user_name={name}", headers=dict(HEADERS)) as ws:
        options = ws.receive_json()
        assert set(options) == {"publicKey"}
        assert options["publicKey"]["user"]["name"] == name
        ws.send_json(authenticator.create(options, origin=ORIGIN))
        outcome: dict[str, Any] = ws.receive_json()
    return outcome


def _authenticate_over_ws(
    browser: TestClient, authenticator: SoftAuthenticator, query: str = ""
) -> dict[str, Any]:
    with browser.websocket_connect(f"{WS}/authenticate{query}", headers=dict(HEADERS)) as ws:
        options = ws.receive_json()
        assert set(options) == {"publicKey"}
        ws.send_json(authenticator.get(options, origin=ORIGIN))
        outcome: dict[str, Any] = ws.receive_json()
    return outcome


def _closed_with_error(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = ws.receive_json()
    assert message["status"] == "error" and message["message"] and message["code"]
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == 1008
    return message


def test_register_new_then_set_session_from_the_body(browser: TestClient) -> None:
    name = unique_name()
    outcome = _register_over_ws(browser, SoftAuthenticator(), name)
    assert outcome["status"] == "success" and outcome["token"]
    assert outcome["message"] == "User registered successfully"  # seed 003's words
    assert browser.get("/auth/me").status_code == 401  # a WebSocket sets no cookie by itself

    answer = browser.post("/auth/set-session", json={"token": outcome["token"]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["user_id"] == outcome["user_id"]
    assert "httponly" in answer.headers["set-cookie"].lower()
    me = browser.get("/auth/me")
    assert me.status_code == 200 and me.json()["user_name"] == name


def test_authenticate_usernameless_and_named_then_bearer_set_session(browser: TestClient) -> None:
    authenticator = SoftAuthenticator()
    name = unique_name()
    registered = _register_over_ws(browser, authenticator, name)
    for query in ("", f"?user_name={name}"):
        outcome = _authenticate_over_ws(browser, authenticator, query)
        assert outcome["status"] == "success", outcome
        assert outcome["message"] == "Authentication successful"
        assert outcome["user_id"] == registered["user_id"]
        browser.cookies.clear()
        answer = browser.post("/auth/set-session", headers={"authorization": f"Bearer {outcome['token']}"})
        assert answer.status_code == 200, answer.text
        assert browser.get("/auth/me").json()["user_name"] == name


def test_set_session_refuses_a_missing_or_forged_token(browser: TestClient) -> None:
    missing = browser.post("/auth/set-session", json={})
    assert missing.status_code == 401 and missing.json()["code"] == "token_required"
    outcome = _register_over_ws(browser, SoftAuthenticator(), unique_name())
    forged = outcome["token"][:-2] + ("A" if outcome["token"][-2] != "A" else "B") + outcome["token"][-1]
    answer = browser.post("/auth/set-session", headers={"authorization": f"Bearer {forged}"})
    assert answer.status_code == 401 and "set-cookie" not in answer.headers


def test_add_credential_with_the_session_cookie(browser: TestClient) -> None:
    first = SoftAuthenticator()
    outcome = _register_over_ws(browser, first, unique_name())
    browser.post("/auth/set-session", json={"token": outcome["token"]})
    second = SoftAuthenticator("EdDSA")
    with browser.websocket_connect(f"{WS}/add_credential", headers=dict(HEADERS)) as ws:
        options = ws.receive_json()
        excluded = {item["id"] for item in options["publicKey"]["excludeCredentials"]}
        assert excluded == {first.last_credential.id_b64}
        ws.send_json(second.create(options, origin=ORIGIN))
        added = ws.receive_json()
    assert added["status"] == "success"
    assert added["credential"]["credential_id"] == second.last_credential.id_b64
    ids = {c["credential_id"] for c in browser.post("/auth/user-info").json()["credentials"]}
    assert ids == {first.last_credential.id_b64, second.last_credential.id_b64}
    # The new passkey signs in.
    assert _authenticate_over_ws(browser, second)["user_id"] == outcome["user_id"]


def test_add_credential_without_a_session_is_an_error(browser: TestClient) -> None:
    with browser.websocket_connect(f"{WS}/add_credential", headers=dict(HEADERS)) as ws:
        error = _closed_with_error(ws)
    assert error["code"] == "not_authenticated"


def test_add_device_credential_with_a_passphrase(browser: TestClient, ctx: Context) -> None:
    from passgate.services import users

    name = unique_name()
    user = users.add(ctx, name)
    link = users.recovery_link(ctx, name)
    phone = SoftAuthenticator()
    with browser.websocket_connect(f"{WS}/add_device_credential", headers=dict(HEADERS)) as ws:
        ws.send_json({"token": link.passphrase})
        options = ws.receive_json()
        assert set(options) == {"publicKey"}
        assert options["publicKey"]["user"]["name"] == name
        ws.send_json(phone.create(options, origin=ORIGIN))
        outcome = ws.receive_json()
    assert outcome["status"] == "success" and outcome["user_id"] == user.id
    browser.post("/auth/set-session", json={"token": outcome["token"]})
    assert browser.get("/auth/me").json()["user_name"] == name

    # The link was single use.
    with browser.websocket_connect(f"{WS}/add_device_credential", headers=dict(HEADERS)) as ws:
        ws.send_json({"token": link.passphrase})
        assert _closed_with_error(ws)["code"] == "link_invalid"


@pytest.mark.parametrize(
    ("first_message", "code"),
    [({"token": "no.such.words"}, "link_invalid"), ({"token": ""}, "token_required"), ({}, "token_required")],
)
def test_add_device_credential_bad_passphrase(
    browser: TestClient, first_message: dict[str, str], code: str
) -> None:
    with browser.websocket_connect(f"{WS}/add_device_credential", headers=dict(HEADERS)) as ws:
        ws.send_json(first_message)
        assert _closed_with_error(ws)["code"] == code


def test_a_bad_credential_is_an_error_and_signs_nobody_in(browser: TestClient) -> None:
    authenticator = SoftAuthenticator()
    _register_over_ws(browser, authenticator, unique_name())
    with browser.websocket_connect(f"{WS}/authenticate", headers=dict(HEADERS)) as ws:
        options = ws.receive_json()
        ws.send_json(authenticator.get(options, origin=ORIGIN, tamper_signature=True))
        error = _closed_with_error(ws)
    assert error["code"] == "sign_in_failed" and "token" not in error


def test_malformed_messages_are_errors(browser: TestClient) -> None:
    with browser.websocket_connect(
        f"{WS}/register_new?user_name={unique_name()}", headers=dict(HEADERS)
    ) as ws:
        ws.receive_json()
        ws.send_text("not json")
        assert _closed_with_error(ws)["code"] == "invalid_json"
    with browser.websocket_connect(f"{WS}/authenticate", headers=dict(HEADERS)) as ws:
        ws.receive_json()
        ws.send_json({"id": "x"})
        assert _closed_with_error(ws)["code"] == "invalid_request"
    with browser.websocket_connect(f"{WS}/register_new?user_name=", headers=dict(HEADERS)) as ws:
        assert _closed_with_error(ws)["status"] == "error"


@pytest.mark.parametrize(
    "flow", ["register_new?user_name=x", "add_credential", "add_device_credential", "authenticate"]
)
def test_cross_site_origin_is_refused_before_accepting(browser: TestClient, flow: str) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        browser.websocket_connect(f"{WS}/{flow}", headers={"origin": "https://evil.example"}),
    ):
        pytest.fail("a cross-site WebSocket was accepted")
    assert refused.value.code == 1008
