"""The figures of US copyright law the queue reckons with, each with the provision it comes from.

They are law, not settings: the scoring weights are configurable, these are not. Counsel should
confirm them for each case; the dossier states them as assumptions.
"""

from __future__ import annotations

from dataclasses import dataclass

# 17 U.S.C. 504(c)(1): statutory damages per work, "not less than $750 or more than $30,000".
STATUTORY_MIN = 750
STATUTORY_MAX = 30_000
# 17 U.S.C. 504(c)(2): up to $150,000 per work where the infringement was committed willfully.
STATUTORY_WILLFUL_MAX = 150_000
# 17 U.S.C. 412: no statutory damages for infringement begun before registration, unless the
# work was registered within three months after its first publication.
REGISTRATION_GRACE_MONTHS = 3
# 17 U.S.C. 507(b): "within three years after the claim accrued".
LIMITATION_YEARS = 3
# 17 U.S.C. 1504(e)(1)(A)(ii), (D): Copyright Claims Board caps: $15,000 per work timely
# registered, $7,500 per work otherwise (and $15,000 for all of those), $30,000 per proceeding.
CCB_PER_WORK = 15_000
CCB_PER_WORK_UNTIMELY = 7_500
CCB_UNTIMELY_TOTAL = 15_000
CCB_PER_CASE = 30_000


@dataclass(frozen=True)
class Citation:
    code: str
    text: str


CITATIONS = {
    "registration": Citation("17 U.S.C. 411(a)",
                             "no civil action for infringement of a United States work until "
                             "registration has been made or refused"),
    "timely": Citation("17 U.S.C. 412", "statutory damages and fees only for works registered "
                       "before the infringement began or within three months of publication"),
    "statutory": Citation("17 U.S.C. 504(c)", "$750 to $30,000 per work; up to $150,000 where "
                          "willful"),
    "limitation": Citation("17 U.S.C. 507(b)", "civil actions within three years after the "
                           "claim accrued"),
    "ccb": Citation("17 U.S.C. 1504(e)", "Copyright Claims Board: $15,000 per work, $30,000 "
                    "per proceeding; a claim may be brought once an application is filed"),
}
