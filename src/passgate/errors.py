"""One error tree for every layer. Each error knows its stable `code`, its HTTP status and a safe
message for people; the underlying cause (a library's message) is kept for logs only.

    PassgateError
    ├── ConfigError               start-up configuration is wrong (never an HTTP answer)
    ├── BadRequest          400   malformed input: JSON, types, base64url, sizes
    │   ├── CeremonyFailed  400   a WebAuthn response failed verification (one message for all reasons)
    │   └── LinkInvalid     400   a device link is unknown, used or expired
    ├── NotAuthenticated    401   no valid session
    │   └── DuplicateCookie 401   the session cookie sent twice (refused, never first or last wins)
    ├── ReauthRequired      401   a fresh passkey check is needed (step-up)
    ├── Forbidden           403   signed in but not allowed
    ├── NotFound            404
    ├── Conflict            409   e.g. a user name already taken
    ├── PayloadTooLarge     413
    ├── RateLimited         429
    └── ServiceUnavailable  503   try again shortly (with `Retry-After`)
        ├── DatabaseBusy    503   the database stayed locked or busy for PASSGATE_DATABASE_TIMEOUT
        └── DatabaseUnavailable 503 the database cannot be reached or used

The passkey API's errors (at the end) subclass these with Hanko's titles as their messages.
"""

from __future__ import annotations


class PassgateError(Exception):
    status = 500
    code = "internal_error"
    message = "Something went wrong."

    def __init__(self, message: str | None = None, *, code: str | None = None, detail: str | None = None):
        self.message = message or type(self).message
        if code:
            self.code = code
        self.detail = detail  # for logs only
        super().__init__(self.message)

    def to_json(self) -> dict[str, str]:
        return {"error": self.message, "code": self.code}

    def to_problem(self) -> dict[str, str | int]:
        """The passkey API's shape (Hanko's): `details` is the public part only; an internal error has
        none, as Hanko's has not."""
        if self.status >= 500:
            return {"title": "Internal Server Error", "status": 500}
        return {
            "title": self.message,
            "details": str(getattr(self, "public_details", "")),
            "status": self.status,
        }


class ConfigError(PassgateError):
    code = "config_error"
    message = "Invalid configuration."


class BadRequest(PassgateError):
    status = 400
    code = "bad_request"
    message = "The request is not valid."


class CeremonyFailed(BadRequest):
    code = "ceremony_failed"
    message = "The passkey could not be verified."


class SignInFailed(CeremonyFailed):
    """Deliberately identical for unknown credentials, wrong users and bad signatures."""

    code = "sign_in_failed"
    message = "Sign-in failed. Try again or use another passkey."


class LinkInvalid(BadRequest):
    code = "link_invalid"
    message = "This device link is invalid, already used or expired. Ask for a new one."


class NotAuthenticated(PassgateError):
    status = 401
    code = "not_authenticated"
    message = "Not signed in."


class DuplicateCookie(NotAuthenticated):
    code = "duplicate_cookie"
    message = "Your browser sent the sign-in cookie twice. Clear this site's cookies, then sign in again."


class ReauthRequired(PassgateError):
    status = 401
    code = "reauth_required"
    message = "Confirm it's you with your passkey to continue."


class Forbidden(PassgateError):
    status = 403
    code = "forbidden"
    message = "Not allowed."


class NotFound(PassgateError):
    status = 404
    code = "not_found"
    message = "Not found."


class Conflict(PassgateError):
    status = 409
    code = "conflict"
    message = "That conflicts with the current state."


class PayloadTooLarge(PassgateError):
    status = 413
    code = "payload_too_large"
    message = "The request body is too large."


class RateLimited(PassgateError):
    status = 429
    code = "rate_limited"
    message = "Too many attempts. Wait a minute and try again."


class ServiceUnavailable(PassgateError):
    status = 503
    code = "service_unavailable"
    message = "The service is unavailable right now. Try again in a moment."
    retry_after = 5  # seconds, sent as `Retry-After`


class DatabaseBusy(ServiceUnavailable):
    """SQLite's write lock (or a PostgreSQL conflict) outlasted the bounded wait; nothing was changed."""

    code = "database_busy"
    message = "The service is busy. Try again in a moment."
    retry_after = 1


class DatabaseUnavailable(ServiceUnavailable):
    """The database is down, restarting or unusable; nothing was changed. Never an allow at the gate."""

    code = "database_unavailable"
    message = "The service is temporarily unavailable. Try again in a moment."


# ------------------------------------------------------------------ the passkey API (Hanko's titles)
# Their `message` is Hanko's error title (`web/routes/passkey_api.py` answers `{"title","details","status"}`).


class RequestInvalid(BadRequest):
    code = "invalid_request"
    message = "unable to validate request"

    def __init__(self, public_details: str):
        super().__init__(detail=public_details)
        self.public_details = public_details


class AuditLogsInvalid(BadRequest):
    code = "invalid_query"
    message = "unable to list audit logs"

    def __init__(self, public_details: str):
        super().__init__(detail=public_details)
        self.public_details = public_details


class RequestUnreadable(BadRequest):
    code = "invalid_json"
    message = "unable to process request"


class UserNotFound(NotFound):
    code = "user_not_found"
    message = "user not found"


class NoCredentials(BadRequest):
    code = "no_credentials"
    message = "user has no suitable credentials for this operation"


class MfaCredentialRefused(BadRequest):
    """An MFA credential (registered through `mfa/registration`) used for a passkey login or a
    transaction: it proves possession only. Refused after its assertion verified, so that the answer
    tells nothing to whoever does not hold the authenticator."""

    code = "mfa_credential_refused"
    message = "MFA credentials are not usable for normal login"


class MfaCredentialRefusedForTransaction(MfaCredentialRefused):
    message = "MFA credentials are not usable for transactions"


class TransactionExists(Conflict):
    code = "transaction_exists"
    message = "transaction already exists"


class CredentialNotFound(NotFound):
    code = "credential_not_found"

    def __init__(self, credential_id: str):
        super().__init__(f"credential with id '{credential_id[:200]}' not found")


class CreationUnreadable(CeremonyFailed):
    message = "unable to parse credential creation response"


class AssertionUnreadable(CeremonyFailed):
    message = "unable to finish login"


class RegistrationChallengeUnknown(CeremonyFailed):
    message = "received challenge does not match with any stored one"


class AttestationFailed(CeremonyFailed):
    message = "failed to validate attestation"


class SessionDataMissing(NotAuthenticated):
    """Hanko answers 401 when no ceremony matches an assertion's challenge."""

    code = "ceremony_unknown"
    message = "failed to get session data"
    public_details = "received challenge does not match with any stored one"


class AssertionFailed(NotAuthenticated):
    """One answer for an unknown credential, another tenant's, a wrong user, a bad signature, a sign
    count that went back, or a flagged credential (W3C WebAuthn L3 §14.6.2)."""

    code = "assertion_failed"
    message = "failed to validate assertion"


class TenantIdInvalid(BadRequest):
    code = "tenant_id_invalid"
    message = "tenant_id must be a valid uuid4"


class TenantNotFound(NotFound):
    code = "tenant_not_found"
    message = "tenant not found"


class ApiKeyInvalid(NotAuthenticated):
    code = "api_key_invalid"
    message = "The api key is invalid"
    public_details = "api keys needs to be an apiKey Header and 32 byte long"


class ApiKeyMissing(NotAuthenticated):
    code = "api_key_missing"
    message = "api key is missing"
