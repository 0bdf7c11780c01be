"""Writing parsed input into PostgreSQL, all or nothing: staged by COPY (``staging``), movies and
users upserted (``upsert``), the ratings merged the way the load's size makes fastest
(``rating_merge``), all in the one transaction of ``parsed``. ``distinct_ids`` collects the ids a
stream of chunks names without holding them all.
"""
