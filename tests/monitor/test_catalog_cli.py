"""Rights-holders and catalog registration through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, text

from fingerprints.alter import reencode
from fingerprints.synth import synthesize_track, write_wav
from tests.monitor.conftest import RATE, Cli


def _add_holders(cli: Cli) -> None:
    cli("holders", "add", "Acme Music", "--email", "legal@acme.example", "--address",
        "1 Main St", "--phone", "+1 555 0100")
    cli("holders", "add", "Rival Records", "--email", "rights@rival.example")


def test_holders_add_and_list_json(cli: Cli) -> None:
    _add_holders(cli)
    holders = cli.json_lines("holders", "list", "--json")
    assert [(h["name"], h["email"], h["phone"]) for h in holders] == [
        ("Acme Music", "legal@acme.example", "+1 555 0100"),
        ("Rival Records", "rights@rival.example", None)]
    again = cli("holders", "add", "Acme Music", "--email", "x@acme.example", ok=False)
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_import_folder_with_metadata_and_a_corrupt_file(cli: Cli, tmp_path: Path,
                                                        catalog_dir: Path) -> None:
    _add_holders(cli)
    folder = tmp_path / "incoming"
    shutil.copytree(catalog_dir, folder)
    (folder / "broken.mp3").write_bytes(b"\xff\xfb\x90\x00" + b"\x00garbage" * 100)
    (folder / "notes.txt").write_text("not audio")
    sheet = tmp_path / "meta.csv"
    with sheet.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "title", "artist", "isrc", "registration_number",
                         "registration_date", "territories"])
        writer.writerow(["track-01.wav", "Opening <Theme>", "The Band", "US-RC1-76-07839",
                         "SR0000123", "2024-05-01", "US CA"])
    lines = cli.json_lines("catalog", "import", str(folder), "--holder", "Acme Music",
                           "--metadata", str(sheet), "--json")
    by_file = {Path(line["file"]).name: line for line in lines}
    assert "notes.txt" not in by_file
    assert by_file["broken.mp3"]["status"] == "failed"
    assert sum(line["status"] == "imported" for line in lines) == 30
    catalog = cli.json_lines("catalog", "list", "--json")
    assert len(catalog) == 30
    first = next(rec for rec in catalog if rec["file"] == "track-01.wav")
    assert (first["title"], first["artist"], first["isrc"], first["holder"]) == (
        "Opening <Theme>", "The Band", "USRC17607839", "Acme Music")
    assert first["registration_date"] == "2024-05-01" and first["territories"] == ["US", "CA"]
    assert abs(first["duration"] - 40.0) < 0.1
    other = next(rec for rec in catalog if rec["file"] == "track-02.wav")
    assert other["title"] == "track-02" and other["territories"] == ["WORLD"]
    assert "32 entries, no problems" in cli("audit", "verify").stdout  # 2 holders, 30 recordings


def test_bad_metadata_csv_stops_before_importing(cli: Cli, tmp_path: Path,
                                                 catalog_dir: Path) -> None:
    _add_holders(cli)
    sheet = tmp_path / "meta.csv"
    sheet.write_text("file,isrc\ntrack-01.wav,NOT-AN-ISRC\n")
    result = cli("catalog", "import", str(catalog_dir / "track-01.wav"), "--holder",
                 "Acme Music", "--metadata", str(sheet), ok=False)
    assert result.exit_code == 1 and "row 2" in result.stderr and "ISRC" in result.stderr
    assert cli.json_lines("catalog", "list", "--json") == []


def test_unknown_holder_is_a_clear_error(cli: Cli, catalog_dir: Path) -> None:
    result = cli("catalog", "import", str(catalog_dir / "track-01.wav"), "--holder", "Nobody",
                 ok=False)
    assert result.exit_code == 1 and "no rights-holder named 'Nobody'" in result.stderr


def test_same_audio_twice_is_a_duplicate_and_across_holders_a_conflict(
        cli: Cli, tmp_path: Path, catalog_dir: Path) -> None:
    _add_holders(cli)
    original = catalog_dir / "track-03.wav"
    cli("catalog", "import", str(original), "--holder", "Acme Music")
    # The same recording, re-encoded: different bytes, same audio.
    copy = tmp_path / "copy-of-3.wav"
    write_wav(copy, reencode(synthesize_track(3, 40.0, RATE), RATE, "mp3", "128k")[:40 * RATE],
              RATE)
    again = cli.json_lines("catalog", "import", str(copy), "--holder", "Acme Music", "--json")
    assert again[0]["status"] == "duplicate"
    rival = cli.json_lines("catalog", "import", str(copy), "--holder", "Rival Records", "--json")
    assert rival[0]["status"] == "conflict"
    for holder in ("Acme Music", "Rival Records"):
        conflicts = cli.json_lines("catalog", "conflicts", "--holder", holder, "--json")
        assert len(conflicts) == 1
        assert {r["holder"] for r in conflicts[0]["recordings"]} == {"Acme Music",
                                                                     "Rival Records"}
        assert conflicts[0]["similarity"] >= 0.8
    assert len(cli.json_lines("catalog", "list", "--json")) == 2


def test_remove_makes_the_index_forget(cli: Cli, catalog_dir: Path) -> None:
    _add_holders(cli)
    cli("catalog", "import", str(catalog_dir / "track-04.wav"), str(catalog_dir / "track-05.wav"),
        "--holder", "Acme Music")
    ids = {Path(rec["file"]).stem: rec["id"] for rec in cli.json_lines("catalog", "list", "--json")}
    query = str(catalog_dir / "track-04.wav")
    assert cli.json_lines("identify", query, "--json")[0]["match"]["recording_id"] == ids[
        "track-04"]
    cli("catalog", "remove", str(ids["track-04"]))
    assert cli.json_lines("identify", query, "--json")[0]["match"] is None
    listed = cli.json_lines("catalog", "list", "--all", "--json")
    assert {rec["status"] for rec in listed} == {"active", "removed"}
    missing = cli("catalog", "remove", "999", ok=False)
    assert missing.exit_code == 1 and "no active recording" in missing.stderr


def test_audit_verify_reports_a_tampered_row(cli: Cli, database_url: str) -> None:
    _add_holders(cli)
    assert "2 entries, no problems" in cli("audit", "verify").stdout
    engine = create_engine(database_url)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
        else:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change"))
        conn.execute(text("UPDATE audit_log SET details = '{}' WHERE seq = 1"))
    engine.dispose()
    result = cli("audit", "verify", ok=False)
    assert result.exit_code == 1
    assert "entry 1 (holder.added)" in result.stderr and "BROKEN" in result.stderr


def test_bad_configuration_stops_with_the_key_named(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[matching]\nmin_confidence = 7\n")
    result = cli("--config", str(config), "holders", "list", ok=False)
    assert result.exit_code == 2 and "[matching] min_confidence" in result.stderr


def test_tags_are_read_and_the_csv_overrides_them(cli: Cli, tmp_path: Path,
                                                  catalog_dir: Path) -> None:
    _add_holders(cli)
    tagged = tmp_path / "tagged.mp3"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(catalog_dir / "track-11.wav"),
                    "-metadata", "title=Tagged Title", "-metadata", "artist=Tag Artist",
                    "-metadata", "TSRC=GBAYE0601498", "-b:a", "128k", str(tagged)], check=True)
    flac = tmp_path / "tagged.flac"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", str(catalog_dir / "track-12.wav"),
                    "-metadata", "title=Flac Title", "-metadata", "artist=Flac Artist",
                    str(flac)], check=True)
    sheet = tmp_path / "meta.csv"
    sheet.write_text("file,artist,registration_number\ntagged.flac,CSV Artist,PA0001\n")
    cli("catalog", "import", str(tagged), str(flac), "--holder", "Acme Music", "--metadata",
        str(sheet))
    listed = {rec["file"]: rec for rec in cli.json_lines("catalog", "list", "--json")}
    assert (listed["tagged.mp3"]["title"], listed["tagged.mp3"]["artist"],
            listed["tagged.mp3"]["isrc"]) == ("Tagged Title", "Tag Artist", "GBAYE0601498")
    assert (listed["tagged.flac"]["title"], listed["tagged.flac"]["artist"],
            listed["tagged.flac"]["registration_number"]) == ("Flac Title", "CSV Artist",
                                                               "PA0001")


def test_index_is_rebuilt_from_the_ledger_after_it_is_lost(cli: Cli, tmp_path: Path,
                                                           catalog_dir: Path) -> None:
    """A crash between a commit and the index save (or a lost index) loses no recording."""
    _add_holders(cli)
    cli("catalog", "import", str(catalog_dir / "track-13.wav"), str(catalog_dir / "track-14.wav"),
        "--holder", "Acme Music")
    shutil.rmtree(Path(cli.env["COPYGUARD_HOME"]) / "index")
    lines = cli.json_lines("identify", "--json", str(catalog_dir / "track-14.wav"))
    assert lines[0]["match"]["title"] == "track-14"


def test_interrupted_import_resumes_without_duplicates(cli: Cli, catalog_dir: Path) -> None:
    """Re-running an import after an interruption skips what was already committed."""
    _add_holders(cli)
    cli("catalog", "import", str(catalog_dir / "track-15.wav"), "--holder", "Acme Music")
    rerun = cli.json_lines("catalog", "import", str(catalog_dir / "track-15.wav"),
                           str(catalog_dir / "track-16.wav"), "--holder", "Acme Music", "--json")
    assert [line["status"] for line in rerun] == ["duplicate", "imported"]
    assert len(cli.json_lines("catalog", "list", "--json")) == 2


def test_reference_audio_is_kept_and_reindex_rebuilds_from_it(cli: Cli,
                                                              catalog_dir: Path) -> None:
    _add_holders(cli)
    cli("catalog", "import", str(catalog_dir / "track-17.wav"), str(catalog_dir / "track-18.wav"),
        "--holder", "Acme Music")
    references = list((Path(cli.env["COPYGUARD_HOME"]) / "references").rglob("*.flac"))
    assert len(references) == 2
    out = cli("catalog", "reindex").stdout
    assert "Fingerprinted 2 recording(s) again; the index holds 2." in out
    assert cli.json_lines("identify", "--json", str(catalog_dir / "track-18.wav"))[0][
        "match"]["title"] == "track-18"


def test_fingerprints_of_an_older_scheme_are_made_again(cli: Cli, catalog_dir: Path,
                                                        database_url: str) -> None:
    """After an upgrade changes the fingerprint scheme, the catalog still matches: stale
    fingerprints are recomputed from the reference audio and the index is rebuilt."""
    _add_holders(cli)
    cli("catalog", "import", str(catalog_dir / "track-19.wav"), "--holder", "Acme Music")
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE recording_fingerprints SET scheme = 'pair-v0', data = :junk "
                          "WHERE kind = 'landmarks-v1'"), {"junk": b"not a fingerprint"})
    engine.dispose()
    manifest = Path(cli.env["COPYGUARD_HOME"]) / "index" / "manifest.json"
    manifest.write_text(manifest.read_text().replace("pair-v1", "pair-v0"))
    lines = cli.json_lines("identify", "--json", str(catalog_dir / "track-19.wav"))
    assert lines[0]["match"]["title"] == "track-19"
