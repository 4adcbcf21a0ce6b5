"""``copyguard users``: console and API accounts, and their API keys."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ledger import accounts
from ledger.models import Role
from monitor.app import App
from monitor.console import emit_json, err_console, fail, user_errors

app = typer.Typer(help="Console and API accounts and their API keys.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: issue, list, revoke.", no_args_is_help=True)
app.add_typer(keys_app, name="key")

PASSWORD_ENV = "COPYGUARD_PASSWORD"


def _password(prompt: bool) -> str | None:
    """From ``COPYGUARD_PASSWORD`` (scripts), else asked twice on the terminal, else none."""
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not prompt:
        return None
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@app.command("add")
def add(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The login name.")],
    role: Annotated[str, typer.Option(
        help="admin (everything), operator (targets and the daemon, every holder), holder "
             "(one rights-holder's catalog, detections and notices) or legal (its cases and "
             "dossiers).")],
    holder: Annotated[str | None, typer.Option(
        help="The rights-holder a holder or legal account belongs to.")] = None,
    no_password: Annotated[bool, typer.Option(
        "--no-password", help="No console login: the account uses API keys only.")] = False,
) -> None:
    """Create an account. The password is asked for (or read from COPYGUARD_PASSWORD)."""
    built: App = ctx.obj
    if role not in Role.ALL:
        fail(f"unknown role {role!r}: one of {', '.join(Role.ALL)}")
    password = None if no_password else _password(prompt=True)
    with user_errors(), built.ledger.write() as session:
        user = accounts.add_user(session, built.clock, username=username, role=role,
                                 holder=holder, password=password, actor=built.actor)
        typer.echo(f"Created {role} account {user.username!r} (id {user.id}).")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List accounts."""
    built: App = ctx.obj
    with user_errors(), built.ledger.read() as session:
        rows = [{"id": u.id, "username": u.username, "role": u.role, "holder_id": u.holder_id,
                 "password": u.password_hash is not None,
                 "created_at": u.created_at.isoformat(),
                 "disabled_at": u.disabled_at.isoformat() if u.disabled_at else None}
                for u in accounts.list_users(session)]
    if as_json:
        for row in rows:
            emit_json(row)
        return
    table = Table("id", "user", "role", "holder", "login", "state")
    for r in rows:
        table.add_row(str(r["id"]), str(r["username"]), str(r["role"]),
                      str(r["holder_id"] or ""),
                      "password" if r["password"] else "keys only",
                      "disabled" if r["disabled_at"] else "active")
    Console().print(table)


@app.command("password")
def password(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The account.")],
) -> None:
    """Set a new password (asked for, or read from COPYGUARD_PASSWORD); ends its sessions."""
    built: App = ctx.obj
    new = _password(prompt=True)
    assert new is not None
    with user_errors(), built.ledger.write() as session:
        accounts.set_password(session, built.clock, username, new, actor=built.actor)
    typer.echo(f"Password of {username!r} changed; its browser sessions ended.")


@app.command("disable")
def disable(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The account.")],
) -> None:
    """Disable an account: no more logins, its sessions end and its API keys stop working."""
    built: App = ctx.obj
    with user_errors(), built.ledger.write() as session:
        accounts.disable_user(session, built.clock, username, actor=built.actor)
    typer.echo(f"Disabled {username!r}.")


@keys_app.command("add")
def key_add(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Whose key.")],
    name: Annotated[str, typer.Option(help="What the key is for, e.g. 'ERP sync'.")] = "key",
) -> None:
    """Issue an API key. It is printed once, on stdout; only its hash is kept."""
    built: App = ctx.obj
    with user_errors(), built.ledger.write() as session:
        key, secret = accounts.issue_api_key(session, built.clock, username, name,
                                             actor=built.actor)
    typer.echo(secret)
    err_console.print(f"API key {key.prefix} ({key.name}) for {username!r}: send it as "
                      "'Authorization: Bearer <key>'; it is not shown again.")


@keys_app.command("list")
def key_list(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Whose keys.")],
) -> None:
    """List a user's API keys (their prefixes, never the keys)."""
    built: App = ctx.obj
    with user_errors(), built.ledger.read() as session:
        keys = accounts.list_api_keys(session, username)
        table = Table("prefix", "name", "created", "last used", "state")
        for k in keys:
            table.add_row(k.prefix, k.name, k.created_at.isoformat(timespec="seconds"),
                          k.last_used_at.isoformat(timespec="seconds") if k.last_used_at
                          else "", "revoked" if k.revoked_at else "active")
    Console().print(table)


@keys_app.command("revoke")
def key_revoke(
    ctx: typer.Context,
    prefix: Annotated[str, typer.Argument(help="The key's prefix (see `users key list`).")],
) -> None:
    """Revoke an API key at once."""
    built: App = ctx.obj
    with user_errors(), built.ledger.write() as session:
        accounts.revoke_api_key(session, built.clock, prefix, actor=built.actor)
    typer.echo(f"Revoked API key {prefix}.")
