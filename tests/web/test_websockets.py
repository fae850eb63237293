"""Seed 003's WebSocket ceremonies end to end over ASGI: options as `{"publicKey": …}`, the credential
back, `{"status": "success", "token"}` out, and that token turned into a cookie by `/auth/set-session`.
Bad input (binary frames, unreadable JSON, wrong types) and rate limits end in one error message and a
documented close code. (Frames over the limit are refused by the server's WebSocket layer:
tests/web/test_serve_limits.py.)"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning
from starlette.websockets import WebSocketDisconnect

from appkit import make_settings
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


def _closed_with_error(ws: Any, close_code: int = 1008) -> dict[str, Any]:
    message: dict[str, Any] = ws.receive_json()
    assert message["status"] == "error" and message["message"] and message["code"]
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    assert closed.value.code == close_code
    return message


def test_register_new_then_set_session_from_the_body(browser: TestClient) -> None:
    name = unique_name()
    outcome = _register_over_ws(browser, SoftAuthenticator(), name)
    assert outcome["status"] == "success" and outcome["token"]
    assert outcome["message"] == "User registered successfully"  # the words WebSocket clients expect
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


def _after_options(browser: TestClient, flow: str, send: Any, close_code: int = 1008) -> dict[str, Any]:
    """Open a ceremony, read its options, send one message with `send(ws)`, expect an error and close."""
    with browser.websocket_connect(f"{WS}/{flow}", headers=dict(HEADERS)) as ws:
        assert "publicKey" in ws.receive_json()
        send(ws)
        return _closed_with_error(ws, close_code)


@pytest.mark.parametrize("flow", [f"register_new?user_name={unique_name()}", "authenticate"])
def test_unreadable_messages_get_an_error_and_a_documented_close_code(browser: TestClient, flow: str) -> None:
    binary = _after_options(browser, flow, lambda ws: ws.send_bytes(b'{"id": "x"}'), close_code=1003)
    assert binary["code"] == "binary_not_supported"
    deep = "[" * 5000 + "]" * 5000  # past the JSON decoder's recursion limit, under the size limit
    assert _after_options(browser, flow, lambda ws: ws.send_text(deep))["code"] == "invalid_json"
    for value in ([], "x", 7, None, True):
        assert _after_options(browser, flow, lambda ws, v=value: ws.send_json(v))["code"] == "invalid_json"
    wrong_types = {"id": {"a": [1]}, "rawId": 7, "type": ["public-key"], "response": "x"}
    assert _after_options(browser, flow, lambda ws: ws.send_json(wrong_types))["code"] == "invalid_request"
    nested = {"id": "AAAA", "rawId": "AAAA", "type": "public-key", "response": {"x": [[[[{}]]]] * 100}}
    assert _after_options(browser, flow, lambda ws: ws.send_json(nested))["code"] == "invalid_request"


def test_a_message_over_the_limit_is_refused_with_1009_without_a_server_limit(browser: TestClient) -> None:
    """Under a server without `ws_max_size` (here: the test client), the app still refuses it."""
    big = {"token": "a" * (64 * 1024)}
    with browser.websocket_connect(f"{WS}/add_device_credential", headers=dict(HEADERS)) as ws:
        ws.send_json(big)
        assert _closed_with_error(ws, 1009)["code"] == "payload_too_large"


@pytest.mark.parametrize("first", [b"\x00\xff", '{"token": 5}', '{"token": ["a.b.c"]}', "[[[", '"a.b.c"'])
def test_add_device_credential_refuses_a_bad_first_message(browser: TestClient, first: bytes | str) -> None:
    with browser.websocket_connect(f"{WS}/add_device_credential", headers=dict(HEADERS)) as ws:
        if isinstance(first, bytes):
            ws.send_bytes(first)
        else:
            ws.send_text(first)
        error = _closed_with_error(ws, 1003 if isinstance(first, bytes) else 1008)
    assert error["code"] in {"binary_not_supported", "token_required", "invalid_json"}


# Rate limits: each WebSocket ceremony counts once, in the group of its HTTP twin, per address (IPv6: /64).


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[Context, Any]]:
    ctx = Context.build(make_settings(tmp_path, rate_limit="3/minute"))
    ctx.db.migrate()
    yield ctx, create_app(ctx.settings, ctx)
    ctx.db.dispose()


def _client(app: Any, address: str) -> TestClient:
    return TestClient(app, base_url=ORIGIN, headers=HEADERS, client=(address, 50000))


def _guess(browser: TestClient, passphrase: str) -> tuple[str, int]:
    """One passphrase guess over the WebSocket: the error code and the close code."""
    with browser.websocket_connect(f"{WS}/add_device_credential", headers=dict(HEADERS)) as ws:
        ws.send_json({"token": passphrase})
        message = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    return message["code"], closed.value.code


def test_passphrase_guessing_over_the_websocket_is_throttled_like_rest(limited: tuple[Context, Any]) -> None:
    _ctx, app = limited
    with _client(app, "203.0.113.7") as attacker, _client(app, "203.0.113.8") as neighbour:
        guesses = [_guess(attacker, f"guess.number.{index}") for index in range(5)]
        assert guesses[:3] == [("link_invalid", 1008)] * 3
        assert guesses[3:] == [("rate_limited", 1013)] * 2
        # The same budget as the HTTP twins: the device group is spent for this address.
        assert attacker.post("/auth/validate-device-token", json={"token": "a.b.c"}).status_code == 429
        assert attacker.post("/auth/device/begin", json={"token": "a.b.c"}).status_code == 429
        # ...and the other way round, for another address.
        for _ in range(3):
            assert neighbour.post("/auth/validate-device-token", json={"token": "a.b.c"}).status_code == 400
        assert _guess(neighbour, "a.b.c") == ("rate_limited", 1013)
        # Sign-in and sign-up count in their own group.
        assert attacker.post("/auth/login/begin", json={}).status_code == 200


def test_name_probing_over_register_new_and_authenticate_is_throttled(limited: tuple[Context, Any]) -> None:
    _ctx, app = limited
    with _client(app, "2001:db8:1:2::10") as prober, _client(app, "2001:db8:1:2:ffff::99") as same_64:
        with prober.websocket_connect(f"{WS}/register_new?user_name=alice", headers=dict(HEADERS)) as ws:
            assert "publicKey" in ws.receive_json()
        with prober.websocket_connect(f"{WS}/authenticate?user_name=bob", headers=dict(HEADERS)) as ws:
            assert "publicKey" in ws.receive_json()
        assert prober.post("/auth/login/begin", json={"user_name": "carol"}).status_code == 200
        for flow in ("register_new?user_name=dave", "authenticate?user_name=erin"):
            with prober.websocket_connect(f"{WS}/{flow}", headers=dict(HEADERS)) as ws:
                error = _closed_with_error(ws, 1013)
            assert error == {
                "status": "error",
                "message": "Too many attempts. Wait a minute and try again.",
                "code": "rate_limited",
            }
        # Another address in the same /64 is the same caller; another /64 is not.
        assert same_64.post("/auth/register/begin", json={"user_name": "frank"}).status_code == 429
        other_64 = _client(app, "2001:db8:1:3::10")
        with other_64, other_64.websocket_connect(f"{WS}/authenticate", headers=dict(HEADERS)) as ws:
            assert "publicKey" in ws.receive_json()


async def test_a_send_after_the_layer_closed_the_connection_is_a_disconnect() -> None:
    """uvicorn's WebSocket layer closes a connection itself (1009 for an oversized message) and then
    refuses the app's next message with a RuntimeError. A ceremony that awaited the database meanwhile
    ends as a disconnect, not as "WebSocket ceremony failed" with a traceback: the client has its close
    code already. (The fuzz test met this race; here it is made on purpose.)"""
    from passgate.web.routes import ws

    class ClosedByTheLayer:
        async def send_json(self, _message: Any) -> None:
            raise RuntimeError("Unexpected ASGI message 'websocket.send', after sending 'websocket.close'.")

    with pytest.raises(WebSocketDisconnect):
        await ws._send(ClosedByTheLayer(), {"publicKey": {}})  # type: ignore[arg-type]
