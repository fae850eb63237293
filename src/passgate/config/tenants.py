"""A passkey-API tenant's relying party and ceremony policy, checked by one model wherever it is declared:
in the configuration file as `[passkey_tenants.<uuid>]` tables (applied at start-up), or by
`passgate tenant add|update`.

API keys are never part of it: they are made with `passgate api-key add` and only their hash is
stored, so no file holds a key or anything that could be replayed as one.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from passgate.config.relying_party import check_origin, check_rp_id

UserVerification = Literal["required", "preferred", "discouraged"]
ResidentKey = Literal["required", "preferred", "discouraged"]  # W3C WebAuthn L3 §5.4.6
# §5.4.7, without `enterprise` (it is for managed devices, by prior arrangement with the vendor).
Attestation = Literal["none", "indirect", "direct"]
DEFAULT_TIMEOUT_MS = 60_000
MIN_TIMEOUT_MS, MAX_TIMEOUT_MS = 10_000, 600_000
NIL_UUID = str(uuid.UUID(int=0))  # RFC 9562 §5.9; Passgate's own pages use it as their tenant's id
TOML_NAMES = {"origins": "origins", "rp_id": "rp_id"}  # what the messages call a field, by default
_KEY_NAMES = frozenset({"apikey", "apikeys", "apikeyhash", "apikeyfile", "key", "keys", "secret", "secrets"})


class TenantConfig(BaseModel):
    """What a tenant is, after its defaults: `name` (default the RP ID), `rp_name` (default the name),
    `origins` (default `https://<rp_id>`), `user_verification`, `timeout_ms`, `resident_key` (default
    `required`: a passkey) and `attestation` (default `none`). Validate with
    `context={"names": {...}}` to name the fields as the caller knows them (`--origin`)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=200)
    rp_id: str
    rp_name: str = Field(default="", max_length=200)
    origins: list[str] = Field(default_factory=list, validate_default=True)
    user_verification: UserVerification = "required"
    timeout_ms: int = Field(default=DEFAULT_TIMEOUT_MS, ge=MIN_TIMEOUT_MS, le=MAX_TIMEOUT_MS)
    resident_key: ResidentKey = "required"
    attestation: Attestation = "none"

    @field_validator("rp_id")
    @classmethod
    def _rp_id(cls, value: str, info: ValidationInfo) -> str:
        return check_rp_id(value, field=_names(info)["rp_id"])

    @field_validator("origins")
    @classmethod
    def _origins(cls, value: list[str], info: ValidationInfo) -> list[str]:
        rp_id = info.data.get("rp_id")
        if rp_id is None:
            return value  # the RP ID is invalid: that is the message
        origins = [origin.strip().rstrip("/") for origin in value if origin.strip()]
        names = _names(info)
        for origin in origins:
            check_origin(origin, rp_id, field=names["origins"], rp_field=names["rp_id"])
        return origins or [f"https://{rp_id}" if rp_id != "localhost" else "http://localhost"]

    @model_validator(mode="after")
    def _defaults(self) -> TenantConfig:
        self.name = self.name.strip() or self.rp_id
        self.rp_name = self.rp_name.strip() or self.name
        return self


def _names(info: ValidationInfo) -> dict[str, str]:
    given = (info.context or {}).get("names", {})
    return {**TOML_NAMES, **given}


def tenant_id_in_file(text: str) -> str:
    """A declared tenant's id in canonical form; ValueError unless it is a UUID other than the Nil one."""
    try:
        tenant_id = str(uuid.UUID(text))
    except ValueError:
        raise ValueError(
            f"the tenant id {text!r} is not a UUID: give each tenant a fixed one (generate it with "
            "`python -c 'import uuid; print(uuid.uuid4())'`), as [passkey_tenants.<uuid>]."
        ) from None
    if tenant_id == NIL_UUID:
        raise ValueError(f"the tenant id {text!r} is reserved for Passgate's own pages: choose another UUID.")
    return tenant_id


def check_tenant_ids(tenants: dict[str, TenantConfig]) -> dict[str, TenantConfig]:
    """The declared tenants by canonical id; ValueError for an id that is not a UUID or is given twice."""
    found: dict[str, TenantConfig] = {}
    for text, config in tenants.items():
        tenant_id = tenant_id_in_file(text)
        if tenant_id in found:
            raise ValueError(f"the tenant id {tenant_id} is declared twice (ids are not case-sensitive).")
        found[tenant_id] = config
    return found


def describe_errors(exc: ValidationError, names: dict[str, str] | None = None) -> list[str]:
    """One sentence per problem of a TenantConfig, each field called as in `names` (default: its key
    in the file), the same names given to the validation as `context={"names": names}`."""
    return [describe_error(error, names or {}) for error in exc.errors()]


def describe_error(error: Any, names: dict[str, str]) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    label, value, context = names.get(field, field), error.get("input"), error.get("ctx") or {}
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden" and field.lower().replace("_", "").replace("-", "") in _KEY_NAMES:
        return (
            f"{field!r}: API keys are never written in the configuration. Create one with "
            "`passgate api-key add --tenant ID` (shown once, stored hashed)."
        )
    sentences = {
        "extra_forbidden": f"unknown key {field!r} (known: {', '.join(TenantConfig.model_fields)}).",
        "missing": f"{label} is required.",
        "literal_error": f"{label} must be one of {context.get('expected')}, not {value!r}.",
        "greater_than_equal": f"{label} must be at least {context.get('ge')} (it is {value!r}).",
        "less_than_equal": f"{label} must be at most {context.get('le')} (it is {value!r}).",
        "int_parsing": f"{label} must be a whole number, not {value!r}.",
        "int_type": f"{label} must be a whole number, not {value!r}.",
        "string_type": f"{label} must be a string, not {value!r}.",
        "list_type": f'{label} must be a list of origins, such as ["https://shop.example"].',
        "string_too_long": f"{label} is longer than {context.get('max_length')} characters.",
        "model_type": "must be a table of settings (rp_id, origins, …).",
    }
    if kind in sentences:
        return sentences[kind]
    return message if message.startswith(label) or not label else f"{label}: {message}"
