"""`/passkeys/{tenant_id}/…`: the passkey API for other backends, on the wire as Hanko's Passkey API.

Same paths, bodies, status codes and error shape (`{"title","details","status"}`, mapped here from the
one error tree), the `apiKey` header read case-insensitively and trimmed, bodiless POSTs taken as `{}`,
unknown JSON members ignored. Bodies are read here rather than by FastAPI so that every answer,
including a malformed body, keeps Hanko's shape (clients such as `@teamhanko/passkeys-sdk` show it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError, field_validator

from passgate.errors import PassgateError, PayloadTooLarge, RequestInvalid, RequestUnreadable
from passgate.services import passkey_api, passkey_tenants
from passgate.services.stepup import Action, acts
from passgate.web.deps import Ctx
from passgate.web.guard import BodyTooLarge

log = logging.getLogger("passgate.passkey_api")
TAG = "passkey API (Hanko-compatible)"
MAX_USER_ID_BYTES = 64  # the WebAuthn user handle holds at most 64 bytes (W3C WebAuthn L3 §5.4.3)
ApiKey = Annotated[str | None, Header(alias="apiKey", description="The tenant's API key.")]


class HankoJSON(Response):
    """Echo's JSON answer: `application/json; charset=UTF-8`, a trailing newline."""

    media_type = "application/json; charset=UTF-8"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def problem(exc: PassgateError) -> HankoJSON:
    if exc.status >= 500:
        return HankoJSON({"title": "Internal Server Error", "status": 500}, status_code=500)
    details = str(getattr(exc, "public_details", ""))
    return HankoJSON({"title": exc.message, "details": details, "status": exc.status}, status_code=exc.status)


class HankoRoute(APIRoute):
    """Every error of these routes, expected or not, answers in Hanko's shape (never a stack trace)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except PassgateError as exc:
                if exc.detail:
                    log.info("%s: %s", exc.code, exc.detail.encode("unicode_escape").decode("ascii")[:300])
                if exc.status >= 500:
                    log.error("passkey API: %s (%s)", exc.message, exc.detail)
                return problem(exc)
            except BodyTooLarge:
                return problem(PayloadTooLarge("Request Entity Too Large"))
            except Exception:
                log.exception("passkey API: unexpected error")
                return HankoJSON({"title": "Internal Server Error", "status": 500}, status_code=500)

        return handle


router = APIRouter(prefix="/passkeys/{tenant_id}", tags=[TAG], route_class=HankoRoute)


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


async def _rate(request: Request, tenant_id: str, who: str) -> None:
    """Per tenant and user (or address, for a discoverable login) limits on starting ceremonies."""
    await request.app.state.rate_limit.check("passkey_api", f"{tenant_id}:{who}")


def _tenant(tenant_id: str) -> str:
    return passkey_tenants.tenant_id_of(tenant_id)


# --------------------------------------------------------------------------- registration and login


@router.post(
    "/registration/initialize",
    summary="Begin registering a passkey",
    responses={200: {"description": '`{"publicKey": PublicKeyCredentialCreationOptions}`'}, **ERRORS},
    openapi_extra=_schema(RegistrationInit),
)
@acts(Action.PASSKEY_API_REGISTER)
async def registration_initialize(
    tenant_id: str, request: Request, ctx: Ctx, api_key: ApiKey = None
) -> HankoJSON:
    """Creation options for a passkey of the backend's user `user_id` (discoverable; UV per tenant)."""
    tid = _tenant(tenant_id)
    body = _validated(RegistrationInit, await _json(request, initialize=True))
    await _rate(request, tid, body.user_id)
    options = await passkey_api.registration_initialize(
        ctx, tid, api_key, user_id=body.user_id, username=body.username, display_name=body.display_name
    )
    return HankoJSON(options)


@router.post(
    "/registration/finalize",
    summary="Finish registering a passkey",
    responses={200: {"model": TokenAnswer}, **ERRORS},
    openapi_extra=CREDENTIAL_BODY,
)
@acts(Action.PASSKEY_API_FINISH)
async def registration_finalize(tenant_id: str, request: Request, ctx: Ctx) -> HankoJSON:
    """Body: the browser's `credential.toJSON()`. Stores the passkey; answers `{"token": JWT}`."""
    tid = _tenant(tenant_id)
    issued = await passkey_api.registration_finalize(ctx, tid, await _credential(request))
    return HankoJSON({"token": issued.token})


