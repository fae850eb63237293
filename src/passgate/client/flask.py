"""A Flask decorator for a passkey step-up ("a passkey check with UV newer than N seconds, for this
transaction"); see `passgate.client.stepup` for the exchange with the front end.
Needs Flask: `pip install 'passgate[flask]'`.

    passkeys = PasskeyClient(base_url, tenant_id, api_key, audience="shop.example")
    stepup = PasskeyStepUp(passkeys, user_id=lambda: session.get("user_id"))
    app.add_url_rule("/passkey/transaction/finalize", view_func=stepup.finalize, methods=["POST"])

    @app.post("/transfer")
    @stepup.required(max_age=120)
    def transfer(): ...          # flask.g.passkey_claims holds the verified TokenClaims
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import g, jsonify, request
from flask.typing import ResponseReturnValue

from passgate.client import stepup
from passgate.client.api import PasskeyClient
from passgate.client.errors import ApiError, PasskeyError, TokenInvalid
from passgate.client.models import JSONObject

P = ParamSpec("P")
R = TypeVar("R")


def describe_request() -> Any:
    """The default transaction data: method, path, query and a hash of the body."""
    query = request.query_string.decode("latin-1")
    return stepup.request_data(request.method, request.path, query, request.get_data(cache=True))


class PasskeyStepUp:
    """Protects Flask views with a fresh passkey check of the signed-in user (`user_id()`)."""

    def __init__(
        self,
        client: PasskeyClient,
        *,
        user_id: Callable[[], str | None],
        describe: Callable[[], Any] = describe_request,
        header: str = stepup.TOKEN_HEADER,
    ) -> None:
        self.client = client
        self.user_id = user_id
        self.describe = describe
        self.header = header

    def required(
        self, max_age: float = stepup.DEFAULT_MAX_AGE
    ) -> Callable[[Callable[P, ResponseReturnValue]], Callable[P, ResponseReturnValue]]:
        """Lets the view run with a valid token (its claims in `flask.g.passkey_claims`), else answers
        `401` with the options to check."""

        def decorate(view: Callable[P, ResponseReturnValue]) -> Callable[P, ResponseReturnValue]:
            @functools.wraps(view)
            def protected(*args: P.args, **kwargs: P.kwargs) -> ResponseReturnValue:
                user_id = self.user_id()
                if not user_id:
                    return jsonify(stepup.not_signed_in()), 401
                data = self.describe()
                token = request.headers.get(self.header)
                reason = "no token"
                if token:
                    try:
                        claims = self.client.verify_token(token, max_age=max_age, require_uv=True)
                        g.passkey_claims = stepup.check(claims, user_id=user_id, data=data)
                        return view(*args, **kwargs)
                    except TokenInvalid as exc:
                        reason = exc.details
                return self._challenge(user_id, data, reason)

            return protected

        return decorate

    def _challenge(self, user_id: str, data: Any, reason: str) -> ResponseReturnValue:
        transaction_id = stepup.new_transaction_id(data)
        try:
            options = self.client.transaction_initialize(user_id, transaction_id, data)
        except PasskeyError as exc:
            status, body = stepup.refused(exc)
            return jsonify(body), status
        body = stepup.required(transaction_id, options, reason)
        return jsonify(body), 401, {"WWW-Authenticate": 'Passkey realm="transaction"'}

    def finalize(self) -> ResponseReturnValue:
        """A view for the front end: the assertion in, `{"token": …}` out (API errors under `detail`)."""
        credential = request.get_json(silent=True)
        if not isinstance(credential, dict):
            problem: JSONObject = {"title": "unable to process request", "details": "", "status": 400}
            return jsonify({"detail": problem}), 400
        try:
            return jsonify({"token": self.client.transaction_finalize(credential)})
        except ApiError as exc:
            return jsonify({"detail": exc.problem()}), exc.status if exc.status < 500 else 502
        except PasskeyError as exc:
            return jsonify({"detail": exc.problem()}), 502
