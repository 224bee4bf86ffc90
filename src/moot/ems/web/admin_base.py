"""What every administration page shares: who may see it, and the admin sub-navigation.

Pages under /admin import `AdminPageDep` (or `require_admin_page`) and render templates
that extend `admin/_layout.html`, naming themselves with `admin_section` (one of
`ADMIN_SECTIONS`' keys) so the sub-navigation marks where the reader is.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request

from moot.core.permissions import Action
from moot.ems.auth.identity import Identity, NotPermitted
from moot.ems.container import Ems
from moot.ems.deps import get_identity

# (section, title, path), in the order the sub-navigation shows them.
ADMIN_SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("home", "Administration", "/admin"),
    ("servers", "Room servers", "/admin/servers"),
    ("monitor", "Monitoring", "/admin/monitor"),
    ("config", "Configuration", "/admin/config"),
    ("broadcast", "Message to all users", "/admin/broadcast"),
    ("reports", "Reports", "/admin/reports"),
)


async def require_admin_page(request: Request) -> Identity:
    """The dependency of every administration page: members of the admin group only.

    Anonymous readers of a page (GET) are sent to sign in and come back; anonymous
    form posts get the 401 page; a signed-in reader who is not an administrator gets the
    403 page (both raise `NotPermitted`, which the app answers with a page).
    """
    ems: Ems = request.app.state.ems
    identity = await get_identity(request)
    if identity.claims is None and request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "sign in first", headers={"Location": _signin(target)})
    ems.auth.require(identity, Action.ADMINISTER)
    return identity


def _signin(target: str) -> str:
    return f"/signin?next={quote(target, safe='/')}"


def is_admin(request: Request) -> bool:
    """Whether the reader of this request administers (for the main navigation)."""
    identity = getattr(request.state, "identity", None)
    ems: Ems | None = getattr(request.app.state, "ems", None)
    if identity is None or ems is None or identity.claims is None:
        return False
    return ems.auth.is_admin(identity)


AdminPageDep = Annotated[Identity, Depends(require_admin_page)]

__all__ = ["ADMIN_SECTIONS", "AdminPageDep", "NotPermitted", "is_admin", "require_admin_page"]
