"""The database's schema history, as Alembic migrations (``agent.db.init`` runs them).

``versions/`` holds one revision per release that changed the schema; ``baseline``
is the schema of the last release made before migrations (revision 0001).
"""
