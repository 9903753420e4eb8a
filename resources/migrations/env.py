"""Alembic's environment for the warehouse: always online, on the connection that
`resources.schema` hands over (no alembic.ini, no URL here)."""

from alembic import context

from resources.schema import MIGRATION_LOCK, VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, transaction_per_migration=True, version_table=VERSION_TABLE)
# One migration at a time per database: a second `migrate` waits here (bounded by its
# lock_timeout), then finds the revisions applied.
connection.exec_driver_sql(f"select pg_advisory_lock({MIGRATION_LOCK})")
connection.commit()
try:
    with context.begin_transaction():
        context.run_migrations()
finally:
    connection.rollback()
    connection.exec_driver_sql(f"select pg_advisory_unlock({MIGRATION_LOCK})")
    connection.commit()
