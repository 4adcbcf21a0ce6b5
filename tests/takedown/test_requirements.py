"""The legal elements of each jurisdiction: a complete notice passes, each gap is named."""

# The PRC references are Chinese text, written with full-width punctuation on purpose.

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from takedown.content import (
    ComplainingParty,
    InfringingItem,
    Jurisdiction,
    NoticeContent,
    Recipient,
    Segment,
    Signatory,
    Statements,
    Work,
)
from takedown.errors import MissingElementError
from takedown.requirements import LAWS, check_complete, missing_elements

# -- the example notice (also rendered into the snapshots by test_render.py) ------------------

WORKS = (
    Work(title="Harbour Lights", artist="The Example Quartet", isrc="GBXYZ2400001",
         registration_number="SR0000912345", registration_date=date(2024, 3, 1),
         ownership_evidence="℗ 2024 Example Records Ltd", catalogue_id="EXR-0001"),
    Work(title="Northern Line", artist="Mara Jones", isrc="GBXYZ2400002",
         registration_number=None,
         ownership_evidence="Exclusive licence from Mara Jones dated 2023-11-15",
         catalogue_id="EXR-0002"),
    Work(title="Slow Tide (Live)", artist=None, isrc=None,
         registration_number="SR0000912399", catalogue_id="EXR-0017"),
)

SEEN = datetime(2026, 10, 30, 14, 5, 9, tzinfo=UTC)


def _item(n: int, work: Work, *, page: str | None, **changes: float) -> InfringingItem:
    values: dict[str, float] = {"confidence": 0.97, "speed": 1.0, "pitch_semitones": 0.0}
    values.update(changes)
    return InfringingItem(
        url=f"https://files.pirate.example/audio/{n:03d}.mp3",
        page_url=page,
        first_seen=SEEN + timedelta(minutes=7 * n),
        sha256=f"{n:02x}" * 32,
        warc_file=f"captures-20261030-{n // 3:05d}.warc.gz",
        warc_record_id=f"<urn:uuid:00000000-0000-4000-8000-{n:012d}>",
        infringing_segment=Segment(12.0 * n, 12.0 * n + 185.5),
        work_segment=Segment(0.0, 185.5 * values["speed"]),
        work=work,
        confidence=values["confidence"],
        speed=values["speed"],
        pitch_semitones=values["pitch_semitones"],
    )


ITEMS = (
    _item(1, WORKS[0], page="https://blog.pirate.example/2026/10/harbour-lights-free"),
    _item(2, WORKS[0], page="https://blog.pirate.example/2026/10/quartet-discography"),
    _item(3, WORKS[1], page="https://blog.pirate.example/2026/10/quartet-discography",
          confidence=0.884, speed=1.05, pitch_semitones=0.84),
    _item(4, WORKS[2], page=None),
)

PARTY = ComplainingParty(
    name="Example Records Ltd",
    email="legal@example-records.example",
    address="12 Sample Street\nLondon N1 9XX\nUnited Kingdom",
    phone="+44 20 7946 0000",
    signatory=Signatory(name="Jane Roe", capacity="Head of Legal Affairs",
                        signature="/s/ Jane Roe"),
)

RECIPIENTS = {
    Jurisdiction.DMCA: Recipient(name="Example Hosting Inc.",
                                 role="designated agent of the hosting provider",
                                 email="dmca-agent@hosting.example"),
    Jurisdiction.DSA: Recipient(name="Example Hosting B.V.",
                                role="notice and action contact of the hosting provider",
                                form_url="https://hosting.example/legal/notice"),
    Jurisdiction.PRC: Recipient(name="示例云存储有限公司", role="信息存储空间服务提供者",
                                email="jubao@cloud.example.cn"),
}

EXPLANATION = (
    "The files listed below are unauthorised copies of sound recordings whose phonogram "
    "producer's rights belong to the notifier. Making them available to the public on demand "
    "infringes the exclusive right of making available under Article 3(2)(b) of Directive "
    "2001/29/EC as implemented in the Member States; the notifier has granted no licence to "
    "the uploader or to the operator of the site.")


