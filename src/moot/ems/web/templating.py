"""The pages' templates, with what every page needs: the CSRF token and who is signed in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates

from moot.ems.web.admin_base import ADMIN_SECTIONS, is_admin
from moot.ems.web.security import CSRF_FIELD, csrf_token


def _every_page(request: Request) -> dict[str, Any]:
    identity = getattr(request.state, "identity", None)
    return {
        "csrf_field": CSRF_FIELD,
        "csrf_token": csrf_token(request),
        "me": identity.claims if identity is not None else None,
        "session_problem": getattr(request.state, "session_problem", None),
        "is_admin": is_admin(request),  # the main navigation's Administration link
        "admin_sections": ADMIN_SECTIONS,
    }


templates = Jinja2Templates(
    directory=Path(__file__).parent / "templates", context_processors=[_every_page]
)
