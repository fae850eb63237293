"""The OpenID provider's protocol: authlib's authorization server, code grant (with its OpenID Connect,
PKCE and RFC 9207 extensions), refresh grant, revocation (RFC 7009), introspection (RFC 7662),
RP-initiated logout and bearer-token checks, behind a thin adapter.

No HTTP and no database here: requests arrive as `Call` (method, URL, headers, query, form) and answers
leave as `Answer` (status, body, headers); everything stored goes through `Storage`, which the service
layer implements over one unit of work. What Passgate adds to authlib's grant logic is policy only:
PKCE with S256 alone (RFC 9700 §2.1.1: `plain` refused, the challenge required unless a confidential
client opts out), `response_type=code` alone, `response_mode=query` alone, and the claims.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    InvalidRequestError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    ResourceProtector,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import AuthorizationCodeMixin, OpenIDCode, OpenIDToken
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest

from passgate.oidc.claims import amr_list, user_claims
from passgate.oidc.clients import SCOPES, Client
from passgate.oidc.keys import SigningKeys

AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
SECRET_METHODS = ["client_secret_basic", "client_secret_post"]


@dataclass(frozen=True, slots=True)
class Lifetimes:
    code: int = 60  # OWASP ASVS 5.0 V10.4.3: at most 10 minutes (1 at L3)
    access_token: int = 600
    id_token: int = 600
    refresh: int = 30 * 86400  # absolute: a grant's refresh tokens never outlive it (ASVS 5.0 V10.4.8)


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request, as the protocol sees it."""

    method: str
    url: str
    headers: dict[str, str]
    query: list[tuple[str, str]] = field(default_factory=list)
    form: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Answer:
    """One HTTP response: a JSON body (dict), text, or a redirect in `Location`."""

    status: int
    body: Any
    headers: list[tuple[str, str]]

    @property
    def location(self) -> str | None:
        return next((value for name, value in self.headers if name.lower() == "location"), None)

    @location.setter
    def location(self, value: str) -> None:
        self.headers = [(n, v) for n, v in self.headers if n.lower() != "location"] + [("Location", value)]


@dataclass(frozen=True, slots=True)
class Authorized:
    """The person behind an authorization, and the passkey check their session last passed."""

    user_id: str
    user_name: str
    display_name: str
    email: str | None
    session_id: str | None
    auth_time: float
    amr: str
    acr: str


@dataclass
class IssuedCode(AuthorizationCodeMixin):  # type: ignore[misc]
    grant_id: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    user: Authorized

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return int(self.user.auth_time)

    def get_acr(self) -> str:
        return self.user.acr

    def get_amr(self) -> list[str]:
        return amr_list(self.user.amr)


@dataclass
class IssuedToken(TokenMixin):  # type: ignore[misc]
    key: bytes  # the access token's hash: which row
    grant_id: str
    client_id: str
    scope: str
    issued_at: float
    expires_at: float
    revoked: bool
    user: Authorized
    is_refresh: bool = False

    def check_client(self, client: Client) -> bool:
        return bool(client.client_id == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int(self.expires_at - self.issued_at)

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> Authorized:
        return self.user

    def get_client_id(self) -> str:
        return self.client_id


class Storage(Protocol):
    """What the protocol reads and writes; the service implements it over one unit of work."""

    def client(self, client_id: str) -> Client | None: ...

    def save_code(self, code: str, request: OAuth2Request, user: Authorized) -> None: ...

    def use_code(self, code: str, client: Client) -> IssuedCode | None:
        """The code, used up by this call; None when unknown, expired, another client's or used before
        (a replay: the tokens it issued are revoked, RFC 6749 §4.1.2)."""

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None: ...

    def use_refresh_token(self, refresh_token: str, client: Client) -> IssuedToken | None:
        """The refresh token, used up by this call; a second use revokes its grant (RFC 9700 §4.14.2)."""

    def find_token(self, token: str, hint: str | None) -> IssuedToken | None: ...

    def revoke(self, token: IssuedToken) -> None: ...

    def still_active(self, user: Authorized) -> Authorized | None:
        """The user as now stored (names may have changed), or None when disabled or gone."""

    def end_session(self, claims: dict[str, Any] | None, client: Client | None) -> None: ...


# ----------------------------------------------------------------------------------------- requests


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, items: list[tuple[str, str]]):
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in items:
            self._datalist[name].append(value)
        self._data = {name: values[0] for name, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, call: Call):
        super().__init__(method=call.method, uri=call.url, headers=_Headers(call.headers))
        self._args = dict(call.query)
        self._form = dict(call.form)
        self.payload = _Payload(call.form if call.method == "POST" else call.query)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _Headers(dict[str, str]):
    """Case-insensitive lookup (authlib reads `Authorization`)."""

    def __init__(self, headers: dict[str, str]):
        super().__init__({name.lower(): value for name, value in headers.items()})

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


