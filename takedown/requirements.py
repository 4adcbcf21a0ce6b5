"""The elements each jurisdiction's law requires of a takedown notice, and the checks for them.

- United States: 17 U.S.C. §512(c)(3)(A)(i)-(vi) (DMCA notification of claimed infringement).
- European Union: Regulation (EU) 2022/2065 (Digital Services Act), Art. 16(2)(a)-(d). The
  exception of Art. 16(2)(c) (offences of Arts. 3-7 of Directive 2011/93/EU) never applies to
  music, so the notifier's name and e-mail address are always required.
- People's Republic of China: 信息网络传播权保护条例 (Regulation on the Protection of the Right
  to Network Dissemination of Information, 2006, revised 2013) 第十四条第一款第（一）至（三）项
  and 第二款 (the right holder answers for the truthfulness of the notice).

Each :class:`Element` says twice whether a notice carries it: ``problems`` looks at the
:class:`~takedown.content.NoticeContent` before rendering (:func:`check_complete`), ``shown``
lists the texts the rendered notice must contain (:func:`check_rendered`), so a holder's override
template that drops an element is refused as well. Both name the element by its legal reference.

Where the statute is open ("information reasonably sufficient to contact ... such as an address,
telephone number, and, if available, an electronic mail address"), the checks take the strict
reading: a notice copyguard sends gives all three, so no provider can call it deficient.

Reads no settings.
"""


from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields, replace

from takedown.content import InfringingItem, Jurisdiction, NoticeContent, Statements
from takedown.errors import MissingElementError

# The standard wording of each statement the law requires. A holder may word a statement itself
# (``NoticeContent.statements``); it must then still contain the key phrases of
# ``_STATEMENT_PHRASES``, which carry the statute's meaning.
STANDARD_STATEMENTS: dict[Jurisdiction, Statements] = {
    Jurisdiction.DMCA: Statements(
        good_faith=(
            "The complaining party has a good faith belief that use of the material in the "
            "manner complained of is not authorized by the copyright owner, its agent, or the "
            "law."),
        accuracy_and_authority=(
            "The information in this notification is accurate, and under penalty of perjury, "
            "the complaining party is authorized to act on behalf of the owner of an exclusive "
            "right that is allegedly infringed."),
    ),
    Jurisdiction.DSA: Statements(
        bona_fide=(
            "The notifier confirms its bona fide belief that the information and allegations "
            "contained in this notice are accurate and complete."),
    ),
    Jurisdiction.PRC: Statements(
        truthfulness="权利人对本通知书的真实性负责。",
    ),
}

# Phrases (compared case-insensitively, whitespace collapsed) without which a custom statement
# would no longer be the statement the law asks for.
_STATEMENT_PHRASES: dict[str, tuple[str, ...]] = {
    "good_faith": ("good faith belief", "not authorized"),
    "accuracy_and_authority": ("accurate", "penalty of perjury", "authorized to act on behalf"),
    "bona_fide": ("bona fide belief", "accurate and complete"),
    "truthfulness": ("真实性负责",),
}


def _normal(text: str) -> str:
    return " ".join(text.split())


