"""Finance-report backend: the ci-kit showcase workload.

A small but real double-entry bookkeeping service (FastAPI + SQLAlchemy 2 +
PostgreSQL) whose large test suite exercises the kit's per-worker databases.
"""
