"""`/passkeys/{tenant_id}/…`: the passkey API for other backends, on the wire as Hanko's Passkey API.

Same paths, bodies, status codes and error shape (`{"title","details","status"}`, mapped here from the
one error tree), the `apiKey` header read case-insensitively and trimmed, bodiless POSTs taken as `{}`,
unknown JSON members ignored. Bodies are read here rather than by FastAPI so that every answer,
including a malformed body, keeps Hanko's shape (clients such as `@teamhanko/passkeys-sdk` show it).

The ceremonies (registration, login, MFA and transaction `initialize`/`finalize`) are lanes
(web/lanes.py): answered before FastAPI's routing, in Hanko's dialect (`Hanko`), and documented by the
same declaration. The other routes (credentials, audit log, JWKS) are FastAPI's, each error answered
alike (`HankoRoute`).
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import secrets
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

from passgate.errors import (
    AuditLogsInvalid,
    PassgateError,
    PayloadTooLarge,
    RequestInvalid,
    RequestUnreadable,
)
from passgate.services import passkey_api, passkey_audit, passkey_credentials, passkey_tenants
from passgate.services.passkey_audit import Caller
from passgate.services.stepup import Action, acts
from passgate.web import lanes
from passgate.web.deps import Ctx, client_of
from passgate.web.guard import BodyTooLarge

log = logging.getLogger("passgate.passkey_api")
TAG = "passkey API (Hanko-compatible)"
MAX_USER_ID_BYTES = 64  # the WebAuthn user handle holds at most 64 bytes (W3C WebAuthn L3 §5.4.3)
MAX_PER_PAGE = 100
MAX_QUERY_TEXT = 200  # characters of an audit-log search value
MAX_TYPES = 50
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
ApiKey = Annotated[str | None, Header(alias="apiKey", description="The tenant's API key.")]


def hanko_json(content: Any) -> bytes:
    """Echo's JSON encoding: compact, UTF-8, a trailing newline."""
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


class HankoJSON(Response):
    """Echo's JSON answer: `application/json; charset=UTF-8`, `hanko_json`."""

    media_type = "application/json; charset=UTF-8"

    def render(self, content: Any) -> bytes:
        return hanko_json(content)


def problem(exc: PassgateError) -> HankoJSON:
    body = exc.to_problem()
    return HankoJSON(body, status_code=int(body["status"]))


def refusal(exc: Exception) -> HankoJSON:
    """The answer to any error of these routes and lanes, expected or not: Hanko's shape, never a
    stack trace."""
    if isinstance(exc, PassgateError):
        if exc.detail:
            log.info("%s: %s", exc.code, exc.detail.encode("unicode_escape").decode("ascii")[:300])
        if exc.status >= 500:
            log.error("passkey API: %s (%s)", exc.message, exc.detail)
        return problem(exc)
    if isinstance(exc, BodyTooLarge):
        return problem(PayloadTooLarge())
    log.error("passkey API: unexpected error", exc_info=exc)
    return problem(PassgateError())


def request_id(request: Request) -> str:
    """The id every answer carries as `X-Request-Id` and the audit log records: the caller's, when it
    sent a sane one, as Hanko's server; made up otherwise (once per request)."""
    known: str | None = getattr(request.state, "request_id", None)
    if known is None:
        sent = request.headers.get("x-request-id", "")
        known = request.state.request_id = sent if REQUEST_ID.fullmatch(sent) else secrets.token_hex(16)
    return known


class HankoRoute(APIRoute):
    """A FastAPI route of this API: every error answered by `refusal`, every answer with `X-Request-Id`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception as exc:
                response = refusal(exc)
            response.headers["X-Request-Id"] = request_id(request)
            return response

        return handle


class Hanko(lanes.Dialect):
    """The lanes' dialect: what `HankoJSON`, `refusal` and `HankoRoute` answer, written as bytes."""

    def answer(self, call: lanes.Call, answer: lanes.Answer) -> tuple[lanes.Headers, bytes]:
        payload = hanko_json(answer.payload)
        headers = [
            (b"content-length", str(len(payload)).encode()),
            (b"content-type", HankoJSON.media_type.encode()),
            (b"x-request-id", request_id(call.request).encode()),
        ]
        return headers, payload

    def error(self, call: lanes.Call, exc: Exception) -> HankoJSON:
        response = refusal(exc)
        response.headers["X-Request-Id"] = request_id(call.request)
        return response


