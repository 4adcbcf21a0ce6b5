"""The process's log on stderr: one JSON object a line for a collector, or the text format
people read; configuring it again replaces the handler rather than adding one."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from monitor.logformat import JsonFormatter, configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """configure_logging changes the process's root logger: put it back for the next tests."""
    root, alembic = logging.getLogger(), logging.getLogger("alembic")
    handlers, level, alembic_level = list(root.handlers), root.level, alembic.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    alembic.setLevel(alembic_level)


class Unserialisable:
    def __repr__(self) -> str:
        return "<Unserialisable>"


def test_json_lines_carry_the_record_its_extras_and_its_traceback(
        capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    configure_logging("INFO", "json")  # again: still one handler, one line a record
    log = logging.getLogger("copyguard.test")
    before = time.time()
    log.info("crawl %s done", "blog", extra={"job": "crawl:blog", "pages": 12,
                                             "target": Unserialisable(), "level": "mine"})
    log.debug("below the level: not written")
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        log.exception("stage %s failed", "cases")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    stamp = datetime.fromisoformat(first["ts"].replace("Z", "+00:00")).timestamp()
    assert before - 0.001 <= stamp <= time.time()
    assert {key: first[key] for key in ("level", "logger", "message", "job", "pages")} == {
        "level": "INFO", "logger": "copyguard.test", "message": "crawl blog done",
        "job": "crawl:blog", "pages": 12}
    assert first["target"] == "<Unserialisable>"
    assert first["extra_level"] == "mine"  # an extra never shadows a field of the record
    assert isinstance(first["process"], int) and first["thread"] == "MainThread"
    assert "exc" not in first
    assert (second["level"], second["message"]) == ("ERROR", "stage cases failed")
    assert second["exc"].startswith("Traceback (most recent call last):")
    assert second["exc"].endswith("ValueError: bad\nvalue")


def test_text_format_is_the_one_people_read(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING", "json")
    configure_logging("WARNING", "text")  # replaces the JSON handler
    logging.getLogger("copyguard.test").warning("disk %d%% full", 91)
    logging.getLogger("copyguard.test").info("not at WARNING")
    logging.getLogger("alembic.runtime.migration").warning("shown: a warning")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING copyguard.test: "
                        r"disk 91% full", lines[0])
    assert lines[1].endswith(" WARNING alembic.runtime.migration: shown: a warning")


def test_alembic_says_its_routine_only_when_debugging(capsys: pytest.CaptureFixture[str]) -> None:
    migration = logging.getLogger("alembic.runtime.migration")
    configure_logging("INFO", "text")
    migration.info("Context impl SQLiteImpl.")
    assert capsys.readouterr().err == ""
    configure_logging("DEBUG", "text")
    migration.info("Context impl SQLiteImpl.")
    assert capsys.readouterr().err.endswith("INFO alembic.runtime.migration: "
                                            "Context impl SQLiteImpl.\n")


def test_a_message_over_several_lines_stays_one_json_line() -> None:
    record = logging.makeLogRecord({"name": "x", "levelname": "INFO", "msg": "a\nb",
                                    "nan": float("nan")})
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["message"], entry["nan"]) == ("a\nb", "nan")  # NaN is not JSON: its repr
