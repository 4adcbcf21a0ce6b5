"""Scaled out: several machines, each with its own data directory, share one catalog through
PostgreSQL; each keeps a local replica of the search index built from the ledger, or all search
one index kept in PostgreSQL (``[matching] index = "database"``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import load_settings
from fingerprints import decode_file
from monitor.app import build_app
from tests.monitor.conftest import Cli, make_cli


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


def _database_index(cli: Cli) -> Cli:
    return Cli({**cli.env, "COPYGUARD_MATCHING__INDEX": "database"})


@pytest.mark.postgres
def test_two_workers_search_one_index_in_postgresql(tmp_path: Path, postgres_url: str,
                                                    catalog_dir: Path) -> None:
    machine_a = _database_index(make_cli(tmp_path / "a", postgres_url))
    machine_b = _database_index(make_cli(tmp_path / "b", postgres_url))
    machine_a("holders", "add", "Acme Music", "--email", "legal@acme.example")
    machine_a("catalog", "import", str(catalog_dir / "track-23.wav"),
              str(catalog_dir / "track-24.wav"), "--holder", "Acme Music")
    # B's identify worker, started once and kept running
    worker = build_app(load_settings(environ=machine_b.env))
    matcher = worker.matcher()
    query = decode_file(catalog_dir / "track-24.wav")
    found = matcher.match(query)
    assert found is not None
    described = machine_b.json_lines("identify", "--json", str(catalog_dir / "track-24.wav"))
    assert described[0]["match"]["title"] == "track-24"
    assert described[0]["match"]["recording_id"] == found.recording_id
    # neither machine holds an index of its own
    assert not (tmp_path / "a" / "index").exists() and not (tmp_path / "b" / "index").exists()
    # a rebuild empties the shared index and fills it again from the ledger
    assert "the index holds 2." in machine_a("catalog", "reindex").stdout
    rebuilt = matcher.match(query)
    assert rebuilt is not None and rebuilt.recording_id == found.recording_id
    # a removal on A reaches the running worker at its next query
    machine_a("catalog", "remove", str(found.recording_id))
    assert matcher.match(query) is None
    worker.close()


def test_database_index_with_sqlite_is_refused(tmp_path: Path) -> None:
    result = _database_index(make_cli(tmp_path / "home"))("holders", "list", ok=False)
    assert result.exit_code == 2 and 'index = "database" needs a PostgreSQL' in result.stderr
