"""The provider's state, built once per process: signing keys, clients from the configuration, issuer,
lifetimes. Clients registered by command live in the database and are read per request."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection

from passgate.errors import ConfigError, Conflict, NotFound
from passgate.oidc import keys as key_files
from passgate.oidc.clients import CLIENT_ID, MIN_SECRET_LENGTH, Client, ClientConfig, hash_secret, new_secret
from passgate.oidc.keys import SigningKeys
from passgate.oidc.server import Lifetimes, Provider, Storage
from passgate.services.context import Context
from passgate.store import oidc as rows

_STATE = "_oidc_state"  # where the built state is kept on the Context (one per process)


@dataclass
class OidcState:
    issuer: str
    keys: SigningKeys
    configured: dict[str, Client]
    lifetimes: Lifetimes

    def provider(self, storage: Storage) -> Provider:
        return Provider(issuer=self.issuer, keys=self.keys, storage=storage, lifetimes=self.lifetimes)


def state(ctx: Context) -> OidcState:
    """The provider state of this context, built on first use (keys created then if missing)."""
    found: OidcState | None = vars(ctx).get(_STATE)
    if found is None:
        found = _build(ctx)
        vars(ctx)[_STATE] = found
    return found


def _build(ctx: Context) -> OidcState:
    settings = ctx.settings
    try:
        keys = SigningKeys(key_files.read_or_create(settings.oidc_keys_file))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"Cannot use the OpenID Connect signing keys in {settings.oidc_keys_file} ({exc}). "
            "Restore the file, or move it away to generate new keys (apps then reject older ID tokens)."
        ) from None
    configured = {
        client_id: Client(client_id, config, _configured_secret(client_id, config))
        for client_id, config in settings.oidc_clients.items()
    }
    lifetimes = Lifetimes(
        code=settings.oidc_code_ttl,
        access_token=settings.oidc_access_token_ttl,
        id_token=settings.oidc_access_token_ttl,
        refresh=settings.oidc_refresh_token_ttl,
    )
    return OidcState(issuer=settings.public_url, keys=keys, configured=configured, lifetimes=lifetimes)


def _configured_secret(client_id: str, config: ClientConfig) -> str | None:
    if config.secret_hash:
        return config.secret_hash
    if not config.secret_file:
        return None
    try:
        secret = Path(config.secret_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(
            f"OpenID Connect client {client_id!r}: secret_file {config.secret_file!r} cannot be read "
            f"({exc.strerror})."
        ) from None
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"OpenID Connect client {client_id!r}: the secret in {config.secret_file!r} is shorter than "
            f"{MIN_SECRET_LENGTH} characters. Generate one with `passgate keys generate`."
        )
    return hash_secret(secret)


def find(connection: Connection, ctx: Context, client_id: str) -> Client | None:
    """A client declared in the configuration, else one registered by command."""
    configured = state(ctx).configured.get(client_id)
    if configured is not None:
        return configured
    row = rows.client(connection, client_id)
    return _from_row(row) if row is not None else None


def _from_row(row: rows.ClientRow) -> Client:
    config = ClientConfig.model_validate({**row.metadata_json, "secret_hash": row.secret_hash})
    return Client(row.client_id, config, row.secret_hash)


def every(connection: Connection, ctx: Context) -> list[tuple[Client, str]]:
    """Every client with where it comes from (`config` or `command`)."""
    found = [(client, "config") for client in state(ctx).configured.values()]
    for row in rows.clients(connection):
        if row.client_id not in state(ctx).configured:
            found.append((_from_row(row), "command"))
    return found


# ------------------------------------------------------------------------ `passgate client …`


def add(ctx: Context, client_id: str, metadata: dict[str, Any]) -> tuple[Client, str | None]:
    """Register a client; returns it and its secret (shown once: only its hash is kept)."""
    if not CLIENT_ID.match(client_id):
        raise ConfigError("A client id may only use letters, digits and . _ ~ : / - (at most 100).")
    public = metadata.get("token_endpoint_auth_method") == "none"
    secret = None if public else new_secret()
    try:
        config = ClientConfig.model_validate(
            {**metadata, "secret_hash": hash_secret(secret) if secret else None}
        )
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    stored = config.model_dump(exclude={"secret_hash", "secret_file"})

    def work(connection: Connection) -> None:
        if find(connection, ctx, client_id) is not None:
            raise Conflict(f"A client {client_id!r} exists already.", code="client_exists")
        rows.add_client(
            connection,
            rows.ClientRow(
                client_id=client_id,
                tenant_id=ctx.tenant_id,
                name=config.name or client_id,
                secret_hash=config.secret_hash,
                metadata_json=stored,
                created_at=time.time(),
            ),
        )

    ctx.db.transact(work)
    return Client(client_id, config, config.secret_hash), secret


def rotate_secret(ctx: Context, client_id: str) -> str:
    """A new secret for a client registered by command; the old one stops working at once."""
    secret = new_secret()

    def work(connection: Connection) -> None:
        client = find(connection, ctx, client_id)
        if client is None:
            raise NotFound("No such client.", code="client_not_found")
        if client_id in state(ctx).configured:
            raise Conflict("This client is declared in the configuration file: change its secret there.")
        if client.public:
            raise Conflict("A public client has no secret.")
        rows.set_client_secret(connection, client_id, hash_secret(secret))

    ctx.db.transact(work)
    return secret


def delete(ctx: Context, client_id: str) -> None:
    """Remove a client registered by command, with every token, code and consent made for it."""

    def work(connection: Connection) -> None:
        if client_id in state(ctx).configured:
            raise Conflict("This client is declared in the configuration file: remove it there.")
        if not rows.remove_client(connection, client_id):
            raise NotFound("No such client.", code="client_not_found")

    ctx.db.transact(work)


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return "Invalid client:\n  " + "\n  ".join(lines)
