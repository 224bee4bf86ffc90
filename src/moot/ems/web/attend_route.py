"""`GET /m/{id}`, the hot path of the Meeting Center, ahead of FastAPI's generic layers.

Everyone who attends a meeting passes here, at 9:00 thousands within a minute. The page
itself is `attend.attend_page` (with the form's POST and the FastAPI route that documents
the GET, in attend.py); this module only gets its arguments to it faster:

- the GET is recognised by one regular expression, not tried against the 130 routes of
  the API and the pages in turn (a sixth of attend's time went there);
- it takes what attend needs from the app's state itself, instead of FastAPI's
  dependency solving and parameter validation (another fifth);
- it passes the same layers as every other answer of the Meeting Center, built from the
  app's own middleware list (`user_middleware`: the HTTP metrics, the body limit, the
  security headers and CSRF cookie; a middleware added to create_app later is here too),
  inside Starlette's last-resort 500 page, around the app's exception handlers (what a bad
  sign-in token or a refusal becomes). Only FastAPI's own generic layers (its exit-stack
  middleware, the router) are skipped.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from moot.ems.container import Ems
from moot.ems.deps import get_identity
from moot.ems.web import attend as attend_pages
from moot.ems.web import pages

MAX_KEY = 200  # as the FastAPI route's `key` parameter
ATTEND_PATH = re.compile(r"/m/([^/]+)")


async def attend(request: Request) -> Response:
    ems: Ems = request.app.state.ems
    meeting_id = request.path_params["meeting_id"]
    name = request.query_params.get("name")
    key = request.query_params.get("key")
    if name is not None and len(name) > pages.MAX_NAME:
        return pages.message(
            request, "Name too long", f"A name has at most {pages.MAX_NAME} characters.", 422
        )
    if key is not None and len(key) > MAX_KEY:
        return pages.message(
            request, "Link not valid", "This moderator link is not a meeting's.", 422
        )
    identity = await get_identity(request)
    return await attend_pages.attend_page(
        request, ems.meetings, ems.admission, identity, meeting_id, name, None, key
    )


# What the metrics label the answers with: the same template as the FastAPI route's.
route = Route("/m/{meeting_id}", attend, methods=["GET"], include_in_schema=False)


class MeetingCenterApp(FastAPI):
    """The EMS's FastAPI app; attend's GET (and HEAD) is answered before the generic stack."""

    _attend_stack: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path: str = scope["path"]
            root = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            found = ATTEND_PATH.fullmatch(path)
            if found is not None:
                scope["app"] = self
                scope["router"] = self.router
                scope["route"] = route
                scope["path_params"] = {"meeting_id": found.group(1)}
                await self._attend_app()(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    def _attend_app(self) -> ASGIApp:
        if self._attend_stack is None:
            # As Starlette's build_middleware_stack: 500 and Exception go to the outer
            # ServerErrorMiddleware (a page, logged), the others to the route.
            handlers: dict[Any, Any] = {}
            by_status: dict[int, Any] = {}
            last_resort = None
            for key, handler in self.exception_handlers.items():
                if key in (500, Exception):
                    last_resort = handler
                else:
                    (by_status if isinstance(key, int) else handlers)[key] = handler
            exception_handlers = (handlers, by_status)

            async def with_handlers(scope: Scope, receive: Receive, send: Send) -> None:
                # What Starlette's ExceptionMiddleware gives each route: the app's handlers.
                scope["starlette.exception_handlers"] = exception_handlers
                await route.app(scope, receive, send)

            # As Starlette's build_middleware_stack: the app's middlewares, first added
            # innermost, inside the last-resort 500 page.
            layered: ASGIApp = with_handlers
            for cls, args, kwargs in reversed(self.user_middleware):
                layered = cls(layered, *args, **kwargs)
            self._attend_stack = ServerErrorMiddleware(
                layered, handler=last_resort, debug=self.debug
            )
        return self._attend_stack
