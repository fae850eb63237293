"""E-mail addresses an administrator vouches for (`Remote-Email`): syntax checked, never mailed."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

from passgate.errors import BadRequest


def valid_email(address: str) -> str:
    """The address normalised (RFC 5321/6531 syntax, domain lower-cased and in IDNA form), or
    `400 invalid_email`. Deliverability is not checked: no DNS lookup from an admin command."""
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise BadRequest(f"{address!r} is not an e-mail address: {exc}", code="invalid_email") from None
