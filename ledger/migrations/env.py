"""Alembic environment: runs on the connection handed over by ``ledger.db.migrate``."""

from alembic import context

from ledger.models import Base

connection = context.config.attributes["connection"]
# APScheduler's job store makes its own table; autogenerate must not drop it.
FOREIGN_TABLES = {"apscheduler_jobs"}


def _ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return not (type_ == "table" and name in FOREIGN_TABLES)


context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    include_object=_ours,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds tables
    compare_type=True,
)
context.run_migrations()
