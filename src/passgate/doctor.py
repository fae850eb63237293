"""`passgate doctor`: the effective configuration (secrets masked) and every check with its verdict.

The configuration table is printed even when the configuration is invalid: each setting a message names
is marked ✘ and shown as given, and the sentence saying what to fix follows the table."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from passgate.config import ENV_PREFIX, Settings, load_settings
from passgate.errors import ConfigError

if TYPE_CHECKING:
    from passgate.services.passkey_tenants import SealedKeys
    from passgate.services.tenant_settings import Plan
    from passgate.store.database import Database
    from passgate.store.tenants import TenantRecord

Echo = Callable[[str], object]
Check = tuple[str, bool, str]
SECRET_FIELDS = frozenset({"secret_keys", "database_url", "redis_url"})
SETTING_NAME = re.compile(rf"\b{ENV_PREFIX}([A-Z_]+?)(?:_FILE)?\b")
MAX_RETRIES = 6


def _masked(name: str, value: object, settings: Settings | None) -> str:
    if name == "secret_keys" and settings is not None:
        count = len(settings.secret_keys)
        return (
            f"[{count} key(s) from environment]" if count else f"[generated in {settings.secret_keys_file}]"
        )
    if name == "secret_keys":
        return "[set]" if value else ""
    if name == "passkey_tenants" and isinstance(value, dict):
        return ", ".join(f"{tenant_id} ({config.rp_id})" for tenant_id, config in value.items())
    if name in SECRET_FIELDS and value:
        from sqlalchemy.engine import make_url

        try:
            return make_url(str(value)).render_as_string(hide_password=True)
        except Exception:
            return "*** (masked)"
    return str(value)


def _invalid_fields(message: str) -> set[str]:
    """The settings a ConfigError's sentences name (`PASSGATE_ORIGINS` → `origins`)."""
    fields = {*Settings.model_fields, "config"}
    named = {match.lower() for match in SETTING_NAME.findall(message)}
    return {name for name in named if name in fields}


def _settings_without(invalid: set[str]) -> Settings | None:
    """The configuration with the invalid settings back at their defaults, to show everything else."""
    for _ in range(MAX_RETRIES):
        defaults = {
            name: Settings.model_fields[name].get_default(call_default_factory=True)
            for name in invalid
            if name in Settings.model_fields and name != "secret_keys"  # an empty key list is refused
        }
        try:
            with _hidden(invalid):
                return load_settings(**defaults)
        except ConfigError as exc:
            more = _invalid_fields(exc.message) - invalid
            if not more:
                return None
            invalid |= more
    return None


@contextmanager
def _hidden(names: set[str]) -> Iterator[None]:
    """Hide `PASSGATE_<NAME>` and `PASSGATE_<NAME>_FILE` for these settings while the rest is loaded (the
    environment is parsed before init values count, and an unreadable file fails first)."""
    variables = [f"{ENV_PREFIX}{name.upper()}{suffix}" for name in names for suffix in ("", "_FILE")]
    hidden = {key: os.environ.pop(key) for key in variables if key in os.environ}
    try:
        yield
    finally:
        os.environ.update(hidden)


def _raw(name: str) -> str:
    variable = f"{ENV_PREFIX}{name.upper()}"
    if variable in os.environ:
        return os.environ[variable]
    if f"{variable}_FILE" in os.environ:
        return f"(from {os.environ[f'{variable}_FILE']})"
    return "(from .env or the TOML file)"


def print_table(echo: Echo, settings: Settings | None, invalid: set[str]) -> None:
    echo("Effective configuration:" if not invalid else "Configuration (✘ = invalid, see below):")
    if "config" in invalid:
        echo(f"✘ {ENV_PREFIX}CONFIG{' ' * 16} {_raw('config')}")
    for name in Settings.model_fields:
        label = f"{ENV_PREFIX}{name.upper():<22}"
        if name in invalid:
            echo(f"✘ {label} {_masked(name, _raw(name), None)}")
        elif settings is not None:
            echo(f"  {label} {_masked(name, getattr(settings, name), settings)}")


