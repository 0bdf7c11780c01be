"""Everything recsys keeps in PostgreSQL: schema, connections, bulk I/O, the version
registry, publishing, reading versions back, aliases, pruning, migrations, views and grants."""
