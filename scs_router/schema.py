"""Every service's tables on the one metadata, for what needs the whole schema at once.

Each service declares its tables in its own `repository.py` on `shared.db.metadata`; importing
them all is composition, so it happens here rather than in shared/migrations/env.py. Applying
migrations does not need it; autogenerating a revision does:

    command.revision(alembic_config(url, target_metadata=all_tables()), "...", autogenerate=True)
"""

from __future__ import annotations

from sqlalchemy import MetaData


def all_tables() -> MetaData:
    import services.classifier.repository
    import services.ingest.repository
    import services.kpi.repository
    import services.router.repository  # noqa: F401  (they register their tables on metadata)
    from shared.db import metadata

    return metadata
