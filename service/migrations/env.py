"""Alembic environment: runs on the engine handed over in `config.attributes["engine"]`.

Migrations are applied programmatically by `service.store.engine.migrate`; there is no
`alembic.ini`. New revisions: `alembic -x ... revision --autogenerate` is not wired up;
write them by hand next to `versions/0001_initial.py`.
"""

from __future__ import annotations

from alembic import context

from service.store.tables import Base

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
