"""The web application: the REST API under ``/api/v1`` (its OpenAPI document at
``/api/openapi.json``), login and logout, and the security every answer carries.

Routes are thin: they check who asks, scope the query to the principal's rights-holder and call
the same services the CLI does. Errors of those services become HTTP answers here: not found
(or not visible to the caller, which is the same answer on purpose) 404, a state or uniqueness
rule 409, any other refusal 400.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import uvicorn
from anyio import to_thread
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

from fingerprints.errors import FingerprintError
from ledger import accounts
from ledger.accounts import Principal
from ledger.errors import ConflictError, LedgerError, NotFoundError
from litigation.errors import LitigationError
from monitor.app import App
from monitor.web import (
    api_cases,
    api_catalog,
    api_imports,
    api_notices,
    api_pipeline,
    console,
    console_accounts,
    console_catalog,
    console_pipeline,
    console_review,
)
from monitor.web.importer import Importer
from monitor.web.ratelimit import RateLimit
from monitor.web.security import (
    SESSION_COOKIE,
    SecurityHeaders,
    WebState,
    authenticate,
    check_login_rate,
)
from takedown.errors import TakedownError

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")


class Problem(BaseModel):
    """Why a request was refused."""

    detail: str


def _problem(why: str) -> dict[str, Any]:
    return {"model": Problem, "description": why}


# What any operation may answer besides its own successes (FastAPI adds 422 by itself).
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem("The request was understood but refused: the message says why."),
    401: _problem("No valid API key or session."),
    403: _problem("Not for this role, or a form without its CSRF token."),
    404: _problem("No such row, or another rights-holder's (the same answer)."),
    409: _problem("A state or uniqueness rule forbids it."),
    413: _problem("The upload is larger than web.max_upload_mb."),
    429: _problem("Too many requests or login attempts: see Retry-After."),
}


class Login(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


class Me(BaseModel):
    username: str
    role: str
    holder_id: int | None
    csrf_token: str | None = None  # for a browser session: what forms must send back


def _me(principal: Principal, csrf: str | None = None) -> Me:
    return Me(username=principal.username, role=principal.role, holder_id=principal.scope,
              csrf_token=csrf)


def _session_routes() -> APIRouter:
    router = APIRouter(tags=["session"])

    @router.post("/login", response_model=Me)
    def login(body: Login, request: Request) -> JSONResponse:
        """Log in with a password; the session cookie comes back with the CSRF token."""
        check_login_rate(request, body.username)
        state: WebState = request.app.state.copyguard
        app = state.app
        with app.ledger.read() as session:
            principal = accounts.authenticate_password(session, body.username, body.password)
        if principal is None:
            raise HTTPException(401, "wrong user name or password")
        hours = app.settings.web.session_hours
        with app.ledger.write() as session:
            opened = accounts.open_session(session, app.clock, principal,
                                           timedelta(hours=hours))
        response = JSONResponse(_me(principal, opened.csrf_token).model_dump())
        response.set_cookie(SESSION_COOKIE, opened.token, max_age=int(hours * 3600),
                            httponly=True, samesite="lax",
                            secure=app.settings.web.secure_cookies, path="/")
        return response

    @router.post("/logout", status_code=204)
    def logout(request: Request,
               _: Annotated[Principal, Depends(authenticate)]) -> Response:
        """End this browser session (an API key stays valid: revoke it with the CLI)."""
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            app = request.app.state.copyguard.app
            with app.ledger.write() as session:
                accounts.close_session(session, token)
        response = Response(status_code=204)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @router.get("/me", response_model=Me)
    def me(principal: Annotated[Principal, Depends(authenticate)]) -> Me:
        """Who the credentials belong to."""
        return _me(principal)

    return router


def _error(request: Request, status: int, message: str,
           headers: Mapping[str, str] | None = None) -> Response:
    """JSON for the API; a page for the console (what a browser shows a person)."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"detail": message}, status_code=status, headers=headers)
    return console.TEMPLATES.TemplateResponse(
        request, "error.html", {"me": None, "status": status, "message": message,
                                "title": f"Error {status}"}, status_code=status,
        headers=headers)


def _allowed_methods(api: FastAPI, request: Request) -> list[str]:
    """Every method some route answers at the request's path."""
    methods: set[str] = set()
    for route in api.routes:
        if isinstance(route, APIRoute) and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods or set()
    return sorted(methods)


def build_api(app: App) -> FastAPI:
    web = app.settings.web
    state = WebState(app=app, logins=RateLimit(web.login_attempts_per_minute),
                     requests=RateLimit(web.requests_per_minute))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        """The background importer runs while the server answers."""
        state.importer = Importer(app)
        state.importer.start()
        try:
            yield
        finally:
            await to_thread.run_sync(state.importer.stop)

    api = FastAPI(title="copyguard", version="0.1", docs_url=None, redoc_url=None,
                  lifespan=lifespan,
                  openapi_url="/api/openapi.json",
                  description="Catalogs, detections, notices and cases of copyguard. "
                              "Authenticate with `Authorization: Bearer <API key>` "
                              "(`copyguard users key add`).")
    api.state.copyguard = state
    api.add_middleware(SecurityHeaders)
    api.include_router(_session_routes(), prefix="/api/v1", responses=COMMON_RESPONSES)
    for module in (api_catalog, api_imports, api_pipeline, api_notices, api_cases):
        api.include_router(module.router, prefix="/api/v1", responses=COMMON_RESPONSES)
    for pages in (console, console_accounts, console_catalog, console_pipeline, console_review):
        api.include_router(pages.router)
    api.mount("/static", StaticFiles(directory=STATIC), name="static")

    @api.exception_handler(console.LoginRequired)
    def to_login(request: Request, _: console.LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    @api.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> Response:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names only the first route's methods
            headers["Allow"] = ", ".join(_allowed_methods(api, request))
        return _error(request, exc.status_code, str(exc.detail), headers)

    @api.exception_handler(NotFoundError)
    def not_found(request: Request, exc: NotFoundError) -> Response:
        return _error(request, 404, str(exc))

    @api.exception_handler(ConflictError)
    def conflict(request: Request, exc: ConflictError) -> Response:
        return _error(request, 409, str(exc))

    for kind in (LedgerError, TakedownError, LitigationError, FingerprintError):
        api.add_exception_handler(kind, lambda request, exc: _error(request, 400, str(exc)))
    return api


def serve(app: App, host: str, port: int) -> None:
    """Answer on host:port until SIGTERM or Ctrl-C, then finish the requests in hand and
    return (uvicorn in the main thread would re-raise the signal: the exit would not be 0)."""
    server = uvicorn.Server(uvicorn.Config(build_api(app), host=host, port=port,
                                           log_config=None, proxy_headers=False,
                                           server_header=False))
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    thread = threading.Thread(target=server.run, name="web")
    thread.start()
    while thread.is_alive() and not stop.wait(0.5):
        pass
    server.should_exit = True
    thread.join()
    if not server.started:
        raise LedgerError(f"could not answer on {host}:{port} (taken, or not this machine's "
                          "address?): see the log above")
