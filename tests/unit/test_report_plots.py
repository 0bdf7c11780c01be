"""The report's charts render headless to PNG, also with gaps in the data."""

import struct

from recsys.report.plots import Curve, metrics_vs_baseline, training_curves
from recsys.versions.listing import Metric

PNG = b"\x89PNG\r\n\x1a\n"


def _size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG)
    return struct.unpack(">II", png[16:24])  # the IHDR chunk: width, height


def _metrics(k: int, value: float) -> list[Metric]:
    return [
        Metric("lightgcn", metric, k, value, value / 2, value / 2, 1.0, 10)
        for metric in ("precision", "ndcg")
    ]


def test_training_curves_with_and_without_validation() -> None:
    current = Curve("v2", [1, 2, 3], [0.7, 0.5, 0.4])
    previous = Curve("v1 (previous)", [1, 2], [0.69, 0.6])
    both = training_curves([current, previous], [Curve("v2", [1, 2, 3], [0.1, 0.2, 0.3])], "ndcg")
    assert _size(both) == (1000, 360)
    loss_only = training_curves([current], [Curve("v2", [1, 2, 3], [None, None, None])], "-")
    assert _size(loss_only) == (1000, 360)
    assert len(loss_only) < len(both)  # one panel instead of two


def test_metric_bars_get_a_panel_per_cutoff() -> None:
    one = metrics_vs_baseline("v2", _metrics(10, 0.4), None, [])
    two = metrics_vs_baseline("v2", _metrics(10, 0.4) + _metrics(20, 0.5), "v1", _metrics(10, 0.3))
    assert _size(one)[1] < _size(two)[1]
