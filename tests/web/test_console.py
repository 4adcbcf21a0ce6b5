"""The web console in Debian's chromium against the real server: logging in and out, the
dashboard for each kind of user, and pages that show nothing of another holder's."""

from __future__ import annotations

import zipfile
from pathlib import Path

from playwright.sync_api import Page

from litigation.dossier_verify import verify_dossier
from tests.web.conftest import Site, log_in


def test_a_holder_logs_in_sees_its_dashboard_and_logs_out(page: Page, site: Site) -> None:
    log_in(page, site, "mara")
    text = page.inner_text("main")
    assert "Detections" in text and "Notices" in text
    assert "Daemon" not in text  # operators' business
    assert "mara · holder" in page.inner_text("header")
    page.click("header button")
    page.wait_for_url(f"{site.url}/login*")
    page.goto(f"{site.url}/")
    assert "/login" in page.url


def test_an_operator_sees_the_daemon_and_a_wrong_password_is_told(page: Page,
                                                                   site: Site) -> None:
    page.goto(f"{site.url}/login")
    page.fill("#username", "ops")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert "Wrong user name or password" in page.inner_text(".flash")
    log_in(page, site, "ops")
    assert "Daemon" in page.inner_text("main")


HOSTILE_TITLE = '<script>alert("owned")</script><img src=x onerror=alert(2)> Free MP3s'


def test_scraped_text_is_shown_as_text(page: Page, site: Site) -> None:
    from ledger.models import Capture, Detection

    with site.app.ledger.write() as session:
        detection = session.get(Detection, site.story.reupload)
        assert detection is not None
        capture = session.get(Capture, detection.capture_id)
        assert capture is not None
        capture.page_title = HOSTILE_TITLE
        capture.page_url = "javascript:alert(3)"
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page, site, "example")
    page.goto(f"{site.url}/detections/{site.story.reupload}")
    assert page.inner_text(".page-title") == HOSTILE_TITLE
    assert page.locator("main script").count() == 0 and page.locator("main img[src=x]").count() == 0
    assert page.locator("a[href^=javascript]").count() == 0
    assert not dialogs


def test_detections_list_and_pages_are_scoped(page: Page, site: Site) -> None:
    log_in(page, site, "mara")
    page.goto(f"{site.url}/detections")
    listed = page.inner_text("main table")
    assert "Mara's Song" in listed and "Harbour Lights" not in listed
    answer = page.goto(f"{site.url}/detections/{site.story.reupload}")  # Example's
    assert answer is not None and answer.status == 404
    answer = page.goto(f"{site.url}/targets")
    assert answer is not None and answer.status == 403


def test_a_legal_user_reviews_a_case_and_downloads_its_dossier(page: Page, site: Site,
                                                                tmp_path: Path) -> None:
    log_in(page, site, "example-legal")
    page.goto(f"{site.url}/cases")
    first = page.locator("main table tbody tr a").first
    case_id = first.inner_text()
    first.click()
    assert "Score breakdown" in page.inner_text("main")
    page.select_option("select[name=action]", "note")
    page.fill("input[name=text]", "Counsel asked for the server logs.")
    page.click("form[action$=review] button")
    assert "note recorded" in page.inner_text(".flash")
    assert "Counsel asked for the server logs." in page.inner_text("main")
    with page.expect_download() as download:
        page.click("#export-dossier")
    saved = tmp_path / "dossier.zip"
    download.value.save_as(saved)
    report = verify_dossier(saved)  # the downloaded zip is whole and every hash matches
    assert report.ok, report.problems
    with zipfile.ZipFile(saved) as dossier:
        assert f"case {case_id}" in dossier.read("report.html").decode().lower()
    # A holder account reads its notices but does not work the case queue.
    page.goto(f"{site.url}/")
    assert page.locator("header a[href='/cases']").count() == 1


def test_a_holder_cannot_open_the_case_queue(page: Page, site: Site) -> None:
    log_in(page, site, "example")
    assert page.locator("header a[href='/cases']").count() == 0
    answer = page.goto(f"{site.url}/cases")
    assert answer is not None and answer.status == 403


def test_a_holder_queues_a_failed_notice_again(page: Page, site: Site) -> None:
    from ledger.models import Notice, NoticeStatus

    notice_id = site.story.ignored_notice
    with site.app.ledger.write() as session:
        session.get_one(Notice, notice_id).status = NoticeStatus.FAILED
    log_in(page, site, "example-legal")  # reads the notice, does not decide on it
    page.goto(f"{site.url}/notices/{notice_id}")
    assert page.locator("#resend").count() == 0
    page.context.clear_cookies()
    log_in(page, site, "example")
    page.goto(f"{site.url}/notices/{notice_id}")
    page.fill("input[name=reason]", "the host's abuse desk says it never arrived")
    page.click("#resend")
    assert "queued again" in page.inner_text(".flash")
    assert page.locator("#resend").count() == 0
    with site.app.ledger.read() as session:
        assert session.get_one(Notice, notice_id).status == NoticeStatus.QUEUED


def _cards(page: Page) -> dict[str, int]:
    cards = page.locator("#today .card")
    return {cards.nth(i).locator(".what").inner_text(): int(cards.nth(i).locator(".n")
                                                            .inner_text())
            for i in range(cards.count())}


def test_the_dashboard_says_what_happened_in_the_last_day(page: Page, site: Site) -> None:
    from datetime import timedelta

    from ledger.models import Detection

    now = site.app.clock.now()
    since = now - timedelta(hours=24)
    with site.app.ledger.write() as session:
        session.get_one(Detection, site.story.reupload).detected_at = now - timedelta(hours=1)
        detections = [(d.holder_id, d.detected_at) for d in session.query(Detection)]
    expected = {holder: sum(1 for owner, at in detections if owner == holder and at >= since)
                for holder in (site.story.example, site.story.mara)}
    assert expected[site.story.example] >= 1
    log_in(page, site, "example")
    example = _cards(page)
    assert example["detections found"] == expected[site.story.example]
    assert "crawls finished" not in example  # operators' business
    page.context.clear_cookies()
    log_in(page, site, "ops")
    ops = _cards(page)
    assert ops["detections found"] == len([at for _, at in detections if at >= since])
    assert {"crawls finished", "files captured", "captures identified"} <= set(ops)
