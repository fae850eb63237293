"""The rules for an RP ID and its origins, in one place: for Passgate's own relying party
(`PASSGATE_RP_ID`, `PASSGATE_ORIGINS`) and for every passkey-API tenant's, however it is declared.

An RP ID is a bare domain, never an IP address, and an origin's host is the RP ID or below it: browsers
refuse anything else (W3C WebAuthn L3 §5.1.3 and §5.1.4: the caller's effective domain must be a valid
domain, and the RP ID equal to it or a registrable domain suffix of it). Plain http is a secure context
only on localhost. Each message names the setting or option it is
about (`field`), so the same rule reads right in the environment, the TOML file and the command line.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def check_rp_id(value: str, *, field: str = "PASSGATE_RP_ID") -> str:
    """The RP ID in its canonical form (lower case); ValueError naming `field` otherwise."""
    value = value.strip().lower()
    if not value or "/" in value or ":" in value:
        raise ValueError(
            f"{field} must be a bare domain such as 'example.com' (no scheme, port or path), not {value!r}."
        )
    if is_ip(value):
        raise ValueError(f"{field} cannot be an IP address: browsers refuse it. Use a domain name.")
    return value


def check_origin(
    origin: str, rp_id: str, *, field: str = "PASSGATE_ORIGINS", rp_field: str = "PASSGATE_RP_ID"
) -> None:
    """ValueError naming `field` unless `origin` is https://host[:port] (or http on localhost) with a
    host equal to the RP ID or below it."""
    parts = urlsplit(origin)
    try:
        host, _port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        raise ValueError(f"{field}: {origin!r} has a port that is not a number from 1 to 65535.") from None
    if parts.scheme not in ("http", "https") or not host or parts.path or parts.query or parts.username:
        raise ValueError(
            f"{field}: {origin!r} must look like https://host[:port], with no path "
            "(for example https://login.example.com)."
        )
    if host != rp_id and not host.endswith("." + rp_id):
        raise ValueError(
            f"{field}: {origin!r} does not belong to {rp_field} {rp_id!r}: its host must be {rp_id!r} "
            f"or a subdomain of it. Set {rp_field} to the site's domain or fix {field}."
        )
    if parts.scheme == "http" and host != "localhost" and not host.endswith(".localhost"):
        raise ValueError(
            f"{field}: {origin!r} uses http://, which browsers allow for passkeys only on localhost. "
            "Serve it over https:// (see `passgate cert` for a local certificate)."
        )
