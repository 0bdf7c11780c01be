"""The promotion gate of a run (``--promote ALIAS --if-better METRIC@K[:TOLERANCE]``).

The new version is promoted only when it beats the champion on the test set they were both just
scored on: its METRIC@K must exceed the champion's minus TOLERANCE (default 0: strictly better).
The decision is made after evaluation and carried out in the transaction that publishes the
version, so the alias never points at a version readers cannot see, and it is compare-and-swap:
if the alias was moved by someone else during the run, the run does not move it again.

Without a champion:
- the alias resolves to no version at all (a first night): promoted, there is nothing to beat;
- the champion was skipped as unfair (it may have trained on this run's test interactions):
  not promoted, since no fair comparison was made.

The outcome goes into the version's ``data_stats`` (``promotion``) and, when the alias moves,
into the alias history's ``note``. TensorFlow-free, so the CLI checks a gate before training.

Public API:
    Gate(alias, metric, k, tolerance)  .parse(alias, text)  .check(eval_ks)
    Judging(champion, required, gate)  the champion and the gate of a run
    Decision(...)                      what the gate decided, and why
    decide(gate, evaluation, champion_version, champion_skipped) -> Decision
    carry_out(conn, version, decision, expected_holder) -> Decision
"""

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from recsys.errors import InvalidInput
from recsys.evaluation.metrics import METRICS
from recsys.storage import names
from recsys.versions import aliases, registry

if TYPE_CHECKING:  # evaluate imports TensorFlow, which the CLI's option checks must not load
    from recsys.evaluation.evaluate import EvaluationRow

_GATE = re.compile(r"(?P<metric>[a-z_]+)@(?P<k>\d+)(?::(?P<tolerance>.+))?")


@dataclass(frozen=True)
class Gate:
    """Promote to ``alias`` when METRIC@K beats the champion's by more than −``tolerance``."""

    alias: str
    metric: str
    k: int
    tolerance: float = 0.0

    @classmethod
    def parse(cls, alias: str, text: str) -> "Gate":
        """``ndcg@10`` or ``ndcg@10:0.005``; the metric is checked by :meth:`check`."""
        names.validate(alias, "alias")
        match = _GATE.fullmatch(text.strip().lower())
        tolerance = match and match["tolerance"]
        try:
            value = float(tolerance) if tolerance else 0.0
        except ValueError:
            value = math.nan
        if not match or not math.isfinite(value) or value < 0:
            raise InvalidInput(
                f"--if-better {text!r}: expected METRIC@K or METRIC@K:TOLERANCE with a "
                "tolerance of at least 0, e.g. ndcg@10 or ndcg@10:0.002"
            )
        return cls(alias, match["metric"], int(match["k"]), value)

    @property
    def label(self) -> str:
        return f"{self.metric}@{self.k}"

    def check(self, eval_ks: Sequence[int]) -> None:
        """Refuse a gate on a figure the run will not compute, before it trains."""
        problems = []
        if self.metric not in METRICS:
            problems.append(f"metric {self.metric!r} is not computed (choose from {METRICS})")
        if self.k not in eval_ks:
            cutoffs = ",".join(map(str, eval_ks))
            problems.append(f"k {self.k} is not an evaluation cut-off (--eval-k {cutoffs})")
        if problems:
            raise InvalidInput(f"--if-better {self.label}: " + "; ".join(problems))


@dataclass(frozen=True)
class Judging:
    """What a run is judged against: the champion (an alias or version name; ``required`` when
    the user named it, so that a name resolving to nothing is refused rather than skipped) and
    the promotion gate."""

    champion: str | None = None
    required: bool = False
    gate: Gate | None = None


@dataclass(frozen=True)
class Decision:
    """What the gate decided: the two figures (``champion_value`` None without a champion),
    whether to promote, and why in words."""

    alias: str
    metric: str
    k: int
    tolerance: float
    value: float
    champion: str | None
    champion_value: float | None
    promoted: bool
    reason: str

    def record(self) -> dict[str, Any]:
        """As kept in the version's ``data_stats`` and printed by ``run --json``."""
        return asdict(self)


def decide(
    gate: Gate,
    evaluation: Sequence["EvaluationRow"],
    champion: str | None,
    skipped: str | None,
) -> Decision:
    """The gate's decision from this run's evaluation rows (which hold the champion's when it
    was scored); ``champion`` is the version the alias resolved to, ``skipped`` why it was not
    scored."""
    figures = {(r.model, r.metric, r.k): r.value for r in evaluation}
    value = figures[("model", gate.metric, gate.k)]
    decision = Decision(
        gate.alias, gate.metric, gate.k, gate.tolerance, value, champion, None, False, ""
    )
    if champion is None:
        why = f"alias {gate.alias!r} points at no version yet: nothing to beat"
        return replace(decision, promoted=True, reason=why)
    if skipped is not None:
        return replace(decision, reason=f"not compared with {champion!r}: {skipped}")
    theirs = figures[("champion", gate.metric, gate.k)]
    promoted = value > theirs - gate.tolerance
    verb = "beats" if promoted else "does not beat"
    slack = f" less the tolerance {gate.tolerance:g}" if gate.tolerance else ""
    why = f"{gate.label} {value:.4f} {verb} champion {champion}'s {theirs:.4f}{slack}"
    return replace(decision, champion_value=theirs, promoted=promoted, reason=why)


def carry_out(
    conn: sa.Connection, version: str, decision: Decision, expected_holder: str | None
) -> Decision:
    """Move the alias if the gate said so and nobody else moved it since the champion was read
    (``expected_holder``: the version it was explicitly set to then); record the outcome in the
    version's ``data_stats``. Call in the transaction that publishes ``version``, after the flip."""
    if decision.promoted:
        aliases.lock(conn, decision.alias)
        now = aliases.holder(conn, decision.alias)
        if now != expected_holder:
            decision = replace(
                decision,
                promoted=False,
                reason=f"alias {decision.alias!r} was moved to {now!r} during the run; "
                f"the comparison was with {decision.champion!r}",
            )
        else:
            aliases.move(
                conn, version, decision.alias, note=f"promoted by its run: {decision.reason}"
            )
    registry.add_stats(conn, version, {"promotion": decision.record()})
    return decision
