"""Request bodies: the JSON shapes the `/auth` API accepts (also the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

B64Url = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]+$", max_length=16384)]
Name = Annotated[str, StringConstraints(max_length=200)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterBegin(Strict):
    user_name: Name = Field(description="The account's unique name (e.g. an email address).")
    display_name: Name = Field(default="", description="A friendly name shown by authenticators.")


class LoginBegin(Strict):
    user_name: Name | None = Field(
        default=None, description="Omit for usernameless sign-in (and passkey autofill)."
    )


class AttestationResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    clientDataJSON: B64Url
    attestationObject: B64Url
    transports: list[Annotated[str, StringConstraints(max_length=32)]] = Field(
        default_factory=list, max_length=10
    )


class AssertionResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    clientDataJSON: B64Url
    authenticatorData: B64Url
    signature: B64Url
    userHandle: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]*$", max_length=128)] | None = None


class _CredentialJSON(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: B64Url
    rawId: B64Url
    type: Literal["public-key"]
    authenticatorAttachment: str | None = None
    clientExtensionResults: dict[str, Any] = Field(default_factory=dict)


class RegistrationCredential(_CredentialJSON):
    """What `credential.toJSON()` returns after `navigator.credentials.create()`."""

    response: AttestationResponse


class AuthenticationCredential(_CredentialJSON):
    """What `credential.toJSON()` returns after `navigator.credentials.get()`."""

    response: AssertionResponse


class CredentialRef(Strict):
    credential_id: B64Url = Field(description="The passkey's credential id (base64url).")


class Rename(Strict):
    credential_id: B64Url
    name: Name = Field(description="A label for the passkey; empty restores the authenticator's name.")


class DisplayName(Strict):
    display_name: Name = Field(description="The name passkeys and sites show; empty restores the user name.")


class SessionRef(Strict):
    session_id: Annotated[str, StringConstraints(max_length=64)]


class LinkRef(Strict):
    link_id: Annotated[str, StringConstraints(max_length=64)]


class TokenBody(Strict):
    token: Annotated[str, StringConstraints(max_length=4096)] | None = None


class DeviceToken(Strict):
    token: Annotated[str, StringConstraints(max_length=200)] | None = Field(
        default=None,
        description="The link's six-word passphrase (`word.word.word.word.word.word`); defaults to the one "
        "the link set.",
    )


# ---------------------------------------------------------------------------------------------- answers


class CeremonyOptions(BaseModel):
    """WebAuthn options for `PublicKeyCredential.parseCreationOptionsFromJSON` /
    `parseRequestOptionsFromJSON` (give it `publicKey`)."""

    publicKey: dict[str, Any]


class SignedInAnswer(BaseModel):
    """A finished ceremony: the session cookie is set."""

    status: Literal["success"]
    message: str
    user_id: str
    user_name: str


class Me(BaseModel):
    """The signed-in user and their session's last passkey check."""

    user_id: str
    user_name: str
    display_name: str
    session_id: str
    auth_time: int = Field(description="Seconds since the epoch of the session's last passkey check.")
    amr: list[str] = Field(description="RFC 8176 methods of that check (`hwk`/`swk`, `user`, `mfa`).")
    user_verified: bool
    stepup_fresh: bool = Field(description="Whether that check is recent enough for step-up actions.")
