"""The run report: one self-contained HTML page about a published version.

Everything is inline (CSS, PNG charts as base64 data URIs), so the page can be mailed, attached to
a ticket or opened offline and still shows all of it. It puts the version beside the baselines of
its own run (popularity and, where the run scored it, the GF-CF spectral filter) and beside the
version published before it, when there is one.
"""

import base64
import html
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

import recsys
from recsys.report import plots
from recsys.run_config import GF_CF
from recsys.versions import listing, registry
from recsys.versions.listing import Epoch, Metric, VersionDetails


@dataclass(frozen=True)
class ReportData:
    version: VersionDetails
    history: list[Epoch]
    previous: VersionDetails | None
    previous_history: list[Epoch]


def collect(conn: sa.Connection, name: str) -> ReportData:
    """Everything the page shows, read from the registry and the views."""
    registry.require_published(conn, name)
    previous = registry.previous_published(conn, name)
    return ReportData(
        listing.details(conn, name),
        listing.training_history(conn, name),
        listing.details(conn, previous) if previous else None,
        listing.training_history(conn, previous) if previous else [],
    )


def write(conn: sa.Connection, name: str, out_dir: Path) -> Path:
    """Write ``report-<version>.html`` into ``out_dir`` (created if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"report-{name}.html"
    path.write_text(render(collect(conn, name)), encoding="utf-8")
    return path


def render(data: ReportData) -> str:
    """The HTML page for ``data``."""
    v, prev = data.version, data.previous
    title = f"recsys report: version {v.name}"
    compared = (
        f"compared with {_e(prev.name)}, the version published before it"
        if prev
        else "the first published version: nothing earlier to compare with"
    )
    baselines = "the baselines" if _gf_cf(v.metrics) else "the popularity baseline"
    against = f"{baselines} and {_e(prev.name)}" if prev else baselines
    aliases = ", ".join(a.alias for a in v.aliases)
    subtitle = " · ".join(
        part
        for part in (
            f"published {_when(v.published_at)}",
            f"alias {_e(aliases)}" if aliases else "",
            compared,
        )
        if part
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_e(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<header><h1>Version {_e(v.name)}</h1><p class="sub">{subtitle}</p></header>
{_cards(data)}
<section><h2>Training</h2>
{_image(_training_png(data), "Training loss and validation metric per epoch")}
{_validation_note(data)}
</section>
<section><h2>Evaluation against {against}</h2>
{_image(_metrics_png(data), "Metrics of this version, the baseline and the previous version")}
{_metrics_table(data)}
</section>
<section><h2>Run</h2>
<div class="columns">
<div><h3>Settings</h3>{_settings_table(data)}</div>
<div><h3>Data</h3>{_pairs_table(v.data_stats)}<h3>Seconds per phase</h3>{_phases_table(v)}</div>
</div>
</section>
<footer>Generated {_when(datetime.now(UTC))} by recsys {_e(recsys.__version__)};
code version of this run: {_e(v.code_version or "unknown")}.</footer>
</body>
</html>
"""


def _cards(data: ReportData) -> str:
    v = data.version
    earlier = {(m.metric, m.k): m.value for m in data.previous.metrics} if data.previous else {}
    cards = []
    for m in listing.headline(v.metrics):
        notes = [f"{_pct(m.relative_lift)} vs popularity"]
        if (m.metric, m.k) in earlier:
            notes.append(f"{m.value - earlier[m.metric, m.k]:+.4f} vs {_e(data.previous.name)}")
        cards.append(_card(f"{m.metric}@{m.k}", f"{m.value:.4f}", " · ".join(notes)))
    stats = v.data_stats
    cards.append(
        _card(
            "users · items",
            f"{stats.get('users', 0):,} · {stats.get('items', 0):,}",
            f"{stats.get('interactions', 0):,} interactions",
        )
    )
    cards.append(_card("training", f"{len(data.history)} epochs", _seconds(v.seconds)))
    return f'<section class="cards">{"".join(cards)}</section>'


def _card(label: str, value: str, note: str) -> str:
    return (
        f'<div class="card"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div><div class="note">{note}</div></div>'
    )


def _training_png(data: ReportData) -> bytes:
    series = [(data.version.name, data.history)]
    if data.previous:
        series.append((f"{data.previous.name} (previous)", data.previous_history))
    loss = [plots.Curve(n, [e.epoch for e in h], [e.loss for e in h]) for n, h in series]
    validation = [
        plots.Curve(n, [e.epoch for e in h], [e.validation_value for e in h]) for n, h in series
    ]
    label = next((e.validation_metric for e in data.history if e.validation_metric), "metric")
    return plots.training_curves(loss, validation, label, _baseline_levels(data, label))


def _baseline_levels(data: ReportData, label: str) -> dict[str, float]:
    """The baselines' test figures of the validation metric (``ndcg@10``), drawn as levels
    beside the validation curve: not the same interactions, but the scale a user judges by."""
    metric, _, k = label.partition("@")
    levels = {}
    for m in data.version.metrics:
        if (m.metric, str(m.k)) != (metric, k):
            continue
        if m.model == listing.MODEL and m.baseline_value is not None:
            levels["popularity (test)"] = m.baseline_value
        elif m.model == GF_CF:
            levels["gf-cf (test)"] = m.value
    return levels


