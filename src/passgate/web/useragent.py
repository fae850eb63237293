"""Device names from User-Agent headers, for the pages (the logic lives in `passgate.useragent`, below
both the pages and the services that name new passkeys)."""

from passgate.useragent import describe, passkey_name

__all__ = ["describe", "passkey_name"]
