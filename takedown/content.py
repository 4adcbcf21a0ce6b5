"""What a takedown notice says: plain, frozen values, independent of the ledger.

The renderer (:mod:`takedown.render`) and the legal checks (:mod:`takedown.requirements`) work on
these values only, so the package is usable without a database; the takedown stage builds them
from ``RightsHolder``, ``Recording``, ``Capture`` and ``Detection`` rows.

``__post_init__`` rejects values that are malformed (a naive datetime, a confidence above 1, an
item whose work is not listed). Whether a value the *law* needs is present (an address, a
registration number) is not checked here but by :func:`takedown.requirements.check_complete`,
which names every gap with its legal reference instead of failing on the first one.

Reads no settings.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import StrEnum


class Jurisdiction(StrEnum):
    """The law a notice is made under; its value names the templates (``dmca.txt.j2``)."""

    DMCA = "dmca"  # 17 U.S.C. §512(c)(3), United States
    DSA = "dsa"  # Regulation (EU) 2022/2065, Art. 16, European Union
    PRC = "prc"  # 信息网络传播权保护条例 第十四条, People's Republic of China


# The language the built-in templates of each jurisdiction are written in (BCP 47).
DEFAULT_LANGUAGE: dict[Jurisdiction, str] = {
    Jurisdiction.DMCA: "en",
    Jurisdiction.DSA: "en",
    Jurisdiction.PRC: "zh-Hans",
}

_SHA256 = re.compile(r"[0-9a-f]{64}")
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*")


def _require_aware(name: str, value: dt.datetime) -> None:
    # A naive timestamp in evidence is ambiguous by up to a day; the notices state times in UTC.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True)
class Signatory:
    """The person who signs for the complaining party (DMCA §512(c)(3)(A)(i))."""

    name: str
    capacity: str  # title or capacity: "Head of Legal Affairs", "authorised agent"
    signature: str  # an electronic signature such as "/s/ Jane Roe"


@dataclass(frozen=True)
class ComplainingParty:
    """The rights-holder (or its agent) on whose behalf the notice is sent."""

    name: str  # legal name
    email: str
    address: str | None  # postal address, lines separated by "\n"
    phone: str | None
    signatory: Signatory


@dataclass(frozen=True)
class Work:
    """A recording of the holder's catalogue that is claimed to be infringed."""

    title: str
    catalogue_id: str  # the holder's catalogue number, or copyguard's recording id
    artist: str | None = None  # performer
    isrc: str | None = None
    registration_number: str | None = None  # copyright registration, e.g. "SR0000123456"
    registration_date: dt.date | None = None
    # What else proves the holder's rights (a licence, a ℗ line, a certificate): cited with the
    # registration as the PRC notice's 初步证明材料.
    ownership_evidence: str | None = None

    def __post_init__(self) -> None:
        if self.isrc and not re.fullmatch(r"[A-Z]{2}[A-Z0-9]{3}\d{7}", self.isrc):
            raise ValueError(f"isrc {self.isrc!r} is not a 12-character ISRC")


