"""``ingest sql``: input from the user's tables, views or SELECTs, read without the power to
write (``source``), its columns matched and converted (``columns``), checked in the database as
``ingest csv`` checks a file (``checks``), and merged as a file's rows are (``load``); with
``--since-last``, only rows past the last ingest's ``watermark``.
"""
