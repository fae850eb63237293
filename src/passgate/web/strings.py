"""Every word the pages show, in one place, so a translation is one more dict.

`PAGE[locale]` holds what the templates render; `SCRIPT[locale]` what the browser module shows (it gets
only that part, as JSON in the page). Placeholders are `{name}`, filled by `str.format` in templates and
by `t(key, values)` in the module. Error messages are keyed by the DOMException name (`dom_*`) or the
server's stable `code` (`code_*`): each says what happened and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping

DEFAULT_LOCALE = "en"

PAGE: dict[str, dict[str, str]] = {
    "en": {
        # layout
        "skip_to_content": "Skip to content",
        "nav_label": "Account",
        "nav_sign_in": "Sign in",
        "nav_sign_up": "Create account",
        "nav_account": "Your account",
        "nav_sign_out": "Sign out",
        "footer_selftest": "Passkeys not working? Check this browser",
        "footer_home": "Demo page",
        # the demo page at /
        "index_title": "Passkey demo",
        "index_intro": (
            "Try the API in one place: each button calls /auth and shows its answer. The full pages are "
            "Sign in, Create account and Your account, at the top."
        ),
        "index_try": "Try it",
        "index_name": "Name",
        "index_sign_up": "Sign Up",
        "index_sign_in": "Sign In",
        "index_who": "Who Am I?",
        "index_sign_out": "Sign Out",
        "index_response": "Response",
        "index_more": "The full pages: {signin}, {signup} and {account}.",
        # sign-in
        "signin_title": "Sign in",
        "signin_signed_in_title": "You are signed in",
        "signin_intro": (
            "Use the passkey saved on this device, your phone or a security key. No password needed."
        ),
        "signin_name_label": "Your name",
        "signin_name_hint": "Pick your passkey from the suggestions, or use the button.",
        "signin_button": "Sign in with a passkey",
        "signin_no_account": "No account yet?",
        "signin_create": "Create one with a passkey",
        "signin_return_to": "After signing in you will go back to {host}.",
        "signin_return_refused": (
            "The link asked to send you on to {host} afterwards. That address is not on this server's "
            "allowed list, so you will stay here."
        ),
        "signin_signed_in_as": "You are signed in as",
        "signin_reauth": "{host} asks you to confirm it's you with your passkey again.",
        "signin_continue": "Continue to {host}",
        "signin_recheck": "Confirm with your passkey and continue",
        "signin_manage": "Manage your passkeys",
        "signin_switch": "Sign in as someone else",
        "signin_signed_out": "You are signed out.",
        # sign-up
        "signup_title": "Create your account",
        "signup_intro": (
            "Your device will offer to save a passkey, unlocked with your fingerprint, face, screen lock or "
            "security key. There is no password to remember."
        ),
        "signup_name_label": "Name or email",
        "signup_name_hint": "You will use this to recognise your account.",
        "signup_display_label": "Display name (optional)",
        "signup_display_hint": "Shown next to your passkey, for example “Ada Lovelace”.",
        "signup_button": "Create account with a passkey",
        "signup_have_account": "Already have an account?",
        "signup_sign_in": "Sign in",
        "signup_closed": "Sign-up is closed here. Ask an administrator for a device link to get started.",
        # account
        "account_title": "Your account",
        "account_signed_in_as": "Signed in as",
        "account_groups": "Groups",
        "account_welcome": "Welcome! Your account is ready and you are signed in.",
        "passkeys_title": "Passkeys",
        "passkeys_intro": "Each passkey lets you sign in. Keep at least two, on different devices.",
        "passkeys_add": "Add a passkey on this device",
        "passkey_synced": "Synced",
        "passkey_synced_hint": "Backed up by your password manager; works on your other devices too",
        "passkey_can_sync": "Can sync",
        "passkey_device_bound": "This device only",
        "passkey_device_bound_hint": "Lives only on one device or security key",
        "passkey_current": "Used for this session",
        "passkey_flagged": "Blocked: possibly cloned",
        "passkey_created": "Added {when}",
        "passkey_last_used": "last used {when}",
        "passkey_never_used": "not used yet",
        "passkey_rename": "Rename",
        "passkey_rename_label": "New name for “{name}”",
        "passkey_save": "Save",
        "passkey_cancel": "Cancel",
        "passkey_remove": "Remove",
        "passkey_remove_label": "Remove “{name}”",
        "passkey_unblock": "Unblock",
        "passkey_unblock_label": "Unblock “{name}”",
        "passkey_rename_aria": "Rename “{name}”",
        "warning_one": (
            "You have only one passkey. If you lose this device you will need an administrator to get "
            "back in."
        ),
        "warning_device_bound": (
            "All your passkeys live on single devices (none is synced). Losing that device locks you out."
        ),
        "warning_fix": "Add a phone or another device",
        "device_title": "Add a phone or another device",
        "device_intro": (
            "Create a one-time link, then open it on the other device (scan the QR code, or type the six "
            "words there) to save a passkey on it."
        ),
        "device_create": "Create a device link",
        "device_qr_alt": "QR code of the device link",
        "device_url_label": "Link",
        "device_copy": "Copy link",
        "device_passphrase": "Or type these words on the other device at {url}:",
        "device_rules": "Works once, until {when}. Anyone with the link can add a passkey to your account.",
        "sessions_title": "Where you are signed in",
        "session_this": "This browser",
        "session_unknown_device": "Unknown device",
        "session_browser_on": "{browser} on {system}",
        "ago_now": "just now",
        "ago_minute": "a minute ago",
        "ago_minutes": "{n} minutes ago",
        "ago_hour": "an hour ago",
        "ago_hours": "{n} hours ago",
        "ago_day": "yesterday",
        "ago_days": "{n} days ago",
        "ago_date": "on {date}",
        "session_details": "{ip} · signed in {when} · active {active}",
        "session_passkey": "with “{name}”",
        "session_removed_passkey": "with a passkey that was removed",
        "session_end": "Sign out",
        "session_end_label": "Sign out {device}",
        "sessions_end_all": "Sign out everywhere",
        "links_title": "Device links not used yet",
        "links_intro": "Anyone with one of these links can add a passkey to your account until it expires.",
        "links_by_this": "made on this device",
        "links_by_other": "made on another of your devices",
        "links_by_admin": "made by an administrator",
        "links_details": "{by} {when} · expires {expires}",
        "links_revoke": "Revoke",
        "links_revoke_label": "Revoke the device link made {when}",
        "profile_title": "Your name",
        "profile_display_label": "Display name",
        "profile_display_hint": "Shown by your passkeys and to the sites you sign in to.",
        "profile_save": "Save name",
        # device landing
        "landing_title": "Add this device",
        "landing_intro": (
            "A device link lets you save a passkey on this device for an account you already have. Open the "
            "link you were given, or type its six words below."
        ),
        "landing_checking": "Checking your link…",
        "landing_button": "Save a passkey on this device",
        "landing_invalid": (
            "This device link can't be used: it has expired, was already used, or the words were mistyped. "
            "Check the six words and try again. If it still fails, ask whoever gave you the link for a new "
            "one, or, if you are signed in on another device, create one there (Your account → Add a phone "
            "or another device)."
        ),
        "landing_words_label": "The six words from your other device",
        "landing_words_hint": "For example: apple.river.stone.cloud.lamp.tiger",
        "landing_words_button": "Continue",
        "landing_go_account": "Go to your account",
        # self-test
        "selftest_title": "Passkey self-test",
        "selftest_intro": (
            "What this browser reports, next to what the server expects. A mismatch below is the usual "
            "reason sign-in fails."
        ),
        "selftest_verdict": "Verdict",
        "selftest_browser": "This browser",
        "selftest_server": "This server",
        "selftest_origin": "Page origin",
        "selftest_secure": "Secure context",
        "selftest_webauthn": "WebAuthn available",
        "selftest_json": "JSON helpers",
        "selftest_conditional": "Passkey autofill (conditional mediation)",
        "selftest_platform": "Built-in authenticator (platform, with user verification)",
        "selftest_capabilities": "What this browser can do with passkeys",
        "selftest_rp_id": "RP ID",
        "selftest_origins": "Allowed origins",
        "selftest_public_url": "Public URL",
        "selftest_uv": "User verification",
        "selftest_algorithms": "Algorithms",
        "selftest_checking": "Checking…",
        "selftest_nojs": "The checks need JavaScript.",
        # not found
        "notfound_title": "Page not found",
        "notfound_text": "There is no page at {path}. The address may be mistyped, or the page has moved.",
        "notfound_signin": "Go to sign-in",
        "notfound_account": "Go to your account",
    }
}

SCRIPT: dict[str, dict[str, str]] = {
    "en": {
        "yes": "yes",
        "no": "no",
        "unknown": "unknown",
        "not_supported": "not supported",
        "working": "Working…",
        "code": "Code: {code}",
        # the demo page's plain status lines
        "index_working": "{label}…",
        "index_done": "{label}: done.",
        "index_failed": "{label} failed: {message}",
        "index_sign_up": "Sign up",
        "index_sign_in": "Sign in",
        "index_who": "Who am I",
        "index_sign_out": "Sign out",
        # outcomes
        "signed_in": "Signed in as {name}.",
        "signed_up": "Account created. You are signed in as {name}.",
        "signed_out": "You are signed out.",
        "redirecting": "Signed in. Taking you back to {host}…",
        "name_needed": "Enter a name for your account.",
        "passkey_added": "Passkey added.",
        "passkey_renamed": "Passkey renamed.",
        "passkey_removed": "Passkey removed.",
        "passkey_unblocked": "Passkey unblocked. It can sign in again.",
        "session_ended": "That session is signed out.",
        "display_saved": "Name saved.",
        "link_copied": "Link copied.",
        "link_copy_failed": "Copy did not work; select the link and copy it yourself.",
        "link_expires": "Works once, until {when}.",
        "confirm_remove": (
            "Remove the passkey “{name}”? You can no longer sign in with it, every device signed in with "
            "it is signed out, and unused device links stop working."
        ),
        "confirm_end_all": (
            "Sign out on every device, including this one? Unused device links stop working too."
        ),
        "link_revoked": "That device link no longer works.",
        "confirm_yes_remove": "Remove",
        "confirm_unblock": (
            "Unblock “{name}”? It was blocked because its sign-in counter went backwards, which can mean "
            "the passkey was copied. Unblock it only if you trust every device that holds it; "
            "otherwise remove it."
        ),
        "confirm_yes_unblock": "Unblock",
        "confirm_yes_end_all": "Sign out everywhere",
        # step-up
        "stepup_title": "Confirm it's you",
        "stepup_text": "This change needs a fresh check with your passkey. Nothing you entered is lost.",
        "stepup_button": "Confirm with passkey",
        "stepup_cancel": "Cancel",
        "stepup_cancelled": "Nothing changed: the passkey check was cancelled.",
        "landing_for": "Save a passkey for {name} on this device. You will be signed in here afterwards.",
        "landing_rules": "This link works once, until {when}.",
        "landing_done": "Done. This device has a passkey now and you are signed in as {name}.",
        # browser errors (DOMException names)
        "dom_NotAllowedError": (
            "The passkey request was cancelled or timed out, or no passkey here matches. Nothing changed: "
            "try again, or choose another passkey or device."
        ),
        "dom_InvalidStateError_account": (
            "This device already has a passkey for your account, so there is nothing to add here. To use "
            "another phone or computer, choose “Add a phone or another device”."
        ),
        "dom_InvalidStateError": (
            "This device already has a passkey for this account. Sign in with it instead, or add the "
            "passkey on another device."
        ),
        "dom_SecurityError": (
            "The browser refused: this page's address does not match the server's passkey domain (RP ID). "
            "Open the site at its usual address, or check the self-test page."
        ),
        "dom_NotSupportedError": (
            "This browser or authenticator cannot make a passkey the server accepts. Try another browser, "
            "your phone, or a security key."
        ),
        "dom_AbortError": "The passkey request was stopped before it finished. Try again.",
        "dom_TimeoutError": "The passkey request timed out. Try again and answer the prompt sooner.",
        "dom_ConstraintError": "This authenticator cannot verify you (no PIN or biometrics set up).",
        "dom_UnknownError": "The authenticator reported a problem. Try again, or use another passkey.",
        "dom_no_webauthn": (
            "This browser does not support passkeys here. Use a current browser, over https or on localhost."
        ),
        "network": "The server could not be reached. Check your connection and try again.",
        "selftest_link": "Open the self-test",
        # server errors (stable codes)
        "code_sign_in_failed": "Sign-in failed. Try again or use another passkey.",
        "code_unknown_credential": (
            "This passkey is not registered here any more (it may have been removed). Your browser was asked "
            "to stop offering it. Sign in with another passkey."
        ),
        "code_user_name_taken": "That name is taken. Choose another, or sign in if it is yours.",
        "code_signup_closed": "Sign-up is closed here. Ask an administrator for a device link.",
        "code_reauth_required": "Confirm it's you with your passkey to continue.",
        "code_credential_in_use": (
            "You signed in with this passkey, so it can't be removed now. Sign in with another passkey first."
        ),
        "code_last_credential": "This is your only passkey. Add another before removing it.",
        "code_credential_not_found": (
            "That passkey is no longer on your account. The list has been refreshed."
        ),
        "code_session_not_found": "That session had already ended. The list has been refreshed.",
        "code_link_invalid": (
            "This device link can't be used: it has expired, was already used, or the words were mistyped. "
            "Check the words, or ask whoever gave you the link for a new one."
        ),
        "code_token_required": "Open the link from your other device, or type its six words.",
        "code_not_authenticated": "You are not signed in (any more). Sign in again.",
        "code_session_ended": "Your session has ended. Sign in again.",
        "code_rate_limited": "Too many attempts. Wait a minute and try again.",
        "code_cross_site_request": (
            "The server refused this page's address: it is not in the server's allowed origins "
            "(PASSGATE_ORIGINS). Check the self-test page."
        ),
        "code_ceremony_failed": "The passkey could not be verified. Try again.",
        "code_ceremony_mismatch": "This page is out of date. Reload it and try again.",
        "code_invalid_request": "Something in the form is not valid: {detail}",
        "code_internal_error": "Something went wrong on the server. Try again in a moment.",
        # self-test verdicts
        "check_ok": "Everything matches: passkeys should work on this page.",
        "check_webauthn": "This browser has no WebAuthn here: no passkey can be used on this page.",
        "check_secure": (
            "This page is not a secure context (http:// on a name other than localhost). Browsers allow "
            "passkeys only over https:// or on localhost."
        ),
        "check_rp_id": (
            "This page's host {host} is not the RP ID {rp_id} or a subdomain of it: the browser will refuse "
            "every passkey with a SecurityError. Open the site under {rp_id}, or set PASSGATE_RP_ID."
        ),
        "check_origin": (
            "This page's origin {origin} is not in the server's allowed origins ({origins}): the server "
            "will refuse every sign-in from here. Add it to PASSGATE_ORIGINS, or open one of the allowed "
            "addresses."
        ),
        "check_conditional": (
            "Passkey autofill is not available in this browser; the “Sign in with a passkey” button still "
            "works."
        ),
        "check_platform": (
            "No built-in authenticator was found; use a phone or a security key, or a password manager."
        ),
        # self-test: what getClientCapabilities() reports, in words (WebAuthn L3 §5.1.7)
        "cap_conditionalGet": "Suggests your passkeys in the name field (autofill)",
        "cap_conditionalCreate": "Can save a passkey quietly after a password sign-in",
        "cap_hybridTransport": "Can use a passkey on your phone by scanning a QR code",
        "cap_passkeyPlatformAuthenticator": "Can keep passkeys on this device or in a password manager",
        "cap_userVerifyingPlatformAuthenticator": "Can unlock passkeys with fingerprint, face or screen lock",
        "cap_relatedOrigins": "Accepts a passkey across a site's related domains",
        "cap_signalAllAcceptedCredentials": "Can tidy up passkeys a site no longer accepts",
        "cap_signalCurrentUserDetails": "Can update the name shown next to a passkey",
        "cap_signalUnknownCredential": "Can forget a passkey the site says was removed",
        "cap_more": "All {n} technical capabilities",
        "cap_none": (
            "This browser does not report its capabilities (older browsers don't); the checks above "
            "still apply."
        ),
    }
}


def pick_locale(accept_language: str | None) -> str:
    """The first locale in an `Accept-Language` header that we have strings for, else the default."""
    for part in (accept_language or "").split(","):
        tag = part.split(";", 1)[0].strip().lower()
        for candidate in (tag, tag.split("-", 1)[0]):
            if candidate in PAGE:
                return candidate
    return DEFAULT_LOCALE


def page_strings(locale: str) -> Mapping[str, str]:
    """Everything a template may show: the page strings and the script's."""
    default = {**PAGE[DEFAULT_LOCALE], **SCRIPT[DEFAULT_LOCALE]}
    return {**default, **PAGE.get(locale, {}), **SCRIPT.get(locale, {})}


def script_strings(locale: str) -> dict[str, str]:
    """The strings the browser module needs (sent as JSON inside the page)."""
    return {**SCRIPT[DEFAULT_LOCALE], **SCRIPT.get(locale, {})}
