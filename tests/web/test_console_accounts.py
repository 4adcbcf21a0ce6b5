"""Accounts in the console, in Debian's chromium: a person makes and revokes API keys for their
own systems and changes their password; an admin adds and disables users. Each change works at
once against the API and is in the audit log under the person who made it. And every page of
the console fits a phone's screen."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from ledger.audit import verify_chain
from ledger.models import AuditEntry, Case, CatalogImportStatus
from tests.web.conftest import PASSWORD, Site, log_in


def _actors(site: Site, action: str) -> list[str]:
    with site.app.ledger.read() as session:
        assert verify_chain(session).ok
        return list(session.scalars(select(AuditEntry.actor).where(AuditEntry.action == action)
                                    .order_by(AuditEntry.seq)))


def _me(site: Site, key: str) -> httpx.Response:
    return httpx.get(f"{site.url}/api/v1/me", headers={"Authorization": f"Bearer {key}"},
                     timeout=10)


def test_a_holder_makes_an_api_key_uses_it_and_revokes_it(page: Page, site: Site) -> None:
    log_in(page, site, "example")
    page.click("header a.who")
    page.wait_for_url(f"{site.url}/account")
    assert "Example Records Ltd" in page.inner_text("main")
    page.fill("input[name=name]", "our royalty system")
    page.click("#add-key")
    key = page.inner_text("#new-key").strip()
    assert key.startswith("cgk_")
    me = _me(site, key)
    assert me.status_code == 200 and me.json()["username"] == "example"
    page.goto(f"{site.url}/account")  # shown once: not on the page again
    assert key not in page.content() and page.locator("#new-key").count() == 0
    row = page.locator("main table tbody tr", has_text="our royalty system")
    assert "live" in row.inner_text()
    row.locator("button").click()
    assert "revoked" in page.inner_text(".flash")
    assert _me(site, key).status_code == 401
    assert _actors(site, "api_key.issued")[-1] == "user:example"
    assert _actors(site, "api_key.revoked") == ["user:example"]


def test_only_ones_own_keys_are_revoked(page: Page, site: Site) -> None:
    mara_prefix = site.keys["mara"].split("_")[1]
    log_in(page, site, "example")
    page.goto(f"{site.url}/account")
    csrf = page.input_value("form[action='/account/keys'] input[name=csrf_token]")
    answer = page.request.post(f"{site.url}/account/keys/{mara_prefix}/revoke",
                               form={"csrf_token": csrf})
    assert "No API key" in answer.text()
    assert _me(site, site.keys["mara"]).status_code == 200


def test_a_password_change_ends_the_sessions_and_the_new_one_logs_in(page: Page,
                                                                    site: Site) -> None:
    log_in(page, site, "mara")
    page.goto(f"{site.url}/account")
    page.fill("input[name=current]", "not my password at all")
    page.fill("input[name=new]", "a brand new passphrase")
    page.fill("input[name=again]", "a brand new passphrase")
    page.click("#change-password")
    assert "current password is wrong" in page.inner_text(".flash")
    page.fill("input[name=current]", PASSWORD)
    page.fill("input[name=new]", "a brand new passphrase")
    page.fill("input[name=again]", "a different passphrase")
    page.click("#change-password")
    assert "differ" in page.inner_text(".flash")
    page.fill("input[name=current]", PASSWORD)
    page.fill("input[name=new]", "a brand new passphrase")
    page.fill("input[name=again]", "a brand new passphrase")
    page.click("#change-password")
    page.wait_for_url(f"{site.url}/login*")
    assert "Password changed" in page.inner_text(".flash")
    page.goto(f"{site.url}/")
    assert "/login" in page.url  # the old session ended
    page.fill("#username", "mara")
    page.fill("#password", "a brand new passphrase")
    page.click("button[type=submit]")
    page.wait_for_url(f"{site.url}/")
    assert _actors(site, "user.password_set") == ["user:mara"]


def test_an_admin_adds_and_disables_users(page: Page, site: Site) -> None:
    log_in(page, site, "root")
    page.click("header a[href='/users']")
    page.fill("input[name=username]", "counsel")
    page.select_option("select[name=role]", "legal")
    page.click("#add-user")  # a legal account without its rights-holder: refused, and why
    assert "Not added" in page.inner_text(".flash")
    assert "belongs to one rights-holder" in page.inner_text(".flash")
    page.fill("input[name=username]", "counsel")
    page.select_option("select[name=role]", "legal")
    page.select_option("select[name=holder]", "Mara Jones Music")
    page.fill("input[name=password]", "counsel's long password")
    page.click("#add-user")
    assert "counsel added" in page.inner_text(".flash")
    row = page.locator("main table tbody tr", has_text="counsel")
    assert "Mara Jones Music" in row.inner_text() and "legal" in row.inner_text()
    assert page.locator("main table tbody tr", has_text="root").locator("button").count() == 0
    page.locator("main table tbody tr", has_text="mara-legal").locator("button").click()
    assert "disabled" in page.inner_text(".flash")
    assert _me(site, site.keys["mara-legal"]).status_code == 401
    assert _actors(site, "user.added")[-1] == "user:root"
    assert _actors(site, "user.disabled") == ["user:root"]


def test_only_admins_see_the_users_page(page: Page, site: Site) -> None:
    log_in(page, site, "ops")
    assert page.locator("header a[href='/users']").count() == 0
    answer = page.goto(f"{site.url}/users")
    assert answer is not None and answer.status == 403


def _pages(site: Site) -> dict[str, list[str]]:
    """Every page of the console, by who opens it."""
    story = site.story
    with site.app.ledger.write() as session:
        from ledger import imports
        upload = imports.queue_import(
            session, site.app.clock, holder_id=story.example, actor="user:example",
            directory="upload-shown", files=[("a rather long file name of a recording.flac",
                                              "0/a.flac")], fields={})
        upload.status, upload.items = CatalogImportStatus.FAILED, None
        upload.error = "a.flac: not registered, as it cannot be decoded as audio"
        case_id = session.scalar(select(Case.id).where(Case.holder_id == story.example)
                                 .order_by(Case.id).limit(1))
    return {
        "root": ["/", "/targets", "/users", "/account", "/catalog"],
        "example": ["/", "/catalog", f"/catalog/uploads/{upload.id}", "/detections",
                    f"/detections/{story.reupload}", "/notices",
                    f"/notices/{story.honoured_notice}", "/account"],
        "example-legal": ["/", "/cases", f"/cases/{case_id}", "/notices"],
    }


@pytest.mark.parametrize("width", [360])
def test_every_page_fits_a_phone_sized_screen(page: Page, site: Site, width: int) -> None:
    page.set_viewport_size({"width": width, "height": 740})
    for username, paths in _pages(site).items():
        page.context.clear_cookies()
        log_in(page, site, username)
        for path in paths:
            answer = page.goto(f"{site.url}{path}")
            assert answer is not None and answer.status == 200, (username, path)
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= width, f"{path} is {wide} px wide on a {width} px screen"