def example_content(jurisdiction: Jurisdiction) -> NoticeContent:
    """A complete notice: three works, four infringing files on one site, fixed dates."""
    return NoticeContent(
        jurisdiction=jurisdiction,
        reference=f"CG-{jurisdiction.value.upper()}-2026-000042",
        date=date(2026, 11, 2),
        complaining_party=PARTY,
        recipient=RECIPIENTS[jurisdiction],
        works=WORKS,
        items=ITEMS,
        explanation=EXPLANATION if jurisdiction is Jurisdiction.DSA else None,
    )


# -- mutations that remove one element each ---------------------------------------------------

Mutation = Callable[[NoticeContent], NoticeContent]


def _party(**changes: Any) -> Mutation:
    return lambda c: dataclasses.replace(
        c, complaining_party=dataclasses.replace(c.complaining_party, **changes))


def _signatory(**changes: Any) -> Mutation:
    return lambda c: dataclasses.replace(c, complaining_party=dataclasses.replace(
        c.complaining_party,
        signatory=dataclasses.replace(c.complaining_party.signatory, **changes)))


def _statements(**changes: Any) -> Mutation:
    return lambda c: dataclasses.replace(c, statements=Statements(**changes))


def _work(index: int, **changes: Any) -> Mutation:
    def mutate(c: NoticeContent) -> NoticeContent:
        old = c.works[index]
        new = dataclasses.replace(old, **changes)
        items = tuple(dataclasses.replace(i, work=new) if i.work == old else i for i in c.items)
        works = tuple(new if w == old else w for w in c.works)
        return dataclasses.replace(c, works=works, items=items)
    return mutate


def _item_change(index: int, **changes: Any) -> Mutation:
    return lambda c: dataclasses.replace(c, items=tuple(
        dataclasses.replace(item, **changes) if i == index else item
        for i, item in enumerate(c.items)))


DMCA, DSA, PRC = Jurisdiction.DMCA, Jurisdiction.DSA, Jurisdiction.PRC

# (jurisdiction, mutation, the element's reference, the field named)
GAPS: list[tuple[Jurisdiction, Mutation, str, str]] = [
    (DMCA, _signatory(signature=""), "§512(c)(3)(A)(i)", "signatory.signature is empty"),
    (DMCA, _signatory(name=" "), "§512(c)(3)(A)(i)", "signatory.name is empty"),
    (DMCA, _work(1, title=""), "§512(c)(3)(A)(ii)", "works[1].title is empty"),
    (DMCA, _item_change(2, url=""), "§512(c)(3)(A)(iii)", "items[2].url is empty"),
    (DMCA, _item_change(0, url="javascript:alert(1)"), "§512(c)(3)(A)(iii)",
     "items[0].url is not an absolute http(s) URL"),
    (DMCA, _party(address=None), "§512(c)(3)(A)(iv)", "complaining_party.address is empty"),
    (DMCA, _party(phone=""), "§512(c)(3)(A)(iv)", "complaining_party.phone is empty"),
    (DMCA, _party(email=""), "§512(c)(3)(A)(iv)", "complaining_party.email is empty"),
    (DMCA, _statements(good_faith=""), "§512(c)(3)(A)(v)", "statements.good_faith is empty"),
    (DMCA, _statements(good_faith="We believe this use is unfair."), "§512(c)(3)(A)(v)",
     "statements.good_faith does not say 'good faith belief'"),
    (DMCA, _statements(accuracy_and_authority="The information in this notification is "
                       "accurate and we are authorized to act on behalf of the owner."),
     "§512(c)(3)(A)(vi)", "statements.accuracy_and_authority does not say 'penalty of perjury'"),
    (DSA, lambda c: dataclasses.replace(c, explanation=None), "Art. 16(2)(a)",
     "explanation is empty"),
    (DSA, _item_change(3, url=""), "Art. 16(2)(b)", "items[3].url is empty"),
    (DSA, _party(name=""), "Art. 16(2)(c)", "complaining_party.name is empty"),
    (DSA, _party(email=""), "Art. 16(2)(c)", "complaining_party.email is empty"),
    (DSA, _statements(bona_fide="We believe the notice is accurate."), "Art. 16(2)(d)",
     "statements.bona_fide does not say 'bona fide belief'"),
    (PRC, _party(name=""), "第十四条第一款第（一）项", "complaining_party.name is empty"),
    (PRC, _party(address=""), "第十四条第一款第（一）项", "complaining_party.address is empty"),
    (PRC, _party(email="", phone=None), "第十四条第一款第（一）项",
     "complaining_party.email and complaining_party.phone are empty"),
    (PRC, _work(0, title=""), "第十四条第一款第（二）项", "works[0].title is empty"),
    (PRC, _item_change(1, url=""), "第十四条第一款第（二）项", "items[1].url is empty"),
    (PRC, _item_change(1, sha256=""), "第十四条第一款第（三）项", "items[1].sha256 is empty"),
    (PRC, _item_change(2, warc_record_id=""), "第十四条第一款第（三）项",
     "items[2].warc_record_id is empty"),
    (PRC, _work(2, registration_number=None), "第十四条第一款第（三）项",
     "works[2].registration_number and works[2].ownership_evidence are empty"),
    (PRC, _statements(truthfulness="本通知书内容属实。"), "第十四条第二款",
     "statements.truthfulness does not say '真实性负责'"),
]


