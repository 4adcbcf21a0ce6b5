"""The process's log on stderr, for people (``text``) or for a log collector (``json``: one
object a line). Reads ``general.log_level`` and ``general.log_format`` (passed by the caller).

A JSON line holds ``ts`` (ISO 8601 UTC, milliseconds), ``level``, ``logger``, ``message``,
``process``, ``thread``, ``exc`` (the traceback, when there is one), ``stack`` (with
``stack_info=True``) and every attribute given with ``extra=``: as is when JSON can hold it,
else its ``repr``. An extra that would shadow one of those fields is written as
``extra_<name>``.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# The attributes every LogRecord has; anything else on a record came with extra=.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_FIELDS = frozenset({"ts", "level", "logger", "message", "process", "thread", "exc", "stack"})


class JsonFormatter(logging.Formatter):
    """One JSON object a line; a message or traceback over several lines stays one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
                  .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "thread": record.threadName,
        }
        if record.exc_info:
            # Cached on the record like logging.Formatter does, for the other handlers.
            record.exc_text = record.exc_text or self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key in _RECORD_ATTRIBUTES or key.startswith("_"):
                continue
            entry[f"extra_{key}" if key in _FIELDS else key] = _jsonable(value)
        return json.dumps(entry, ensure_ascii=False, allow_nan=False)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return repr(value)
    return value


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is at the time (as logging's last resort does), so a
    stream swapped later (a test runner's capture) gets the lines, not a closed one."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)  # StreamHandler's would pin the stream of today

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        """Ignored: the stream is always the current stderr."""


def configure_logging(level: str, fmt: Literal["text", "json"]) -> None:
    """The root logger at ``level``, on stderr, in format ``fmt``. Calling it again replaces
    the handler it installed; handlers others installed (a test runner's) are left alone."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(handler)
        handler.close()
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)
    # Migrations run at every start and say so at INFO: routine, unless debugging.
    logging.getLogger("alembic").setLevel(logging.NOTSET if level == "DEBUG" else logging.WARNING)
