"""``copyguard holders``: register and list rights-holders."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ledger.holders import add_holder, list_holders
from monitor.app import App
from monitor.console import emit_json, user_errors

app = typer.Typer(help="Register and list rights-holders.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The rights-holder's name, as notices will show it.")],
    email: Annotated[str, typer.Option(help="Contact e-mail address for notices.")],
    address: Annotated[str | None, typer.Option(help="Postal address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Telephone number.")] = None,
) -> None:
    """Register a rights-holder."""
    built: App = ctx.obj
    with user_errors(), built.ledger.write() as session:
        holder = add_holder(session, built.clock, name=name, email=email, address=address,
                            phone=phone, actor=built.actor)
        typer.echo(f"Registered rights-holder {holder.name!r} (id {holder.id}).")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List the registered rights-holders."""
    built: App = ctx.obj
    with user_errors(), built.ledger.read() as session:
        holders = list_holders(session)
        if as_json:
            for h in holders:
                emit_json({"id": h.id, "name": h.name, "email": h.email, "address": h.address,
                           "phone": h.phone, "created_at": h.created_at.isoformat()})
            return
        table = Table("id", "name", "e-mail", "address", "phone")
        for h in holders:
            table.add_row(str(h.id), h.name, h.email, h.address or "", h.phone or "")
        Console().print(table)