def run_checks(echo: Echo) -> bool:
    """Print configuration and checks; True when every check passed."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        invalid = _invalid_fields(exc.message)
        print_table(echo, _settings_without(set(invalid)), invalid)
        echo("✘ configuration")
        echo(exc.message)
        return False
    print_table(echo, settings, set())
    checks: list[Check] = [
        ("configuration is valid", True, "RP ID, origins and lifetimes are consistent"),
        (
            "origins belong to the RP ID",
            True,
            f"{', '.join(settings.origins)} → passkeys are scoped to {settings.rp_id}",
        ),
        (
            "cookies",
            True,
            f"{settings.session_cookie_name}; HttpOnly; SameSite=Lax"
            + ("; Secure" if settings.secure_cookies else " (not Secure: http://localhost only)"),
        ),
        _data_check(settings),
        _database_check(settings),
    ]
    if checks[-1][1]:  # the database answered
        checks.extend(_name_clash_checks(settings))
        checks.extend(_tenant_checks(settings))
    checks += [_keys_check(settings), _rate_limit_check(settings)]
    ok = True
    echo("Checks:")
    for label, passed, detail in checks:
        ok = ok and passed
        echo(f"  {'✔' if passed else '✘'} {label}: {detail}")
    return ok


def _data_check(settings: Settings) -> Check:
    path = settings.data_dir
    if settings.database_url:
        return ("data directory", True, f"{path} (signing keys only; the database is PASSGATE_DATABASE_URL)")
    if (path / "passgate.db").exists():
        return ("data directory", True, f"{path} holds passgate.db")
    return ("data directory", True, f"{path} has no database yet: a new, empty one is created on first start")


def _database_check(settings: Settings) -> Check:
    from passgate.store.database import Database

    try:
        database = Database(settings.sqlalchemy_url)
    except Exception as exc:  # the driver cannot be loaded for this URL
        return ("database reachable", False, f"PASSGATE_DATABASE_URL cannot be used: {type(exc).__name__}.")
    try:
        database.check()
        if not database.is_sqlite:  # in a thread of its own: doctor may be called where a loop runs
            with ThreadPoolExecutor(1) as thread:
                thread.submit(asyncio.run, _check_serving(database)).result()
        return ("database reachable", True, database.safe_url())
    except ConfigError as exc:
        return ("database reachable", False, exc.message)
    finally:
        database.dispose()


async def _check_serving(database: Database) -> None:
    """On PostgreSQL, the server's own driver too (asyncpg), as `passgate serve` checks at start-up."""
    try:
        await database.check_serving()
    finally:
        await database.release()


def _keys_check(settings: Settings) -> Check:
    if settings.secret_keys:
        return ("signing keys", True, f"{len(settings.secret_keys)} from PASSGATE_SECRET_KEYS")
    path = settings.secret_keys_file
    if path.exists():
        return ("signing keys", True, f"read from {path}")
    return ("signing keys", True, f"will be generated into {path} on first start")


def _name_clash_checks(settings: Settings) -> list[tuple[str, bool, str]]:
    """Accounts whose names became look-alikes of others' names (the upgrade to canonical user names)."""
    from sqlalchemy.exc import SQLAlchemyError

    from passgate.services.users import clashes
    from passgate.store.database import Database

    database = Database(settings.sqlalchemy_url)
    try:
        found = database.transact(clashes, write=False)
    except SQLAlchemyError:  # unreachable or not migrated: the database check says so
        return []
    finally:
        database.dispose()
    if not found:
        return [("one name, one person", True, "no user name looks like another")] if found == [] else []
    detail = "; ".join(
        f"{clash.user_name!r} (id {clash.user_id}) looks like {clash.looks_like or 'another name'!r}"
        for clash in found
    )
    return [
        ("one name, one person", False, f"{detail}: disabled until renamed (passgate user rename ID NEW)")
    ]