router = APIRouter(prefix="/passkeys/{tenant_id}", tags=[TAG], route_class=HankoRoute)
lane = lanes.Lanes(router, Hanko())


# --------------------------------------------------------------------------- bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


def _user_id(value: str) -> str:
    if len(value.encode()) > MAX_USER_ID_BYTES:
        raise ValueError(f"user_id cannot be longer than {MAX_USER_ID_BYTES} bytes")
    return value


class RegistrationInit(_Body):
    user_id: str = Field(min_length=1, description="The backend's own id of the user (≤ 64 bytes).")
    username: str = Field(min_length=1, max_length=128)
    display_name: str | None = Field(default=None, max_length=128)
    icon: str | None = Field(default=None, description="Accepted and ignored (WebAuthn L2 dropped it).")

    _uid = field_validator("user_id")(_user_id)


class LoginInit(_Body):
    user_id: str | None = Field(default=None, description="Omit for a discoverable login.")

    _uid = field_validator("user_id")(lambda value: _user_id(value) if value else None)


class MfaLoginInit(_Body):
    user_id: str = Field(min_length=1, description="The backend's id of the user.")

    _uid = field_validator("user_id")(_user_id)


class TransactionInit(_Body):
    user_id: str = Field(min_length=1)
    transaction_id: str = Field(min_length=1, max_length=128)
    transaction_data: JsonValue = Field(description='Any JSON value but null, false, 0 and "".')

    _uid = field_validator("user_id")(_user_id)

    @field_validator("transaction_data")
    @classmethod
    def _present(cls, value: JsonValue) -> JsonValue:
        if value is None or value is False or value == 0 or value == "":
            raise ValueError("transaction_data is a required field")
        return value


class CredentialPatch(_Body):
    name: str = Field(min_length=1, max_length=200)


class TokenAnswer(BaseModel):
    token: str = Field(description="RS256 JWT: sub, aud, cred, iat, exp, trans?, iss, auth_time, amr, uv.")


class Problem(BaseModel):
    title: str
    details: str = ""
    status: int


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    return {"requestBody": {"content": {"application/json": {"schema": model.model_json_schema()}}}}


CREDENTIAL_BODY = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {"type": "object", "description": "`PublicKeyCredential.toJSON()`, as returned."}
            }
        }
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem} for status in (400, 401, 404, 409, 422, 429)
}


