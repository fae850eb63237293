"""`passgate doctor`: the effective configuration (secrets masked) and every check with its verdict."""

from __future__ import annotations

from collections.abc import Callable

from passgate.config import Settings, load_settings
from passgate.errors import ConfigError

Echo = Callable[[str], object]
SECRET_FIELDS = frozenset({"secret_keys", "database_url", "redis_url"})


def _masked(name: str, value: object, settings: Settings) -> str:
    if name == "secret_keys":
        count = len(settings.secret_keys)
        return (
            f"[{count} key(s) from environment]" if count else f"[generated in {settings.secret_keys_file}]"
        )
    if name in SECRET_FIELDS and value:
        from sqlalchemy.engine import make_url

        try:
            return make_url(str(value)).render_as_string(hide_password=True)
        except Exception:
            return "***"
    return str(value)


def run_checks(echo: Echo) -> bool:
    """Print configuration and checks; True when every check passed."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        echo("✘ configuration")
        echo(exc.message)
        return False
    echo("Effective configuration:")
    for name in type(settings).model_fields:
        echo(f"  PASSGATE_{name.upper():<22} {_masked(name, getattr(settings, name), settings)}")
    checks: list[tuple[str, bool, str]] = [
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
    ]
    checks.append(_database_check(settings))
    if checks[-1][1]:  # the database answered
        checks.extend(_name_clash_checks(settings))
    checks.append(_keys_check(settings))
    ok = True
    echo("Checks:")
    for label, passed, detail in checks:
        ok = ok and passed
        echo(f"  {'✔' if passed else '✘'} {label}: {detail}")
    return ok


def _database_check(settings: Settings) -> tuple[str, bool, str]:
    from passgate.store.database import Database

    database = Database(settings.sqlalchemy_url)
    try:
        database.check()
        return ("database reachable", True, database.safe_url())
    except ConfigError as exc:
        return ("database reachable", False, exc.message)
    finally:
        database.dispose()


def _keys_check(settings: Settings) -> tuple[str, bool, str]:
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