def _tenant_checks(settings: Settings) -> list[Check]:
    """The configuration file's passkey-API tenants against the database (what the next start does),
    and whether the secret keys still open every tenant's token-signing key."""
    from sqlalchemy import Connection
    from sqlalchemy.exc import SQLAlchemyError

    from passgate.errors import PassgateError
    from passgate.services import passkey_tenants, tenant_settings
    from passgate.store.database import Database

    def work(connection: Connection) -> tuple[list[Plan], SealedKeys]:
        plans = tenant_settings.plan_declared(connection, settings.passkey_tenants)
        return plans, passkey_tenants.sealed_keys(connection, _secret_keys(settings))

    database = Database(settings.sqlalchemy_url)
    try:
        plans, sealed = database.transact(work, write=False)
    except (SQLAlchemyError, PassgateError):  # unreachable or not migrated: the database check says so
        return []
    finally:
        database.dispose()
    checks = [_declared_check(plans)] if plans else []
    return checks + _sealed_checks(settings, sealed)


def _declared_check(plans: list[Plan]) -> Check:
    label = "passkey-API tenants in the configuration"
    problems = [plan.problem for plan in plans if plan.problem]
    if problems:
        return (label, False, " ".join(problems))
    pending = [
        f"{plan.tenant_id} ({plan.rp_id}) "
        + ("to be created" if plan.action == "create" else f"to be updated ({', '.join(plan.changed)})")
        for plan in plans
        if plan.action != "keep"
    ]
    if pending:
        return (label, True, "applied at the next start (or any passgate command): " + "; ".join(pending))
    return (label, True, f"{len(plans)} declared, all as stored")


def _sealed_checks(settings: Settings, sealed: SealedKeys) -> list[Check]:
    """A tenant whose signing key no configured secret key opens cannot issue tokens: name each, and
    the two fixes."""
    label = "passkey-API token-signing keys"
    where = "PASSGATE_SECRET_KEYS" if settings.secret_keys else str(settings.secret_keys_file)
    rotate = "`passgate tenant rotate-key ID`"
    if sealed.lost:
        lost = (
            f"{_tenants(sealed.lost)}: the signing key was sealed with a secret key that is no longer in "
            f"{where}, so these tenants cannot issue tokens (every finalize fails). Put that secret key "
            f"back in {where} (anywhere in the list), or give each a new signing key with {rotate} "
            "(backends find it in the JWKS by its kid)."
        )
        return [(label, False, lost)]
    if sealed.aging:
        aging = (
            f"{_tenants(sealed.aging)}: sealed with an older secret key of {where}. Before you retire that "
            f"key, run {rotate} for each, or they cannot issue tokens."
        )
        return [(label, True, aging)]
    return []


def _tenants(tenants: list[TenantRecord]) -> str:
    return ", ".join(f"tenant {tenant.tenant_id} ({tenant.name}, {tenant.rp_id})" for tenant in tenants)


def _secret_keys(settings: Settings) -> list[bytes]:
    """The secret keys as the server reads them, without creating the key file when it is missing."""
    if not settings.secret_keys and not settings.secret_keys_file.exists():
        return []
    try:
        return settings.signing_keys()
    except ConfigError:  # an empty key file: the signing keys check says so
        return []


def _rate_limit_check(settings: Settings) -> Check:
    label = "rate limits"
    if not settings.redis_url:
        return (label, True, f"{settings.rate_limit} per address, counted in each process's memory")
    return _redis_check(settings.redis_url, settings.rate_limit)


def _redis_check(url: str, rate: str) -> Check:
    import redis

    shown = _masked("redis_url", url, None)
    client: Any = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        info = client.info("server")
    except redis.RedisError as exc:
        return (
            "rate limits",
            False,
            f"Cannot reach Redis at {shown} ({exc}): start it, or fix PASSGATE_REDIS_URL. Until then each "
            "process counts in its own memory.",
        )
    finally:
        client.close()
    version = info.get("redis_version", "?")
    return ("rate limits", True, f"{rate} per address, shared through Redis {version} at {shown}")
