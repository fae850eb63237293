"""What each call of the passkey API sends and how its answer reads, shared by the sync and the async
client (which only differ in how they send)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from passgate.client.errors import ApiError, ApiUnavailable
from passgate.client.models import AuditLog, AuditLogPage, Credential, CredentialPage, JSONObject

_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="([a-z]+)"')


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str  # below the tenant's base URL
    body: Any = None  # None: no body
    params: Mapping[str, str | int] | None = None


def tenant_url(base_url: str, tenant_id: str) -> str:
    """`http://host/passkeys` (or with a trailing `/`, as the JS SDK takes it) and the tenant's id."""
    return f"{base_url.rstrip('/')}/{tenant_id}"


def headers(api_key: str) -> dict[str, str]:
    return {"apikey": api_key, "accept": "application/json"}


def request(http: httpx.Client | httpx.AsyncClient, call: Call) -> httpx.Request:
    if call.body is None:
        return http.build_request(call.method, call.path, params=call.params)
    return http.build_request(call.method, call.path, params=call.params, json=call.body)


def checked(response: httpx.Response) -> httpx.Response:
    """The answer, or ApiError with the API's title, details and status."""
    if response.is_success:
        return response
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("title"), str):
        raise ApiError(body["title"], str(body.get("details") or ""), response.status_code)
    raise ApiError(response.reason_phrase or "error", response.text[:200], response.status_code)


def json_object(response: httpx.Response) -> JSONObject:
    try:
        body = response.json()
    except ValueError:
        raise ApiUnavailable(f"not JSON: {response.text[:200]!r}") from None
    if not isinstance(body, dict):
        raise ApiUnavailable("expected a JSON object")
    return body


def token(response: httpx.Response) -> str:
    value = json_object(response).get("token")
    if not isinstance(value, str):
        raise ApiUnavailable("the answer has no token")
    return value


def credential_page(response: httpx.Response) -> CredentialPage:
    items, total, pages = _page(response)
    return CredentialPage(tuple(Credential.from_json(item) for item in items), total, pages)


def audit_log_page(response: httpx.Response) -> AuditLogPage:
    items, total, pages = _page(response)
    return AuditLogPage(tuple(AuditLog.from_json(item) for item in items), total, pages)


def _page(response: httpx.Response) -> tuple[list[JSONObject], int, dict[str, int]]:
    """A paged list's items, its total (`X-Total-Count`) and its `Link` relations' page numbers."""
    try:
        items = response.json()
    except ValueError:
        raise ApiUnavailable("not JSON") from None
    if not isinstance(items, list):
        raise ApiUnavailable("expected a JSON array")
    pages: dict[str, int] = {}
    for target, rel in _LINK.findall(response.headers.get("link", "")):
        number = parse_qs(urlsplit(target).query).get("page", [""])[0]
        if number.isdigit():
            pages[rel] = int(number)
    total_header = response.headers.get("x-total-count", "")
    total = int(total_header) if total_header.isdigit() else len(items)
    return items, total, pages


def jwks_max_age(response: httpx.Response, default: float) -> float:
    match = re.search(r"max-age=(\d+)", response.headers.get("cache-control", ""))
    return float(match.group(1)) if match else default


# --------------------------------------------------------------------------- the calls


def registration_initialize(
    user_id: str, username: str, display_name: str | None, *, mfa: bool = False
) -> Call:
    body: JSONObject = {"user_id": user_id, "username": username}
    if display_name is not None:
        body["display_name"] = display_name
    return Call("POST", "/mfa/registration/initialize" if mfa else "/registration/initialize", body)


def login_initialize(user_id: str | None) -> Call:
    return Call("POST", "/login/initialize", {} if user_id is None else {"user_id": user_id})


def mfa_login_initialize(user_id: str) -> Call:
    return Call("POST", "/mfa/login/initialize", {"user_id": user_id})


def transaction_initialize(user_id: str, transaction_id: str, transaction_data: Any) -> Call:
    body = {"user_id": user_id, "transaction_id": transaction_id, "transaction_data": transaction_data}
    return Call("POST", "/transaction/initialize", body)


def finalize(kind: str, credential: Mapping[str, Any]) -> Call:
    return Call("POST", f"/{kind}/finalize", dict(credential))


def list_credentials(user_id: str | None, page: int, per_page: int, order: str) -> Call:
    params: dict[str, str | int] = {"page": page, "per_page": per_page, "order": order}
    if user_id is not None:
        params["user_id"] = user_id
    return Call("GET", "/credentials", params=params)


def list_audit_logs(
    page: int,
    per_page: int,
    *,
    start_time: datetime | str | None,
    end_time: datetime | str | None,
    types: Sequence[str],
    actor_user_id: str | None,
    source_ip: str | None,
    q: str | None,
) -> Call:
    params: dict[str, str | int] = {"page": page, "per_page": per_page}
    optional = {
        "start_time": _rfc3339(start_time),
        "end_time": _rfc3339(end_time),
        "type": ",".join(types) or None,
        "actor_user_id": actor_user_id,
        "meta_source_ip": source_ip,
        "q": q,
    }
    params.update({name: value for name, value in optional.items() if value is not None})
    return Call("GET", "/audit_logs", params=params)


def _rfc3339(moment: datetime | str | None) -> str | None:
    """A datetime as RFC 3339 (a naive one is taken as UTC); a string as given."""
    if not isinstance(moment, datetime):
        return moment
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def credential(method: str, credential_id: str, body: Any = None) -> Call:
    return Call(method, f"/credentials/{_segment(credential_id)}", body)


def _segment(value: str) -> str:
    if not value or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        raise ApiError(f"credential with id '{value[:200]}' not found", "", 404)
    return value


JWKS = Call("GET", "/.well-known/jwks.json")
