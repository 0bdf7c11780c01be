"""Alembic migrations for the recsys schema (installed as the ``recsys_migrations`` package)."""
