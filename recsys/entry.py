"""The Python entry point, :func:`recsys.run`, and what it shares with ``recsys-job run``.

Both resolve their settings with recsys/run_settings.py and run them with :func:`execute`, so a
run started from Python (a notebook, an Airflow ``PythonOperator``, a bench) stores, checks and
refuses exactly what the command does with the same settings (docs/python.md).

Public API:
    run(version, *, database_url=None, schema=None, config_file=None, report=print, **settings)
        -> RunResult
    execute(engine, settings, *, report, on_step=None, scale_out=None) -> RunResult
"""

from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from recsys.errors import InvalidInput
from recsys.model.tensorflow_logs import quiet_start
from recsys.run_settings import RunSettings, resolve
from recsys.storage import database, migrate

if TYPE_CHECKING:
    from recsys.model.train import StepProgress
    from recsys.run_summary import RunResult
    from recsys.scale_out.sharded_scoring import RayScoring


def run(
    version: str,
    *,
    database_url: str | None = None,
    schema: str | None = None,
    config_file: str | Path | None = None,
    report: Callable[[str], None] | None = print,
    **settings: object,
) -> "RunResult":
    """Train, evaluate and publish ``version`` as ``recsys-job run --model-version VERSION``
    does with the same settings, and return its result (figures, ``data_stats``, seconds).

    ``settings`` are the command's options as keywords (``epochs=3``, ``max_train_time="10m"``,
    ``eval_k=[5, 10]``, ``split="temporal"``, ``cutoff="2020-01-02T00:00:00Z"``, ``refit=True``,
    ``promote="production", if_better="ndcg@10"``, ``ray="local"``, ...); ``config_file`` a TOML
    file of them, which the keywords override. The database is ``database_url``, else
    ``$RECSYS_DATABASE_URL``, else the embedded PostgreSQL; the schema ``schema``, else
    ``$RECSYS_SCHEMA``, else ``recsys``. ``report`` receives the lines the command prints (None:
    silent), the summary last. Raises :class:`recsys.errors.RecsysError` (InvalidInput for
    settings) as the command exits with its code; a run that published without promotion returns
    normally, ``result.promotion.promoted`` false. ``keep`` is not taken: prune with
    ``recsys-job prune``.
    """
    say = report or _silent
    path = Path(config_file) if config_file is not None else None
    resolved = resolve({**settings, "model_version": version}, file=path)
    if resolved.keep is not None:
        raise InvalidInput(
            "invalid run settings: keep is the command's; prune with `recsys-job prune`"
        )
    scale_out = resolved.ray.scoring() if resolved.ray is not None else None
    name = database.schema_name(schema)
    engine = database.connect(database.resolve(database_url).url, name)
    try:
        migrate.require_head(engine, name)
        with resolved.ray.joined() if resolved.ray is not None else nullcontext() as cluster:
            if cluster is not None:
                say(f"ray: {cluster}")
            result = execute(engine, resolved, report=say, scale_out=scale_out)
    finally:
        engine.dispose()
    say(result.summary())
    return result


def execute(
    engine: sa.Engine,
    settings: RunSettings,
    *,
    report: Callable[[str], None],
    on_step: "StepProgress | None" = None,
    scale_out: "RayScoring | None" = None,
) -> "RunResult":
    """The pipeline run with resolved ``settings``, said first (the settings that decide it)."""
    quiet_start()  # keep TensorFlow's start-up lines out of the run's output, as the CLI does
    # Imported here, not at the top: TensorFlow takes seconds to load and only a run needs it.
    from recsys.pipeline import run as run_pipeline

    report(f"run {settings.version}: {settings.config.describe()}")
    return run_pipeline(
        engine,
        settings.version,
        settings.config,
        replace=settings.replace,
        report=report,
        on_step=on_step,
        memory_limit=settings.memory_limit,
        judging=settings.judging,
        scale_out=scale_out,
    )


def _silent(_line: str) -> None:
    """A ``report`` that says nothing."""
