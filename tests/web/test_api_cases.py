"""``/api/v1/cases`` on the real server: the queue in score order within each account's scope,
a case's breakdown as ``cases show --json`` gives it, the review workflow for the holder's legal
team and admins (holder and operator accounts only read), and the dossier export answered as a
zip that verifies, with WARC evidence written through the app's evidence store and an RFC 3161
time-stamp from a local authority. Another holder's case answers exactly as a missing one."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ledger.audit import verify_chain
from ledger.evidence import Exchange
from ledger.models import AuditEntry, Capture, Case, CaseHost, CaseStatus, Dossier
from litigation.dossier_verify import verify_dossier
from tests.litigation.tsa_server import TsaTestServer, make_tsa_pki
from tests.web.conftest import EXAMPLE, MARA, Site

MISSING = 9999
ACTIONS = ("assign", "approve", "decline", "file", "reopen", "notes")
BODIES: dict[str, dict[str, str]] = {
    "assign": {"assignee": "A. Counsel"}, "notes": {"text": "ask the host for the uploader"},
    **{action: {"reason": "willful: notices ignored"}
       for action in ("approve", "decline", "file", "reopen")}}


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TsaTestServer]:
    with TsaTestServer(make_tsa_pki(tmp_path_factory.mktemp("tsa"))) as server:
        yield server


def _case_id(site: Site, holder_id: int, name: str) -> int:
    with site.app.ledger.read() as session:
        return session.execute(select(Case.id).where(
            Case.holder_id == holder_id, Case.name == name)).scalar_one()


def _blog(site: Site) -> int:
    """Example's case against the pirate blog: the top of its queue."""
    return _case_id(site, site.story.example, "pirate-blog.example")


def _maras(site: Site) -> int:
    return _case_id(site, site.story.mara, "pirate-blog.example")


def _case(site: Site, case_id: int) -> Case:
    with site.app.ledger.read() as session:
        row = session.get(Case, case_id)
        assert row is not None
        session.expunge(row)
        return row


def _audit(site: Site, prefix: str) -> list[AuditEntry]:
    with site.app.ledger.read() as session:
        rows = list(session.execute(select(AuditEntry).where(
            AuditEntry.action.startswith(prefix), AuditEntry.actor.startswith("user:"))
            .order_by(AuditEntry.seq)).scalars())
        assert verify_chain(session).ok
        session.expunge_all()
        return rows


def _store_evidence(site: Site, case_id: int) -> None:
    """Real WARC records, written through the app's evidence store, for the captures (and their
    pages) on the case's hosts; the captures are pointed at them."""
    with site.app.ledger.write() as session, site.app.evidence() as store:
        hosts = list(session.execute(select(CaseHost.host).where(
            CaseHost.case_id == case_id)).scalars())
        captures = [c for c in session.execute(select(Capture).order_by(Capture.id)).scalars()
                    if c.url.split("/")[2] in hosts]
        for capture in captures:
            host = capture.url.split("/")[2]
            stored = store.write_exchange(Exchange(
                url=capture.url, method="GET", request_headers=[("Host", host)], status=200,
                reason="OK", response_headers=[("Content-Type", "audio/mpeg")],
                body=b"ID3" + hashlib.sha256(capture.url.encode()).digest() * 200,
                fetched_at=capture.fetched_at, ip_address=capture.ip_address))
            page = store.write_exchange(Exchange(
                url=capture.page_url or capture.url, method="GET",
                request_headers=[("Host", host)], status=200, reason="OK",
                response_headers=[("Content-Type", "text/html")],
                body=f'<a href="{capture.url}">listen</a>'.encode(),
                fetched_at=capture.fetched_at, ip_address=capture.ip_address))
            capture.sha256, capture.size = stored.payload_sha256, stored.payload_length
            capture.warc_file, capture.warc_record_id = stored.response.file, stored.response_id
            capture.warc_offset, capture.warc_length = (stored.response.offset,
                                                        stored.response.length)
            capture.page_warc_file = page.response.file
            capture.page_warc_offset, capture.page_warc_length = (page.response.offset,
                                                                  page.response.length)


