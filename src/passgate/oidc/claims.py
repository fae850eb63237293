"""What the tokens say about the person and the passkey check behind them.

`acr` (OIDC Core §2) takes one of two values, both about the check the session last passed:

- `urn:passgate:acr:passkey` — a passkey assertion, user verification not established;
- `urn:passgate:acr:passkey-uv` — a passkey assertion with user verification (the authenticator checked
  a PIN or biometric: two factors). Asked for in `acr_values`, it also needs that check to be within
  `PASSGATE_STEPUP_MAX_AGE`, else Passgate asks for a fresh one.

`amr` (RFC 8176) lists the methods of that check: `hwk` (a device-bound key) or `swk` (a synced passkey,
a key that can leave the device), plus `user` and `mfa` when the user was verified.
"""

from __future__ import annotations

from typing import Any

ACR_PASSKEY = "urn:passgate:acr:passkey"
ACR_PASSKEY_UV = "urn:passgate:acr:passkey-uv"
ACR_VALUES = (ACR_PASSKEY, ACR_PASSKEY_UV)
CLAIMS = (
    "iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "at_hash", "acr", "amr", "sid",
    "name", "preferred_username", "email", "email_verified",
)  # fmt: skip


def acr_for(user_verified: bool) -> str:
    return ACR_PASSKEY_UV if user_verified else ACR_PASSKEY


def amr_list(amr: str) -> list[str]:
    return amr.split()


def wants_uv(acr_values: str | None) -> bool:
    """Whether the client asked for the user-verified class (OIDC Core §3.1.2.1: acr_values in order of
    preference; we meet the strongest one we know that it names)."""
    return ACR_PASSKEY_UV in (acr_values or "").split()


def user_claims(
    *, user_id: str, user_name: str, display_name: str, email: str | None, scopes: list[str]
) -> dict[str, Any]:
    """Claims for the scopes (OIDC Core §5.4). `sub` is the user's id: never reused, never changes.
    `email` is an address an administrator set; nobody proved the person owns it, so `email_verified`
    is false."""
    claims: dict[str, Any] = {"sub": user_id}
    if "profile" in scopes:
        claims["name"] = display_name or user_name
        claims["preferred_username"] = user_name
    if "email" in scopes and email:
        claims["email"] = email
        claims["email_verified"] = False
    return claims