def format_utc(moment: dt.datetime) -> str:
    """The one way notices write a time ("2026-11-02 09:30:00 UTC"), so checks can find it."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def resolve_statements(content: NoticeContent) -> Statements:
    """The statements of ``content``'s jurisdiction: the holder's wording, else the standard."""
    standard = STANDARD_STATEMENTS[content.jurisdiction]
    chosen: dict[str, str | None] = {}
    for f in fields(Statements):
        default = getattr(standard, f.name)
        custom = getattr(content.statements, f.name)
        chosen[f.name] = None if default is None else (default if custom is None else custom)
    return replace(standard, **chosen)


# -- building blocks of the checks: each returns "field: what is wrong" strings --------------

def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def _present(pairs: Iterable[tuple[str, str | None]]) -> list[str]:
    return [f"{name} is empty" for name, value in pairs if _blank(value)]


def _items(content: NoticeContent) -> Iterable[tuple[int, InfringingItem]]:
    return enumerate(content.items)


def _urls(content: NoticeContent) -> list[str]:
    problems = _present((f"items[{i}].url", item.url) for i, item in _items(content))
    # A location that is not an absolute web address cannot be found by the provider (and a
    # javascript: or data: "URL" must never reach a notice).
    problems += [f"items[{i}].url is not an absolute http(s) URL: {item.url!r}"
                 for i, item in _items(content)
                 if not _blank(item.url) and not item.url.lower().startswith(("http://",
                                                                               "https://"))]
    return problems


def _titles(content: NoticeContent) -> list[str]:
    return _present((f"works[{i}].title", work.title) for i, work in enumerate(content.works))


def _statement(name: str) -> Callable[[NoticeContent], list[str]]:
    def problems(content: NoticeContent) -> list[str]:
        text = getattr(resolve_statements(content), name)
        if _blank(text):
            return [f"statements.{name} is empty"]
        lowered = _normal(text).lower()
        absent = [repr(p) for p in _STATEMENT_PHRASES[name] if p not in lowered]
        return [f"statements.{name} does not say {', '.join(absent)}"] if absent else []
    return problems


def _statement_shown(name: str) -> Callable[[NoticeContent], list[tuple[str, str]]]:
    return lambda content: [(f"statements.{name}", getattr(resolve_statements(content), name))]


def _evidence(content: NoticeContent) -> list[str]:
    problems: list[str] = []
    for i, item in _items(content):
        problems += _present([(f"items[{i}].sha256", item.sha256),
                              (f"items[{i}].warc_file", item.warc_file),
                              (f"items[{i}].warc_record_id", item.warc_record_id)])
    # Proof that the infringed work is the holder's: without it the match proves only a copy.
    problems += [f"works[{i}].registration_number and works[{i}].ownership_evidence are empty"
                 for i, work in enumerate(content.works)
                 if _blank(work.registration_number) and _blank(work.ownership_evidence)]
    return problems


def _contact_any(content: NoticeContent) -> list[str]:
    party = content.complaining_party
    if _blank(party.email) and _blank(party.phone):
        return ["complaining_party.email and complaining_party.phone are empty"]
    return []


def _given(pairs: Iterable[tuple[str, str | None]]) -> list[tuple[str, str]]:
    """The (field, text) pairs that have a value: what the rendered notice must then show."""
    return [(name, value) for name, value in pairs if value is not None and value.strip()]


def _party(content: NoticeContent, *names: str) -> list[tuple[str, str | None]]:
    return [(f"complaining_party.{n}", getattr(content.complaining_party, n)) for n in names]


def _shown_urls(content: NoticeContent) -> list[tuple[str, str]]:
    return _given((f"items[{i}].url", item.url) for i, item in _items(content))


def _shown_titles(content: NoticeContent) -> list[tuple[str, str]]:
    return _given((f"works[{i}].title", work.title) for i, work in enumerate(content.works))


def _shown_evidence(content: NoticeContent) -> list[tuple[str, str]]:
    shown: list[tuple[str, str | None]] = []
    for i, item in _items(content):
        shown += [(f"items[{i}].sha256", item.sha256),
                  (f"items[{i}].warc_record_id", item.warc_record_id),
                  # Only the date and time: a template may label the zone its own way.
                  (f"items[{i}].first_seen", format_utc(item.first_seen).removesuffix(" UTC"))]
    for i, work in enumerate(content.works):
        shown += [(f"works[{i}].registration_number", work.registration_number),
                  (f"works[{i}].ownership_evidence", work.ownership_evidence)]
    return _given(shown)


# -- the elements -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Element:
    """One element a jurisdiction's law requires a notice to contain."""

    reference: str  # the provision, e.g. "§512(c)(3)(A)(iv)"
    name: str  # what it requires, in a few words
    problems: Callable[[NoticeContent], list[str]]  # "field: what is wrong", empty when complete
    shown: Callable[[NoticeContent], list[tuple[str, str]]]  # (field, text) the output must hold

    def label(self) -> str:
        return f"{self.reference} {self.name}"


@dataclass(frozen=True)
class Law:
    """A jurisdiction's notice requirements."""

    jurisdiction: Jurisdiction
    citation: str  # the provision that lists the elements
    elements: tuple[Element, ...]


