"""Rendering notices: reviewed snapshots, holders' override templates, escaping.

The snapshots in tests/fixtures/notices/ are the reviewed output of the built-in templates for
the example notice of test_requirements.py. After an intended change to a template, regenerate
them with ``COPYGUARD_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/takedown/test_render.py``
(the tests that rewrote a file are reported as skipped) and review the diff before committing.
"""

# The PRC notice is Chinese text, written with full-width punctuation on purpose.

from __future__ import annotations

import dataclasses
import os
from datetime import timedelta, timezone
from importlib.resources import files
from pathlib import Path

import pytest

from takedown.content import Jurisdiction, NoticeContent
from takedown.errors import MissingElementError, TemplateError
from takedown.render import KINDS, NoticeRenderer, RenderedNotice, html_text, template_names
from tests.takedown.test_requirements import example_content

SNAPSHOTS = Path(__file__).parents[1] / "fixtures" / "notices"
BUILT_IN = Path(str(files("takedown") / "templates"))
UPDATE = os.environ.get("COPYGUARD_UPDATE_SNAPSHOTS") == "1"


def _output(notice: RenderedNotice, kind: str) -> str:
    return {"subject": notice.subject + "\n", "txt": notice.text, "html": notice.html}[kind]


def _override(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text, encoding="utf-8")
    return directory


def _built_in(name: str) -> str:
    return (BUILT_IN / name).read_text(encoding="utf-8")


def _with_title(content: NoticeContent, title: str) -> NoticeContent:
    old = content.works[0]
    new = dataclasses.replace(old, title=title)
    return dataclasses.replace(
        content, works=(new, *content.works[1:]),
        items=tuple(dataclasses.replace(i, work=new) if i.work == old else i
                    for i in content.items))


# -- snapshots --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("jurisdiction", list(Jurisdiction))
def test_notice_matches_reviewed_snapshot(jurisdiction: Jurisdiction, kind: str) -> None:
    rendered = NoticeRenderer().render(example_content(jurisdiction))
    snapshot = SNAPSHOTS / f"{jurisdiction.value}.{kind}"
    actual = _output(rendered, kind)
    if UPDATE:
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        if not snapshot.exists() or snapshot.read_text(encoding="utf-8") != actual:
            snapshot.write_text(actual, encoding="utf-8")
            pytest.skip(f"rewrote {snapshot}: review the diff")
    assert snapshot.exists(), f"no snapshot {snapshot}: run with COPYGUARD_UPDATE_SNAPSHOTS=1"
    assert actual == snapshot.read_text(encoding="utf-8")


@pytest.mark.parametrize("jurisdiction", list(Jurisdiction))
def test_every_jurisdiction_has_its_templates_in_the_package(jurisdiction: Jurisdiction) -> None:
    # The templates ship as package data (pyproject: takedown = ["templates/*.j2"]).
    names = template_names(example_content(jurisdiction))
    assert all((BUILT_IN / name).is_file() for name in names.values())


def test_rendered_notice_carries_reference_and_language() -> None:
    rendered = NoticeRenderer().render(example_content(Jurisdiction.PRC))
    assert rendered.reference == "CG-PRC-2026-000042"
    assert rendered.jurisdiction == "prc"
    assert '<html lang="zh-Hans">' in rendered.html
    assert "\n" not in rendered.subject and rendered.reference in rendered.subject


def test_prc_notice_states_the_article_14_elements_in_chinese() -> None:
    content = example_content(Jurisdiction.PRC)
    rendered = NoticeRenderer().render(content)
    for text in (rendered.text, html_text(rendered.html)):
        assert "《信息网络传播权保护条例》第十四条" in text
        assert "权利人的姓名（名称）、联系方式和地址" in text  # (一)
        assert "侵权作品、表演、录音录像制品的名称和网络地址" in text  # (二)
        assert "构成侵权的初步证明材料" in text  # (三)
        assert "权利人对本通知书的真实性负责" in text  # 第二款
        assert "地址：12 Sample Street" in text
        assert "电子邮箱：legal@example-records.example" in text
        for work in content.works:
            assert f"《{work.title}》" in text
        for item in content.items:
            assert item.url in text and item.sha256 in text and item.warc_record_id in text
        assert "首次抓取时间" in text and "2026-10-30 14:12:09 UTC" in text
        assert "变速（1.050 倍）、变调（+0.84 个半音）" in text
    assert "首次抓取时间：2026-10-30 14:12:09 UTC" in rendered.text


