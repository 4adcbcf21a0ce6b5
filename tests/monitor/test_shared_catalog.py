"""Scaled out: several machines, each with its own data directory, share one catalog through
PostgreSQL; each keeps a local replica of the search index built from the ledger."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.monitor.conftest import make_cli


@pytest.mark.postgres
def test_two_workers_share_one_catalog_through_postgresql(tmp_path: Path, postgres_url: str,
                                                          catalog_dir: Path) -> None:
    machine_a = make_cli(tmp_path / "a", postgres_url)
    machine_b = make_cli(tmp_path / "b", postgres_url)
    machine_a("holders", "add", "Acme Music", "--email", "legal@acme.example")
    machine_a("catalog", "import", str(catalog_dir / "track-21.wav"),
              str(catalog_dir / "track-22.wav"), "--holder", "Acme Music")
    query = str(catalog_dir / "track-22.wav")
    # machine B never imported anything: its index is built from the fingerprints in PostgreSQL
    found = machine_b.json_lines("identify", "--json", query)[0]["match"]
    assert found["title"] == "track-22" and found["holder"] == "Acme Music"
    assert not (tmp_path / "b" / "references").exists()
    # a removal on A reaches B's replica at its next start
    machine_a("catalog", "remove", str(found["recording_id"]))
    assert machine_b.json_lines("identify", "--json", query)[0]["match"] is None
    # and both see one audit chain
    assert "4 entries, no problems" in machine_b("audit", "verify").stdout
