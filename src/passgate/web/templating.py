"""Jinja2 templates (autoescaped) for the server-rendered pages."""

from __future__ import annotations

from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import HTMLResponse

from passgate.services.context import Context

_templates = Jinja2Templates(directory=str(__import__("pathlib").Path(__file__).parent / "templates"))


def render(request: Request, name: str, **values: Any) -> HTMLResponse:
    ctx: Context = request.app.state.ctx
    return _templates.TemplateResponse(request, name, {"rp_name": ctx.settings.rp_name, **values})
