"""recsys: train LightGCN on ratings held in PostgreSQL and publish versioned recommendations.

From Python, :func:`run` is ``recsys-job run`` (docs/python.md). Importing ``recsys`` is cheap:
TensorFlow is loaded by a run, not by the import.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recsys.run_summary import RunResult

__version__ = "0.1.0"
__all__ = ["__version__", "run"]


def run(version: str, **settings: Any) -> "RunResult":
    """Train, evaluate and publish ``version`` with ``recsys-job run``'s options as keywords
    (``epochs=3``, ``max_train_time="10m"``, ``split="temporal"``, ...), plus ``database_url``,
    ``schema``, ``config_file`` and ``report``; the run's result. See :func:`recsys.entry.run`."""
    from recsys.entry import run as run_entry

    return run_entry(version, **settings)
