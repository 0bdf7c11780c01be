"""What the registry knows about versions: the list, one version in full, two side by side.

Figures come from the analysts' views (:mod:`recsys.storage.views`, ``sql/``), so the CLI shows
exactly what SQL readers see; a ``running`` version whose run holds no lock any more is reported as
``stale`` (its process died, see :func:`recsys.versions.registry.is_live`).
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from recsys.evaluation.metrics import METRICS
from recsys.storage import schema, sqlfiles, views
from recsys.versions import registry
from recsys.versions.status import VersionStatus

#: The figures ``versions`` shows per version, at the version's smallest evaluation cut-off.
HEADLINE_METRICS = ("ndcg", "precision", "recall", "map")
#: The version's own model in ``evaluation_results``; "champion" rows score an earlier version.
MODEL = "lightgcn"


@dataclass(frozen=True)
class Metric:
    """A model's figure beside the popularity baseline of the same run, and beside the
    strongest baseline of that metric (popularity or gf-cf; None for a run without one)."""

    model: str
    metric: str
    k: int
    value: float
    baseline_value: float | None
    lift: float | None
    relative_lift: float | None
    users_counted: int
    strongest_baseline: str | None = None
    strongest_baseline_value: float | None = None
    lift_over_strongest: float | None = None

    @property
    def label(self) -> str:
        return f"{self.metric}@{self.k}"


@dataclass(frozen=True)
class Alias:
    """An alias resolving to a version: set by promote, or production's latest-published default."""

    alias: str
    resolved_by: str


@dataclass(frozen=True)
class VersionSummary:
    name: str
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    published_at: datetime | None
    seconds: float | None
    metrics: list[Metric]
    aliases: list[Alias]


@dataclass(frozen=True)
class VersionDetails(VersionSummary):
    params: dict[str, Any] = field(default_factory=dict)
    data_stats: dict[str, Any] = field(default_factory=dict)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    code_version: str | None = None
    error: str | None = None
    epochs: int = 0


@dataclass(frozen=True)
class Epoch:
    epoch: int
    loss: float
    validation_metric: str | None
    validation_value: float | None
    seconds: float


@dataclass(frozen=True)
class MetricDelta:
    metric: str
    k: int
    value_a: float
    value_b: float
    delta: float
    relative: float | None
    #: Each version's lift over the strongest baseline of its own run (None without one).
    over_strongest_a: float | None = None
    over_strongest_b: float | None = None


@dataclass(frozen=True)
class Overlap:
    """Agreement of two versions' top-k lists (``sql/examples/version_overlap.sql``)."""

    k: int
    users: int
    mean_jaccard: float | None
    identical_share: float | None


@dataclass(frozen=True)
class Comparison:
    version_a: str
    version_b: str
    metrics: list[MetricDelta]
    overlap: Overlap
    #: Settings that differ: name → [value in a, value in b].
    params: dict[str, list[Any]]


def list_versions(conn: sa.Connection) -> list[VersionSummary]:
    """Every version in the registry, oldest first, with headline metrics and aliases."""
    rows = registry.summaries(conn)
    metrics = _metrics(conn, [row.name for row in rows])
    aliases = _aliases(conn)
    return [
        VersionSummary(
            **_summary_fields(conn, row),
            metrics=headline(metrics.get(row.name, [])),
            aliases=aliases.get(row.name, []),
        )
        for row in rows
    ]


def details(conn: sa.Connection, name: str) -> VersionDetails:
    """One version in full; a RecsysError names the known versions when it does not exist."""
    row = registry.details(conn, name)
    if row is None:
        raise registry.unknown(conn, name)
    history = schema.training_history
    epochs = conn.execute(
        sa.select(sa.func.count()).select_from(history).where(history.c.version == name)
    ).scalar_one()
    return VersionDetails(
        **_summary_fields(conn, row),
        metrics=_metrics(conn, [name]).get(name, []),
        aliases=_aliases(conn).get(name, []),
        params=row.params,
        data_stats=row.data_stats,
        phase_seconds=row.phase_seconds,
        code_version=row.code_version,
        error=row.error,
        epochs=epochs,
    )


