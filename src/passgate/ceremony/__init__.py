"""The ceremony core: WebAuthn registration and authentication over py_webauthn.

Pure functions and frozen dataclasses; nothing here knows HTTP or the database. Every check of
WebAuthn L3 §7.1/§7.2 that py_webauthn leaves to the caller is made here, as one guard clause each.
"""
