"""The analysts' SQL (views and example queries), shipped as package data of ``recsys_sql``.

A package so that migrations and the CLI read the very files analysts read, from an installed
copy as well as from a checkout; :mod:`recsys.storage.sqlfiles` is the reader.
"""
