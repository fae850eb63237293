"""Alembic environment: runs on the connection Passgate hands over (see Database.migrate)."""

from alembic import context

from passgate.store.models import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite can only ALTER through batch mode
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
