"""What every stage of a started run shares (recsys/pipeline.py): where it writes, its settings,
the earlier versions it reads, how it reports, its timer and the ``data_stats`` it gathers."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from recsys.model.train import StepProgress
from recsys.run_config import RunConfig
from recsys.run_summary import PhaseTimer, Report
from recsys.versions import registry
from recsys.versions.earlier_versions import Earlier
from recsys.versions.promotion import Judging

if TYPE_CHECKING:
    from recsys.scale_out.sharded_scoring import WorkerPool


@dataclass
class RunContext:
    """A started run: the version it holds (``claim``), its settings and what it gathers."""

    engine: sa.Engine
    claim: registry.Claim
    config: RunConfig
    judging: Judging
    earlier: Earlier
    report: Report
    on_step: StepProgress | None
    workers: "WorkerPool | None"
    timer: PhaseTimer
    #: The version's ``data_stats``, gathered stage by stage.
    stats: dict[str, Any] = field(default_factory=dict)
