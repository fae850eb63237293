"""Entry point for uvicorn workers: each builds its app from the environment (`passgate serve` sets it).

Building the app makes some 200,000 objects that live as long as the worker (modules, routes, models,
tables). The cyclic garbage collector is paused while they are made (its passes over them cost about
a fifth of a start) and, once the app is built, they are frozen out of its reach (`gc.freeze`), so a
full collection while serving walks only what requests made. What start-up left unreachable (a few
hundred kB) is frozen with them, once.
"""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI


def build() -> FastAPI:
    gc.disable()  # `passgate serve` paused it already when it runs the app itself (one worker)
    try:
        from passgate.config import load_settings
        from passgate.web.app import create_app

        return create_app(load_settings())
    finally:
        gc.freeze()
        gc.enable()
