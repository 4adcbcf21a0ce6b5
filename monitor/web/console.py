"""The web console's shell: pages rendered on the server with Jinja2 (autoescaped: whatever
came from the web is shown as text), login and logout by form, and the dashboard.

Pages read through the same views and services as the API, scoped the same way. A page that
changes something is a form POST carrying the session's CSRF token; its answer redirects
(303) to the page to show next, with a one-line message.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from starlette.templating import Jinja2Templates

from ledger import accounts
from ledger.accounts import Principal
from ledger.models import Capture, Case, CaseStatus, Crawl, Detection, Notice, Role
from monitor.daemon.status import status
from monitor.web.scope import holder_filter
from monitor.web.security import (
    SESSION_COOKIE,
    authenticate,
    check_login_rate,
    state_of,
)

TEMPLATES = Jinja2Templates(directory=Path(__file__).with_name("templates"))


def _web_link(url: str | None) -> str | None:
    """A scraped URL fit for an href: http(s) only (never javascript: or data:)."""
    return url if url and urlsplit(url).scheme in ("http", "https") else None


TEMPLATES.env.filters["web_link"] = _web_link
router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """A page asked for without a live session: the browser is sent to the login form."""


async def page_principal(request: Request) -> Principal:
    """The logged-in person, or a redirect to the login form (pages do not answer 401)."""
    if SESSION_COOKIE not in request.cookies or "authorization" in request.headers:
        raise LoginRequired
    try:
        return await authenticate(request)
    except HTTPException as exc:
        if exc.status_code == 401:
            raise LoginRequired from exc
        raise


Me = Annotated[Principal, Depends(page_principal)]


def same_origin(request: Request) -> None:
    """A form POST from another site is refused even before its CSRF token is looked at
    (the login form has no session, hence no token, yet)."""
    origin = request.headers.get("origin")
    if origin and urlsplit(origin).netloc != request.headers.get("host"):
        raise HTTPException(403, "a form from another site")


def render(request: Request, template: str, me: Principal | None, **context: Any) -> Response:
    csrf = None
    if me is not None:
        app = state_of(request).app
        with app.ledger.read() as session:
            found = accounts.session_principal(session, app.clock,
                                               request.cookies.get(SESSION_COOKIE, ""))
        csrf = found[1] if found else None
    return TEMPLATES.TemplateResponse(request, template, {
        "me": me, "csrf": csrf, "flash": request.query_params.get("flash"),
        "flash_error": request.query_params.get("error") == "1", **context})


def go(path: str, message: str, *, error: bool = False) -> RedirectResponse:
    """Redirect after a POST, with the message to show there."""
    joiner = "&" if "?" in path else "?"
    return RedirectResponse(f"{path}{joiner}flash={quote(message)}" + ("&error=1" if error
                            else ""), status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return render(request, "login.html", None, title="Log in")


@router.post("/login", dependencies=[Depends(same_origin)])
def login(request: Request, username: Annotated[str, Form(max_length=100)],
          password: Annotated[str, Form(max_length=1000)]) -> Response:
    check_login_rate(request, username)
    app = state_of(request).app
    with app.ledger.read() as session:
        principal = accounts.authenticate_password(session, username, password)
    if principal is None:
        return go("/login", "Wrong user name or password.", error=True)
    hours = app.settings.web.session_hours
    with app.ledger.write() as session:
        opened = accounts.open_session(session, app.clock, principal, timedelta(hours=hours))
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(SESSION_COOKIE, opened.token, max_age=int(hours * 3600), httponly=True,
                        samesite="lax", secure=app.settings.web.secure_cookies, path="/")
    return response


@router.post("/logout", dependencies=[Depends(same_origin)])
def logout(request: Request, _: Me) -> Response:
    app = state_of(request).app
    with app.ledger.write() as session:
        accounts.close_session(session, request.cookies.get(SESSION_COOKIE, ""))
    response = go("/login", "Logged out.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _counts(session: Any, column: Any, holder_column: Any, me: Principal) -> dict[str, int]:
    rows = session.execute(select(column, func.count()).where(
        *holder_filter(me, holder_column)).group_by(column)).all()
    return {str(key): int(n) for key, n in rows}


@router.get("/", response_class=HTMLResponse)
def dashboard(request: Request, me: Me) -> Response:
    """What happened and what waits: queue depths, the daemon's jobs and their errors (for
    operators), and the holder's own detections, notices and cases."""
    app = state_of(request).app
    with app.ledger.read() as session:
        mine = {
            "detections": _counts(session, Detection.status, Detection.holder_id, me),
            "notices": _counts(session, Notice.status, Notice.holder_id, me),
            "cases": _counts(session, Case.status, Case.holder_id, me),
        }
        today = _last_day(session, app.clock.now() - timedelta(hours=24), me)
    mine["cases"].pop(CaseStatus.MERGED, None)
    daemon = status(app) if me.role in (Role.ADMIN, Role.OPERATOR) else None
    return render(request, "dashboard.html", me, title="Dashboard", mine=mine, daemon=daemon,
                  today=today)


def _last_day(session: Any, since: datetime, me: Principal) -> dict[str, int]:
    """What the pipeline did since ``since``: the holder's own detections, notices and cases;
    for operators also the crawls and captures (not any one holder's)."""
    def count(column: Any, *where: Any) -> int:
        return int(session.scalar(select(func.count()).where(column >= since, *where)) or 0)

    done = {
        "detections found": count(Detection.detected_at,
                                  *holder_filter(me, Detection.holder_id)),
        "notices sent": count(Notice.sent_at, *holder_filter(me, Notice.holder_id)),
        "cases opened": count(Case.created_at, *holder_filter(me, Case.holder_id)),
    }
    if me.role in (Role.ADMIN, Role.OPERATOR):
        done = {"crawls finished": count(Crawl.finished_at),
                "files captured": count(Capture.fetched_at),
                "captures identified": count(Capture.identified_at), **done}
    return done
