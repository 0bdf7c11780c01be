"""``python -m recsys_jobs``: the same as the ``recsys-job`` console script."""

from recsys_jobs.cli import main

main()