async def _json(request: Request, *, initialize: bool) -> Any:
    raw = await request.body()
    if not raw.strip():
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if initialize and content_type != "application/json":
        raise RequestUnreadable(detail="code=415, message=Unsupported Media Type")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestUnreadable(detail=str(exc)[:200]) from None


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], data: Any) -> M:
    if not isinstance(data, dict):
        raise RequestUnreadable(detail="the body is not a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestInvalid(" and ".join(_message(error) for error in exc.errors())) from None


def _message(error: Any) -> str:
    field = ".".join(str(part) for part in error.get("loc", ())) or "body"
    kind = error.get("type", "")
    if kind == "missing" or kind == "string_too_short":
        return f"{field} is a required field"
    if kind == "string_too_long":
        return f"{field} cannot have more than {error.get('ctx', {}).get('max_length')} entries"
    if kind == "value_error":
        return str(error.get("ctx", {}).get("error", f"{field} is invalid"))
    return f"{field} must be a string" if kind == "string_type" else f"{field} is invalid"


async def _credential(request: Request) -> dict[str, Any]:
    data = await _json(request, initialize=False)
    if not isinstance(data, dict):
        raise RequestUnreadable(detail="the body is not a JSON object")
    return data


def _caller(request: Request) -> Caller:
    """Who called, for the audit log: the address and user agent as every face reads them."""
    client = client_of(request)
    return Caller(ip=client.ip, user_agent=client.user_agent[:400], request_id=request_id(request))


async def _rate(request: Request, tenant_id: str, who: str) -> None:
    """Per tenant and user (or address, for a discoverable login) limits on starting ceremonies."""
    await request.app.state.rate_limit.check("passkey_api", f"{tenant_id}:{who}")


def _tenant(tenant_id: str) -> str:
    return passkey_tenants.tenant_id_of(tenant_id)


def _tenant_of(call: lanes.Call) -> str:
    """The tenant in a lane's path (`{tenant_id}`), checked as every route's."""
    return _tenant(call.request.path_params["tenant_id"])


def _api_key(call: lanes.Call) -> str | None:
    """The `apiKey` header as FastAPI reads `ApiKey` for the other routes (any case, the first one)."""
    return call.request.headers.get("apikey")


def _documented(answer: str | type[BaseModel], body: dict[str, Any], *, key: bool) -> lanes.Documented:
    """A ceremony lane's description: the `apiKey` header (`key`), its 200 (a description of the
    options or a model) and Hanko's errors, and its body (`_schema` or `CREDENTIAL_BODY`)."""
    ok = {"model": answer} if isinstance(answer, type) else {"description": answer}
    return lanes.Documented(
        parameters=(API_KEY,) if key else (), responses={200: ok, **ERRORS}, openapi_extra=body
    )


API_KEY = inspect.Parameter("api_key", inspect.Parameter.KEYWORD_ONLY, annotation=ApiKey, default=None)
CREATION = '`{"publicKey": PublicKeyCredentialCreationOptions}`'
REQUEST = '`{"publicKey": PublicKeyCredentialRequestOptions}`'


# --------------------------------------------------------------------------- registration and login


@lane.post(
    "/registration/initialize",
    summary="Begin registering a passkey",
    documented=_documented(CREATION, _schema(RegistrationInit), key=True),
)
@acts(Action.PASSKEY_API_REGISTER)
async def registration_initialize(call: lanes.Call, _body: None) -> lanes.Answer:
    """Creation options for a passkey of the backend's user `user_id` (discoverable; UV per tenant)."""
    return await _registration_initialize(call, mfa=False)


@lane.post(
    "/registration/finalize",
    summary="Finish registering a passkey",
    documented=_documented(TokenAnswer, CREDENTIAL_BODY, key=False),
)
@acts(Action.PASSKEY_API_FINISH)
async def registration_finalize(call: lanes.Call, _body: None) -> lanes.Answer:
    """Body: the browser's `credential.toJSON()`. Stores the passkey; answers `{"token": JWT}`."""
    return await _registration_finalize(call, None, mfa=False)


@lane.post(
    "/login/initialize",
    summary="Begin a login",
    documented=_documented(REQUEST, _schema(LoginInit), key=True),
)
@acts(Action.PASSKEY_API_SIGN_IN)
async def login_initialize(call: lanes.Call, _body: None) -> lanes.Answer:
    """Discoverable with no body (or `{}`); with `user_id` the API key is required and the user's
    passkeys (not its MFA credentials) are listed in `allowCredentials`."""
    tid = _tenant_of(call)
    request = call.request
    body = _validated(LoginInit, await _json(request, initialize=True))
    await _rate(request, tid, body.user_id or f"ip:{request.client.host if request.client else '-'}")
    options = await passkey_api.login_initialize(
        call.ctx, tid, _api_key(call), user_id=body.user_id, caller=_caller(request)
    )
    return lanes.Answer(options)


@lane.post(
    "/login/finalize",
    summary="Finish a login",
    documented=_documented(TokenAnswer, CREDENTIAL_BODY, key=False),
)
@acts(Action.PASSKEY_API_FINISH)
async def login_finalize(call: lanes.Call, _body: None) -> lanes.Answer:
    """Body: `credential.toJSON()` of the assertion. Answers `{"token": JWT}` whose `sub` is the user id;
    400 for an MFA credential."""
    return await _login_finalize(call, None, mfa=False)


async def _registration_initialize(call: lanes.Call, *, mfa: bool) -> lanes.Answer:
    tid = _tenant_of(call)
    body = _validated(RegistrationInit, await _json(call.request, initialize=True))
    await _rate(call.request, tid, body.user_id)
    options = await passkey_api.registration_initialize(
        call.ctx,
        tid,
        _api_key(call),
        user_id=body.user_id,
        username=body.username,
        display_name=body.display_name,
        caller=_caller(call.request),
        mfa=mfa,
    )
    return lanes.Answer(options)


async def _registration_finalize(call: lanes.Call, api_key: str | None, *, mfa: bool) -> lanes.Answer:
    tid = _tenant_of(call)
    credential = await _credential(call.request)
    issued = await passkey_api.registration_finalize(
        call.ctx, tid, credential, api_key=api_key, caller=_caller(call.request), mfa=mfa
    )
    return lanes.Answer({"token": issued.token})


async def _login_finalize(call: lanes.Call, api_key: str | None, *, mfa: bool) -> lanes.Answer:
    tid = _tenant_of(call)
    credential = await _credential(call.request)
    issued = await passkey_api.login_finalize(
        call.ctx, tid, credential, api_key=api_key, caller=_caller(call.request), mfa=mfa
    )
    return lanes.Answer({"token": issued.token})


# --------------------------------------------------------------------------- MFA (a second factor)


@lane.post(
    "/mfa/registration/initialize",
    summary="Begin registering an MFA credential",
    documented=_documented(CREATION, _schema(RegistrationInit), key=True),
)
@acts(Action.PASSKEY_API_MFA)
async def mfa_registration_initialize(call: lanes.Call, _body: None) -> lanes.Answer:
    """Creation options for a second factor of `user_id`, as Hanko's MFA defaults: a roaming
    authenticator (`cross-platform`), a discoverable credential discouraged, UV preferred."""
    return await _registration_initialize(call, mfa=True)


@lane.post(
    "/mfa/registration/finalize",
    summary="Finish registering an MFA credential",
    documented=_documented(TokenAnswer, CREDENTIAL_BODY, key=True),
)
@acts(Action.PASSKEY_API_MFA)
async def mfa_registration_finalize(call: lanes.Call, _body: None) -> lanes.Answer:
    """Stores the credential with `is_mfa`: usable for an MFA login only. Answers `{"token": JWT}`."""
    return await _registration_finalize(call, _api_key(call), mfa=True)


@lane.post(
    "/mfa/login/initialize",
    summary="Begin an MFA login",
    documented=_documented(REQUEST, _schema(MfaLoginInit), key=True),
)
@acts(Action.PASSKEY_API_MFA)
async def mfa_login_initialize(call: lanes.Call, _body: None) -> lanes.Answer:
    """Options listing every credential of `user_id` (MFA ones and passkeys) in `allowCredentials`."""
    tid = _tenant_of(call)
    body = _validated(MfaLoginInit, await _json(call.request, initialize=True))
    await _rate(call.request, tid, body.user_id)
    options = await passkey_api.login_initialize(
        call.ctx, tid, _api_key(call), user_id=body.user_id, caller=_caller(call.request), mfa=True
    )
    return lanes.Answer(options)


@lane.post(
    "/mfa/login/finalize",
    summary="Finish an MFA login",
    documented=_documented(TokenAnswer, CREDENTIAL_BODY, key=True),
)
@acts(Action.PASSKEY_API_MFA)
async def mfa_login_finalize(call: lanes.Call, _body: None) -> lanes.Answer:
    """The user is the one `mfa/login/initialize` named (no userHandle needed). Answers `{"token": JWT}`."""
    return await _login_finalize(call, _api_key(call), mfa=True)


# --------------------------------------------------------------------------- transactions


@lane.post(
    "/transaction/initialize",
    summary="Begin confirming a transaction",
    documented=_documented(REQUEST, _schema(TransactionInit), key=True),
)
@acts(Action.PASSKEY_API_TRANSACTION)
async def transaction_initialize(call: lanes.Call, _body: None) -> lanes.Answer:
    """Options whose challenge is bound to the transaction's id and data; user verification required.
    `409` when the transaction id was used before in this tenant."""
    tid = _tenant_of(call)
    body = _validated(TransactionInit, await _json(call.request, initialize=True))
    await _rate(call.request, tid, body.user_id)
    options = await passkey_api.transaction_initialize(
        call.ctx,
        tid,
        _api_key(call),
        user_id=body.user_id,
        transaction_id=body.transaction_id,
        transaction_data=body.transaction_data,
        caller=_caller(call.request),
    )
    return lanes.Answer(options)


@lane.post(
    "/transaction/finalize",
    summary="Finish confirming a transaction",
    documented=_documented(TokenAnswer, CREDENTIAL_BODY, key=True),
)
@acts(Action.PASSKEY_API_TRANSACTION)
async def transaction_finalize(call: lanes.Call, _body: None) -> lanes.Answer:
    """Answers `{"token": JWT}` with `trans` = the transaction id (from the server's own record)."""
    tid = _tenant_of(call)
    credential = await _credential(call.request)
    issued = await passkey_api.transaction_finalize(
        call.ctx, tid, _api_key(call), credential, _caller(call.request)
    )
    return lanes.Answer({"token": issued.token})


# --------------------------------------------------------------------------- credentials and keys


@router.get("/credentials", summary="List credentials", responses=ERRORS)
async def list_credentials(
    tenant_id: str,
    request: Request,
    ctx: Ctx,
    api_key: ApiKey = None,
    user_id: str | None = None,
    page: str = "1",
    per_page: str = "20",
    order: str = "desc",
) -> HankoJSON:
    """Of one user (`user_id`) or the whole tenant, newest first by default; `Link` and `X-Total-Count`
    headers page through them."""
    tid = _tenant(tenant_id)
    number, size = _paging(page, per_page, RequestInvalid)
    if order not in ("asc", "desc"):
        raise RequestInvalid("order must be one of 'desc asc'")
    result = await passkey_credentials.list_credentials(
        ctx, tid, api_key, user_id=user_id or None, page=number, per_page=size, descending=order == "desc"
    )
    return _paged(request, result.items, number, size, result.total)


def _paging(page: str, per_page: str, invalid: Callable[[str], PassgateError]) -> tuple[int, int]:
    """The page and its size (at most MAX_PER_PAGE) from the query; `invalid(details)` when bad."""
    for value, field in ((page, "page"), (per_page, "per_page")):
        if not value.isdigit() or not 0 < int(value) < 1_000_000:
            raise invalid(f"{field} must be a positive number")
    return int(page), min(int(per_page), MAX_PER_PAGE)


def _paged(request: Request, items: list[Any], page: int, per_page: int, total: int) -> HankoJSON:
    headers = {"X-Total-Count": str(total), "Link": _links(request, page, per_page, total)}
    return HankoJSON(items, headers=headers)


def _links(request: Request, page: int, per_page: int, total: int) -> str:
    last = max(1, -(-total // per_page))
    query = {key: value for key, value in request.query_params.items() if key not in ("page", "per_page")}

    def link(number: int, rel: str) -> str:
        return (
            f'<{request.url.path}?{urlencode({**query, "page": number, "per_page": per_page})}>; rel="{rel}"'
        )

    links = [link(1, "first"), link(last, "last")]
    if page < last:
        links.append(link(page + 1, "next"))
    if page > 1:
        links.append(link(min(page - 1, last), "prev"))
    return ",".join(links)


@router.get("/credentials/{credential_id}", summary="Get a credential", responses=ERRORS)
async def get_credential(tenant_id: str, credential_id: str, ctx: Ctx, api_key: ApiKey = None) -> HankoJSON:
    tid = _tenant(tenant_id)
    return HankoJSON(await passkey_credentials.get_credential(ctx, tid, api_key, credential_id))


@router.patch(
    "/credentials/{credential_id}",
    summary="Rename a credential",
    status_code=204,
    responses=ERRORS,
    openapi_extra=_schema(CredentialPatch),
)
@acts(Action.PASSKEY_API_MANAGE)
async def rename_credential(
    tenant_id: str, credential_id: str, request: Request, ctx: Ctx, api_key: ApiKey = None
) -> Response:
    tid = _tenant(tenant_id)
    body = _validated(CredentialPatch, await _json(request, initialize=True))
    await passkey_credentials.rename_credential(ctx, tid, api_key, credential_id, body.name, _caller(request))
    return Response(status_code=204)


@router.delete(
    "/credentials/{credential_id}", summary="Delete a credential", status_code=204, responses=ERRORS
)
@acts(Action.PASSKEY_API_MANAGE)
async def delete_credential(
    tenant_id: str, credential_id: str, request: Request, ctx: Ctx, api_key: ApiKey = None
) -> Response:
    tid = _tenant(tenant_id)
    await passkey_credentials.delete_credential(ctx, tid, api_key, credential_id, _caller(request))
    return Response(status_code=204)


# --------------------------------------------------------------------------- audit log


@router.get("/audit_logs", summary="List audit log entries", responses=ERRORS)
async def audit_logs(
    tenant_id: str,
    request: Request,
    ctx: Ctx,
    api_key: ApiKey = None,
    page: str = "1",
    per_page: str = "20",
    start_time: Annotated[str | None, Query(description="RFC 3339; events after it.")] = None,
    end_time: Annotated[str | None, Query(description="RFC 3339; events before it.")] = None,
    types: Annotated[
        list[str] | None, Query(alias="type", description="Event types: repeated, or comma-separated.")
    ] = None,
    actor_user_id: Annotated[str | None, Query(description="Part of the backend's user id.")] = None,
    meta_source_ip: Annotated[str | None, Query(description="Part of the caller's address.")] = None,
    q: Annotated[str | None, Query(description="Part of the user id or of the address.")] = None,
) -> HankoJSON:
    """The tenant's events, newest first (Hanko's types, and Passgate's own such as
    `credential_flagged`); `Link` and `X-Total-Count` headers page through them. Text filters match
    any part, case-insensitively."""
    tid = _tenant(tenant_id)
    number, size = _paging(page, per_page, AuditLogsInvalid)
    result = await passkey_audit.list_audit_logs(
        ctx,
        tid,
        api_key,
        page=number,
        per_page=size,
        since=_time(start_time, "start_time"),
        until=_time(end_time, "end_time"),
        kinds=_types(types or []),
        actor=_text(actor_user_id, "actor_user_id"),
        source_ip=_text(meta_source_ip, "meta_source_ip"),
        search=_text(q, "q"),
    )
    return _paged(request, result.items, number, size, result.total)


def _time(value: str | None, field: str) -> float | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise AuditLogsInvalid(
            f"{field} must be an RFC 3339 time with a time zone, e.g. 2024-05-01T12:00:00Z"
        )
    return moment.timestamp()


def _types(values: list[str]) -> tuple[str, ...]:
    kinds = tuple(kind.strip() for value in values for kind in value.split(",") if kind.strip())
    if len(kinds) > MAX_TYPES or any(len(kind) > 60 for kind in kinds):
        raise AuditLogsInvalid(f"type takes at most {MAX_TYPES} event types of up to 60 characters")
    return kinds


def _text(value: str | None, field: str) -> str | None:
    if value is not None and len(value) > MAX_QUERY_TEXT:
        raise AuditLogsInvalid(f"{field} cannot be longer than {MAX_QUERY_TEXT} characters")
    return value or None


@router.get("/.well-known/jwks.json", summary="The tenant's token-verification keys", responses=ERRORS)
async def jwks(tenant_id: str, ctx: Ctx) -> HankoJSON:
    """RSA public keys (RS256) by `kid`; cache for up to 10 minutes. No API key needed."""
    keys = await passkey_tenants.jwks(ctx, _tenant(tenant_id))
    return HankoJSON(keys, headers={"Cache-Control": f"public, max-age={passkey_tenants.JWKS_MAX_AGE}"})


@router.api_route(
    "/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
@acts(Action.PASSKEY_API_NOT_FOUND)
async def not_found(tenant_id: str, rest: str) -> HankoJSON:
    return HankoJSON({"title": "Not Found", "details": "", "status": 404}, status_code=404)