@dataclass(frozen=True)
class Segment:
    """A stretch of audio, in seconds from the start of the file."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"segment {self.start}-{self.end} is not 0 <= start <= end")


@dataclass(frozen=True)
class InfringingItem:
    """One captured audio resource identified as (part of) a work: what to remove, and the
    evidence that it is the work."""

    url: str  # the audio itself: what is to be removed or disabled
    page_url: str | None  # the page it was found on; None when only the direct link was known
    first_seen: dt.datetime  # when the capture was made (aware; rendered in UTC)
    sha256: str  # of the captured bytes, lower-case hex
    warc_file: str  # the evidence file holding the HTTP exchange
    warc_record_id: str  # its WARC-Record-ID, e.g. "<urn:uuid:...>"
    infringing_segment: Segment  # where the work is heard in the captured file
    work_segment: Segment  # which part of the work that is
    confidence: float  # the matcher's confidence, 0 < c <= 1
    work: Work
    speed: float = 1.0  # playback speed relative to the work (1.05: 5 % faster)
    pitch_semitones: float = 0.0  # pitch shift relative to the work

    def __post_init__(self) -> None:
        _require_aware("first_seen", self.first_seen)
        if self.sha256 and not _SHA256.fullmatch(self.sha256):
            raise ValueError(f"sha256 {self.sha256!r} is not 64 lower-case hex digits")
        if not 0 < self.confidence <= 1:
            raise ValueError(f"confidence {self.confidence} is not in (0, 1]")
        if self.speed <= 0:
            raise ValueError(f"speed {self.speed} must be positive")


@dataclass(frozen=True)
class Recipient:
    """Whom the notice goes to: a host's abuse contact or designated agent, a platform's form."""

    name: str
    role: str  # "designated agent of the hosting provider", "abuse contact of ..."
    email: str | None = None
    form_url: str | None = None  # a web form, where the provider accepts notices only there

    def __post_init__(self) -> None:
        if not (self.email or self.form_url):
            raise ValueError(f"recipient {self.name!r} has neither an email nor a form URL")


@dataclass(frozen=True)
class Statements:
    """Statements the law requires, where the holder words them itself.

    ``None`` means the standard wording of :data:`takedown.requirements.STANDARD_STATEMENTS`;
    a custom wording must still carry the statute's key phrases (checked by ``check_complete``).
    Only the fields of the notice's jurisdiction are used.
    """

    good_faith: str | None = None  # DMCA §512(c)(3)(A)(v)
    accuracy_and_authority: str | None = None  # DMCA §512(c)(3)(A)(vi)
    bona_fide: str | None = None  # DSA Art. 16(2)(d)
    truthfulness: str | None = None  # PRC 第十四条第二款


@dataclass(frozen=True)
class NoticeContent:
    """Everything one notice to one recipient says, before it is rendered."""

    jurisdiction: Jurisdiction
    reference: str  # the notice's idempotency id, quoted in replies
    date: dt.date
    complaining_party: ComplainingParty
    recipient: Recipient
    works: tuple[Work, ...]
    items: tuple[InfringingItem, ...]
    language: str = ""  # BCP 47; empty: the jurisdiction's DEFAULT_LANGUAGE
    # Why the material is illegal content (DSA Art. 16(2)(a)); the holder's words.
    explanation: str | None = None
    statements: Statements = field(default_factory=Statements)

    def __post_init__(self) -> None:
        # Frozen: normalising assignments go through object.__setattr__.
        object.__setattr__(self, "jurisdiction", Jurisdiction(self.jurisdiction))
        object.__setattr__(self, "works", tuple(self.works))
        object.__setattr__(self, "items", tuple(self.items))
        if not self.language:
            object.__setattr__(self, "language", DEFAULT_LANGUAGE[self.jurisdiction])
        if not _LANGUAGE.fullmatch(self.language):
            raise ValueError(f"language {self.language!r} is not a BCP 47 tag")
        if not self.reference.strip():
            raise ValueError("reference must not be empty: it makes the notice idempotent")
        if not self.works:
            raise ValueError("a notice names at least one work")
        if not self.items:
            raise ValueError("a notice names at least one infringing item")
        if len(set(self.works)) != len(self.works):
            raise ValueError("a work is listed twice")
        unlisted = [item.url for item in self.items if item.work not in self.works]
        if unlisted:
            raise ValueError(f"items whose work is not in works: {unlisted}")
        # A listed work with nothing to remove would claim an infringement the notice never shows.
        bare = [work.title for work in self.works
                if not any(item.work == work for item in self.items)]
        if bare:
            raise ValueError(f"works without an infringing item: {bare}")

    def items_by_work(self) -> tuple[tuple[Work, tuple[InfringingItem, ...]], ...]:
        """Each work with its infringing items, in the order of ``works`` and ``items``."""
        return tuple((work, tuple(item for item in self.items if item.work == work))
                     for work in self.works)
