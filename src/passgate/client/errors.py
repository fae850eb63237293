"""The client's exceptions. Each carries the `title`, `details` and `status` of the problem, as the
passkey API's error bodies do (`{"title","details","status"}`)."""

from __future__ import annotations


class PasskeyError(Exception):
    """Base of every error of `passgate.client`."""

    def __init__(self, title: str, details: str = "", status: int = 0) -> None:
        super().__init__(f"{status} {title}: {details}" if details else f"{status} {title}")
        self.title = title
        self.details = details
        self.status = status

    def problem(self) -> dict[str, str | int]:
        """The error as the API's JSON body."""
        return {"title": self.title, "details": self.details, "status": self.status}


class ApiError(PasskeyError):
    """The passkey API answered with an error (4xx/5xx); `status` is its HTTP status."""


class ApiUnavailable(PasskeyError):
    """The passkey API could not be reached, or answered something that is not its JSON (status 502)."""

    def __init__(self, details: str) -> None:
        super().__init__("passkey API unavailable", details, 502)


class TokenInvalid(PasskeyError):
    """A finalize token failed verification (signature, key, audience, tenant, age, UV, transaction).
    Status 401: whoever presented it has not proven the passkey check."""

    def __init__(self, details: str) -> None:
        super().__init__("invalid passkey token", details, 401)