def test_dmca_notice_carries_the_statutory_statements() -> None:
    rendered = NoticeRenderer().render(example_content(Jurisdiction.DMCA))
    assert ("good faith belief that use of the material in the manner complained of is not "
            "authorized by the copyright owner, its agent, or the law") in rendered.text
    assert "accurate, and under penalty of perjury" in rendered.text
    assert "/s/ Jane Roe" in rendered.text


def test_capture_time_is_stated_in_utc() -> None:
    content = example_content(Jurisdiction.DMCA)
    beijing = content.items[0].first_seen.astimezone(timezone(timedelta(hours=8)))
    first = dataclasses.replace(content.items[0], first_seen=beijing)
    rendered = NoticeRenderer().render(
        dataclasses.replace(content, items=(first, *content.items[1:])))
    assert "First captured: 2026-10-30 14:12:09 UTC" in rendered.text
    assert "+08:00" not in rendered.text


# -- escaping ---------------------------------------------------------------------------------

def test_hostile_values_are_escaped_in_html_and_kept_in_text() -> None:
    hostile = "<script>alert('x')</script> & Co"
    content = _with_title(example_content(Jurisdiction.DMCA), hostile)
    page = 'https://blog.pirate.example/"><script>steal()</script>'
    content = dataclasses.replace(content, items=(
        dataclasses.replace(content.items[0], page_url=page, work=content.works[0]),
        *content.items[1:]))
    rendered = NoticeRenderer().render(content)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co" in rendered.html
    assert "&#34;&gt;&lt;script&gt;steal()&lt;/script&gt;" in rendered.html
    assert f'"{hostile}"' in rendered.text
    assert f"Found on page: {page}" in rendered.text


def test_newline_in_a_value_cannot_add_a_mail_header_to_the_subject() -> None:
    content = example_content(Jurisdiction.DSA)
    party = dataclasses.replace(content.complaining_party, name="Example\r\nBcc: all@example")
    rendered = NoticeRenderer().render(dataclasses.replace(content, complaining_party=party))
    assert "\n" not in rendered.subject and "\r" not in rendered.subject
    assert "Example Bcc: all@example" in rendered.subject


# -- override templates -----------------------------------------------------------------------

def test_override_template_is_preferred_to_the_built_in(tmp_path: Path) -> None:
    text = _built_in("dmca.txt.j2").replace("Dear Sir or Madam,", "To the Designated Agent,")
    renderer = NoticeRenderer(_override(tmp_path / "example-records", "dmca.txt.j2", text))
    rendered = renderer.render(example_content(Jurisdiction.DMCA))
    assert "To the Designated Agent," in rendered.text
    assert "Dear Sir or Madam," in rendered.html  # the HTML still comes from the built-in


def test_override_dropping_the_perjury_statement_is_refused(tmp_path: Path) -> None:
    text = _built_in("dmca.txt.j2").replace("  {{ statements.accuracy_and_authority }}\n", "")
    renderer = NoticeRenderer(_override(tmp_path, "dmca.txt.j2", text))
    with pytest.raises(MissingElementError) as caught:
        renderer.render(example_content(Jurisdiction.DMCA))
    [missing] = caught.value.missing
    assert missing.startswith("§512(c)(3)(A)(vi) ")
    assert "statements.accuracy_and_authority does not appear in" in missing
    assert str(tmp_path / "dmca.txt.j2") in missing


def test_override_hiding_a_statement_in_an_html_comment_is_refused(tmp_path: Path) -> None:
    text = _built_in("dsa.html.j2").replace(
        '<p class="statement">{{ statements.bona_fide }}</p>',
        "<!-- {{ statements.bona_fide }} -->")
    renderer = NoticeRenderer(_override(tmp_path, "dsa.html.j2", text))
    with pytest.raises(MissingElementError, match=r"Art\. 16\(2\)\(d\).*dsa\.html\.j2"):
        renderer.render(example_content(Jurisdiction.DSA))


