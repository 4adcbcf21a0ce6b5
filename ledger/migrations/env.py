"""Alembic environment: runs on the connection handed over by ``ledger.db.migrate``."""

from alembic import context

from ledger.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds tables
    compare_type=True,
)
context.run_migrations()
