"""``copyguard targets``: the sites to monitor (besides the [[targets]] of the config file)."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from config.settings import TargetSettings
from ledger.targets import add_target, list_targets, remove_managed_target
from monitor.app import App
from monitor.console import emit_json, fail, user_errors
from monitor.views.targets import target_view

app = typer.Typer(help="Add, list and remove the sites to monitor.", no_args_is_help=True)


@app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[list[str], typer.Argument(help="Start URL(s) of the site.")],
    name: Annotated[str, typer.Option(help="Short unique name (letters, digits, . _ -).")],
    schedule: Annotated[str, typer.Option(
        help='How often to crawl: "every 6h", "every 30m", "every 1d", or a cron line '
             '("0 */6 * * *").')] = "every 6h",
    depth: Annotated[int, typer.Option(help="Links followed from a start URL.")] = 3,
    max_pages: Annotated[int, typer.Option(help="Pages fetched per crawl at most.")] = 1000,
    domain: Annotated[list[str] | None, typer.Option(
        help="Domain whose pages are followed (repeatable; default: the start URLs' hosts).")
    ] = None,
    follow: Annotated[list[str] | None, typer.Option(
        help="Only follow page URLs matching this regex (repeatable).")] = None,
    deny: Annotated[list[str] | None, typer.Option(
        help="Never follow URLs matching this regex (repeatable).")] = None,
    delay: Annotated[float | None, typer.Option(
        help="Seconds between requests (default: [crawl] default_delay_seconds).")] = None,
    concurrency: Annotated[int | None, typer.Option(
        help="Parallel requests to the site (default: [crawl] default_concurrency).")] = None,
    ignore_robots: Annotated[bool, typer.Option(
        "--ignore-robots", help="Do not obey robots.txt (recorded in the evidence).")] = False,
    allow_private: Annotated[bool, typer.Option(
        "--allow-private",
        help="Allow this target's own host(s) to be private or loopback addresses.")] = False,
    notice_email: Annotated[str, typer.Option(
        help="Where takedown notices for this site go (default: the contact it publishes, "
             "else the RDAP abuse contact of its host).")] = "",
    notice_form_url: Annotated[str, typer.Option(
        help="A web form or API endpoint that takes notices for this site.")] = "",
    jurisdiction: Annotated[str, typer.Option(
        help="dmca, dsa or prc (default: [takedown] default_jurisdiction).")] = "",
) -> None:
    """Add a site to monitor."""
    built: App = ctx.obj
    try:
        spec = TargetSettings(name=name, start_urls=tuple(url), allowed_domains=tuple(domain or ()),
                              follow=tuple(follow or ()), deny=tuple(deny or ()), depth=depth,
                              max_pages=max_pages, schedule=schedule, delay_seconds=delay,
                              concurrency=concurrency, obey_robots=not ignore_robots,
                              allow_private=allow_private, notice_email=notice_email,
                              notice_form_url=notice_form_url,
                              jurisdiction=jurisdiction)
    except ValidationError as exc:
        fail("; ".join(f"{'.'.join(map(str, e['loc'])) or 'target'}: "
                       f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors()))
    with user_errors():
        built.sync_targets()
        with built.ledger.write() as session:
            target = add_target(session, built.clock, spec, built.settings.crawl,
                                actor=built.actor)
            typer.echo(f"Added target {target.name!r} (id {target.id}), crawled {spec.schedule}.")


@app.command("list")
def list_(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List the sites monitored (from the config file and from `targets add`)."""
    built: App = ctx.obj
    with user_errors():
        built.sync_targets()
        with built.ledger.read() as session:
            targets = list_targets(session)
            if as_json:
                for t in targets:
                    emit_json(target_view(t).model_dump())
                return
            table = Table("name", "start URLs", "schedule", "depth", "pages", "robots",
                          "private", "from")
            for t in targets:
                table.add_row(t.name, "\n".join(t.start_urls), t.schedule, str(t.depth),
                              str(t.max_pages), "obey" if t.obey_robots else "ignore",
                              "allowed" if t.allow_private else "", t.source)
            Console().print(table)


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The target's name.")],
) -> None:
    """Stop monitoring a site (its captures and detections are kept)."""
    built: App = ctx.obj
    with user_errors():
        built.sync_targets()
        with built.ledger.write() as session:
            remove_managed_target(session, built.clock, name, actor=built.actor)
            typer.echo(f"Removed target {name!r}.")
