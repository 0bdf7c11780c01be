"""Erasure on request: a user forgotten from the inputs and from every stored version at once.

``forget`` says which users (ids given, or a query's ``user_id`` column); ``erasure`` deletes
their rows from every table that holds rows per user, in one transaction with a salted audit row
each, and counts for ingest the users it loads that were erased before (it says so).
"""
