"""OpenID Connect clients: their metadata (as declared in the configuration or registered by command),
the checks on it, and the model authlib asks (`ClientMixin`).

Redirect URIs are compared as exact strings (RFC 6749 §3.1.2.3, RFC 9700 §4.1.3), except that a
loopback redirect (`http://127.0.0.1`, `http://[::1]`, `http://localhost`) matches on any port, since a
native app picks its port at run time (RFC 8252 §7.3). A registered URI must be absolute, without a
fragment (RFC 6749 §3.1.2) or user info, and use https, http on a loopback host, or a private-use scheme
in reverse-domain form (RFC 8252 §7.1).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any, Literal
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCOPES: tuple[str, ...] = ("openid", "profile", "email", "offline_access")
AuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]
IdTokenAlg = Literal["RS256", "ES256"]
HASH_PREFIX = "sha256:"
MIN_SECRET_LENGTH = 32
CLIENT_ID = re.compile(r"^[A-Za-z0-9._~:/-]{1,100}$")
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_PRIVATE_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+$")


def check_client_ids(clients: dict[str, ClientConfig]) -> None:
    for client_id in clients:
        if not CLIENT_ID.match(client_id):
            raise ValueError(
                f"OpenID Connect client id {client_id!r} may only use letters, digits and . _ ~ : / -"
            )


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """Client secrets are generated (256 random bits), so one SHA-256 is enough to store them: there is
    nothing to guess (OWASP ASVS 5.0 V11.4.2 asks slow hashes for passwords, not for random secrets)."""
    return HASH_PREFIX + hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored: str | None) -> bool:
    return stored is not None and hmac.compare_digest(hash_secret(secret).encode(), stored.encode())


def check_redirect_uri(uri: str) -> str:
    """A redirect URI fit for registration, unchanged; ValueError naming what is wrong."""
    parts = urlsplit(uri)
    if not parts.scheme or parts.fragment or "#" in uri or parts.username or parts.password:
        raise ValueError(f"redirect URI {uri!r} must be absolute, without a fragment or user info")
    if any(char <= " " or char == "\x7f" for char in uri):
        raise ValueError(f"redirect URI {uri!r} contains spaces or control characters")
    if parts.scheme == "https" and parts.hostname:
        return uri
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return uri
    if parts.scheme not in ("http", "https") and _PRIVATE_SCHEME.match(parts.scheme):
        return uri
    raise ValueError(
        f"redirect URI {uri!r} must use https://, http:// on 127.0.0.1, [::1] or localhost, or a private "
        "scheme such as com.example.app:/callback"
    )


def _is_loopback(host: str | None) -> bool:
    return host is not None and (host in _LOOPBACK_HOSTS or host.endswith(".localhost"))


def redirect_matches(registered: list[str], requested: str) -> bool:
    if requested in registered:
        return True
    asked = urlsplit(requested)
    if asked.scheme != "http" or not _is_loopback(asked.hostname):
        return False
    for uri in registered:
        known = urlsplit(uri)
        if (
            known.scheme == "http"
            and known.hostname == asked.hostname
            and _is_loopback(known.hostname)
            and (known.path, known.query, known.fragment) == (asked.path, asked.query, asked.fragment)
            and not asked.username
            and not asked.password
        ):
            return True
    return False


class ClientConfig(BaseModel):
    """One client: in the configuration file as `[oidc_clients.<client_id>]`, or registered by
    `passgate client add`. A confidential client has `secret_hash` (`sha256:…`, printed by
    `passgate client add`) or `secret_file` (a file holding the secret); a public one has neither and
    uses `token_endpoint_auth_method = "none"`."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    redirect_uris: list[str] = Field(min_length=1)
    post_logout_redirect_uris: list[str] = Field(default_factory=list)
    token_endpoint_auth_method: AuthMethod = "client_secret_basic"  # noqa: S105 - a method name
    secret_hash: str | None = None
    secret_file: str | None = None
    scopes: list[str] = Field(default_factory=lambda: list(SCOPES))
    require_pkce: bool = True
    refresh_tokens: bool = True
    trusted: bool = False
    id_token_signed_response_alg: IdTokenAlg = "RS256"  # noqa: S105 - an algorithm

    @field_validator("redirect_uris", "post_logout_redirect_uris")
    @classmethod
    def _uris(cls, value: list[str]) -> list[str]:
        return [check_redirect_uri(uri) for uri in value]

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        unknown = [scope for scope in value if scope not in SCOPES]
        if unknown:
            raise ValueError(f"unknown scopes {unknown}; supported: {', '.join(SCOPES)}")
        if "openid" not in value:
            raise ValueError("scopes must include openid")
        return value

    @model_validator(mode="after")
    def _secret(self) -> ClientConfig:
        public = self.token_endpoint_auth_method == "none"  # noqa: S105
        if public and (self.secret_hash or self.secret_file):
            raise ValueError('a public client (token_endpoint_auth_method = "none") has no secret')
        if public and not self.require_pkce:
            raise ValueError("a public client must use PKCE (RFC 9700 §2.1.1)")
        if not public and not (self.secret_hash or self.secret_file):
            raise ValueError("a confidential client needs secret_hash or secret_file")
        if self.secret_hash and not re.fullmatch(r"sha256:[0-9a-f]{64}", self.secret_hash):
            raise ValueError("secret_hash must be 'sha256:' and 64 hex digits (see `passgate client add`)")
        return self


class Client(ClientMixin):  # type: ignore[misc]
    """What authlib asks of a client, answered from its configuration."""

    def __init__(self, client_id: str, config: ClientConfig, secret_hash: str | None):
        self.client_id = client_id
        self.config = config
        self.secret_hash = secret_hash
        self.name = config.name or client_id
        self.client_metadata = {"post_logout_redirect_uris": config.post_logout_redirect_uris}

    @property
    def public(self) -> bool:
        return self.config.token_endpoint_auth_method == "none"  # noqa: S105

    @property
    def id_token_signed_response_alg(self) -> str:
        return self.config.id_token_signed_response_alg

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        # OIDC Core §3.1.2.1: redirect_uri is REQUIRED; only a client with one URI may leave it out.
        uris = self.config.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        allowed = set(self.config.scopes)
        return str(list_to_scope([item for item in scope_to_list(scope or "") or [] if item in allowed]))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_matches(self.config.redirect_uris, redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        return secret_matches(client_secret, self.secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.config.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == "refresh_token":
            return self.config.refresh_tokens
        return grant_type == "authorization_code"

    def origins(self) -> set[str]:
        """The web origins of the redirect URIs (for CORS)."""
        found = set()
        for uri in self.config.redirect_uris:
            parts = urlsplit(uri)
            if parts.scheme in ("http", "https") and parts.netloc:
                found.add(f"{parts.scheme}://{parts.netloc}")
        return found

    def describe(self) -> dict[str, Any]:
        return {"client_id": self.client_id, **self.config.model_dump(exclude={"secret_hash", "secret_file"})}