def compare(conn: sa.Connection, version_a: str, version_b: str, k: int = 10) -> Comparison:
    """Metric deltas (b - a), recommendation overlap at ``k``, and the settings that differ."""
    for name in (version_a, version_b):
        registry.require_published(conn, name)
    metrics = {
        name: own_metrics(found) for name, found in _metrics(conn, [version_a, version_b]).items()
    }
    model_b = {(m.model, m.metric, m.k): m for m in metrics.get(version_b, [])}
    deltas = [
        MetricDelta(
            m.metric,
            m.k,
            m.value,
            b.value,
            b.value - m.value,
            b.value / m.value - 1 if m.value else None,
            m.lift_over_strongest,
            b.lift_over_strongest,
        )
        for m in metrics.get(version_a, [])
        if (b := model_b.get((m.model, m.metric, m.k))) is not None
    ]
    sqlfiles.use_schema(conn)
    overlap = conn.execute(
        sqlfiles.query("version_overlap"),
        {"version_a": version_a, "version_b": version_b, "k": k},
    ).one()
    params = registry.params(conn, [version_a, version_b])
    params_a, params_b = params[version_a], params[version_b]
    differing = {
        key: [params_a.get(key), params_b.get(key)]
        for key in sorted(params_a.keys() | params_b.keys())
        if params_a.get(key) != params_b.get(key)
    }
    return Comparison(
        version_a,
        version_b,
        deltas,
        Overlap(k, overlap.users, overlap.mean_jaccard, overlap.identical_share),
        differing,
    )


def training_history(conn: sa.Connection, name: str) -> list[Epoch]:
    """Per-epoch loss and validation figure of a published version, in epoch order."""
    if registry.stored_status(conn, name) != VersionStatus.PUBLISHED:
        return []
    history = schema.training_history
    rows = conn.execute(
        sa.select(
            history.c.epoch,
            history.c.loss,
            history.c.validation_metric,
            history.c.validation_value,
            history.c.seconds,
        )
        .where(history.c.version == name)
        .order_by(history.c.epoch)
    ).all()
    return [Epoch(*row) for row in rows]


def _summary_fields(conn: sa.Connection, row: sa.Row) -> dict[str, Any]:
    seconds = (
        (row.finished_at - row.started_at).total_seconds()
        if row.finished_at and row.started_at
        else None
    )
    return {
        "name": row.name,
        "status": registry.shown_status(conn, row.name, row.status),
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "published_at": row.published_at,
        "seconds": seconds,
    }


def _metrics(conn: sa.Connection, names: list[str]) -> dict[str, list[Metric]]:
    """Each version's figures from ``evaluation_vs_baseline`` (published versions only)."""
    view = views.evaluation_vs_baseline
    rows = conn.execute(sa.select(view).where(view.c.version.in_(names))).all()
    order = {metric: i for i, metric in enumerate(METRICS)}
    rows = sorted(rows, key=lambda r: (r.version, r.model, r.k, order.get(r.metric, len(order))))
    grouped: dict[str, list[Metric]] = {}
    for r in rows:
        grouped.setdefault(r.version, []).append(
            Metric(
                r.model,
                r.metric,
                r.k,
                r.value,
                r.baseline_value,
                r.lift,
                r.relative_lift,
                r.users_counted,
                r.strongest_baseline,
                r.strongest_baseline_value,
                r.lift_over_strongest,
            )
        )
    return grouped


def own_metrics(metrics: list[Metric]) -> list[Metric]:
    """The version's own model's figures, without a champion's scored in the same run."""
    return [m for m in metrics if m.model == MODEL]


def headline(metrics: list[Metric]) -> list[Metric]:
    """The :data:`HEADLINE_METRICS` of the version's own model at the smallest cut-off."""
    metrics = own_metrics(metrics)
    if not metrics:
        return []
    k = min(m.k for m in metrics)
    return [m for m in metrics if m.k == k and m.metric in HEADLINE_METRICS]


def _aliases(conn: sa.Connection) -> dict[str, list[Alias]]:
    view = views.current_aliases
    grouped: dict[str, list[Alias]] = {}
    for row in conn.execute(sa.select(view).order_by(view.c.alias)):
        grouped.setdefault(row.version, []).append(Alias(row.alias, row.resolved_by))
    return grouped