@pytest.mark.parametrize("jurisdiction", list(Jurisdiction))
def test_complete_notice_passes(jurisdiction: Jurisdiction) -> None:
    content = example_content(jurisdiction)
    check_complete(content)
    assert missing_elements(content) == []


@pytest.mark.parametrize(("jurisdiction", "mutate", "reference", "problem"), GAPS,
                         ids=[f"{j.value}-{p}" for j, _, _, p in GAPS])
def test_missing_element_is_named_with_its_reference(
        jurisdiction: Jurisdiction, mutate: Mutation, reference: str, problem: str) -> None:
    content = mutate(example_content(jurisdiction))
    with pytest.raises(MissingElementError) as caught:
        check_complete(content)
    assert caught.value.jurisdiction == jurisdiction.value
    [missing] = caught.value.missing  # exactly this element, nothing else
    assert missing.startswith(reference + " ")
    assert problem in missing
    assert reference in str(caught.value)


def test_every_element_of_every_law_is_exercised() -> None:
    exercised = {(j, ref) for j, _, ref, _ in GAPS}
    required = {(law.jurisdiction, e.reference) for law in LAWS.values() for e in law.elements}
    assert required == exercised


def test_all_gaps_are_named_together() -> None:
    content = _party(phone="", email="")(_signatory(signature="")(example_content(DMCA)))
    with pytest.raises(MissingElementError) as caught:
        check_complete(content)
    assert [m.split(":")[0] for m in caught.value.missing] == [
        "§512(c)(3)(A)(i) signature of a person authorized to act on behalf of the owner",
        "§512(c)(3)(A)(iv) contact information",
        "§512(c)(3)(A)(iv) contact information",
    ]


def test_dmca_contact_message_names_the_field() -> None:
    with pytest.raises(MissingElementError, match=r"§512\(c\)\(3\)\(A\)\(iv\) contact "
                       r"information: complaining_party\.phone is empty"):
        check_complete(_party(phone=None)(example_content(DMCA)))


def test_dsa_needs_no_postal_address_or_signature() -> None:
    content = _signatory(signature="")(_party(address=None, phone=None)(example_content(DSA)))
    check_complete(content)


def test_custom_statement_with_the_statutes_words_is_accepted() -> None:
    content = _statements(good_faith=(
        "We have a good faith belief that the use of the recordings described above is not "
        "authorized by the copyright owner, its agent, or the law."))(example_content(DMCA))
    check_complete(content)


def test_naive_capture_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        dataclasses.replace(ITEMS[0], first_seen=datetime(2026, 10, 30, 14, 5))


def test_capture_time_in_another_zone_is_accepted() -> None:
    item = dataclasses.replace(ITEMS[0], first_seen=SEEN.astimezone(timezone(timedelta(hours=8))))
    assert item.first_seen == SEEN


@pytest.mark.parametrize(("field", "value", "message"), [
    ("items", (), "at least one infringing item"),
    ("works", (), "at least one work"),
    ("reference", " ", "reference must not be empty"),
    ("works", (*WORKS, dataclasses.replace(WORKS[0], title="Unused")), "without an infringing"),
    ("works", WORKS[:2], "work is not in works"),
    ("language", "not a tag", "BCP 47"),
])
def test_malformed_notice_is_refused(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(example_content(DMCA), **{field: value})


def test_recipient_needs_a_way_to_reach_it() -> None:
    with pytest.raises(ValueError, match="neither an email nor a form URL"):
        Recipient(name="Nobody", role="abuse contact")
