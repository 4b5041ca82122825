"""Storage: SQLAlchemy models, session-based queries, one engine per URL, migrations.

Functions here take a ``Session`` in a transaction the caller owns; none reads the
environment except :func:`engine.default_database_url`, used by entry points.
"""
