"""The ``copyguard`` command line: option parsing only; each command's logic lives in its module
under ``monitor/commands``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from config import ConfigError, load_settings
from monitor.app import build_app
from monitor.commands import (
    audit_cmd,
    cases_cmd,
    cases_export_cmd,
    catalog_cmd,
    crawl_cmd,
    daemon_cmd,
    demo_cmd,
    evidence_cmd,
    holders_cmd,
    identify_cmd,
    notices_cmd,
    notices_recheck_cmd,
    notices_send_cmd,
    serve_cmd,
    targets_cmd,
    users_cmd,
)
from monitor.console import fail
from monitor.lifeline import die_with_parent
from monitor.logformat import configure_logging

app = typer.Typer(
    name="copyguard",
    help="Copyright-enforcement monitoring for music rights-holders.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(holders_cmd.app, name="holders")
app.add_typer(catalog_cmd.app, name="catalog")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(targets_cmd.app, name="targets")
detections_app = typer.Typer(help="Catalog recordings found on the web.", no_args_is_help=True)
detections_app.command("list")(crawl_cmd.detections_list)
app.add_typer(detections_app, name="detections")
captures_app = typer.Typer(help="Audio fetched from the web, with its evidence.",
                           no_args_is_help=True)
captures_app.command("show")(crawl_cmd.capture_show)
app.add_typer(captures_app, name="captures")
notices_app = typer.Typer(help="Takedown notices: review, send, follow up, export.",
                          no_args_is_help=True)
notices_app.command("list")(notices_cmd.list_)
notices_app.command("show")(notices_cmd.show)
notices_app.command("review")(notices_cmd.review)
notices_app.command("send")(notices_send_cmd.send)
notices_app.command("resend")(notices_send_cmd.resend)
notices_app.command("recheck")(notices_recheck_cmd.recheck)
notices_app.command("counter")(notices_cmd.counter)
notices_app.command("export")(notices_cmd.export_)
app.add_typer(notices_app, name="notices")
cases_app = typer.Typer(help="Lawsuit candidates: the scored queue, review, dossiers.",
                        no_args_is_help=True)
cases_app.command("refresh")(cases_cmd.refresh_cmd)
cases_app.command("list")(cases_cmd.list_)
cases_app.command("show")(cases_cmd.show)
cases_app.command("review")(cases_cmd.review)
cases_app.command("export")(cases_export_cmd.export_)
app.add_typer(cases_app, name="cases")
dossier_app = typer.Typer(help="Dossiers exported for counsel.", no_args_is_help=True)
dossier_app.command("verify")(cases_export_cmd.verify)
app.add_typer(dossier_app, name="dossier")
app.add_typer(evidence_cmd.app, name="evidence")
app.add_typer(users_cmd.app, name="users")
app.command("serve")(serve_cmd.serve)
app.command("crawl")(crawl_cmd.crawl)
app.command("identify")(identify_cmd.identify)
app.command("demo")(demo_cmd.demo)
app.command("daemon")(daemon_cmd.daemon)
app.command("status")(daemon_cmd.status)
app.command("worker")(daemon_cmd.worker)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="TOML settings file (default: $COPYGUARD_CONFIG, ./copyguard.toml).",
        dir_okay=False)] = None,
) -> None:
    """Copyright-enforcement monitoring for music rights-holders."""
    die_with_parent()  # a no-op unless a daemon or worker started this process
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        fail(str(exc), code=2)
    configure_logging(settings.general.log_level, settings.general.log_format)
    built = build_app(settings)
    ctx.obj = built
    ctx.call_on_close(built.close)


def main() -> None:
    app()
