"""Click entry points for ``recsys-job`` (installed as the ``recsys_jobs`` package).

Thin by design: parse options, call :mod:`recsys`, report. No recommender logic lives here.
"""
