"""Rights-holders and catalog recordings over the real server: who sees which, who may change
them, uploads that register fingerprinted recordings (and refuse corrupt, oversized or
duplicate audio without leaving anything behind), each change in the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select

from fingerprints.alter import encode
from fingerprints.synth import synthesize_track
from ledger.audit import verify_chain
from ledger.models import AuditEntry, Recording, RightsHolder
from tests.web.conftest import EXAMPLE, MARA, PASSWORD, Site

RATE = 22050
EXAMPLE_TITLES = ("Harbour Lights", "Northern Line", "Slow Tide", "Demo Tape", "Contested Air")


@pytest.fixture(scope="module")
def song() -> bytes:
    """25 s of synthesised music as a small MP3."""
    return encode(synthesize_track(41, 25.0, RATE), RATE, "mp3", "64k")


@pytest.fixture(scope="module")
def other_song() -> bytes:
    return encode(synthesize_track(42, 20.0, RATE), RATE, "mp3", "64k")


def _audit(site: Site, action: str) -> list[AuditEntry]:
    with site.app.ledger.read() as session:
        entries = list(session.execute(select(AuditEntry).where(AuditEntry.action == action)
                                       .order_by(AuditEntry.seq)).scalars())
        assert verify_chain(session).ok
        session.expunge_all()
    return entries


def _recording_count(site: Site) -> int:
    with site.app.ledger.read() as session:
        return int(session.scalar(select(func.count()).select_from(Recording)) or 0)


def _uploads_left(site: Site) -> list[Path]:
    folder = site.app.settings.home / "uploads"
    return list(folder.iterdir()) if folder.exists() else []


def _upload(client: httpx.Client, files: list[tuple[str, bytes]],
            **fields: Any) -> httpx.Response:
    return client.post("/api/v1/recordings", data={k: str(v) for k, v in fields.items()},
                       files=[("files", (name, body, "audio/mpeg")) for name, body in files])


# -- rights-holders ----------------------------------------------------------------------------

def test_holders_are_listed_newest_first_each_account_its_own(site: Site) -> None:
    for username in ("root", "ops"):
        with site.client(username) as client:
            page = client.get("/api/v1/holders").json()
        assert [h["name"] for h in page["items"]] == ["Other Label", MARA, EXAMPLE]
        assert page["total"] == 3
    for username, name in (("example", EXAMPLE), ("example-legal", EXAMPLE), ("mara", MARA),
                           ("mara-legal", MARA)):
        with site.client(username) as client:
            page = client.get("/api/v1/holders").json()
        assert [h["name"] for h in page["items"]] == [name] and page["total"] == 1
    with site.client("root") as client:
        second = client.get("/api/v1/holders", params={"limit": 1, "offset": 1}).json()
        assert [h["name"] for h in second["items"]] == [MARA] and second["total"] == 3
        assert client.get("/api/v1/holders", params={"limit": 0}).status_code == 422


def test_a_holder_reads_its_details_and_another_holders_are_missing(site: Site) -> None:
    story = site.story
    with site.client("example-legal") as client:
        mine = client.get(f"/api/v1/holders/{story.example}")
    assert mine.status_code == 200
    assert mine.json() | {"id": 0} == {
        "id": 0, "name": EXAMPLE, "email": "legal@example.example",
        "address": "12 Sample Street\nLondon N1 9XX\nUnited Kingdom",
        "phone": "+44 20 7946 0000", "signatory": "Jane Roe",
        "signatory_title": "Head of Legal Affairs", "notice_policy": "auto",
        "created_at": "2026-03-25T10:00:00+00:00"}
    with site.client("mara") as client:
        theirs = client.get(f"/api/v1/holders/{story.example}")
        missing = client.get("/api/v1/holders/99999")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["detail"] == f"no rights-holder {story.example}"
    assert missing.json()["detail"] == "no rights-holder 99999"


def test_only_an_admin_registers_a_holder_and_it_is_audited(site: Site) -> None:
    body = {"name": "New Wave Ltd", "email": "rights@newwave.example",
            "signatory": "Ann Lee", "signatory_title": "Director"}
    for username in ("ops", "example", "example-legal", "mara"):
        with site.client(username) as client:
            assert client.post("/api/v1/holders", json=body).status_code == 403
    with site.client("root") as client:
        made = client.post("/api/v1/holders", json=body)
        assert made.status_code == 201, made.text
        holder = made.json()
        assert (holder["name"], holder["signatory"], holder["notice_policy"]) == (
            "New Wave Ltd", "Ann Lee", "review")
        assert client.get(f"/api/v1/holders/{holder['id']}").json() == holder
        again = client.post("/api/v1/holders", json=body | {"email": "x@newwave.example"})
        assert again.status_code == 409 and "already exists" in again.json()["detail"]
        bad = client.post("/api/v1/holders", json={"name": "Bad", "email": "not-an-address"})
        assert bad.status_code == 400 and "e-mail" in bad.json()["detail"]
        policy = client.post("/api/v1/holders", json={"name": "Bad", "email": "a@b.example",
                                                     "notice_policy": "sometimes"})
        assert policy.status_code == 422
    added = _audit(site, "holder.added")
    assert [(e.actor, e.entity_id) for e in added] == [("user:root", str(holder["id"]))]


def test_a_holder_account_changes_its_own_details_only(site: Site) -> None:
    story = site.story
    change = {"phone": "+44 20 7946 0999", "signatory": None, "notice_policy": "review"}
    with site.client("mara") as client:
        refused = client.patch(f"/api/v1/holders/{story.example}", json=change)
    assert refused.status_code == 404 and refused.json()["detail"] == (
        f"no rights-holder {story.example}")
    for username in ("example-legal", "ops"):
        with site.client(username) as client:
            assert client.patch(f"/api/v1/holders/{story.example}",
                                json=change).status_code == 403
    assert _audit(site, "holder.updated") == []
    with site.client("example") as client:
        changed = client.patch(f"/api/v1/holders/{story.example}", json=change)
        assert changed.status_code == 200, changed.text
        assert (changed.json()["phone"], changed.json()["signatory"],
                changed.json()["notice_policy"]) == ("+44 20 7946 0999", None, "review")
        assert changed.json()["email"] == "legal@example.example"  # not sent: kept
        unchanged = client.patch(f"/api/v1/holders/{story.example}", json={})
        assert unchanged.status_code == 200 and unchanged.json() == changed.json()
        no_email = client.patch(f"/api/v1/holders/{story.example}", json={"email": None})
        assert no_email.status_code == 400
    with site.app.ledger.read() as session:
        row = session.get(RightsHolder, story.example)
        assert row is not None and (row.phone, row.signatory_name) == ("+44 20 7946 0999", None)
    with site.client("root") as client:
        assert client.patch(f"/api/v1/holders/{story.mara}",
                            json={"address": "1 New Road"}).json()["address"] == "1 New Road"
    updates = _audit(site, "holder.updated")
    assert [(e.actor, e.entity_id) for e in updates] == [("user:example", str(story.example)),
                                                         ("user:root", str(story.mara))]
    assert json.loads(updates[0].details)["before"]["signatory_name"] == "Jane Roe"


# -- the catalog -------------------------------------------------------------------------------

def test_the_catalog_is_listed_newest_first_within_each_accounts_scope(site: Site) -> None:
    story = site.story
    with site.client("root") as client:
        everything = client.get("/api/v1/recordings").json()
        assert everything["total"] == 7
        ids = [r["id"] for r in everything["items"]]
        assert ids == sorted(ids, reverse=True)
        only_mara = client.get("/api/v1/recordings", params={"holder_id": story.mara}).json()
        assert [r["title"] for r in only_mara["items"]] == ["Mara's Song"]
        paged = client.get("/api/v1/recordings", params={"limit": 2, "offset": 1}).json()
        assert [r["id"] for r in paged["items"]] == ids[1:3] and paged["total"] == 7
    for username in ("example", "example-legal"):
        with site.client(username) as client:
            page = client.get("/api/v1/recordings").json()
        assert sorted(r["title"] for r in page["items"]) == sorted(EXAMPLE_TITLES)
        assert {r["holder"] for r in page["items"]} == {EXAMPLE} and page["total"] == 5
    with site.client("mara-legal") as client:
        page = client.get("/api/v1/recordings")
        other = client.get("/api/v1/recordings", params={"holder_id": story.example}).json()
    assert [r["title"] for r in page.json()["items"]] == ["Mara's Song"]
    assert not any(title in page.text for title in EXAMPLE_TITLES)
    assert other == {"items": [], "total": 0}
    first = next(r for r in everything["items"] if r["id"] == story.harbour)
    assert first == {"id": story.harbour, "title": "Harbour Lights", "artist": None,
                     "isrc": None, "holder": EXAMPLE, "duration": 190.0,
                     "file": "Harbour Lights.flac", "registration_number": "SR0000912345",
                     "registration_date": "2024-03-01", "territories": ["WORLD"],
                     "status": "active"}


def test_a_recordings_detail_shows_registration_fingerprints_and_conflicts(site: Site) -> None:
    story = site.story
    with site.client("example-legal") as client:
        harbour = client.get(f"/api/v1/recordings/{story.harbour}").json()
        tide = client.get(f"/api/v1/recordings/{story.tide}").json()
        demo = client.get(f"/api/v1/recordings/{story.unregistered}").json()
        disputed = client.get(f"/api/v1/recordings/{story.disputed}").json()
    assert (harbour["holder_id"], harbour["registration"], harbour["conflicts"]) == (
        story.example, "registered", [])
    assert tide["registration"] == "pending" and demo["registration"] == "unregistered"
    # The story's rows were written without fingerprints: identify cannot find them.
    assert harbour["fingerprints"] == {"kinds": [], "landmarks": "missing",
                                       "reference_audio": False, "searchable": False}
    [conflict] = disputed["conflicts"]
    assert (conflict["other_holder"], conflict["similarity"], conflict["status"]) == (
        "Other Label", 0.93, "open")
    for username in ("mara", "mara-legal"):
        with site.client(username) as client:
            theirs = client.get(f"/api/v1/recordings/{story.harbour}")
            missing = client.get("/api/v1/recordings/99999")
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["detail"] == f"no recording {story.harbour}"
        assert "Harbour" not in theirs.text


def test_a_recording_is_withdrawn_by_its_holder_or_an_admin_only(site: Site) -> None:
    story = site.story
    for username, code in (("mara", 404), ("mara-legal", 403), ("example-legal", 403),
                           ("ops", 403)):
        with site.client(username) as client:
            answer = client.delete(f"/api/v1/recordings/{story.harbour}")
        assert answer.status_code == code, (username, answer.text)
    assert _audit(site, "recording.removed") == []
    with site.client("example") as client:
        removed = client.delete(f"/api/v1/recordings/{story.harbour}")
        assert removed.status_code == 200, removed.text
        assert removed.json()["status"] == "removed" and removed.json()["removed_at"]
        assert client.delete(f"/api/v1/recordings/{story.harbour}").status_code == 404
        listed = client.get("/api/v1/recordings").json()
        assert story.harbour not in [r["id"] for r in listed["items"]]
        every = client.get("/api/v1/recordings", params={"include_removed": True}).json()
        assert story.harbour in [r["id"] for r in every["items"]] and every["total"] == 5
        # Its history stays readable.
        assert client.get(f"/api/v1/recordings/{story.harbour}").json()["status"] == "removed"
    with site.client("root") as client:
        assert client.delete(f"/api/v1/recordings/{story.mara_song}").status_code == 200
    assert [(e.actor, e.entity_id) for e in _audit(site, "recording.removed")] == [
        ("user:example", str(story.harbour)), ("user:root", str(story.mara_song))]


# -- uploads -----------------------------------------------------------------------------------

def test_a_holder_uploads_a_recording_that_is_fingerprinted_and_searchable(
        site: Site, song: bytes) -> None:
    with site.client("example") as client:
        answer = _upload(client, [("../../Sea Song.mp3", song)], title="Sea Song",
                         artist="The Band", isrc="GB-AAA-26-00001", territories="GB, IE",
                         registration_number="SR0000777", registration_date="2026-01-15")
        assert answer.status_code == 201, answer.text
        [item] = answer.json()["items"]
        recording = item["recording"]
        assert (item["file"], item["status"]) == ("Sea Song.mp3", "imported")
        assert (recording["title"], recording["artist"], recording["isrc"],
                recording["holder"], recording["territories"], recording["registration"],
                recording["registration_date"]) == (
            "Sea Song", "The Band", "GBAAA2600001", EXAMPLE, ["GB", "IE"], "registered",
            "2026-01-15")
        assert abs(recording["duration"] - 25.0) < 0.2
        assert recording["fingerprints"] == {"kinds": ["chromaprint", "landmarks-v1"],
                                             "landmarks": "current", "reference_audio": True,
                                             "searchable": True}
        assert client.get(f"/api/v1/recordings/{recording['id']}").json() == recording
    with site.client("mara") as client:
        assert client.get(f"/api/v1/recordings/{recording['id']}").status_code == 404
        assert "Sea Song" not in client.get("/api/v1/recordings").text
    assert recording["id"] in site.app.index.recording_ids()
    [entry] = _audit(site, "recording.registered")
    assert (entry.actor, entry.entity_id, entry.holder_id) == (
        "user:example", str(recording["id"]), site.story.example)
    assert _uploads_left(site) == []


def test_the_same_audio_again_is_a_duplicate_and_another_holders_copy_a_conflict(
        site: Site, song: bytes, other_song: bytes) -> None:
    with site.client("example") as client:
        first = _upload(client, [("song.mp3", song)])
        assert first.status_code == 201, first.text
        original = first.json()["items"][0]["recording"]["id"]
        again = _upload(client, [("copy.mp3", song)])
        assert again.status_code == 409
        assert f"same audio as recording {original}" in again.json()["detail"]
        # With new audio beside it, the new file is imported and the copy reported.
        mixed = _upload(client, [("copy.mp3", song), ("new.mp3", other_song)])
        assert mixed.status_code == 201, mixed.text
        assert [(i["file"], i["status"]) for i in mixed.json()["items"]] == [
            ("copy.mp3", "duplicate"), ("new.mp3", "imported")]
        assert mixed.json()["items"][0]["recording"] is None
    with site.client("mara") as client:
        rival = _upload(client, [("mine.mp3", song)])
    assert rival.status_code == 201, rival.text
    [item] = rival.json()["items"]
    assert item["status"] == "conflict" and item["other_recording_ids"] == [original]
    assert item["recording"]["conflicts"][0]["other_holder"] == EXAMPLE
    assert len(_audit(site, "recording.registered")) == 3
    assert _uploads_left(site) == []


def test_staff_upload_for_the_holder_they_name_and_legal_accounts_only_read(
        site: Site, song: bytes) -> None:
    story = site.story
    before = _recording_count(site)
    with site.client("ops") as client:
        unnamed = _upload(client, [("a.mp3", song)])
        assert unnamed.status_code == 400 and "holder_id" in unnamed.json()["detail"]
        assert _upload(client, [("a.mp3", song)], holder_id=99999).status_code == 404
    for username in ("example-legal", "mara-legal"):
        with site.client(username) as client:
            assert _upload(client, [("a.mp3", song)]).status_code == 403
    with site.client("mara") as client:  # into another holder's catalog: as if it did not exist
        answer = _upload(client, [("a.mp3", song)], holder_id=story.example)
    assert answer.status_code == 404 and answer.json()["detail"] == (
        f"no rights-holder {story.example}")
    assert _recording_count(site) == before
    with site.client("ops") as client:
        made = _upload(client, [("a.mp3", song)], holder_id=story.mara)
    assert made.status_code == 201, made.text
    assert made.json()["items"][0]["recording"]["holder"] == MARA
    assert [e.actor for e in _audit(site, "recording.registered")] == ["user:ops"]


def test_a_file_that_is_not_audio_registers_nothing_and_is_named(site: Site,
                                                                 song: bytes) -> None:
    before = _recording_count(site)
    with site.client("example") as client:
        answer = _upload(client, [("good.mp3", song),
                                  ("broken.mp3", b"\xff\xfb\x90\x00" + b"garbage" * 500)])
        text = client.post("/api/v1/recordings",
                           files=[("files", ("notes.txt", b"not audio", "text/plain"))])
    assert answer.status_code == 400, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith("broken.mp3: ") and "nothing was registered" in detail
    assert str(site.app.settings.home) not in detail  # no server path
    assert text.status_code == 400 and text.json()["detail"].startswith("notes.txt: ")
    assert _recording_count(site) == before and _audit(site, "recording.registered") == []
    assert _uploads_left(site) == []


def test_an_upload_past_the_size_limit_is_refused_while_it_streams(site: Site) -> None:
    settings = site.app.settings
    site.app.settings = settings.model_copy(
        update={"web": settings.web.model_copy(update={"max_upload_mb": 1})})
    big = np.random.default_rng(7).integers(0, 256, 3 * 1024 * 1024 // 2, dtype=np.uint8)
    boundary = "catalog-test-boundary"

    def chunked() -> Iterator[bytes]:  # no Content-Length: the size is known only by counting
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
               f'filename="stream.wav"\r\n\r\n').encode()
        for _ in range(24):
            yield bytes(64 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    with site.client("example") as client:
        answer = _upload(client, [("huge.wav", big.tobytes())])
        streamed = client.post("/api/v1/recordings", content=chunked(), headers={
            "content-type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status_code == 413
    assert answer.json()["detail"].startswith("huge.wav is larger than the upload limit of 1 MiB")
    assert streamed.status_code == 413 and "stream.wav" in streamed.json()["detail"]
    assert _recording_count(site) == 7 and _uploads_left(site) == []


def test_malformed_uploads_are_refused_with_a_reason(site: Site, song: bytes) -> None:
    with site.client("example") as client:
        not_form = client.post("/api/v1/recordings", content=song,
                               headers={"content-type": "audio/mpeg"})
        assert not_form.status_code == 415
        nothing = client.post("/api/v1/recordings", data={"artist": "x"},
                              files=[("other", ("a.txt", b"x", "text/plain"))])
        assert nothing.status_code == 400 and "'files'" in nothing.json()["detail"]
        empty = client.post("/api/v1/recordings", data={"artist": "x"},
                            headers={"content-type": "multipart/form-data; boundary=abc"},
                            content=b"--abc--\r\n")
        assert empty.status_code == 400 and "no audio" in empty.json()["detail"]
        two_titles = _upload(client, [("a.mp3", song), ("b.mp3", song)], title="One")
        assert two_titles.status_code == 400 and "one file" in two_titles.json()["detail"]
        bad_isrc = _upload(client, [("a.mp3", song)], isrc="nope")
        assert bad_isrc.status_code == 400 and "ISRC" in bad_isrc.json()["detail"]
        unknown = _upload(client, [("a.mp3", song)], colour="blue")
        assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == [
            "body", "colour"]
        bad_date = _upload(client, [("a.mp3", song)], registration_date="yesterday")
        assert bad_date.status_code == 422
    assert _recording_count(site) == 7 and _uploads_left(site) == []


def test_a_browser_session_sends_its_csrf_token_in_the_header_to_upload(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=30) as client:
        login = client.post("/api/v1/login", json={"username": "example",
                                                   "password": PASSWORD})
        client.cookies.clear()
        client.cookies.set("copyguard_session", login.cookies["copyguard_session"])
        csrf = login.json()["csrf_token"]
        files = [("files", ("x.mp3", b"garbage", "audio/mpeg"))]
        in_form = client.post("/api/v1/recordings", data={"csrf_token": csrf}, files=files)
        assert in_form.status_code == 403 and "header" in in_form.json()["detail"]
        in_header = client.post("/api/v1/recordings", files=files,
                                headers={"X-CSRF-Token": csrf})
        assert in_header.status_code == 400 and in_header.json()["detail"].startswith("x.mp3")
        # The console's form (no script to set a header) sends it in the query string.
        in_query = client.post("/api/v1/recordings", files=files,
                               params={"csrf_token": csrf})
        assert in_query.status_code == 400 and in_query.json()["detail"].startswith("x.mp3")
        wrong = client.post("/api/v1/recordings", files=files, params={"csrf_token": "no"})
        assert wrong.status_code == 403


def test_the_openapi_document_describes_the_upload_form(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=30) as client:
        document = client.get("/api/openapi.json").json()
    operation = document["paths"]["/api/v1/recordings"]["post"]
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert schema["required"] == ["files"]
    assert {"files", "holder_id", "title", "isrc", "registration_status"} <= set(
        schema["properties"])
    assert {"201", "400", "403", "409", "413"} <= set(operation["responses"])
