"""Alembic environment: runs the migrations on the engine :mod:`eoengine.platform.db.migrate` passes in."""

from __future__ import annotations

from alembic import context

from eoengine.platform.db.models import Base


def run_migrations() -> None:
    """Run the migrations on the engine in the Alembic config's attributes, one transaction per revision."""
    engine = context.config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                          transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if getattr(context, "config", None) is not None:  # run by Alembic; imported elsewhere, it does nothing
    run_migrations()
