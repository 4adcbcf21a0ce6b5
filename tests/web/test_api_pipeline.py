"""The pipeline's endpoints on the real server: targets and status for operators only,
detections and captures (and the captured audio) scoped to the caller's rights-holder, with
another holder's rows answering exactly as missing ones."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from ledger import audit
from ledger.models import AuditEntry, Capture, Detection, DetectionStatus, Target
from tests.takedown.ledger_history import LedgerHistory
from tests.web.conftest import EXAMPLE, MARA, Site

SCOPED = ("example", "example-legal", "mara", "mara-legal")
STAFF = ("root", "ops")
AUDIO = b"ID3\x04\x00" + bytes(range(256)) * 40  # stands for an MP3's bytes


def _get(site: Site, username: str, path: str, **params: Any) -> Any:
    with site.client(username) as client:
        answer = client.get(f"/api/v1{path}", params=params)
    assert answer.status_code == 200, (username, path, answer.text)
    return answer.json()


def _status(site: Site, username: str, method: str, path: str, **kwargs: Any) -> int:
    with site.client(username) as client:
        return client.request(method, f"/api/v1{path}", **kwargs).status_code


def _detection_ids(site: Site, holder_id: int | None = None) -> list[int]:
    """Ids newest first, straight from the ledger."""
    query = select(Detection.id).order_by(Detection.id.desc())
    if holder_id is not None:
        query = query.where(Detection.holder_id == holder_id)
    with site.app.ledger.read() as session:
        return list(session.scalars(query))


def _capture_of(site: Site, detection_id: int) -> int:
    with site.app.ledger.read() as session:
        detection = session.get(Detection, detection_id)
        assert detection is not None
        return detection.capture_id


def _mara_detection(site: Site) -> int:
    (only,) = _detection_ids(site, site.story.mara)
    return only


def _audit(site: Site, action: str) -> list[AuditEntry]:
    with site.app.ledger.read() as session:
        rows = list(session.scalars(select(AuditEntry).where(AuditEntry.action == action)))
        session.expunge_all()
        assert audit.verify_chain(session).ok
    return rows


# -- targets -------------------------------------------------------------------------------


def test_targets_are_listed_for_staff_newest_first(site: Site) -> None:
    with site.app.ledger.read() as session:
        expected = [t.name for t in session.scalars(
            select(Target).order_by(Target.created_at.desc(), Target.id.desc()))]
    for username in STAFF:
        page = _get(site, username, "/targets")
        assert page["total"] == len(expected) == 6
        assert [t["name"] for t in page["items"]] == expected
    second = _get(site, "ops", "/targets", limit=2, offset=1)
    assert [t["name"] for t in second["items"]] == expected[1:3] and second["total"] == 6
    blog = _get(site, "ops", "/targets/pirate-blog")
    assert blog["start_urls"] == ["https://pirate-blog.example/"] and blog["source"] == "config"
    assert _status(site, "ops", "GET", "/targets/no-such-site") == 404
    assert _status(site, "ops", "GET", "/targets", params={"limit": 501}) == 422


@pytest.mark.parametrize("username", SCOPED)
def test_targets_and_status_are_refused_to_holder_and_legal_accounts(site: Site,
                                                                      username: str) -> None:
    body = {"name": "sneaky", "start_urls": ["https://sneaky.example/"]}
    assert _status(site, username, "GET", "/targets") == 403
    assert _status(site, username, "GET", "/targets/pirate-blog") == 403
    assert _status(site, username, "POST", "/targets", json=body) == 403
    assert _status(site, username, "DELETE", "/targets/honest-host") == 403
    assert _status(site, username, "GET", "/status") == 403
    with site.app.ledger.read() as session:
        assert session.scalar(select(Target).where(Target.name == "sneaky")) is None
        assert session.scalar(select(Target.removed_at)
                              .where(Target.name == "honest-host")) is None


def test_an_operator_adds_and_removes_a_target_in_the_ledger_and_the_audit_log(
        site: Site) -> None:
    body = {"name": "lan-radio", "start_urls": ["http://127.0.0.1:8000/radio/"],
            "schedule": "every 30m", "depth": 1, "allow_private": True,
            "follow": [r"/radio/"], "notice_email": "abuse@lan.example", "jurisdiction": "dsa"}
    with site.client("ops") as client:
        added = client.post("/api/v1/targets", json=body)
        assert added.status_code == 201, added.text
        target = added.json()
        assert target["allow_private"] is True and target["source"] == "cli"
        assert target["allowed_domains"] == ["127.0.0.1"]  # from the start URL
        # [crawl]'s defaults fill what the request left out, as with `targets add`.
        crawl = site.app.settings.crawl
        assert target["delay_seconds"] == crawl.default_delay_seconds
        assert target["concurrency"] == crawl.default_concurrency
        assert client.get("/api/v1/targets/lan-radio").json() == target
        again = client.post("/api/v1/targets", json=body)
        assert again.status_code == 409 and "already exists" in again.json()["detail"]
        assert client.delete("/api/v1/targets/lan-radio").status_code == 204
        assert client.get("/api/v1/targets/lan-radio").status_code == 404
        assert client.delete("/api/v1/targets/lan-radio").status_code == 404
    (entry,) = _audit(site, "target.added")[-1:]
    assert entry.actor == "user:ops" and entry.entity_id == str(target["id"])
    (removed,) = _audit(site, "target.removed")
    assert removed.actor == "user:ops" and '"lan-radio"' in removed.details
    with site.app.ledger.read() as session:
        row = session.get(Target, target["id"])
        assert row is not None and row.removed_at is not None  # kept, for its history


def test_a_target_from_the_config_file_cannot_be_removed_over_the_api(site: Site) -> None:
    with site.client("root") as client:
        refused = client.delete("/api/v1/targets/pirate-blog")
        assert refused.status_code == 409
        assert "config file" in refused.json()["detail"]
        assert client.get("/api/v1/targets/pirate-blog").status_code == 200
    assert _audit(site, "target.removed") == []


@pytest.mark.parametrize(("change", "complaint"), [
    ({"start_urls": ["ftp://files.example/"]}, "is not an http(s) URL"),
    ({"start_urls": []}, "at least 1 item"),
    ({"schedule": "whenever"}, "schedule"),
    ({"deny": ["(unclosed"]}, "follow/deny pattern"),
    ({"depth": 99}, "less than or equal to 50"),
    ({"jurisdiction": "mars"}, "'dmca', 'dsa' or 'prc'"),
    ({"name": "no spaces allowed"}, "should match pattern"),
    ({"colour": "blue"}, "Extra inputs are not permitted"),
])
def test_a_bad_target_is_refused_with_a_clear_reason(site: Site, change: dict[str, Any],
                                                     complaint: str) -> None:
    body = {"name": "bad-one", "start_urls": ["https://bad.example/"], **change}
    with site.client("ops") as client:
        answer = client.post("/api/v1/targets", json=body)
    assert answer.status_code == 422, answer.text
    assert complaint in answer.text
    with site.app.ledger.read() as session:
        assert session.scalar(select(Target).where(Target.name == "bad-one")) is None


# -- detections ----------------------------------------------------------------------------


def test_each_account_lists_only_its_holders_detections_newest_first(site: Site) -> None:
    story = site.story
    for username in STAFF:
        page = _get(site, username, "/detections")
        assert [d["id"] for d in page["items"]] == _detection_ids(site)
        assert page["total"] == len(_detection_ids(site)) == 12
    for username, holder_id, name in (("example", story.example, EXAMPLE),
                                      ("example-legal", story.example, EXAMPLE),
                                      ("mara", story.mara, MARA),
                                      ("mara-legal", story.mara, MARA)):
        page = _get(site, username, "/detections")
        assert [d["id"] for d in page["items"]] == _detection_ids(site, holder_id)
        assert page["total"] == len(page["items"]) and {d["holder"] for d in page["items"]} \
            == {name}
        # Asking for the other holder's detections by id finds nothing, not theirs.
        other = story.mara if holder_id == story.example else story.example
        assert _get(site, username, "/detections", holder_id=other) == {"items": [],
                                                                        "total": 0}
    (mine,) = _get(site, "mara", "/detections")["items"]
    assert mine["title"] == "Mara's Song" and mine["target"] == "pirate-blog"
    assert mine["url"] == "https://files.pirate-blog.example/a/9.mp3"


def test_detections_are_filtered_and_paged(site: Site) -> None:
    story = site.story
    everything = _detection_ids(site)
    page = _get(site, "ops", "/detections", limit=3, offset=2)
    assert [d["id"] for d in page["items"]] == everything[2:5] and page["total"] == 12
    assert _get(site, "ops", "/detections", holder_id=story.mara)["total"] == 1
    honest = _get(site, "ops", "/detections", target="honest-host")["items"]
    assert len(honest) == 2 and {d["target"] for d in honest} == {"honest-host"}
    with site.app.ledger.read() as session:
        noticed = list(session.scalars(select(Detection.id).where(
            Detection.status == DetectionStatus.NOTICED).order_by(Detection.id.desc())))
        since = datetime(2026, 1, 1, tzinfo=UTC)
        recent = list(session.scalars(select(Detection.id).where(
            Detection.detected_at >= since).order_by(Detection.id.desc())))
    assert noticed and [d["id"] for d in _get(
        site, "example", "/detections", status="noticed")["items"]] == [
        i for i in noticed if i != _mara_detection(site)]
    assert 0 < len(recent) < len(everything)  # the archive's find of 2022 is left out
    assert [d["id"] for d in _get(site, "ops", "/detections",
                                  since="2026-01-01T00:00:00")["items"]] == recent
    assert [d["id"] for d in _get(site, "ops", "/detections",
                                  since="2026-01-01T01:00:00+01:00")["items"]] == recent
    assert _status(site, "ops", "GET", "/detections", params={"status": "lost"}) == 422
    assert _status(site, "ops", "GET", "/detections", params={"offset": -1}) == 422


def test_a_detection_shows_its_capture_recording_and_match(site: Site) -> None:
    story = site.story
    detail = _get(site, "example", f"/detections/{story.reupload}")
    assert detail["url"] == "https://files.pirate-blog.example/a/3b.mp3"
    assert detail["page_url"] == "https://pirate-blog.example/post/3"
    assert detail["recording_id"] == story.harbour and detail["title"] == "Harbour Lights"
    assert detail["holder"] == EXAMPLE and detail["holder_id"] == story.example
    assert detail["capture_id"] == _capture_of(site, story.reupload)
    assert (detail["confidence"], detail["query_start"], detail["query_end"],
            detail["ref_start"]) == (0.97, 0.0, 185.5, 0.0)
    assert (detail["speed"], detail["pitch_semitones"]) == (1.0, 0.0)
    assert detail["recording_duration"] == 190.0 and detail["notice_id"] is None
    with site.app.ledger.read() as session:
        row = session.get(Detection, story.reupload)
        assert row is not None and detail["status"] == row.status
    # The first copy on the blog is listed in the ignored notice.
    first = _detection_ids(site, story.example)[-2]
    assert _get(site, "ops", f"/detections/{first}")["notice_id"] == story.ignored_notice
    # The same fields as the list's entry, plus the detail's own.
    (listed,) = [d for d in _get(site, "example", "/detections")["items"]
                 if d["id"] == story.reupload]
    assert listed.items() <= detail.items()


def test_another_holders_detection_answers_as_a_missing_one(site: Site) -> None:
    story = site.story
    missing = max(_detection_ids(site)) + 1000
    for username in ("mara", "mara-legal"):
        with site.client(username) as client:
            theirs = client.get(f"/api/v1/detections/{story.reupload}")
            absent = client.get(f"/api/v1/detections/{missing}")
            own = client.get(f"/api/v1/detections/{_mara_detection(site)}")
        assert theirs.status_code == absent.status_code == 404
        assert theirs.json()["detail"] == f"no detection {story.reupload}"
        assert absent.json()["detail"] == f"no detection {missing}"
        assert own.status_code == 200
    assert _status(site, "example", "GET", f"/detections/{_mara_detection(site)}") == 404
    assert _status(site, "ops", "GET", f"/detections/{_mara_detection(site)}") == 200


# -- captures ------------------------------------------------------------------------------


def _orphan_capture(site: Site) -> int:
    """A capture in which nothing of the catalog was found."""
    with site.app.ledger.write() as session:
        target = session.scalar(select(Target).where(Target.name == "honest-host"))
        assert target is not None
        return LedgerHistory(session, site.app.clock).capture(
            target, "https://honest-host.example/u/unknown.mp3").id


def test_a_capture_is_shown_as_captures_show_prints_it(site: Site) -> None:
    story = site.story
    capture_id = _capture_of(site, story.reupload)
    shown = _get(site, "example", f"/captures/{capture_id}")
    assert shown["url"] == "https://files.pirate-blog.example/a/3b.mp3"
    assert shown["target"] == "pirate-blog" and shown["ip_address"] == "203.0.113.5"
    assert shown["detections"] == [story.reupload]
    assert shown["headers"] == [["Content-Type", "audio/mpeg"]]
    assert shown["warc"]["file"] == "captures-20261102-00000.warc.gz"
    assert shown["page_warc"] is None and shown["identify_status"] == "done"
    assert _get(site, "ops", f"/captures/{capture_id}") == shown


def test_holder_accounts_see_only_captures_with_their_holders_detections(site: Site) -> None:
    story = site.story
    example_capture = _capture_of(site, story.reupload)
    mara_capture = _capture_of(site, _mara_detection(site))
    orphan = _orphan_capture(site)
    for username in ("mara", "mara-legal"):
        with site.client(username) as client:
            theirs = client.get(f"/api/v1/captures/{example_capture}")
            absent = client.get("/api/v1/captures/99999")
            own = client.get(f"/api/v1/captures/{mara_capture}")
        assert theirs.status_code == absent.status_code == 404
        assert theirs.json() == {"detail": f"no capture {example_capture}"}
        assert own.status_code == 200
        assert own.json()["detections"] == [_mara_detection(site)]
    for username in SCOPED:
        assert _status(site, username, "GET", f"/captures/{orphan}") == 404
    assert _status(site, "example", "GET", f"/captures/{mara_capture}") == 404
    assert _get(site, "ops", f"/captures/{orphan}")["detections"] == []


def test_a_capture_shared_by_two_holders_lists_only_the_callers_detection(site: Site) -> None:
    story = site.story
    capture_id = _capture_of(site, story.reupload)
    with site.app.ledger.write() as session:
        capture = session.get(Capture, capture_id)
        mara_song = session.get(Detection, _mara_detection(site))
        assert capture is not None and mara_song is not None
        medley = LedgerHistory(session, site.app.clock).detection(capture, mara_song.recording)
    assert _get(site, "mara", f"/captures/{capture_id}")["detections"] == [medley.id]
    assert _get(site, "example", f"/captures/{capture_id}")["detections"] == [story.reupload]
    assert _get(site, "root", f"/captures/{capture_id}")["detections"] == [story.reupload,
                                                                          medley.id]


def _keep_audio(site: Site, capture_id: int, body: bytes, content_type: str | None) -> None:
    with site.app.evidence() as store:
        stored = store.put_blob(body)
    with site.app.ledger.write() as session:
        capture = session.get(Capture, capture_id)
        assert capture is not None
        capture.sha256, capture.size = stored.sha256, len(body)
        capture.content_type = content_type
        capture.headers = [["Content-Type", content_type or ""]]


def test_the_captured_audio_is_served_as_audio_to_its_holder(site: Site) -> None:
    capture_id = _capture_of(site, site.story.reupload)
    _keep_audio(site, capture_id, AUDIO, "audio/mpeg")
    with site.client("example") as client:
        answer = client.get(f"/api/v1/captures/{capture_id}/audio")
        assert answer.status_code == 200
        assert answer.content == AUDIO
        assert hashlib.sha256(answer.content).hexdigest() == client.get(
            f"/api/v1/captures/{capture_id}").json()["sha256"]
        assert answer.headers["content-type"] == "audio/mpeg"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-disposition"] == "inline"
        # The console's player seeks with byte ranges.
        part = client.get(f"/api/v1/captures/{capture_id}/audio",
                          headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == AUDIO[100:200]
    with site.client("ops") as client:
        assert client.get(f"/api/v1/captures/{capture_id}/audio").content == AUDIO
    for username in ("mara", "mara-legal"):
        with site.client(username) as client:
            refused = client.get(f"/api/v1/captures/{capture_id}/audio")
        assert refused.status_code == 404 and AUDIO not in refused.content
        assert refused.json() == {"detail": f"no capture {capture_id}"}


@pytest.mark.parametrize(("declared", "served"), [
    ("audio/ogg; codecs=opus", "audio/ogg"),
    ("text/html; charset=utf-8", "application/octet-stream"),
    ("image/svg+xml", "application/octet-stream"),
    ("audio/<script>", "application/octet-stream"),
    (None, "application/octet-stream"),
])
def test_the_audio_is_never_served_as_a_type_a_browser_renders(site: Site, declared: str | None,
                                                                served: str) -> None:
    capture_id = _capture_of(site, site.story.reupload)
    page = b"<html><script>alert(1)</script></html>"
    _keep_audio(site, capture_id, page, declared)
    with site.client("example") as client:
        answer = client.get(f"/api/v1/captures/{capture_id}/audio")
    assert answer.status_code == 200 and answer.content == page
    assert answer.headers["content-type"] == served


def test_audio_whose_bytes_are_not_kept_is_not_found(site: Site) -> None:
    capture_id = _capture_of(site, site.story.reupload)  # the story keeps no bytes on disk
    with site.client("example") as client:
        answer = client.get(f"/api/v1/captures/{capture_id}/audio")
        assert answer.status_code == 404
        assert answer.json()["detail"] == f"the bytes of capture {capture_id} are not kept"
        assert client.get("/api/v1/captures/99999/audio").status_code == 404


# -- status --------------------------------------------------------------------------------


def test_status_shows_the_daemon_and_the_queues_to_staff(site: Site) -> None:
    with site.app.ledger.read() as session:
        by_status = {status: n for status, n in session.execute(
            select(Detection.status, func.count()).group_by(Detection.status))}
    for username in STAFF:
        state = _get(site, username, "/status")
        assert state["daemon"]["running"] is False  # no daemon runs in these tests
        assert state["queues"]["detections"] == by_status
        assert state["queues"]["captures"] == {"done": 12}
        assert state["queues"]["captures_pending"] == 0
        assert isinstance(state["jobs"], list) and isinstance(state["next_runs"], dict)
