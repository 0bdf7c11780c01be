"""Input into the ``movies``, ``users`` and ``ratings`` tables, in two halves.

``parse`` reads files (a MovieLens release, plain CSV exports) into one fixed schema, checking
every value with its file and line; ``load`` writes what was parsed in one transaction (staged by
COPY, upserted, the ratings merged). ``sql`` is ``ingest sql``: the same checks and merge, made
in the database on rows from the user's own tables or queries. ``errors`` is the one exception all
three raise for bad input.
"""
