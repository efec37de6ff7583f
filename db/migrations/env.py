"""Alembic's environment for every schema: run the revisions on the connection db.migrate hands over."""

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the database migrations run through db.Database (python code), not the alembic command")
context.configure(connection=connection)
with context.begin_transaction():
    context.run_migrations()
