"""A Python client of Passgate's passkey API (Hanko-compatible), for the backends that use it.

It imports nothing of the Passgate server: install `passgate` and import `passgate.client` from any
backend. Step-up helpers: `passgate.client.fastapi` (a dependency) and `passgate.client.flask` (a
decorator; `pip install 'passgate[flask]'`).
"""

from passgate.client.api import AsyncPasskeyClient, PasskeyClient
from passgate.client.errors import ApiError, ApiUnavailable, PasskeyError, TokenInvalid
from passgate.client.models import AuditLog, AuditLogPage, Credential, CredentialPage, TokenClaims

__all__ = [
    "ApiError",
    "ApiUnavailable",
    "AsyncPasskeyClient",
    "AuditLog",
    "AuditLogPage",
    "Credential",
    "CredentialPage",
    "PasskeyClient",
    "PasskeyError",
    "TokenClaims",
    "TokenInvalid",
]
