"""Settings: read once at start-up from `PASSGATE_*` environment, `.env`, an optional TOML file and
`*_FILE` secrets; validated as a whole so a mistake stops start-up with a message that names the fix.

Precedence (highest first): init arguments, environment, `PASSGATE_*_FILE` files, `.env`, TOML file
(`PASSGATE_CONFIG`, default `./passgate.toml` when present), defaults.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from passgate.config.relying_party import check_origin, check_rp_id, origin_of
from passgate.config.tenants import TenantConfig, check_tenant_ids, describe_error
from passgate.errors import ConfigError
from passgate.gate_config import GateRule, check_cookie_domain, check_return_host, check_rule_names
from passgate.oidc.clients import ClientConfig, check_client_ids

ENV_PREFIX = "PASSGATE_"
SECRET_KEYS_FILE_NAME = "secret-keys"  # noqa: S105 - a file name, not a secret
OIDC_KEYS_FILE_NAME = "oidc-keys.json"
MIN_SECRET_KEY_LENGTH = 32
Algorithm = Literal["ES256", "EdDSA", "RS256"]
DEFAULT_ALGORITHMS: tuple[Algorithm, ...] = ("ES256", "EdDSA", "RS256")
DATABASE_SCHEMES = frozenset({"sqlite", "postgresql", "postgres", "postgresql+psycopg"})
REDIS_SCHEMES = frozenset({"redis", "rediss", "redis+unix"})


def _split_list(value: Any, name: str = "") -> Any:
    """Accept a JSON list or a comma/newline-separated string for list settings."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{ENV_PREFIX}{name.upper()} starts with '[' but is not a JSON list ({exc.msg}); "
                    'write ["a", "b"] or a plain comma-separated list.'
                ) from None
        return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]
    return value


