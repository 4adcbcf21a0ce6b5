"""``copyguard serve``: the web console and the REST API."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from monitor.app import App
from monitor.console import fail, user_errors

log = logging.getLogger(__name__)


def serve(
    ctx: typer.Context,
    listen: Annotated[str | None, typer.Option(
        help="host:port to answer on (default: web.listen, 127.0.0.1:8080).")] = None,
) -> None:
    """Serve the REST API (/api/v1, its OpenAPI document at /api/openapi.json) until SIGTERM
    or Ctrl-C. Create accounts first with `copyguard users add`."""
    from monitor.web.server import serve as run  # FastAPI and uvicorn only when serving

    built: App = ctx.obj
    host, _, port = (listen or built.settings.web.listen).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        fail(f"--listen wants host:port, not {listen!r}")
    with user_errors():
        built.ledger  # noqa: B018 - open (and migrate) the ledger before answering anyone
        log.info("serving on http://%s:%s/ (API under /api/v1)", host, port)
        run(built, host, int(port))