def _names(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [row["name"] for row in answer.json()["items"]]


def test_each_account_sees_its_holders_queue_by_score(site: Site) -> None:
    example = {"pirate-blog.example", "small-site.example", "honest-host.example",
               "tape-trader.example", "contest.example", "old-archive.example"}
    for username in ("example", "example-legal"):
        with site.client(username) as client:
            answer = client.get("/api/v1/cases")
            names = _names(answer)
            assert names[0] == "pirate-blog.example" and set(names) == example
            assert len(names) == answer.json()["total"] == 6
            assert {row["holder"] for row in answer.json()["items"]} == {EXAMPLE}
            scores = [row["score"] for row in answer.json()["items"]]
            assert scores == sorted(scores, reverse=True)
    for username in ("mara", "mara-legal"):
        with site.client(username) as client:
            answer = client.get("/api/v1/cases")
            assert _names(answer) == ["pirate-blog.example"]
            assert answer.json()["items"][0]["holder"] == MARA
    for username in ("root", "ops"):
        with site.client(username) as client:
            assert client.get("/api/v1/cases").json()["total"] == 7
    with site.client("example") as client:
        page = client.get("/api/v1/cases", params={"limit": 2, "offset": 1}).json()
        assert [row["name"] for row in page["items"]] == names[1:3] and page["total"] == 6
        top = client.get("/api/v1/cases").json()["items"][0]["score"]
        best = client.get("/api/v1/cases", params={"min_score": top}).json()
        assert [row["name"] for row in best["items"]] == ["pirate-blog.example"]
        assert client.get("/api/v1/cases", params={"status": "filed"}).json() == {
            "items": [], "total": 0}
        assert client.get("/api/v1/cases", params={"limit": 501}).status_code == 422
        assert client.get("/api/v1/cases", params={"min_score": "nan"}).status_code == 422
    with site.client() as anonymous:
        assert anonymous.get("/api/v1/cases").status_code == 401


def test_a_case_shows_its_gates_score_and_links_as_the_cli_does(site: Site) -> None:
    blog = _blog(site)
    with site.client("example") as client:
        shown = client.get(f"/api/v1/cases/{blog}")
    assert shown.status_code == 200, shown.text
    info = shown.json()
    assert info["name"] == "pirate-blog.example" and info["track"] == "court"
    assert {f["factor"]: f["value"] for f in info["breakdown"]}["ignored_notices"] == 3
    assert round(sum(f["contribution"] for f in info["breakdown"]), 6) == round(
        info["score"], 6)
    assert {link["reason"] for links in info["links"].values() for link in links} == {
        "same-ip", "shared-page"}
    assert {gate["gate"] for gate in info["gates"]} == {"registration", "limitation",
                                                        "ownership"}
    assert info["damages"]["low"] == 750 and info["damages"]["willful_high"] == 150_000
    assert list(info)[-9:] == ["gates", "breakdown", "links", "decided_by", "decision_reason",
                               "merged_into", "notes", "reminders", "dossiers"]


def test_another_holders_case_answers_as_a_missing_one(site: Site) -> None:
    blog, maras = _blog(site), _maras(site)
    for username, foreign in (("mara", blog), ("mara-legal", blog), ("example", maras),
                              ("example-legal", maras)):
        with site.client(username) as client:
            hidden = client.get(f"/api/v1/cases/{foreign}")
            missing = client.get(f"/api/v1/cases/{MISSING}")
            assert hidden.status_code == missing.status_code == 404, username
            assert hidden.json() == {"detail": f"no case {foreign}"}
            assert missing.json() == {"detail": f"no case {MISSING}"}
            assert client.get(f"/api/v1/cases/{2**63}").status_code == 422
    with site.client("mara-legal") as legal:  # nor can it be changed or exported
        for action in ACTIONS:
            hidden = legal.post(f"/api/v1/cases/{blog}/{action}", json=BODIES[action])
            assert hidden.status_code == 404, action
            assert hidden.json() == {"detail": f"no case {blog}"}
            missing = legal.post(f"/api/v1/cases/{MISSING}/{action}", json=BODIES[action])
            assert missing.status_code == 404
        hidden = legal.post(f"/api/v1/cases/{blog}/dossier")
        missing = legal.post(f"/api/v1/cases/{MISSING}/dossier")
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json() == {"detail": f"no case {blog}"}
    case = _case(site, blog)
    assert case.status == CaseStatus.CANDIDATE and case.assignee is None
    assert _audit(site, "case.") == []
    with site.app.ledger.read() as session:
        assert session.execute(select(Dossier)).first() is None


def test_holder_and_operator_accounts_only_read_cases(site: Site) -> None:
    blog = _blog(site)
    for username in ("example", "ops", "mara"):
        with site.client(username) as client:
            for action in ACTIONS:
                refused = client.post(f"/api/v1/cases/{blog}/{action}", json=BODIES[action])
                assert refused.status_code == 403, (username, action)
            assert client.post(f"/api/v1/cases/{blog}/dossier").status_code == 403
    assert _case(site, blog).status == CaseStatus.CANDIDATE
    assert _audit(site, "case.") == []


def test_the_legal_team_moves_a_case_through_review(site: Site) -> None:
    blog = _blog(site)
    base = f"/api/v1/cases/{blog}"
    with site.client("example-legal") as legal:
        assigned = legal.post(f"{base}/assign", json={"assignee": "A. Counsel"})
        assert assigned.status_code == 200, assigned.text
        assert assigned.json()["status"] == "under-review"
        assert assigned.json()["assignee"] == "A. Counsel"
        noted = legal.post(f"{base}/notes", json={"text": "ask the host for the uploader"})
        assert noted.status_code == 201
        assert [(n["author"], n["text"]) for n in noted.json()["notes"]] == [
            ("user:example-legal", "ask the host for the uploader")]
        early = legal.post(f"{base}/file", json={"reason": "S.D.N.Y. 1:26-cv-01234"})
        assert early.status_code == 409 and "only a case that is approved" in early.json()[
            "detail"]
        blank = legal.post(f"{base}/approve", json={"reason": " "})
        assert blank.status_code == 400 and "--reason" in blank.json()["detail"]
        assert legal.post(f"{base}/approve", json={}).status_code == 422
        approved = legal.post(f"{base}/approve", json={"reason": "willful: notices ignored"})
        assert approved.status_code == 200 and approved.json()["status"] == "approved"
        assert approved.json()["decided_by"] == "user:example-legal"
        filed = legal.post(f"{base}/file", json={"reason": "S.D.N.Y. 1:26-cv-01234"})
        assert filed.status_code == 200 and filed.json()["status"] == "filed"
        assert filed.json()["decision_reason"] == "S.D.N.Y. 1:26-cv-01234"
    contest = _case_id(site, site.story.example, "contest.example")
    with site.client("root") as admin:  # an admin acts for any holder
        barred = admin.post(f"/api/v1/cases/{contest}/approve", json={"reason": "try"})
        assert barred.status_code == 409 and "failed its gates" in barred.json()["detail"]
        declined = admin.post(f"/api/v1/cases/{contest}/decline",
                              json={"reason": "ownership disputed"})
        assert declined.json()["status"] == "declined"
        reopened = admin.post(f"/api/v1/cases/{contest}/reopen",
                              json={"reason": "the other claim was withdrawn"})
        assert reopened.status_code == 200 and reopened.json()["status"] == "candidate"
    assert [(e.actor, e.action, e.entity_id) for e in _audit(site, "case.")] == [
        ("user:example-legal", "case.assigned", str(blog)),
        ("user:example-legal", "case.noted", str(blog)),
        ("user:example-legal", "case.approve", str(blog)),
        ("user:example-legal", "case.file", str(blog)),
        ("user:root", "case.decline", str(contest)),
        ("user:root", "case.reopen", str(contest))]
    case = _case(site, blog)
    assert (case.status, case.assignee, case.decided_by) == (
        CaseStatus.FILED, "A. Counsel", "user:example-legal")


def test_a_merged_case_is_not_changed_or_exported(site: Site) -> None:
    small, blog = _case_id(site, site.story.example, "small-site.example"), _blog(site)
    with site.app.ledger.write() as session:
        case = session.get(Case, small)
        assert case is not None
        case.status, case.merged_into_id = CaseStatus.MERGED, blog
    with site.client("example-legal") as legal:
        refused = legal.post(f"/api/v1/cases/{small}/notes", json={"text": "x"})
        assert refused.status_code == 409
        assert refused.json() == {"detail": f"case {small} was merged into case {blog}"}
        export = legal.post(f"/api/v1/cases/{small}/dossier", params={"pdf": "false"})
        assert export.status_code == 400 and "export that one" in export.json()["detail"]
        merged = legal.get("/api/v1/cases", params={"status": "merged"}).json()
        assert [row["id"] for row in merged["items"]] == [small]


def test_without_evidence_the_dossier_says_what_it_could_not_include(site: Site) -> None:
    """The story's captures name a WARC file that does not exist: the export still answers,
    and its manifest lists every capture it could not copy (as `cases export` does)."""
    maras = _maras(site)
    with site.client("mara-legal") as legal:
        answer = legal.post(f"/api/v1/cases/{maras}/dossier", params={"pdf": "false"})
    assert answer.status_code == 200, answer.text
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        names = set(archive.namelist())
        manifest = archive.read("manifest.json").decode()
    assert not any(name.startswith("evidence/") for name in names)
    assert "evidence not readable" in manifest and "report.pdf" not in names
    assert "X-Timestamped-At" not in answer.headers


def test_the_legal_team_downloads_a_dossier_that_verifies(site: Site, tsa: TsaTestServer,
                                                           tmp_path: Path) -> None:
    blog = _blog(site)
    _store_evidence(site, blog)
    captures = 5  # Example's detections on the blog's three hosts
    litigation = site.app.settings.litigation.model_copy(update={"tsa_url": tsa.url})
    site.app.settings = site.app.settings.model_copy(update={"litigation": litigation})
    with site.client("example-legal") as legal:
        answer = legal.post(f"/api/v1/cases/{blog}/dossier")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/zip"
        disposition = answer.headers["content-disposition"]
        assert disposition.startswith("attachment;") and f"case-{blog}-" in disposition
        shown = legal.get(f"/api/v1/cases/{blog}").json()
    download = tmp_path / "dossier.zip"
    download.write_bytes(answer.content)
    report = verify_dossier(download, ca_file=tsa.ca_file)
    assert report.ok, report.problems
    assert report.warc_records == 2 * captures and report.timestamp is not None
    with zipfile.ZipFile(download) as archive:
        names = set(archive.namelist())
    assert {"report.html", "report.pdf", "manifest.json", "manifest.tst", "timeline.csv",
            "custody/audit.jsonl"} <= names
    assert len([n for n in names if n.startswith("evidence/capture-")]) == captures
    assert answer.headers["x-timestamped-at"]
    # The dossier is recorded with the case, under the caller's name, and kept on the server.
    [dossier] = shown["dossiers"]
    assert str(dossier["id"]) == answer.headers["x-dossier-id"]
    assert dossier["manifest_sha256"] == answer.headers["x-manifest-sha256"]
    assert Path(dossier["path"]).read_bytes() == answer.content
    assert Path(dossier["path"]).parent == site.app.settings.dossier_dir
    with site.app.ledger.read() as session:
        row = session.get(Dossier, dossier["id"])
        assert row is not None and row.created_by == "user:example-legal"
    exported = [e for e in _audit(site, "case.") if e.action == "case.exported"]
    assert [(e.actor, e.entity_id) for e in exported] == [("user:example-legal", str(blog))]
    with site.client("root") as admin:  # a second export is a new file, never over the first
        again = admin.post(f"/api/v1/cases/{blog}/dossier", params={"pdf": "false"})
        assert again.status_code == 200 and again.headers["x-dossier-id"] != str(dossier["id"])
        assert len(admin.get(f"/api/v1/cases/{blog}").json()["dossiers"]) == 2


def test_the_openapi_document_describes_the_case_endpoints(site: Site) -> None:
    with site.client() as anonymous:
        paths = anonymous.get("/api/openapi.json").json()["paths"]
    assert {"/api/v1/cases", "/api/v1/cases/{case_id}"} | {
        f"/api/v1/cases/{{case_id}}/{action}" for action in (*ACTIONS, "dossier")} <= set(paths)
    export = paths["/api/v1/cases/{case_id}/dossier"]["post"]
    assert "application/zip" in export["responses"]["200"]["content"]
    assert "X-Manifest-SHA256" in export["responses"]["200"]["headers"]
    shown = paths["/api/v1/cases/{case_id}"]["get"]["responses"]["200"]
    assert shown["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CaseDetail"}