# ------------------------------------------------------------------------------------------- grants


class _S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only; a missing method means `plain` (RFC 7636 §4.3) and is refused too."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ("S256",)

    def validate_code_challenge(self, grant: AuthorizationCodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        client: Client = grant.request.client
        if client.config.require_pkce and not data.get("code_challenge"):
            raise InvalidRequestError(
                "PKCE is required: send code_challenge with code_challenge_method=S256."
            )
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class _CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    AUTHORIZATION_CODE_LENGTH = 43  # ~256 bits

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        mode = self.request.payload.data.get("response_mode")
        if mode not in (None, "query"):  # OWASP ASVS 5.0 V10.4.12: only the response mode we use
            raise InvalidRequestError("response_mode must be query.", redirect_uri=redirect_uri)
        return redirect_uri

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        self.server.storage.save_code(code, request, request.user)

    def query_authorization_code(self, code: str, client: Client) -> IssuedCode | None:
        return self.server.storage.use_code(code, client)  # type: ignore[no-any-return]

    def delete_authorization_code(self, authorization_code: IssuedCode) -> None:
        """Nothing: the code was used up when it was read, and is kept until it expires to detect replays."""

    def authenticate_user(self, authorization_code: IssuedCode) -> Authorized | None:
        return self.server.storage.still_active(authorization_code.user)  # type: ignore[no-any-return]


class _RefreshGrant(RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotated on every use (RFC 9700 §4.14.2)

    def authenticate_refresh_token(self, refresh_token: str) -> IssuedToken | None:
        return self.server.storage.use_refresh_token(refresh_token, self.request.client)  # type: ignore[no-any-return]

    def authenticate_user(self, refresh_token: IssuedToken) -> Authorized | None:
        return self.server.storage.still_active(refresh_token.user)  # type: ignore[no-any-return]

    def revoke_old_credential(self, refresh_token: IssuedToken) -> None:
        """Nothing: it was used up when it was read."""


class _IdToken(OpenIDToken):  # type: ignore[misc]
    """ID token claims for the code grant's and the refresh grant's answers."""

    def __init__(self, provider: Provider):
        self.provider = provider

    def resolve_client_private_key(self, client: Client) -> Any:
        return self.provider.keys.key_for(client.id_token_signed_response_alg)

    def get_client_algorithm(self, client: Client) -> str:
        return client.id_token_signed_response_alg

    def get_encode_header(self, client: Client) -> dict[str, str]:
        alg = client.id_token_signed_response_alg
        return {"alg": alg, "kid": str(self.provider.keys.key_for(alg).kid), "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self.provider.issuer,
            "aud": client.client_id,
            "azp": client.client_id,
            "iat": now,
            "exp": now + self.provider.lifetimes.id_token,
        }

    def get_compatible_claims(self, request: OAuth2Request) -> dict[str, Any]:
        claims: dict[str, Any] = self.get_client_claims(request.client)
        user: Authorized = request.user
        # A refreshed ID token tells of the same check as the first one (OIDC Core §12.2).
        claims.update(auth_time=int(user.auth_time), acr=user.acr, amr=amr_list(user.amr))
        if user.session_id:
            claims["sid"] = user.session_id
        return claims

    def generate_user_info(self, user: Authorized, scope: str) -> dict[str, Any]:
        return self.provider.user_info(user, scope)


class _OpenIDCode(OpenIDCode, _IdToken):  # type: ignore[misc]
    def __init__(self, provider: Provider):
        OpenIDCode.__init__(self, require_nonce=False)
        _IdToken.__init__(self, provider)

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return False  # each code is single use; a nonce is the client's to check (OIDC Core §3.1.3.7)


class _Issuer(IssuerParameter):  # type: ignore[misc]
    def __init__(self, issuer: str):
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


# ---------------------------------------------------------------------------------------- endpoints


class _Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return self.server.storage.find_token(token_string, token_type_hint)  # type: ignore[no-any-return]

    def revoke_token(self, token: IssuedToken, request: OAuth2Request) -> None:
        self.server.storage.revoke(token)


class _Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = SECRET_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return self.server.storage.find_token(token_string, token_type_hint)  # type: ignore[no-any-return]

    def check_permission(self, token: IssuedToken, client: Client, request: OAuth2Request) -> bool:
        return token.check_client(client)  # a client learns only of its own tokens

    def introspect_token(self, token: IssuedToken) -> dict[str, Any]:
        return {
            "active": True,
            "client_id": token.client_id,
            "scope": token.scope,
            "sub": token.user.user_id,
            "username": token.user.user_name,
            "aud": token.client_id,
            "iss": self.server.issuer,
            "iat": int(token.issued_at),
            "exp": int(token.expires_at),
            "token_type": "refresh_token" if token.is_refresh else "Bearer",
        }


class _EndSession(EndSessionEndpoint):  # type: ignore[misc]
    def get_server_jwks(self) -> Any:
        return self.server.keys.public

    def get_algorithms(self) -> list[str]:
        return ["RS256", "ES256"]

    def end_session(self, end_session_request: EndSessionRequest) -> None:
        self.server.storage.end_session(end_session_request.id_token_claims, end_session_request.client)


class _Bearer(BearerTokenValidator):  # type: ignore[misc]
    def __init__(self, storage: Storage):
        super().__init__()
        self.storage = storage

    def authenticate_token(self, token_string: str) -> IssuedToken | None:
        token = self.storage.find_token(token_string, "access_token")
        return None if token is None or token.is_refresh else token


# ------------------------------------------------------------------------------------------ provider


class Provider(AuthorizationServer):  # type: ignore[misc]
    """authlib's authorization server over one `Storage` (built per unit of work: cheap)."""

    def __init__(self, *, issuer: str, keys: SigningKeys, storage: Storage, lifetimes: Lifetimes):
        super().__init__(scopes_supported=list(SCOPES))
        self.issuer = issuer
        self.keys = keys
        self.storage = storage
        self.lifetimes = lifetimes
        self.register_token_generator(
            "default",
            BearerTokenGenerator(_opaque_token, _opaque_token, self._expires_in),
        )
        self.register_grant(_CodeGrant, [_S256Only(required=True), _OpenIDCode(self)])
        self.register_grant(_RefreshGrant, [_IdToken(self)])
        self.register_extension(_Issuer(issuer))
        for endpoint in (_Revocation, _Introspection, _EndSession):
            self.register_endpoint(endpoint)

    def _expires_in(self, client: Client, grant_type: str) -> int:
        return self.lifetimes.access_token

    # authlib's framework hooks
    def query_client(self, client_id: str) -> Client | None:
        return self.storage.client(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.storage.save_token(token, request)

    def create_oauth2_request(self, request: Call | OAuth2Request) -> OAuth2Request:
        return request if isinstance(request, OAuth2Request) else _Request(request)

    def create_json_request(self, request: Call) -> Any:
        raise NotImplementedError

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Answer:
        return Answer(status, body, list(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    # what the service calls
    def user_info(self, user: Authorized, scope: str) -> dict[str, Any]:
        return user_claims(
            user_id=user.user_id,
            user_name=user.user_name,
            display_name=user.display_name,
            email=user.email,
            scopes=scope.split(),
        )

    def check_authorization(self, call: Call, user: Authorized | None) -> tuple[OAuth2Request, Any]:
        """Validate an authorization request (raises OAuth2Error, with `redirect_uri` set only when the
        client and its redirect URI are valid). Returns the request and authlib's grant."""
        request = self.create_oauth2_request(call)
        grant = self.get_consent_grant(request, end_user=user)
        return request, grant

    def authorize(self, request: OAuth2Request, grant: Any, user: Authorized) -> Answer:
        answer: Answer = self.create_authorization_response(request, grant_user=user, grant=grant)
        return answer

    def error(self, request: OAuth2Request | None, error: OAuth2Error) -> Answer:
        """An error answer; a redirect carries `state` and `iss` (RFC 9207 §2: every response)."""
        answer: Answer = self.handle_error_response(request, error)
        location = answer.location
        if location:
            answer.location = add_params_to_uri(location, {"iss": self.issuer})
        return answer

    def token(self, call: Call) -> Answer:
        answer: Answer = self.create_token_response(call)
        return answer

    def endpoint(self, name: str, call: Call) -> Answer | None:
        answer: Answer | None = self.create_endpoint_response(name, call)
        return answer

    def check_logout(self, call: Call) -> EndSessionRequest:
        request: EndSessionRequest = self.validate_endpoint_request("end_session", call)
        return request

    def logout(self, request: EndSessionRequest) -> Answer | None:
        answer: Answer | None = self.create_endpoint_response("end_session", request)
        return answer

    def bearer(self, call: Call) -> IssuedToken:
        """The access token of a userinfo request (raises OAuth2Error: 401 with WWW-Authenticate)."""
        protector = ResourceProtector()
        protector.register_token_validator(_Bearer(self.storage))
        token: IssuedToken = protector.validate_request(["openid"], self.create_oauth2_request(call))
        return token


def _opaque_token(**_: Any) -> str:
    from authlib.common.security import generate_token

    return str(generate_token(43))
