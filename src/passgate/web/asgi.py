"""Entry point for uvicorn workers: each builds its app from the environment (`passgate serve` sets it)."""

from __future__ import annotations

from fastapi import FastAPI

from passgate.config import load_settings
from passgate.web.app import create_app


def build() -> FastAPI:
    return create_app(load_settings())
