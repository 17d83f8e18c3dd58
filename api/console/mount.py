"""Mounting the operator console under `/console`: server-rendered pages over the same service calls as the
API, a little JavaScript (EventSource for live progress, fetch for actions), assets served here."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.console import new_operation, oidc, operation_page, pages
from api.console.render import STATIC, Console, CsrfRejected, SignInRequired, page, sign_in_url
from api.problems import ANSWERED, Problem, as_problem
from api.session import Sessions, sessions, signed_in
from bulkops.settings import Settings

PREFIX = "/console/"
CONSOLE_TITLES = {403: "Not allowed", 404: "Not found", 400: "Bad request"}


async def _error_page(request: Request, status: int, detail: str, title: str) -> Response:
    found = await signed_in(request)
    console = Console(found[0], found[1], sessions(request).csrf_token(found[0])) if found else None
    return page(request, "error.html", console, status_code=status, title=title, detail=detail)


def install(app: FastAPI, settings: Settings) -> None:
    app.state.console_sessions = store = Sessions(settings)
    oidc.install(app, settings, store.derived_secret("oidc"))
    app.include_router(new_operation.router)
    app.include_router(pages.router)
    app.include_router(operation_page.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    # The API's handlers answer problem+json; a console page answers the same errors as a page.
    api_problem = app.exception_handlers[Problem]
    api_http = app.exception_handlers[StarletteHTTPException]
    api_invalid = app.exception_handlers[RequestValidationError]

    async def on_problem(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(PREFIX):
            answer = as_problem(exc)
            title = CONSOLE_TITLES.get(answer.status, "Error")
            return await _error_page(request, answer.status, answer.detail, title)
        return await api_problem(request, exc)  # type: ignore[misc]

    async def on_http(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(PREFIX) and isinstance(exc, StarletteHTTPException):
            return await _error_page(request, exc.status_code, str(exc.detail), "Not found")
        return await api_http(request, exc)  # type: ignore[misc]

    async def on_invalid(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(PREFIX) and isinstance(exc, RequestValidationError):
            # A malformed id in the path is a page that does not exist; anything else a bad request.
            if any(err.get("loc", ("",))[0] == "path" for err in exc.errors()):
                return await _error_page(request, 404, "There is no such page.", "Not found")
            return await _error_page(request, 400, "That request is not valid.", "Bad request")
        return await api_invalid(request, exc)  # type: ignore[misc]

    async def on_sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return RedirectResponse(sign_in_url(exc.next_path), status_code=303)

    async def on_csrf(request: Request, exc: Exception) -> Response:
        return await _error_page(
            request,
            403,
            "The form's security token is missing or out of date. Go back, reload the page and try again.",
            "Not allowed",
        )

    for kind in ANSWERED:
        app.add_exception_handler(kind, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(SignInRequired, on_sign_in)
    app.add_exception_handler(CsrfRejected, on_csrf)