@router.post(
    "/login/initialize",
    summary="Begin a login",
    responses={200: {"description": '`{"publicKey": PublicKeyCredentialRequestOptions}`'}, **ERRORS},
    openapi_extra=_schema(LoginInit),
)
@acts(Action.PASSKEY_API_SIGN_IN)
async def login_initialize(tenant_id: str, request: Request, ctx: Ctx, api_key: ApiKey = None) -> HankoJSON:
    """Discoverable with no body (or `{}`); with `user_id` the API key is required and the user's
    credentials are listed in `allowCredentials`."""
    tid = _tenant(tenant_id)
    body = _validated(LoginInit, await _json(request, initialize=True))
    await _rate(request, tid, body.user_id or f"ip:{request.client.host if request.client else '-'}")
    return HankoJSON(await passkey_api.login_initialize(ctx, tid, api_key, user_id=body.user_id))


@router.post(
    "/login/finalize",
    summary="Finish a login",
    responses={200: {"model": TokenAnswer}, **ERRORS},
    openapi_extra=CREDENTIAL_BODY,
)
@acts(Action.PASSKEY_API_FINISH)
async def login_finalize(tenant_id: str, request: Request, ctx: Ctx) -> HankoJSON:
    """Body: `credential.toJSON()` of the assertion. Answers `{"token": JWT}` whose `sub` is the user id."""
    tid = _tenant(tenant_id)
    issued = await passkey_api.login_finalize(ctx, tid, await _credential(request))
    return HankoJSON({"token": issued.token})


# --------------------------------------------------------------------------- transactions


@router.post(
    "/transaction/initialize",
    summary="Begin confirming a transaction",
    responses={200: {"description": '`{"publicKey": PublicKeyCredentialRequestOptions}`'}, **ERRORS},
    openapi_extra=_schema(TransactionInit),
)
@acts(Action.PASSKEY_API_TRANSACTION)
async def transaction_initialize(
    tenant_id: str, request: Request, ctx: Ctx, api_key: ApiKey = None
) -> HankoJSON:
    """Options whose challenge is bound to the transaction's id and data; user verification required.
    `409` when the transaction id was used before in this tenant."""
    tid = _tenant(tenant_id)
    body = _validated(TransactionInit, await _json(request, initialize=True))
    await _rate(request, tid, body.user_id)
    options = await passkey_api.transaction_initialize(
        ctx,
        tid,
        api_key,
        user_id=body.user_id,
        transaction_id=body.transaction_id,
        transaction_data=body.transaction_data,
    )
    return HankoJSON(options)


@router.post(
    "/transaction/finalize",
    summary="Finish confirming a transaction",
    responses={200: {"model": TokenAnswer}, **ERRORS},
    openapi_extra=CREDENTIAL_BODY,
)
@acts(Action.PASSKEY_API_TRANSACTION)
async def transaction_finalize(
    tenant_id: str, request: Request, ctx: Ctx, api_key: ApiKey = None
) -> HankoJSON:
    """Answers `{"token": JWT}` with `trans` = the transaction id (from the server's own record)."""
    tid = _tenant(tenant_id)
    issued = await passkey_api.transaction_finalize(ctx, tid, api_key, await _credential(request))
    return HankoJSON({"token": issued.token})


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
    number, size = _positive(page, "page"), _positive(per_page, "per_page")
    if order not in ("asc", "desc"):
        raise RequestInvalid("order must be one of 'desc asc'")
    size = min(size, 100)
    result = await passkey_api.list_credentials(
        ctx, tid, api_key, user_id=user_id or None, page=number, per_page=size, descending=order == "desc"
    )
    headers = {"X-Total-Count": str(result.total), "Link": _links(request, number, size, result.total)}
    return HankoJSON(result.items, headers=headers)


def _positive(value: str, field: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 1_000_000:
        raise RequestInvalid(f"{field} must be a positive number")
    return int(value)


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
    return HankoJSON(await passkey_api.get_credential(ctx, tid, api_key, credential_id))


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
    await passkey_api.rename_credential(ctx, tid, api_key, credential_id, body.name)
    return Response(status_code=204)


@router.delete(
    "/credentials/{credential_id}", summary="Delete a credential", status_code=204, responses=ERRORS
)
@acts(Action.PASSKEY_API_MANAGE)
async def delete_credential(tenant_id: str, credential_id: str, ctx: Ctx, api_key: ApiKey = None) -> Response:
    tid = _tenant(tenant_id)
    await passkey_api.delete_credential(ctx, tid, api_key, credential_id)
    return Response(status_code=204)


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