def test_override_dropping_an_infringing_url_is_refused(tmp_path: Path) -> None:
    text = _built_in("prc.txt.j2").replace("{% for item in items %}",
                                           "{% for item in items[:1] %}")
    renderer = NoticeRenderer(_override(tmp_path, "prc.txt.j2", text))
    with pytest.raises(MissingElementError) as caught:
        renderer.render(example_content(Jurisdiction.PRC))
    assert any("items[1].url does not appear" in m for m in caught.value.missing)


def test_override_without_the_reference_is_refused(tmp_path: Path) -> None:
    renderer = NoticeRenderer(_override(tmp_path, "dmca.subject.j2", "Copyright notice\n"))
    with pytest.raises(TemplateError, match=r"dmca\.subject\.j2: the notice reference"):
        renderer.render(example_content(Jurisdiction.DMCA))


def test_typo_in_an_override_is_a_template_error_naming_file_and_line(tmp_path: Path) -> None:
    text = _built_in("dmca.txt.j2").replace("Notice reference: {{ notice.reference }}",
                                            "Notice reference: {{ notice.refrence }}")
    line = text.splitlines().index("Notice reference: {{ notice.refrence }}") + 1
    renderer = NoticeRenderer(_override(tmp_path, "dmca.txt.j2", text))
    with pytest.raises(TemplateError) as caught:
        renderer.render(example_content(Jurisdiction.DMCA))
    assert f"{tmp_path / 'dmca.txt.j2'}:{line}" in str(caught.value)
    assert "refrence" in str(caught.value)


def test_syntax_error_in_an_override_names_file_and_line(tmp_path: Path) -> None:
    renderer = NoticeRenderer(_override(tmp_path, "dsa.html.j2", "<p>\n{% if %}\n</p>\n"))
    with pytest.raises(TemplateError, match=r"dsa\.html\.j2:2: "):
        renderer.render(example_content(Jurisdiction.DSA))


def test_override_cannot_reach_python_internals(tmp_path: Path) -> None:
    renderer = NoticeRenderer(_override(
        tmp_path, "dmca.subject.j2", "{{ notice.__class__.__mro__ }} {{ notice.reference }}\n"))
    with pytest.raises(TemplateError, match=r"dmca\.subject\.j2"):
        renderer.render(example_content(Jurisdiction.DMCA))


def test_missing_override_directory_falls_back_to_the_built_in(tmp_path: Path) -> None:
    renderer = NoticeRenderer(tmp_path / "no-such-holder")
    rendered = renderer.render(example_content(Jurisdiction.DSA))
    assert rendered.text == (SNAPSHOTS / "dsa.txt").read_text(encoding="utf-8")


def test_language_without_templates_is_a_template_error(tmp_path: Path) -> None:
    content = dataclasses.replace(example_content(Jurisdiction.DSA), language="de")
    with pytest.raises(TemplateError, match=r"template dsa\.de\.subject\.j2 not found"):
        NoticeRenderer(tmp_path).render(content)


def test_language_override_is_used_for_its_language(tmp_path: Path) -> None:
    for kind in KINDS:
        _override(tmp_path, f"dsa.de.{kind}.j2", _built_in(f"dsa.{kind}.j2"))
    content = dataclasses.replace(example_content(Jurisdiction.DSA), language="de")
    assert '<html lang="de">' in NoticeRenderer(tmp_path).render(content).html


def test_incomplete_content_is_refused_before_rendering(tmp_path: Path) -> None:
    # A broken override would raise TemplateError: MissingElementError shows the check ran first.
    renderer = NoticeRenderer(_override(tmp_path, "dmca.subject.j2", "{% if %}"))
    content = _with_title(example_content(Jurisdiction.DMCA), "")
    with pytest.raises(MissingElementError, match=r"works\[0\]\.title is empty"):
        renderer.render(content)
