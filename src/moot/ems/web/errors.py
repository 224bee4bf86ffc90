"""One table from a domain error's code to its HTTP answer.

Under /api/ the answer is JSON (`{"detail": ...}`, or FastAPI's list of field errors for
the codes that name a field); elsewhere a code with a page gets that page, so a browser
sees a way back instead of JSON. Routes and pages raise; they do not catch to translate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from moot.ems.auth.identity import NotPermitted
from moot.ems.errors import Code, DomainError, InvalidChange, InvalidQuery
from moot.ems.files import FileRefused
from moot.ems.web import pages
from moot.ems.web.security import CsrfRefused
from moot.infra.negotiation import wants_html

NOT_FOUND_TEXT = "There is no page at this address. It may have moved, or the link is mistyped."


@dataclass(frozen=True)
class Answer:
    """How a code is answered: its status, the JSON detail, and the page (title, text)
    a browser gets outside /api/ (None: JSON everywhere)."""

    status: int
    detail: Callable[[DomainError], str] = str
    page: tuple[str, str] | None = None


ANSWERS: dict[Code, Answer] = {
    Code.MEETING_NOT_FOUND: Answer(
        404,
        lambda exc: f"meeting {exc} not found",
        ("No such meeting", "There is no meeting at this address."),
    ),
    Code.SERVER_NOT_FOUND: Answer(404, lambda exc: f"room server {exc} not found"),
    Code.FILE_NOT_FOUND: Answer(404, lambda exc: f"file {exc} not found"),
    Code.NOT_RECORDED: Answer(404),
    Code.NOT_ALLOWED: Answer(403),
    Code.CANNOT_ATTEND: Answer(409),
    Code.SERVER_CONFLICT: Answer(409),
    Code.UNAVAILABLE: Answer(503),
    Code.SIGN_IN_REFUSED: Answer(401),
    Code.TOO_MANY: Answer(429),
}


def _field_error(location: list[str], message: str, status_code: int = 422) -> JSONResponse:
    return JSONResponse(
        {"detail": [{"loc": location, "msg": message, "type": "value_error"}]},
        status_code=status_code,
    )


def answer(request: Request, exc: DomainError) -> Response:
    """The HTTP answer to a domain error, by its code and the request's path."""
    if isinstance(exc, NotPermitted):
        status_code = 403 if exc.signed_in else 401
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc)}, status_code=status_code)
        return pages.not_permitted(request, str(exc), signed_in=exc.signed_in)
    if isinstance(exc, InvalidChange):
        return _field_error(["body", exc.field], str(exc))
    if isinstance(exc, InvalidQuery):
        return _field_error(["query", exc.field], str(exc))
    if isinstance(exc, FileRefused):
        return _field_error(["body", "file"], str(exc), exc.status_code)
    how = ANSWERS[exc.code]
    if how.page is not None and not request.url.path.startswith("/api/"):
        title, text = how.page
        return pages.message(request, title, text, how.status)
    return JSONResponse({"detail": how.detail(exc)}, status_code=how.status)


def install(app: FastAPI) -> None:
    """Every error handler of the EMS app."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        return answer(request, exc)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, exc: CsrfRefused) -> Response:
        return pages.message(request, "Not sent", str(exc), 403)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # A browser that opens an unknown address gets a page with a way back; API paths
        # and programs keep FastAPI's JSON.
        if exc.status_code == 404 and wants_html(request):
            return pages.message(request, "Page not found", NOT_FOUND_TEXT, 404)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The default, minus `input` and `ctx`, which may echo secrets or be unserialisable.
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)
