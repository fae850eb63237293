"""A bounded, schema-driven fuzz run: schemathesis generates valid and invalid requests for every
operation in `/openapi.json` and sends them through ASGI, signed in and signed out. No 5xx allowed.
(WebSocket routes are not in the OpenAPI document.)

The operations are driven with `operation.as_strategy()` and Hypothesis directly: schemathesis's
lazy pytest loader relies on a pytest private attribute that pytest 9 removed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.schemas import BaseSchema

from appkit import app_client, make_settings
from flows import Passkeys
from passgate.services.context import Context
from passgate.web.app import create_app

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
