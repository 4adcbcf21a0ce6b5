"""The console's accounts: every person's own page (password, API keys for their systems) and,
for admins, the users page (add, disable). The same services as ``copyguard users``, each change
in the audit log under the person who made it.

A new key's secret is shown once, in the answer to the form that made it (never in a redirect's
URL, which browsers and proxies keep), with ``Cache-Control: no-store``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from ledger import accounts
from ledger.errors import LedgerError
from ledger.models import ApiKey, RightsHolder, Role
from monitor.web.console import Me, go, render, same_origin
from monitor.web.security import check_login_rate, state_of

router = APIRouter(include_in_schema=False)


def _admin(me: Me) -> None:
    if me.role != Role.ADMIN:
        raise HTTPException(403, "accounts are for admins")


def _account_page(request: Request, me: Me, new_key: str | None = None) -> Response:
    app = state_of(request).app
    with app.ledger.read() as session:
        user = accounts.get_user(session, me.username)
        holder = session.get(RightsHolder, user.holder_id) if user.holder_id else None
        keys = accounts.list_api_keys(session, me.username)
        response = render(request, "account.html", me, title="Your account", user=user,
                          holder=holder.name if holder else None, keys=keys, new_key=new_key,
                          min_password=accounts.MIN_PASSWORD_LENGTH)
    if new_key:
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/account", response_class=HTMLResponse)
def account(request: Request, me: Me) -> Response:
    return _account_page(request, me)


@router.post("/account/keys", dependencies=[Depends(same_origin)],
             response_class=HTMLResponse)
def key_add(request: Request, me: Me, name: Annotated[str, Form(max_length=100)]) -> Response:
    app = state_of(request).app
    try:
        with app.ledger.write() as session:
            _, secret = accounts.issue_api_key(session, app.clock, me.username, name,
                                               actor=me.actor)
    except LedgerError as exc:
        return go("/account", f"No key made: {exc}", error=True)
    return _account_page(request, me, new_key=secret)


@router.post("/account/keys/{prefix}/revoke", dependencies=[Depends(same_origin)])
def key_revoke(request: Request, me: Me, prefix: str) -> Response:
    """One's own keys only (an admin revokes another's with ``users key revoke``)."""
    app = state_of(request).app
    with app.ledger.write() as session:
        key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix[:16]))
        if key is None or key.user_id != me.user_id:
            return go("/account", f"No API key {prefix} of yours.", error=True)
        accounts.revoke_api_key(session, app.clock, key.prefix, actor=me.actor)
    return go("/account", f"API key {key.prefix} revoked: it no longer works.")


@router.post("/account/password", dependencies=[Depends(same_origin)])
def password_change(request: Request, me: Me, current: Annotated[str, Form(max_length=1000)],
                    new: Annotated[str, Form(max_length=1000)],
                    again: Annotated[str, Form(max_length=1000)]) -> Response:
    """Every session of the account ends (this one too): log in with the new password."""
    check_login_rate(request, me.username)  # guessing the current password is a login
    app = state_of(request).app
    if new != again:
        return go("/account", "Not changed: the two new passwords differ.", error=True)
    with app.ledger.read() as session:
        if accounts.authenticate_password(session, me.username, current) is None:
            return go("/account", "Not changed: the current password is wrong.", error=True)
    try:
        with app.ledger.write() as session:
            accounts.set_password(session, app.clock, me.username, new, actor=me.actor)
    except LedgerError as exc:
        return go("/account", f"Not changed: {exc}", error=True)
    return go("/login", "Password changed: log in with the new one.")


@router.get("/users", response_class=HTMLResponse, dependencies=[Depends(_admin)])
def users(request: Request, me: Me) -> Response:
    app = state_of(request).app
    with app.ledger.read() as session:
        names: dict[int, str] = {
            id_: name for id_, name in session.execute(
                select(RightsHolder.id, RightsHolder.name))}
        live_keys: dict[int, int] = {
            user_id: count for user_id, count in session.execute(
                select(ApiKey.user_id, func.count()).where(ApiKey.revoked_at.is_(None))
                .group_by(ApiKey.user_id))}
        rows = [(user, names.get(user.holder_id) if user.holder_id else None,
                 live_keys.get(user.id, 0)) for user in accounts.list_users(session)]
        return render(request, "users.html", me, title="Users", rows=rows,
                      holders=sorted(names.values()), roles=Role.ALL,
                      min_password=accounts.MIN_PASSWORD_LENGTH)


@router.post("/users", dependencies=[Depends(_admin), Depends(same_origin)])
def user_add(request: Request, me: Me, username: Annotated[str, Form(max_length=100)],
             role: Annotated[str, Form(max_length=16)],
             holder: Annotated[str, Form(max_length=200)] = "",
             password: Annotated[str, Form(max_length=1000)] = "") -> Response:
    """Without a password the account uses API keys only (made on its own page, or by
    ``users key add``)."""
    app = state_of(request).app
    try:
        with app.ledger.write() as session:
            accounts.add_user(session, app.clock, username=username.strip(), role=role,
                              holder=holder or None, password=password or None,
                              actor=me.actor)
    except LedgerError as exc:
        return go("/users", f"Not added: {exc}", error=True)
    return go("/users", f"User {username.strip()} added.")


@router.post("/users/{username}/disable", dependencies=[Depends(_admin), Depends(same_origin)])
def user_disable(request: Request, me: Me, username: str) -> Response:
    if username == me.username:
        return go("/users", "Not disabled: an admin does not lock themselves out; another "
                            "admin can.", error=True)
    app = state_of(request).app
    try:
        with app.ledger.write() as session:
            accounts.disable_user(session, app.clock, username, actor=me.actor)
    except LedgerError as exc:
        return go("/users", f"Not disabled: {exc}", error=True)
    return go("/users", f"User {username} disabled: its sessions and keys stopped working.")
