"""Words of the OpenID Connect pages (consent, sign-out confirmation, errors), kept apart from
`strings.py` so the provider's pages can grow without touching every other page's strings."""

from __future__ import annotations

OIDC_PAGE: dict[str, str] = {
    "consent_title": "Allow {app}?",
    "consent_intro": "{app} wants to sign you in with your {rp} account and to see:",
    "consent_scope_openid": "who you are here (an id that never changes)",
    "consent_scope_profile": "your name and user name",
    "consent_scope_email": "the e-mail address on your account",
    "consent_scope_offline_access": "this, even when you are not using it (until you revoke it)",
    "consent_where": "You will go back to {origin}.",
    "consent_remembered": "Passgate remembers your answer. You can revoke it on your account page.",
    "consent_allow": "Allow",
    "consent_deny": "Don't allow",
    "logout_title": "Sign out?",
    "logout_intro": "{app} asks to sign you out of Passgate.",
    "logout_intro_unknown": "An app asks to sign you out of Passgate.",
    "logout_yes": "Sign out",
    "logout_no": "Stay signed in",
    "oidc_error_title": "This sign-in request cannot be used",
    "oidc_error_intro": (
        "The app that sent you here made a request Passgate cannot accept, so you were not sent back to "
        "it. Tell the app's administrator what it says below."
    ),
    "apps_title": "Apps you signed in to",
    "apps_none": "No apps yet.",
    "apps_sees": "Sees: {scopes}",
    "apps_revoke": "Revoke",
}
