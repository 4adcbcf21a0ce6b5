"""Render a :class:`~takedown.content.NoticeContent` into a notice: subject, plain text, HTML.

:class:`NoticeRenderer` looks a template up first in a rights-holder's override directory (if
given), then among the built-in templates of ``takedown/templates/``. Each jurisdiction has three:
``<jurisdiction>.subject.j2``, ``.txt.j2`` and ``.html.j2`` (for a language other than the
jurisdiction's default: ``<jurisdiction>.<language>.txt.j2`` and so on, from an override).

A notice is refused (:class:`~takedown.errors.MissingElementError`) when its content lacks an
element the law requires, and again when the rendered text or HTML does not show one, so an
override template cannot drop the perjury statement or an infringing URL. Any failure of a
template (syntax, an undefined name, a forbidden attribute) is a
:class:`~takedown.errors.TemplateError` naming the template file and line.

Templates run in Jinja2's immutable sandbox with ``StrictUndefined``: override templates come
from rights-holders, and a typo must fail instead of leaving a blank in a legal notice. Only the
HTML templates are autoescaped; the plain text keeps every value as it is.

Reads no settings: the takedown stage passes the holder's override directory, a subdirectory
(the holder's slug) of the configured template directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from takedown.content import DEFAULT_LANGUAGE, NoticeContent
from takedown.errors import TemplateError
from takedown.requirements import (
    LAWS,
    check_complete,
    check_rendered,
    format_utc,
    resolve_statements,
)

KINDS = ("subject", "txt", "html")


@dataclass(frozen=True)
class RenderedNotice:
    """A notice ready to send: one line of subject, the plain text and the HTML alternative."""

    reference: str
    jurisdiction: str
    language: str
    subject: str
    text: str
    html: str


def template_names(content: NoticeContent) -> dict[str, str]:
    """The template file of each kind ("subject", "txt", "html") for ``content``."""
    base = content.jurisdiction.value
    if content.language != DEFAULT_LANGUAGE[content.jurisdiction]:
        base = f"{base}.{content.language}"
    return {kind: f"{base}.{kind}.j2" for kind in KINDS}


# -- filters the templates use ----------------------------------------------------------------

def _timecode(seconds: float) -> str:
    """83.45 -> "1:23.5": minutes and seconds to a tenth, as audio editors show positions."""
    tenths = round(seconds * 10)
    minutes, rest = divmod(tenths, 600)
    return f"{minutes}:{rest // 10:02d}.{rest % 10}"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.1f}%"


def _signed(value: float, digits: int = 2) -> str:
    return f"{value:+.{digits}f}"


def _is_html(name: str | None) -> bool:
    return name is not None and name.endswith(".html.j2")


class _TextOfHtml(HTMLParser):
    """The text a reader sees in an HTML notice: no tags, comments, scripts or styles, so an
    element hidden in a comment does not count as shown."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "template"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "template") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_text(html: str) -> str:
    """The visible text of ``html``, entities decoded."""
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


def _template_line(tb: TracebackType | None) -> str:
    """"file:line" of the innermost template frame of a traceback (Jinja2 rewrites tracebacks
    so template frames carry the template's file name and line), or ""."""
    where = ""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


class NoticeRenderer:
    """Renders notices from the built-in templates, or a rights-holder's overrides of them.

    ``override_dir`` (e.g. ``<data>/templates/<holder-slug>/``) need not exist: a holder
    without overrides gets the built-in templates. Nothing is read until the first ``render``.
    """

    def __init__(self, override_dir: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if override_dir is not None:
            loaders.append(jinja2.FileSystemLoader(override_dir))
        loaders.append(jinja2.PackageLoader("takedown", "templates"))
        self.override_dir = override_dir
        self._env = ImmutableSandboxedEnvironment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=_is_html,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self._env.filters.update(utc=format_utc, timecode=_timecode, percent=_percent,
                                 signed=_signed)

    def render(self, content: NoticeContent) -> RenderedNotice:
        """Check ``content``, render its jurisdiction's three templates, check the output."""
        check_complete(content)
        names = template_names(content)
        context = {
            "notice": content,
            "party": content.complaining_party,
            "signatory": content.complaining_party.signatory,
            "recipient": content.recipient,
            "statements": resolve_statements(content),
            "law": LAWS[content.jurisdiction],
        }
        subject, subject_file = self._render(names["subject"], context)
        text, text_file = self._render(names["txt"], context)
        html, html_file = self._render(names["html"], context)
        # One line whatever the values hold: a newline in a subject would start a new mail header.
        subject = " ".join(subject.split())
        if not subject:
            raise TemplateError(f"{subject_file}: the subject is empty")
        visible = html_text(html)
        for output, source in ((subject, subject_file), (text, text_file), (visible, html_file)):
            # Replies and the recipient's ticket are matched to the notice by its reference.
            if content.reference not in output:
                raise TemplateError(f"{source}: the notice reference {content.reference!r} "
                                    "does not appear")
        check_rendered(content, text, text_file)
        check_rendered(content, visible, html_file)
        return RenderedNotice(reference=content.reference, jurisdiction=content.jurisdiction.value,
                              language=content.language, subject=subject, text=text, html=html)

    def _render(self, name: str, context: dict[str, Any]) -> tuple[str, str]:
        """The output of template ``name`` and the file it came from."""
        try:
            template = self._env.get_template(name)
        except jinja2.TemplateNotFound as exc:
            where = f" (looked in {self.override_dir} and the built-in templates)" \
                if self.override_dir is not None else ""
            raise TemplateError(f"template {exc.name} not found{where}") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{exc.filename or name}:{exc.lineno}: {exc.message}") from exc
        source = template.filename or name
        try:
            return template.render(context), source
        except jinja2.TemplateSyntaxError as exc:  # in a template it includes
            raise TemplateError(f"{exc.filename or name}:{exc.lineno}: {exc.message}") from exc
        except jinja2.TemplateError as exc:  # undefined name, sandbox violation, missing include
            raise TemplateError(f"{_template_line(exc.__traceback__) or source}: "
                                f"{exc.message or exc}") from exc
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            # Expressions in a holder's template can fail like any Python expression; the holder
            # must learn which file and line, not get a traceback from inside Jinja2.
            raise TemplateError(f"{_template_line(exc.__traceback__) or source}: "
                                f"{type(exc).__name__}: {exc}") from exc
