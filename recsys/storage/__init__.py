"""Database plumbing: which database and how to connect (``database``, ``embedded``), the tables
and views as SQLAlchemy handles (``schema``, ``views``, ``sqlfiles``), migrations (``migrate``),
bulk I/O by COPY (``bulk``, ``binary_copy``), locking several tables without deadlocks
(``locks``), the rules for version and alias names (``names``) and the analysts' read-only role
(``grants``).

What is stored, and when, is decided elsewhere: the version lifecycle in :mod:`recsys.versions`,
the inputs in :mod:`recsys.ingest`, erasure in :mod:`recsys.privacy`.
"""
