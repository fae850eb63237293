"""Passgate: a self-hosted passkey server."""
