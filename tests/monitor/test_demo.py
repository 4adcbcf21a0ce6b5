"""`copyguard demo` (what `make run` runs) on the embedded default."""

from __future__ import annotations

from tests.monitor.conftest import Cli


def test_demo_identifies_every_copy_and_reuses_its_catalog(sqlite_cli: Cli) -> None:
    first = sqlite_cli("demo")
    assert "8/8 right" in first.stdout
    assert first.stdout.count("imported as recording") == 12
    second = sqlite_cli("demo")
    assert "8/8 right" in second.stdout
    assert "imported as recording" not in second.stdout  # the catalog is reused, not re-imported
    assert len(sqlite_cli.json_lines("catalog", "list", "--json")) == 12
    # one holder and twelve recordings registered, nothing more
    assert "13 entries, no problems" in sqlite_cli("audit", "verify").stdout
