"""Uploads registered in the background (``POST /imports``): the answer comes once the files are
received, the import's progress and outcome are read at ``/imports/{id}``, a file that is not
audio registers nothing, and an import survives its server stopping or being killed on the way
(taken up again, each recording registered once)."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from fingerprints.alter import encode
from fingerprints.synth import synthesize_track
from ledger import imports
from ledger.audit import verify_chain
from ledger.clock import SystemClock
from ledger.models import AuditEntry, CatalogImport, Recording
from monitor.app import App
from monitor.web.importer import UploadedFile, UploadFields, register_uploads
from tests.monitor.conftest import make_cli
from tests.web.conftest import EXAMPLE, Site, _free_port
from tests.web.test_serve_cli import _wait_up

RATE = 22050


def _song(seed: int, seconds: float = 20.0) -> bytes:
    return encode(synthesize_track(seed, seconds, RATE), RATE, "mp3", "64k")


@pytest.fixture(scope="module")
def songs() -> list[bytes]:
    return [_song(seed) for seed in (61, 62)]


def _start(client: httpx.Client, files: list[tuple[str, bytes]],
           **fields: Any) -> httpx.Response:
    return client.post("/api/v1/imports", data={k: str(v) for k, v in fields.items()},
                       files=[("files", (name, body, "audio/mpeg")) for name, body in files])


def _finished(client: httpx.Client, import_id: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = client.get(f"/api/v1/imports/{import_id}")
        assert view.status_code == 200, view.text
        if view.json()["status"] in ("done", "failed"):
            return dict(view.json())
        assert time.monotonic() < deadline, view.json()
        time.sleep(0.1)


def _titles(app: App) -> list[str]:
    with app.ledger.read() as session:
        return sorted(session.scalars(select(Recording.title)))


def _leftovers(home: Path) -> list[Path]:
    folder = home / "uploads"
    return list(folder.iterdir()) if folder.exists() else []


def test_an_upload_is_registered_in_the_background(site: Site, songs: list[bytes]) -> None:
    before = _titles(site.app)
    with site.client("example") as client:
        started = _start(client, [("Sea Shanty.mp3", songs[0]), ("Low Tide.mp3", songs[1])],
                         artist="The Gulls")
        assert started.status_code == 202, started.text
        view = started.json()
        assert view["status"] in ("queued", "running") and view["holder"] == EXAMPLE
        assert (view["files"], view["files_total"]) == (["Sea Shanty.mp3", "Low Tide.mp3"], 2)
        done = _finished(client, view["id"])
        listed = client.get("/api/v1/imports").json()
    assert done["status"] == "done" and done["error"] is None, done
    assert done["files_done"] == 2 and done["current_file"] is None
    assert [(item["file"], item["status"]) for item in done["items"]] == [
        ("Sea Shanty.mp3", "imported"), ("Low Tide.mp3", "imported")]
    assert {item["recording"]["artist"] for item in done["items"]} == {"The Gulls"}
    assert sorted(set(_titles(site.app)) - set(before)) == ["Low Tide", "Sea Shanty"]
    assert listed["items"][0]["id"] == view["id"] and listed["total"] == 1
    with site.app.ledger.read() as session:
        registered = session.scalars(select(AuditEntry).where(
            AuditEntry.action == "recording.registered")).all()
        ours = [e for e in registered
                if json.loads(e.details)["title"] in ("Low Tide", "Sea Shanty")]
        assert len(ours) == 2 and {e.actor for e in ours} == {"user:example"}
        assert verify_chain(session).ok
    assert _leftovers(site.app.settings.home) == []


def test_a_file_that_is_not_audio_fails_the_import_and_registers_nothing(
        site: Site, songs: list[bytes]) -> None:
    before = _titles(site.app)
    with site.client("example") as client:
        started = _start(client, [("fine.mp3", songs[0]),
                                  ("broken.mp3", b"\xff\xfb\x90\x00" + b"garbage" * 500)])
        assert started.status_code == 202, started.text
        done = _finished(client, started.json()["id"])
    assert done["status"] == "failed" and done["items"] is None
    assert "broken.mp3" in done["error"] and "nothing was registered" in done["error"]
    assert str(site.app.settings.home) not in done["error"]  # no server path shown
    assert _titles(site.app) == before
    assert _leftovers(site.app.settings.home) == []


def test_a_wrong_field_is_refused_before_anything_waits(site: Site, songs: list[bytes]) -> None:
    with site.client("example") as client:
        bad_isrc = _start(client, [("a.mp3", songs[0])], isrc="not an isrc")
        two_titles = _start(client, [("a.mp3", songs[0]), ("b.mp3", songs[1])], title="One")
        nothing = client.post("/api/v1/imports", data={"artist": "x"},
                              files=[("other", ("x.txt", b"x", "text/plain"))])
    assert bad_isrc.status_code == 400 and "ISRC" in bad_isrc.text.upper(), bad_isrc.text
    assert two_titles.status_code == 400 and "one file" in two_titles.text
    assert nothing.status_code == 400
    with site.app.ledger.read() as session:
        assert session.scalar(select(func.count()).select_from(CatalogImport)) == 0
    assert _leftovers(site.app.settings.home) == []


def test_the_legal_role_reads_imports_but_cannot_upload(site: Site, songs: list[bytes]) -> None:
    with site.client("example-legal") as client:
        assert _start(client, [("a.mp3", songs[0])]).status_code == 403
        assert client.get("/api/v1/imports").status_code == 200


def test_an_import_left_by_a_dead_server_is_taken_over(site: Site, songs: list[bytes]) -> None:
    """A server killed mid-import leaves the row running under a lease that has not run out:
    on the same host the dead process is recognised and the import taken up at once."""
    dead = subprocess.Popen(["true"])
    dead.wait()
    folder = site.app.settings.home / "uploads" / "upload-orphan"
    (folder / "0").mkdir(parents=True)
    (folder / "0" / "Orphan.mp3").write_bytes(songs[0])
    with site.app.ledger.write() as session:
        row = imports.queue_import(session, site.app.clock, holder_id=site.story.example,
                                   actor="user:example", directory=folder.name,
                                   files=[("Orphan.mp3", "0/Orphan.mp3")], fields={})
        row.status, row.attempts = "running", 1
        row.claimed_by = f"{socket.gethostname()}:{dead.pid}"
        row.lease_until = SystemClock().now().replace(year=2099)
        import_id = row.id
    with site.client("example") as client:
        done = _finished(client, import_id, timeout=60)
    assert done["status"] == "done" and done["items"][0]["status"] == "imported"
    with site.app.ledger.read() as session:
        assert session.get_one(CatalogImport, import_id).attempts == 2
    assert "Orphan" in _titles(site.app) and not folder.exists()


def test_progress_is_reported_file_by_file(site: Site, songs: list[bytes],
                                           tmp_path: Path) -> None:
    files = []
    for number, body in enumerate(songs):
        path = tmp_path / f"{number}.mp3"
        path.write_bytes(body)
        files.append(UploadedFile(f"track {number}.mp3", path))
    seen: list[tuple[int, str | None]] = []
    items = register_uploads(site.app, "user:test", site.story.mara, UploadFields(), files,
                             lambda done, current: seen.append((done, current)))
    assert seen == [(0, "track 0.mp3"), (1, "track 1.mp3"), (2, None)]
    assert [item.status for item in items] == ["imported", "imported"]


def _status(url: str, key: str, import_id: int) -> dict[str, Any]:
    answer = httpx.get(f"{url}/api/v1/imports/{import_id}", timeout=10,
                       headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    server = subprocess.Popen([sys.executable, "-m", "monitor", "serve", "--listen",
                               f"127.0.0.1:{port}"], env=env, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_up(f"http://127.0.0.1:{port}", server)
    except BaseException:
        server.kill()
        server.communicate()
        raise
    return server


def _when_running(url: str, key: str, import_id: int, server: subprocess.Popen[str]) -> None:
    """Wait until the importer is between the first and the last file."""
    deadline = time.monotonic() + 120
    while True:
        view = _status(url, key, import_id)
        assert view["status"] in ("queued", "running"), view  # it must not finish first
        if view["status"] == "running" and 1 <= view["files_done"] < view["files_total"] - 1:
            return
        assert server.poll() is None and time.monotonic() < deadline, view
        time.sleep(0.05)


def test_an_import_survives_its_server_stopping_and_being_killed(tmp_path: Path) -> None:
    """SIGTERM mid-import gives it back (queued); kill -9 mid-import leaves it to the next
    start; either way every file is registered exactly once in the end."""
    cli = make_cli(tmp_path / "home")
    cli("holders", "add", "Acme", "--email", "legal@acme.example")
    cli("users", "add", "alice", "--role", "holder", "--holder", "Acme", "--no-password")
    key = cli("users", "key", "add", "alice", "--name", "t").stdout.strip()
    count = 5
    bodies = [(f"Track {n}.mp3", _song(70 + n, 30.0)) for n in range(count)]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = _serve(cli.env, port)
    try:
        started = httpx.post(f"{url}/api/v1/imports", timeout=60,
                             headers={"Authorization": f"Bearer {key}"},
                             files=[("files", (n, b, "audio/mpeg")) for n, b in bodies])
        assert started.status_code == 202, started.text
        import_id = started.json()["id"]
        _when_running(url, key, import_id, server)
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
        assert server.returncode == 0
        server = _serve(cli.env, port)
        _when_running(url, key, import_id, server)
        server.kill()
        server.communicate(timeout=30)
        server = _serve(cli.env, port)
        deadline = time.monotonic() + 180
        while (view := _status(url, key, import_id))["status"] not in ("done", "failed"):
            assert time.monotonic() < deadline, view
            time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=60)
    assert view["status"] == "done", view
    assert [item["status"] for item in view["items"]] == ["imported"] * count
    listed = cli.json_lines("catalog", "list", "--json")
    assert sorted(r["title"] for r in listed) == sorted(f"Track {n}" for n in range(count))
    with_attempts = _status_row(tmp_path / "home", import_id)
    assert with_attempts >= 3  # taken three times: before the stop, after it, after the kill
    assert not (tmp_path / "home" / "uploads").exists() or not any(
        (tmp_path / "home" / "uploads").iterdir())
    assert "no problems" in cli("audit", "verify").stdout


def _status_row(home: Path, import_id: int) -> int:

    with sqlite3.connect(home / "copyguard.db") as db:
        return int(db.execute("SELECT attempts FROM catalog_imports WHERE id = ?",
                              (import_id,)).fetchone()[0])
