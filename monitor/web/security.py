"""Who is asking, and may they: API keys and browser sessions, CSRF, roles, rate limits and the
response headers every page and answer carries.

A request is authenticated by ``Authorization: Bearer <API key>`` or by the session cookie a
login sets. A cookie is sent by the browser on its own, so a request that changes anything and
comes with the cookie must also carry the session's CSRF token (header ``X-CSRF-Token`` or form
field ``csrf_token``); a request with an API key needs none (no browser adds it by itself).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, HTTPException, Request
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from ledger import accounts
from ledger.accounts import Principal
from monitor.app import App
from monitor.web.ratelimit import RateLimit

if TYPE_CHECKING:
    from monitor.web.importer import Importer

SESSION_COOKIE = "copyguard_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_HEADERS = {
    # Nothing but this origin's own files: a script that came in with scraped text cannot run.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; media-src 'self'; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # (no-referrer would make form posts say Origin: null)
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


@dataclass
class WebState:
    """What the routes share: the app and the per-process limits."""

    app: App
    logins: RateLimit
    requests: RateLimit
    importer: Importer | None = None  # the background importer, once the server started


def state_of(request: Request) -> WebState:
    state: WebState = request.app.state.copyguard
    return state


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _too_many(retry_after: float) -> HTTPException:
    return HTTPException(429, "too many requests; try again later",
                         headers={"Retry-After": str(max(int(retry_after + 0.999), 1))})


async def _csrf_token_sent(request: Request) -> str | None:
    """The header, else the ``csrf_token`` query parameter (how a console upload form sends
    it), else a URL-encoded form's field. A multipart body is never parsed here: uploads
    stream it themselves, within their size limit."""
    sent = request.headers.get(CSRF_HEADER) or request.query_params.get("csrf_token")
    if sent is None and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        value = (await request.form()).get("csrf_token")
        sent = value if isinstance(value, str) else None
    return sent


async def authenticate(request: Request) -> Principal:
    """The principal of the request, or 401; 403 for a cookie request without its CSRF
    token; 429 past the per-principal request limit."""
    state = state_of(request)
    app = state.app
    header = request.headers.get("authorization", "")
    principal: Principal | None = None
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret:
            raise HTTPException(401, "use Authorization: Bearer <API key>",
                                headers={"WWW-Authenticate": "Bearer"})
        with app.ledger.write() as session:
            principal = accounts.authenticate_key(session, app.clock, secret.strip())
        if principal is None:
            raise HTTPException(401, "unknown, revoked or disabled API key",
                                headers={"WWW-Authenticate": "Bearer"})
    else:
        token = request.cookies.get(SESSION_COOKIE)
        if token:
            with app.ledger.read() as session:
                found = accounts.session_principal(session, app.clock, token)
            if found is not None:
                principal, csrf = found
                if request.method not in SAFE_METHODS:
                    sent = await _csrf_token_sent(request)
                    if sent is None or not hmac.compare_digest(sent, csrf):
                        raise HTTPException(403, "missing or wrong CSRF token")
        if principal is None:
            raise HTTPException(401, "log in first, or send an API key",
                                headers={"WWW-Authenticate": "Bearer"})
    wait = state.requests.hit(f"user:{principal.user_id}")
    if wait:
        raise _too_many(wait)
    request.state.principal = principal
    return principal


def require(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the principal, if its role is one of ``roles`` (else 403)."""
    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if principal.role not in roles:
            raise HTTPException(403, f"not for the {principal.role} role")
        return principal
    return check


def check_login_rate(request: Request, username: str) -> None:
    """At most ``web.login_attempts_per_minute`` attempts per client address and per name."""
    limits = state_of(request).logins
    for key in (f"ip:{client_address(request)}", f"name:{username.lower()}"):
        wait = limits.hit(key)
        if wait:
            raise _too_many(wait)
