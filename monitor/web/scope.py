"""One rights-holder never sees another's rows: every route scopes its queries through here.

A row another holder owns answers exactly as a row that does not exist (404), so an ID cannot be
probed for whether it exists.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from sqlalchemy.sql.elements import ColumnElement

from ledger.accounts import Principal
from ledger.errors import NotFoundError

# Row ids are 32-bit integers in the ledger: a larger one is refused (422), never looked up
# (SQLite would overflow on it).
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def holder_filter(principal: Principal, column: Any) -> list[ColumnElement[bool]]:
    """WHERE clauses limiting ``column`` (a ``holder_id``) to what the principal may see."""
    return [] if principal.scope is None else [column == principal.scope]


def visible(principal: Principal, holder_id: int | None) -> bool:
    return principal.scope is None or holder_id == principal.scope


def check_visible(principal: Principal, holder_id: int | None, what: str) -> None:
    """Raise the not-found error for ``what`` unless the principal may see its holder's row."""
    if not visible(principal, holder_id):
        raise NotFoundError(f"no {what}")
