"""One rights-holder never sees or changes another's data, by any endpoint or ID.

The operations come from the served OpenAPI document, so an endpoint added later is covered
without anyone remembering to: every operation that takes the ID of a holder's row is called by
the other holder's accounts with Example Records' IDs and must answer 403 or 404 and change
nothing; the owner's own call proves the ID is real. Every list answer of Mara's accounts is
searched for Example Records' rows.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from ledger import imports
from ledger.models import AuditEntry, Capture, Case, CatalogImportStatus, Detection
from tests.web.conftest import Site

OTHERS = ("mara", "mara-legal")
# Strings only Example Records' rows contain (works, a site that only copied Example's).
EXAMPLE_ONLY = ("Example Records Ltd", "Harbour Lights", "Northern Line", "honest-host.example")
# Path parameters that name a row of one holder, and how to find one of Example Records'.
OWNED = ("holder_id", "recording_id", "detection_id", "capture_id", "notice_id", "case_id",
         "import_id")
SHARED = ("name",)  # targets: operators' business, never a holder's


def _example_ids(site: Site) -> dict[str, Any]:
    story = site.story
    with site.app.evidence() as evidence:  # the capture's bytes, so that /audio answers too
        sha256 = evidence.put_blob(b"ID3" + bytes(2048)).sha256
    with site.app.ledger.write() as session:
        detection = session.get(Detection, story.reupload)
        assert detection is not None and detection.holder_id == story.example
        case_id = session.scalar(select(Case.id).where(Case.holder_id == story.example)
                                 .order_by(Case.id).limit(1))
        capture = session.get(Capture, detection.capture_id)
        assert capture is not None
        capture.sha256 = sha256
        upload = imports.queue_import(session, site.app.clock, holder_id=story.example,
                                      actor="user:example", directory="upload-done",
                                      files=[("harbour.flac", "0/harbour.flac")], fields={})
        upload.status, upload.items = CatalogImportStatus.DONE, []  # not for the importer
        ids = {"holder_id": story.example, "recording_id": story.harbour, "import_id": upload.id,
               "detection_id": detection.id, "capture_id": capture.id,
               "notice_id": story.honoured_notice, "case_id": case_id, "name": "honest-host"}
    return ids


def _operations(site: Site) -> list[tuple[str, str, dict[str, Any]]]:
    with httpx.Client(base_url=site.url, timeout=30) as client:
        document = client.get("/api/openapi.json").json()
    return [(method.upper(), path, {"doc": operation, "components": document["components"]})
            for path, item in document["paths"].items()
            for method, operation in item.items() if method in ("get", "post", "put", "patch",
                                                                "delete")]


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _value(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """A minimal valid value of a JSON schema: the request must pass validation, so that a
    refusal is the isolation rule speaking, not a malformed body."""
    schema = _resolve(schema, components)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if _resolve(s, components).get("type") != "null"]
            return _value(options[0], components)
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object":
        return {name: _value(prop, components) for name, prop in
                schema.get("properties", {}).items() if name in schema.get("required", [])}
    if kind == "array":
        return [_value(schema.get("items", {}), components)] * max(schema.get("minItems", 0), 1)
    if kind == "integer":
        return max(schema.get("minimum", 1), 1)
    if kind == "number":
        return float(max(schema.get("minimum", 1), 1))
    if kind == "boolean":
        return False
    return "x" * max(schema.get("minLength", 1), 1)


def _call(client: httpx.Client, method: str, path: str, spec: dict[str, Any],
          ids: dict[str, Any]) -> httpx.Response:
    url = path.format(**{name: ids[name] for name in OWNED + SHARED if f"{{{name}}}" in path})
    content = spec["doc"].get("requestBody", {}).get("content", {})
    if "application/json" in content:
        body = _value(content["application/json"]["schema"], spec["components"])
        return client.request(method, url, json=body)
    if "multipart/form-data" in content or "application/x-www-form-urlencoded" in content:
        kind = "multipart/form-data" if "multipart/form-data" in content else \
            "application/x-www-form-urlencoded"
        schema = _resolve(content[kind]["schema"], spec["components"])
        fields = {name: str(_value(prop, spec["components"])) for name, prop in
                  schema.get("properties", {}).items() if name in schema.get("required", [])}
        return client.request(method, url, data=fields)
    return client.request(method, url)


def _audit_count(site: Site) -> int:
    with site.app.ledger.read() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_every_operation_on_another_holders_row_is_refused_and_changes_nothing(
        site: Site) -> None:
    ids = _example_ids(site)
    operations = _operations(site)
    checked = []
    for method, path, spec in operations:
        params = [name for name in OWNED + SHARED if f"{{{name}}}" in path]
        unknown = [p["name"] for p in spec["doc"].get("parameters", [])
                   if p["in"] == "path" and p["name"] not in OWNED + SHARED]
        assert not unknown, f"{method} {path}: teach this test its path parameters {unknown}"
        if not params:
            continue
        before = _audit_count(site)
        for username in OTHERS:
            with site.client(username) as client:
                answer = _call(client, method, path, spec, ids)
            assert answer.status_code in (403, 404), (username, method, path, answer.text)
            assert not any(s in answer.text for s in EXAMPLE_ONLY), (method, path, answer.text)
        assert _audit_count(site) == before, f"{method} {path} changed the ledger"
        checked.append((method, path))
    # The IDs are real: the owner reads each one.
    for method, path, spec in operations:
        if method == "GET" and any(f"{{{name}}}" in path for name in OWNED):
            owner = "example-legal" if "/cases" in path else "example"
            with site.client(owner) as client:
                answer = _call(client, method, path, spec, ids)
            assert answer.status_code == 200, (method, path, answer.text)
    assert checked, "no operation takes an ID yet"


def test_lists_never_show_another_holders_rows(site: Site) -> None:
    listed = 0
    for method, path, _ in _operations(site):
        if method != "GET" or "{" in path or "/me" in path or "openapi" in path:
            continue
        for username in OTHERS:
            with site.client(username) as client:
                answer = client.get(path)
            if answer.status_code == 403:
                continue  # not for this role at all
            assert answer.status_code == 200, (username, path, answer.text)
            text = json.dumps(answer.json())
            assert not any(s in text for s in EXAMPLE_ONLY), (username, path, text[:2000])
            listed += 1
    # The same lists do show Example's rows to Example (the search strings are not vacuous).
    with site.client("example") as client:
        shown = client.get("/api/v1/detections")
    assert shown.status_code == 200 and any(s in shown.text for s in EXAMPLE_ONLY), shown.text
    assert listed, "no list endpoint answered"


@pytest.mark.parametrize("username", ["example", "example-legal", "mara", "mara-legal"])
def test_holder_accounts_cannot_reach_operator_endpoints(site: Site, username: str) -> None:
    with site.client(username) as client:
        for path in ("/api/v1/targets", "/api/v1/status"):
            assert client.get(path).status_code == 403, path
