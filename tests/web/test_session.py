"""Logging in and out of the real server: sessions carry a CSRF token that every change must
send back, API keys need none, wrong passwords are limited per minute, and every answer has the
security headers."""

from __future__ import annotations

import httpx

from tests.web.conftest import PASSWORD, Site


def _login(site: Site, username: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
    """A logged-in client. The cookie is Secure, which browsers send to http://127.0.0.1 but
    httpx does not: it is handed over as the browser would."""
    client = httpx.Client(base_url=site.url, timeout=30)
    answer = client.post("/api/v1/login", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    cookie = answer.headers["set-cookie"]
    assert all(flag in cookie for flag in ("HttpOnly", "Secure", "SameSite=lax", "Path=/"))
    client.cookies.clear()
    client.cookies.set("copyguard_session", answer.cookies["copyguard_session"])
    return client, str(answer.json()["csrf_token"])


def test_a_login_opens_a_session_that_logout_ends(site: Site) -> None:
    client, csrf = _login(site, "example")
    token = client.cookies["copyguard_session"]
    me = client.get("/api/v1/me").json()
    assert me["username"] == "example" and me["role"] == "holder" and me["holder_id"]
    # A change with the cookie alone (what a forged cross-site form sends) is refused.
    assert client.post("/api/v1/logout").status_code == 403
    assert client.post("/api/v1/logout", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    assert client.post("/api/v1/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    client.cookies.set("copyguard_session", token)
    assert client.get("/api/v1/me").status_code == 401  # the token is dead, not just forgotten
    client.close()


def test_wrong_credentials_are_refused_and_limited(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=30) as client:
        assert client.get("/api/v1/me").status_code == 401
        bad_key = client.get("/api/v1/me", headers={"Authorization": "Bearer cgk_00000000_x"})
        assert bad_key.status_code == 401
        assert client.get("/api/v1/me", headers={"Authorization": "Basic abc"}).status_code == 401
        limit = site.app.settings.web.login_attempts_per_minute
        codes = [client.post("/api/v1/login", json={"username": "mara", "password": "nope"})
                 .status_code for _ in range(limit + 2)]
        assert codes[:limit] == [401] * limit and codes[limit:] == [429, 429]
        # The right password is refused too while the limit lasts (no guessing past it).
        late = client.post("/api/v1/login", json={"username": "mara", "password": PASSWORD})
        assert late.status_code == 429 and int(late.headers["retry-after"]) >= 1


def test_api_keys_need_no_csrf_token_and_answers_carry_security_headers(site: Site) -> None:
    with site.client("ops") as client:
        answer = client.get("/api/v1/me")
        assert answer.status_code == 200 and answer.json()["holder_id"] is None
        headers = answer.headers
        assert "default-src 'self'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
        assert client.post("/api/v1/logout").status_code == 204
    with httpx.Client(base_url=site.url, timeout=30) as anonymous:
        document = anonymous.get("/api/openapi.json")
        assert document.status_code == 200 and "/api/v1/me" in document.json()["paths"]
