"""PNG charts for the run report, drawn with matplotlib's Agg renderer.

Figures are built as ``matplotlib.figure.Figure`` objects rather than through pyplot: no GUI
backend, no global figure state, nothing to close, so a headless job can draw them safely.
"""

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from recsys.versions.listing import Metric

#: This version, the popularity baseline, the previous version, the GF-CF baseline.
_COLOURS = ("#1f6fb4", "#b0b0b0", "#f0a030", "#3a9a5a")


@dataclass(frozen=True)
class Curve:
    """A per-epoch series of one version."""

    label: str
    epochs: Sequence[int]
    values: Sequence[float | None]


def training_curves(
    loss: Sequence[Curve],
    validation: Sequence[Curve],
    validation_label: str,
    levels: Mapping[str, float] | None = None,
) -> bytes:
    """Training loss and, when any run recorded one, the validation figure per epoch, side by
    side; the first curve of each is solid. ``levels`` (the baselines' figures) are drawn as
    horizontal lines beside the validation curves."""
    panels = [(loss, "training loss (BPR)")]
    if any(v is not None for curve in validation for v in curve.values):
        panels.append((validation, f"validation {validation_label}"))
    figure = Figure(figsize=(10, 3.6), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (curves, title) in zip(axes, panels, strict=True):
        for i, curve in enumerate(curves):
            points = [
                (e, v) for e, v in zip(curve.epochs, curve.values, strict=True) if v is not None
            ]
            if not points:
                continue
            xs, ys = zip(*points, strict=True)
            style = {"color": _COLOURS[0], "linewidth": 2} if i == 0 else {"color": _COLOURS[2]}
            ax.plot(xs, ys, marker="o", markersize=3, linestyle="-" if i == 0 else "--",
                    label=curve.label, **style)  # fmt: skip
        if curves is validation and ax.has_data():
            for (label, value), colour in zip(
                (levels or {}).items(), _COLOURS[3:0:-2], strict=False
            ):
                ax.axhline(value, color=colour, linestyle=":", linewidth=1.5, label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(frameon=False)
        else:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
    return _png(figure)


def metrics_vs_baseline(
    version: str,
    metrics: Sequence[Metric],
    previous: str | None,
    previous_metrics: Sequence[Metric],
    gf_cf: Mapping[tuple[str, int], float] | None = None,
) -> bytes:
    """Bars per metric, one panel per cut-off: the model, popularity, the previous version, and
    the GF-CF baseline where the run scored it."""
    cutoffs = sorted({m.k for m in metrics})
    figure = Figure(figsize=(10, 3.4 * len(cutoffs)), layout="constrained")
    axes = figure.subplots(len(cutoffs), 1, squeeze=False)[:, 0]
    earlier = {(m.model, m.metric, m.k): m.value for m in previous_metrics}
    for ax, k in zip(axes, cutoffs, strict=True):
        shown = [m for m in metrics if m.k == k]
        series = [
            (f"{version}", [m.value for m in shown], _COLOURS[0]),
            ("popularity", [m.baseline_value or 0.0 for m in shown], _COLOURS[1]),
        ]
        if previous:
            series.append(
                (
                    f"{previous} (previous)",
                    [earlier.get((m.model, m.metric, m.k), 0.0) for m in shown],
                    _COLOURS[2],
                )
            )
        if gf_cf:
            values = [gf_cf.get((m.metric, m.k), 0.0) for m in shown]
            series.append(("gf-cf", values, _COLOURS[3]))
        width = 0.8 / len(series)
        for i, (label, values, colour) in enumerate(series):
            xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(shown))]
            ax.bar(xs, values, width, label=label, color=colour)
        ax.set_xticks(range(len(shown)), [m.metric for m in shown])
        ax.set_title(f"metrics @{k}")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(frameon=False, ncols=len(series))
    return _png(figure)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