class _SecretFilesSource(PydanticBaseSettingsSource):
    """`PASSGATE_<NAME>_FILE=/path` reads the setting's value from that file (Docker/K8s secrets)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        path = os.environ.get(f"{ENV_PREFIX}{field_name.upper()}_FILE")
        if not path:
            return None, field_name, False
        try:
            return Path(path).read_text(encoding="utf-8").strip(), field_name, False
        except OSError as exc:
            raise ConfigError(
                f"{ENV_PREFIX}{field_name.upper()}_FILE points to {path!r}, "
                f"which cannot be read ({exc.strerror})."
            ) from exc

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    """Every setting Passgate reads; `docs/configuration.md` documents each one."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        extra="ignore",
        validate_default=True,
    )

    rp_id: str = "localhost"
    rp_name: str = "Passgate"
    port: int = Field(default=8000, ge=1, le=65535)
    host: str = "127.0.0.1"
    origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    public_url: str = ""
    data_dir: Path = Path("passgate-data")
    database_url: str = ""
    database_timeout: float = Field(default=5.0, gt=0, le=60)
    secret_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    user_verification: Literal["required", "preferred", "discouraged"] = "preferred"
    algorithms: Annotated[list[Algorithm], NoDecode] = Field(default_factory=lambda: list(DEFAULT_ALGORITHMS))
    registration_open: bool = True
    challenge_ttl: int = Field(default=300, ge=30, le=3600)
    ceremony_timeout_ms: int = Field(default=120_000, ge=10_000, le=600_000)
    session_idle_timeout: int = Field(default=14 * 86400, ge=60)
    session_max_age: int = Field(default=90 * 86400, ge=300)
    stepup_max_age: int = Field(default=300, ge=0)
    device_link_ttl: int = Field(default=24 * 3600, ge=60, le=30 * 86400)
    max_body_bytes: int = Field(default=64 * 1024, ge=4096)
    max_header_bytes: int = Field(default=64 * 1024, ge=8192, le=1024 * 1024)  # `passgate serve` only
    header_timeout: float = Field(default=10.0, gt=0, le=300)
    idle_timeout: float = Field(default=60.0, gt=0, le=3600)
    body_timeout: float = Field(default=30.0, gt=0, le=600)
    max_connections: int = Field(default=1000, ge=2, le=1_000_000)
    rate_limit: str = "120/minute"
    redis_url: str = ""
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cookie_domain: str = ""
    return_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    revocation_window: float = Field(default=5.0, ge=0, le=300)
    forward_auth_rules: dict[str, GateRule] = Field(default_factory=dict)
    oidc_clients: dict[str, ClientConfig] = Field(default_factory=dict)
    oidc_code_ttl: int = Field(default=60, ge=10, le=600)
    oidc_access_token_ttl: int = Field(default=600, ge=60, le=86400)
    oidc_refresh_token_ttl: int = Field(default=30 * 86400, ge=3600)
    passkey_tenants: dict[str, TenantConfig] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = os.environ.get(f"{ENV_PREFIX}CONFIG", "passgate.toml")
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            env_settings,
            _SecretFilesSource(settings_cls),
            dotenv_settings,
        ]
        if Path(toml_path).is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        elif f"{ENV_PREFIX}CONFIG" in os.environ:
            raise ConfigError(f"{ENV_PREFIX}CONFIG points to {toml_path!r}, which does not exist.")
        return tuple(sources)

    @field_validator("origins", "secret_keys", "algorithms", "trusted_proxies", "return_hosts", mode="before")
    @classmethod
    def _lists(cls, value: Any, info: ValidationInfo) -> Any:
        return _split_list(value, info.field_name or "")

    @field_validator("rp_id")
    @classmethod
    def _rp_id(cls, value: str) -> str:
        return check_rp_id(value)

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        from limits import parse

        try:
            parse(value)
        except ValueError:
            raise ValueError(
                f"PASSGATE_RATE_LIMIT {value!r} is not a rate such as '120/minute' or '10/second'."
            ) from None
        return value

    @field_validator("data_dir")
    @classmethod
    def _data_dir(cls, value: Path) -> Path:
        """Absolute from the start (a relative path is taken from the working directory, once), so every
        message, `doctor` and the start-up line show where the data really is."""
        path = value.expanduser()
        if path.exists() and not path.is_dir():
            raise ValueError(f"PASSGATE_DATA_DIR {str(path)!r} is a file; point it at a directory.")
        return path if path.is_absolute() else Path.cwd() / path

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        value = value.strip()
        if not value:
            return value
        fix = (
            "use postgresql://user:password@host:5432/db or sqlite:////absolute/path.db, or leave it unset "
            "for SQLite in the data directory."
        )
        if "://" not in value:
            raise ValueError(f"PASSGATE_DATABASE_URL is not a URL: {fix}")
        scheme = value.partition("://")[0].lower()
        if scheme not in DATABASE_SCHEMES:
            raise ValueError(
                f"PASSGATE_DATABASE_URL starts with {scheme}://, which Passgate does not support: {fix}"
            )
        from sqlalchemy.engine import make_url

        try:
            make_url(value)
        except Exception:  # ArgumentError, or ValueError for a port that is not a number
            raise ValueError(
                f"PASSGATE_DATABASE_URL cannot be read as a {scheme}:// URL (check the port and any "
                f"special characters in the password, which must be percent-encoded): {fix}"
            ) from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str) -> str:
        import importlib.util

        value = value.strip()
        scheme = value.partition("://")[0].lower() if "://" in value else ""
        if value and scheme not in REDIS_SCHEMES:
            shown = f"not {scheme}://" if scheme else "and this is not a URL"
            raise ValueError(
                "PASSGATE_REDIS_URL must start with redis://, rediss:// or redis+unix:// "
                f"(such as redis://127.0.0.1:6379/0), {shown}."
            )
        if value and importlib.util.find_spec("redis") is None:
            raise ValueError(
                "PASSGATE_REDIS_URL needs the Redis client: install Passgate with "
                "`pip install 'passgate[redis]'`."
            )
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"PASSGATE_TRUSTED_PROXIES entry {item!r} is not an IP address or CIDR range."
                ) from None
        return value

    @field_validator("passkey_tenants")
    @classmethod
    def _passkey_tenants(cls, value: dict[str, TenantConfig]) -> dict[str, TenantConfig]:
        return check_tenant_ids(value)

    @field_validator("return_hosts")
    @classmethod
    def _return_hosts(cls, value: list[str]) -> list[str]:
        return [check_return_host(item) for item in value]

    @model_validator(mode="after")
    def _derive_and_check(self) -> Settings:
        if not self.origins:
            self.origins = [f"http://localhost:{self.port}"]
        self.origins = [origin.rstrip("/") for origin in self.origins]
        for origin in self.origins:
            check_origin(origin, self.rp_id)
        if not self.public_url:
            self.public_url = self.origins[0]
        self.public_url = self.public_url.rstrip("/")
        _check_public_url(self.public_url)
        check_origin(origin_of(self.public_url), self.rp_id, field="PASSGATE_PUBLIC_URL")
        if not self.algorithms:
            raise ValueError("PASSGATE_ALGORITHMS is empty: list at least ES256.")
        if self.session_idle_timeout > self.session_max_age:
            raise ValueError("PASSGATE_SESSION_IDLE_TIMEOUT cannot exceed PASSGATE_SESSION_MAX_AGE.")
        if "secret_keys" in self.model_fields_set and not self.secret_keys:
            raise ValueError(
                "PASSGATE_SECRET_KEYS is set but empty. Unset it to let Passgate generate keys into the data "
                "directory, or list at least one key (generate one with `passgate keys generate`)."
            )
        for key in self.secret_keys:
            if len(key.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
                raise ValueError(
                    f"Every PASSGATE_SECRET_KEYS entry needs at least {MIN_SECRET_KEY_LENGTH} characters; "
                    "generate one with `passgate keys generate`."
                )
        self.cookie_domain = check_cookie_domain(
            self.cookie_domain, public_url=self.public_url, origins=self.origins
        )
        check_rule_names(self.forward_auth_rules)
        check_client_ids(self.oidc_clients)
        return self

    @property
    def secure_cookies(self) -> bool:
        """Cookies are `Secure` (and `__Host-`) when the public URL is https."""
        return self.public_url.startswith("https://")

    @property
    def session_cookie_name(self) -> str:
        """`__Host-passgate` on https; `__Secure-passgate` when the cookie is shared with a whole domain
        (`PASSGATE_COOKIE_DOMAIN`), since `__Host-` forbids `Domain=` (RFC 6265bis §4.1.3)."""
        if not self.secure_cookies:
            return "passgate"
        return "__Secure-passgate" if self.cookie_domain else "__Host-passgate"

    @cached_property
    def sqlalchemy_url(self) -> str:
        """The database URL in SQLAlchemy's form (sync drivers: sqlite3 and psycopg 3)."""
        url = self.database_url or f"sqlite:///{(self.data_dir / 'passgate.db').as_posix()}"
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def secret_keys_file(self) -> Path:
        return self.data_dir / SECRET_KEYS_FILE_NAME

    @property
    def oidc_keys_file(self) -> Path:
        """The OpenID Connect signing keys (private JWK set), created on first use."""
        return self.data_dir / OIDC_KEYS_FILE_NAME

    def signing_keys(self) -> list[bytes]:
        """The configured keys, or those in the data directory (created on first use)."""
        if self.secret_keys:
            return [key.get_secret_value().encode() for key in self.secret_keys]
        return [line.encode() for line in read_or_create_key_file(self.secret_keys_file)]


def new_secret_key() -> str:
    return secrets.token_urlsafe(48)


def read_or_create_key_file(path: Path) -> list[str]:
    """Read the key list (one per line, first signs); create it with one fresh key when missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(new_secret_key() + "\n")
    keys = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not keys:
        raise ConfigError(
            f"{path} (the signing keys in PASSGATE_DATA_DIR) holds no keys: delete it to generate a new one, "
            "or set PASSGATE_SECRET_KEYS."
        )
    return keys


def _check_public_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(
            f"PASSGATE_PUBLIC_URL {url!r} must be the address people open, such as https://login.example.com "
            "(http:// or https://, a host, no query)."
        )


def load_settings(**overrides: Any) -> Settings:
    """Build and validate settings; any mistake becomes one ConfigError naming the fix."""
    import tomllib

    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [_describe_error(error) for error in exc.errors()]
        raise ConfigError("Invalid configuration:\n  " + "\n  ".join(lines)) from None
    except SettingsError as exc:  # a JSON setting (rules, lists) that does not parse
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"{ENV_PREFIX}{field[1].upper()}" if field else "A setting"
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise ConfigError(
            f"Invalid configuration:\n  {name} is not valid JSON{cause}; "
            "see docs/configuration.md for its form."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        path = os.environ.get(f"{ENV_PREFIX}CONFIG", "passgate.toml")
        raise ConfigError(
            f"Invalid configuration:\n  {path} is not valid TOML ({exc}); fix that line."
        ) from None


def _describe_error(error: Any) -> str:
    """One sentence for one pydantic error: the setting's variable name, what is wrong, what is wanted."""
    location = [str(part) for part in error["loc"]]
    name = f"{ENV_PREFIX}{location[0].upper()}" if location else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not name:
        return message
    kind, context = error["type"], error.get("ctx") or {}
    value = error.get("input")
    if location[0] == "passkey_tenants" and len(location) > 1:
        inner = {**error, "loc": tuple(error["loc"][2:])}
        return f"{name}: the tenant {location[1]!r}: {describe_error(inner, {})}"
    if location[0] == "forward_auth_rules" and len(location) > 1:
        rule = f"{name}: the rule {location[1]!r}"
        if kind == "extra_forbidden" and len(location) > 2:
            return f"{rule} has an unknown key {location[2]!r} (known: {', '.join(GateRule.model_fields)})."
        return f"{rule}: {message}." if not message.endswith(".") else f"{rule}: {message}"
    friendly = {
        "int_parsing": f"{name} must be a whole number, not {value!r}.",
        "float_parsing": f"{name} must be a number, not {value!r}.",
        "bool_parsing": f"{name} must be true or false, not {value!r}.",
        "greater_than_equal": f"{name} must be at least {context.get('ge')} (it is {value!r}).",
        "less_than_equal": f"{name} must be at most {context.get('le')} (it is {value!r}).",
        "literal_error": f"{name} must be one of {context.get('expected')}, not {value!r}.",
        "json_invalid": f"{name} is not valid JSON ({context.get('error', message)}).",
        "dict_type": (
            f"{name} must be a table of tenants by id, such as [passkey_tenants.<uuid>] in the TOML file."
            if location[0] == "passkey_tenants"
            else f"{name} must be a JSON object of named rules, such as "
            '{"admins": {"groups": ["admins"]}}.'
        ),
    }
    if kind in friendly:
        return friendly[kind]
    if (
        message.startswith(name)
        or message.startswith(ENV_PREFIX)
        or message.startswith("Every " + ENV_PREFIX)
    ):
        return message
    return f"{name}: {message}"
