"""``copyguard holders``: register and list rights-holders."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from ledger.holders import add_holder, list_holders, update_holder
from monitor.app import App
from monitor.console import emit_json, user_errors
from monitor.views.holders import holder_view

app = typer.Typer(help="Register and list rights-holders.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The rights-holder's name, as notices will show it.")],
    email: Annotated[str, typer.Option(help="Contact e-mail address for notices.")],
    address: Annotated[str | None, typer.Option(help="Postal address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Telephone number.")] = None,
    signatory: Annotated[str | None, typer.Option(
        help="Who signs the holder's notices (a person authorised to act for it).")] = None,
    signatory_title: Annotated[str | None, typer.Option(
        help="The signatory's capacity, e.g. 'Head of Legal Affairs'.")] = None,
    notice_policy: Annotated[str, typer.Option(
        help="'auto': confident whole-work detections are noticed by rule; 'review': a "
             "person approves every notice.")] = "review",
) -> None:
    """Register a rights-holder."""
    built: App = ctx.obj
    with user_errors(), built.ledger.write() as session:
        holder = add_holder(session, built.clock, name=name, email=email, address=address,
                            phone=phone, signatory_name=signatory,
                            signatory_title=signatory_title, notice_policy=notice_policy,
                            actor=built.actor)
        typer.echo(f"Registered rights-holder {holder.name!r} (id {holder.id}).")


@app.command("set")
def set_(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The rights-holder's name.")],
    email: Annotated[str | None, typer.Option(help="Contact e-mail address.")] = None,
    address: Annotated[str | None, typer.Option(help="Postal address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Telephone number.")] = None,
    signatory: Annotated[str | None, typer.Option(help="Who signs the notices.")] = None,
    signatory_title: Annotated[str | None, typer.Option(help="The signatory's capacity.")
                               ] = None,
    notice_policy: Annotated[str | None, typer.Option(help="'auto' or 'review'.")] = None,
) -> None:
    """Change a rights-holder's details (only those given); audited."""
    built: App = ctx.obj
    with user_errors(), built.ledger.write() as session:
        holder = update_holder(session, built.clock, name, actor=built.actor, email=email,
                               address=address, phone=phone, signatory_name=signatory,
                               signatory_title=signatory_title, notice_policy=notice_policy)
        typer.echo(f"Updated rights-holder {holder.name!r}.")


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
                emit_json(holder_view(h).model_dump())
            return
        table = Table("id", "name", "e-mail", "address", "phone", "signatory", "notices")
        for h in holders:
            table.add_row(str(h.id), h.name, h.email, h.address or "", h.phone or "",
                          h.signatory_name or "", h.notice_policy)
        Console().print(table)