def _validation_note(data: ReportData) -> str:
    if any(e.validation_value is not None for e in data.history):
        return ""
    return (
        f'<p class="note">{_e(data.version.name)} recorded no validation figure per epoch: it '
        "trained without a validation split (val_ratio 0), for a fixed number of epochs.</p>"
    )


def _metrics_png(data: ReportData) -> bytes:
    prev = data.previous
    return plots.metrics_vs_baseline(
        data.version.name, listing.own_metrics(data.version.metrics),
        prev.name if prev else None, listing.own_metrics(prev.metrics) if prev else [],
        _gf_cf(data.version.metrics),
    )  # fmt: skip


def _metrics_table(data: ReportData) -> str:
    prev = data.previous
    earlier = {(m.model, m.metric, m.k): m.value for m in prev.metrics} if prev else {}
    gf_cf = _gf_cf(data.version.metrics)
    head = ["metric", data.version.name, "popularity", "lift", "relative"]
    if gf_cf:
        head += ["gf-cf", "lift over the strongest baseline"]
    if prev:
        head += [prev.name, f"change vs {prev.name}"]
    rows = []
    for m in listing.own_metrics(data.version.metrics):
        row = [
            f"{m.metric}@{m.k}",
            f"{m.value:.4f}",
            _num(m.baseline_value),
            _num(m.lift, signed=True),
            _pct(m.relative_lift),
        ]
        if gf_cf:
            row += [_num(gf_cf.get((m.metric, m.k))), _num(m.lift_over_strongest, signed=True)]
        if prev:
            before = earlier.get((m.model, m.metric, m.k))
            change = None if before is None else m.value - before
            row += [_num(before), _num(change, signed=True)]
        rows.append(row)
    note = _metrics_note(data.version.metrics)
    return _table(head, rows, numeric_from=1) + note


def _metrics_note(metrics: list[Metric]) -> str:
    if not metrics:
        return "<p>No evaluation results were recorded.</p>"
    return (
        f'<p class="note">Averaged over the {metrics[0].users_counted:,} users with held-out '
        "items; the popularity baseline ranks the same users' unseen items by training "
        "popularity, and the gf-cf baseline (where the run scored it) by a training-free "
        "spectral filter of the training interactions (Shen et al., CIKM 2021).</p>"
    )


def _gf_cf(metrics: list[Metric]) -> dict[tuple[str, int], float]:
    """The GF-CF baseline's figures by (metric, k); empty where the run did not score it."""
    return {(m.metric, m.k): m.value for m in metrics if m.model == GF_CF}


def _settings_table(data: ReportData) -> str:
    prev = data.previous
    params = data.version.params
    if not prev:
        return _pairs_table(params)
    rows = []
    for key in sorted(params.keys() | prev.params.keys()):
        now, before = params.get(key), prev.params.get(key)
        mark = ' class="changed"' if now != before else ""
        rows.append(f"<tr{mark}><th>{_e(key)}</th><td>{_v(now)}</td><td>{_v(before)}</td></tr>")
    head = f"<tr><th></th><th>{_e(data.version.name)}</th><th>{_e(prev.name)}</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _phases_table(v: VersionDetails) -> str:
    rows = "".join(
        f"<tr><th>{_e(phase)}</th><td class=num>{seconds:.1f}</td></tr>"
        for phase, seconds in v.phase_seconds.items()
    )
    return f"<table>{rows}</table>"


def _pairs_table(values: dict[str, object]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_v(values[k])}</td></tr>" for k in sorted(values))
    return f"<table>{rows}</table>"


def _table(head: list[str], rows: list[list[str]], numeric_from: int) -> str:
    def cells(tag: str, values: list[str]) -> str:
        return "".join(
            f"<{tag}{' class=num' if i >= numeric_from else ''}>{_e(v)}</{tag}>"
            for i, v in enumerate(values)
        )

    body = "".join(f"<tr>{cells('td', r)}</tr>" for r in rows)
    return f"<table><tr>{cells('th', head)}</tr>{body}</table>"


def _image(png: bytes, alt: str) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{encoded}">'


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _v(value: object) -> str:
    """A setting or statistic: as stored, '-' for none."""
    return "-" if value is None else _e(value)


def _num(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def _pct(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:+.1%}"


def _seconds(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f} s in all"


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1040px; margin: 2em auto; padding: 0 1em; line-height: 1.4; }
h1 { margin-bottom: 0.1em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
h3 { margin: 0.8em 0 0.3em; font-size: 1em; }
.sub, .note, footer { color: #666; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; margin-top: 1em; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.6em 0.9em; min-width: 150px; }
.card .label { color: #666; font-size: 0.85em; }
.card .value { font-size: 1.5em; font-weight: 600; }
.card .note { font-size: 0.8em; }
img { max-width: 100%; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { padding: 0.2em 0.7em; border-bottom: 1px solid #eee; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.changed td { background: #fff4dd; }
.columns { display: flex; flex-wrap: wrap; gap: 2em; }
footer { margin-top: 2em; font-size: 0.85em; }
"""