DMCA = Law(Jurisdiction.DMCA, "17 U.S.C. §512(c)(3)(A)", (
    Element("§512(c)(3)(A)(i)", "signature of a person authorized to act on behalf of the owner",
            lambda c: _present([
                ("complaining_party.signatory.name", c.complaining_party.signatory.name),
                ("complaining_party.signatory.signature",
                 c.complaining_party.signatory.signature)]),
            lambda c: _given([("complaining_party.signatory.name",
                               c.complaining_party.signatory.name),
                              ("complaining_party.signatory.signature",
                               c.complaining_party.signatory.signature)])),
    Element("§512(c)(3)(A)(ii)", "identification of the copyrighted works", _titles,
            _shown_titles),
    Element("§512(c)(3)(A)(iii)", "identification and location of the infringing material",
            _urls, _shown_urls),
    Element("§512(c)(3)(A)(iv)", "contact information",
            lambda c: _present(_party(c, "address", "phone", "email")),
            lambda c: _given(_party(c, "name", "address", "phone", "email"))),
    Element("§512(c)(3)(A)(v)", "good faith statement", _statement("good_faith"),
            _statement_shown("good_faith")),
    Element("§512(c)(3)(A)(vi)", "statement of accuracy and, under penalty of perjury, authority",
            _statement("accuracy_and_authority"), _statement_shown("accuracy_and_authority")),
))

DSA = Law(Jurisdiction.DSA, "Regulation (EU) 2022/2065, Art. 16(2)", (
    Element("Art. 16(2)(a)", "substantiated explanation why the information is illegal content",
            lambda c: _present([("explanation", c.explanation)]),
            lambda c: _given([("explanation", c.explanation)])),
    Element("Art. 16(2)(b)", "exact electronic location of the information", _urls,
            lambda c: _shown_urls(c) + _shown_titles(c)),
    Element("Art. 16(2)(c)", "name and email address of the notifier",
            lambda c: _present(_party(c, "name", "email")),
            lambda c: _given(_party(c, "name", "email"))),
    Element("Art. 16(2)(d)", "statement of bona fide belief that the notice is accurate and "
            "complete", _statement("bona_fide"), _statement_shown("bona_fide")),
))

PRC = Law(Jurisdiction.PRC, "信息网络传播权保护条例 第十四条", (
    Element("第十四条第一款第（一）项", "权利人的姓名（名称）、联系方式和地址",
            lambda c: _present(_party(c, "name", "address")) + _contact_any(c),
            lambda c: _given(_party(c, "name", "address", "phone", "email"))),
    Element("第十四条第一款第（二）项", "侵权作品、表演、录音录像制品的名称和网络地址",
            lambda c: _titles(c) + _urls(c),
            lambda c: _shown_titles(c) + _shown_urls(c)),
    Element("第十四条第一款第（三）项", "构成侵权的初步证明材料", _evidence, _shown_evidence),
    Element("第十四条第二款", "权利人对通知书的真实性负责（声明）", _statement("truthfulness"),
            _statement_shown("truthfulness")),
))

LAWS: dict[Jurisdiction, Law] = {law.jurisdiction: law for law in (DMCA, DSA, PRC)}


def missing_elements(content: NoticeContent) -> list[str]:
    """Every gap of ``content``, as "reference name: field is empty"; empty when complete."""
    return [f"{element.label()}: {problem}"
            for element in LAWS[content.jurisdiction].elements
            for problem in element.problems(content)]


def check_complete(content: NoticeContent) -> None:
    """Raise :class:`MissingElementError` naming every required element ``content`` lacks."""
    missing = missing_elements(content)
    if missing:
        raise MissingElementError(content.jurisdiction.value, missing)


def check_rendered(content: NoticeContent, text: str, source: str) -> None:
    """Raise :class:`MissingElementError` unless the rendered ``text`` (plain text, or the text
    of an HTML notice) shows every element of ``content``. ``source`` names the template."""
    haystack = _normal(text)
    missing = [f"{element.label()}: {name} does not appear in {source}"
               for element in LAWS[content.jurisdiction].elements
               for name, needle in element.shown(content)
               if _normal(needle) not in haystack]
    if missing:
        raise MissingElementError(content.jurisdiction.value, missing)
