"""A bounded, schema-driven fuzz run: schemathesis generates valid and invalid requests for every
operation in `/openapi.json` and sends them through ASGI, signed in and signed out. No 5xx allowed.
WebSocket routes are not in the OpenAPI document: a Hypothesis run of their own drives them below.

The operations are driven with `operation.as_strategy()` and Hypothesis directly: schemathesis's
lazy pytest loader relies on a pytest private attribute that pytest 9 removed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.schemas import BaseSchema
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from appkit import app_client, make_settings
from flows import Passkeys
from passgate.services.context import Context
from passgate.web.app import create_app
from servers import RunningServer, start_passgate

EXAMPLES = 8  # per operation, mode and caller: ~800 requests in all


@pytest.fixture(scope="module")
def fuzz_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    ctx = Context.build(make_settings(tmp_path_factory.mktemp("fuzz")))
    ctx.db.migrate()
    yield ctx
    ctx.db.dispose()


@pytest.fixture(scope="module")
def api_schema(fuzz_context: Context) -> BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(fuzz_context.settings, fuzz_context))


def _operations(schema: BaseSchema) -> list[Any]:
    """Every operation of the document; a part schemathesis cannot read is a failure of its own."""
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            pytest.fail(f"/openapi.json has an invalid part: {result.err()}")
        operations.append(result.ok())
    return operations


def _sign_up(ctx: Context) -> dict[str, str]:
    async def sign_up() -> dict[str, str]:
        async with app_client(ctx) as http:
            answer = await Passkeys(http).register()
            assert answer.status_code == 200, answer.text
            return {"passgate": http.cookies["passgate"]}

    return asyncio.run(sign_up())


def test_the_schema_lists_the_auth_api(api_schema: BaseSchema) -> None:
    labels = {operation.label for operation in _operations(api_schema)}
    assert {
        "POST /auth/register/begin",
        "POST /auth/login/finish",
        "GET /auth/me",
        "GET /auth/{passphrase}",
    } <= labels


def _fuzz(operation: Any, mode: GenerationMode, cookies: dict[str, str] | None) -> None:
    """Up to EXAMPLES generated requests for one operation; raises on the first 5xx."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(checks=[not_a_server_error], cookies=cookies)

    run()


@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda mode: mode.value
)
@pytest.mark.parametrize("signed_in", [False, True], ids=["signed-out", "signed-in"])
def test_no_server_errors(
    api_schema: BaseSchema, fuzz_context: Context, mode: GenerationMode, signed_in: bool
) -> None:
    failures: list[str] = []
    for operation in _operations(api_schema):
        # A fresh session per operation: an earlier logout must not leave the rest signed out.
        cookies = _sign_up(fuzz_context) if signed_in else None
        try:
            _fuzz(operation, mode, cookies)
        except Unsatisfiable:  # negative mode: an operation without parameters has nothing to break
            continue
        except Exception as exc:  # collect every operation's failure, then report them together
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


# WebSocket ceremonies: Hypothesis over message shapes, frame kinds and orders, against a real
# `passgate serve` (its WebSocket layer included). Every run ends in an error or success message and a
# documented close code (docs/api.md); never 1011, never a connection dropped without a close frame,
# never a trace in the server's log.

WS_FLOWS = ["register_new", "authenticate", "add_credential", "add_device_credential"]
WS_CLOSE_CODES = {1000, 1003, 1008, 1009, 1013}
WS_EXAMPLES = 150

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
credential_like = st.fixed_dictionaries(
    {"id": json_values, "rawId": json_values, "type": st.sampled_from(["public-key", "x"]) | json_values},
    optional={
        "response": st.fixed_dictionaries(
            {},
            optional={
                "clientDataJSON": json_values | st.just("AAAA"),
                "attestationObject": json_values | st.just("AAAA"),
                "authenticatorData": json_values,
                "signature": json_values,
                "userHandle": json_values,
                "transports": json_values,
            },
        )
        | json_values,
        "authenticatorAttachment": json_values,
        "clientExtensionResults": json_values,
    },
)
ws_messages = st.one_of(
    json_values.map(json.dumps),
    credential_like.map(json.dumps),
    st.fixed_dictionaries({"token": json_values | st.from_regex(r"\A\w+(\.\w+){2}\Z")}).map(json.dumps),
    st.text(max_size=200),
    st.integers(min_value=900, max_value=30_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(min_value=900, max_value=20_000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    st.binary(max_size=200),
    st.lists(st.text(max_size=50), min_size=2, max_size=4),  # one text message in several frames
    st.just("a" * (64 * 1024 + 1)),
)


@pytest.fixture(scope="module")
def ws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with start_passgate(tmp_path_factory.mktemp("ws-fuzz")) as server:
        yield server
    log = server.output()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-4000:]


def _ws_run(server: RunningServer, flow: str, query: dict[str, str], messages: list[Any]) -> None:
    url = f"ws://127.0.0.1:{server.port}/auth/ws/{flow}?{urlencode(query)}"
    received: list[dict[str, Any]] = []
    with ws_connect(url, origin=server.origin, max_size=None, open_timeout=5) as ws:  # type: ignore[arg-type]
        cut_short = False  # the server refused before reading them all (e.g. 1009 mid-message)
        try:
            for message in messages:
                ws.send(message)
        except ConnectionClosed:
            cut_short = True  # the client library then drops what it had received: nothing to check
        try:
            while True:
                received.append(json.loads(ws.recv(timeout=10)))
        except ConnectionClosed as closed:
            close = closed.rcvd
    if cut_short and (close is None or not received):
        return  # the reset overtook the server's last frames on their way to the client
    assert close is not None, "closed without a close frame"
    assert close.code in WS_CLOSE_CODES, (close, received)
    outcomes = [message for message in received if "status" in message]
    assert all(message["status"] == "error" for message in outcomes), received
    for message in outcomes:
        assert message["code"] != "internal_error" and isinstance(message["message"], str), message
    if close.code == 1009 or len(messages) > 1:
        # 1009: refused by the WebSocket layer, no message. After more messages than the ceremony read,
        # the server's close meets unread data, and the TCP reset may discard its last message on the
        # client's side before it is read: only the close code is certain then.
        return
    assert outcomes, (flow, query, [repr(message)[:200] for message in messages], close)


def test_websocket_fuzz_no_server_errors(ws_server: RunningServer) -> None:
    @given(
        flow=st.sampled_from(WS_FLOWS),
        query=st.dictionaries(
            st.sampled_from(["user_name", "display_name"]), st.text(max_size=80), max_size=2
        ),
        messages=st.lists(ws_messages, min_size=1, max_size=4),
    )
    @settings(max_examples=WS_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(flow: str, query: dict[str, str], messages: list[Any]) -> None:
        _ws_run(ws_server, flow, query, messages)

    run()
