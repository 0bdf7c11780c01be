"""``recsys-job versions``, ``show`` and ``compare``: read the version registry."""

import click

from recsys.versions import listing
from recsys.versions.listing import Alias, Comparison, VersionDetails, VersionSummary
from recsys_jobs.context import JobContext, pass_job
from recsys_jobs.output import cell, duration, emit_json, json_option, percent, table


@click.command("versions")
@json_option
@pass_job
def list_versions(job: JobContext, as_json: bool) -> None:
    """List versions: status, created, duration, headline metrics, aliases.

    A running version whose process died is shown as 'stale' (see `recsys-job prune`).
    """
    with job.engine().connect() as conn:
        found = listing.list_versions(conn)
    if as_json:
        emit_json(found)
    elif not found:
        click.echo("no versions yet; publish one with `recsys-job run --model-version V`")
    else:
        click.echo(_versions_table(found))


def _versions_table(found: list[VersionSummary]) -> str:
    headers = ["version", "status", "created", "duration", "k", *listing.HEADLINE_METRICS]
    rows = []
    for v in found:
        by_metric = {m.metric: m for m in v.metrics}
        ndcg = by_metric.get("ndcg")
        rows.append(
            [
                v.name,
                v.status,
                v.created_at,
                duration(v.seconds),
                v.metrics[0].k if v.metrics else None,
                *(by_metric[m].value if m in by_metric else None for m in listing.HEADLINE_METRICS),
                percent(ndcg.relative_lift) if ndcg else "-",
                _aliases(v.aliases),
            ]
        )
    return table([*headers, "ndcg vs popularity", "aliases"], rows)


def _aliases(aliases: list[Alias]) -> str:
    return ", ".join(
        a.alias if a.resolved_by == "alias" else f"{a.alias} ({a.resolved_by})" for a in aliases
    )


@click.command()
@click.argument("version")
@json_option
@pass_job
def show(job: JobContext, version: str, as_json: bool) -> None:
    """Show VERSION: settings, data statistics, code version, seconds per phase, all metrics."""
    with job.engine().connect() as conn:
        found = listing.details(conn, version)
    if as_json:
        emit_json(found)
    else:
        click.echo(_details_text(found))


def _details_text(v: VersionDetails) -> str:
    aliases = f"; alias {_aliases(v.aliases)}" if v.aliases else ""
    lines = [
        f"version {v.name}: {v.status}{aliases}",
        f"created {cell(v.created_at)}, started {cell(v.started_at)}, "
        f"finished {cell(v.finished_at)}, published {cell(v.published_at)}; "
        f"took {duration(v.seconds)}, {v.epochs} epochs",
        f"code version: {v.code_version or '-'}",
    ]
    if v.error:
        lines.append(f"error: {v.error}")
    lines += _lineage_lines(v.data_stats)
    for title, values in (("settings", v.params), ("data", _flat(v.data_stats))):
        if values:
            rows = [[name, _setting(values[name])] for name in sorted(values)]
            lines += ["", f"{title}:", _indent(table(["name", "value"], rows))]
    if v.phase_seconds:
        phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in v.phase_seconds.items())
        lines += ["", f"seconds per phase: {phases}"]
    if v.metrics:
        rows = [
            [
                m.model,
                m.metric,
                m.k,
                m.value,
                m.baseline_value,
                m.lift,
                percent(m.relative_lift),
                m.strongest_baseline,
                m.lift_over_strongest,
            ]
            for m in v.metrics
        ]
        headers = [
            *("model", "metric", "k", "value", "popularity", "lift", "relative"),
            *("strongest baseline", "lift over it"),
        ]
        lines += ["", f"metrics (users counted: {v.metrics[0].users_counted}):"]
        lines.append(_indent(table(headers, rows)))
    return "\n".join(lines)


@click.command()
@click.argument("version_a")
@click.argument("version_b")
@click.option(
    "--k", default=10, show_default=True, type=click.IntRange(min=1), help="Overlap cut-off."
)
@json_option
@pass_job
def compare(job: JobContext, version_a: str, version_b: str, k: int, as_json: bool) -> None:
    """Compare two published versions: metric deltas (B - A), overlap, differing settings."""
    with job.engine().connect() as conn:
        found = listing.compare(conn, version_a, version_b, k)
    if as_json:
        emit_json(found)
    else:
        click.echo(_comparison_text(found))


def _comparison_text(c: Comparison) -> str:
    a, b = c.version_a, c.version_b
    rows = [
        [
            *(d.metric, d.k, d.value_a, d.value_b, d.delta, percent(d.relative)),
            *(d.over_strongest_a, d.over_strongest_b),
        ]
        for d in c.metrics
    ]
    o = c.overlap
    headers = ["metric", "k", a, b, "delta", "change", f"{a} vs best baseline", f"{b} vs best"]
    lines = [
        f"{a} → {b}",
        table(headers, rows),
        "",
        f"recommendation overlap @{o.k}: mean Jaccard {cell(o.mean_jaccard)} over {o.users} "
        f"users; identical top-{o.k} sets for {percent(o.identical_share).lstrip('+')} of them",
    ]
    if c.params:
        lines += ["", "settings that differ:"]
        lines.append(_indent(table(["name", a, b], [[k, *pair] for k, pair in c.params.items()])))
    return "\n".join(lines)


def _lineage_lines(stats: dict) -> list[str]:
    """Where the published lists come from and what the version was judged against."""
    lines = []
    if stats.get("refit"):
        lines.append(
            f"published lists: refit on all {stats['refit_interactions']:,} interactions; the "
            "metrics are the held-out model's"
        )
    if warm := stats.get("warm_start"):
        lines.append(f"warm start from {warm['version']}")
    elif stats.get("training_start") == "spectral":
        lines.append(
            f"spectral start: the embeddings began at the training graph's top singular "
            f"vectors ({stats.get('training_start_seconds', 0):.1f} s of the training time)"
        )
    for baseline, figures in (stats.get("beaten_by") or {}).items():
        lines.append(f"the {baseline} baseline beat lightgcn on {', '.join(figures)}")
    if champion := stats.get("champion"):
        skipped = f" (not scored: {champion['skipped']})" if "skipped" in champion else ""
        lines.append(f"champion: {champion['version']} as {champion['compared_as']}{skipped}")
    if promotion := stats.get("promotion"):
        outcome = "promoted to" if promotion["promoted"] else "not promoted to"
        lines.append(f"{outcome} {promotion['alias']}: {promotion['reason']}")
    return lines


def _flat(values: dict) -> dict:
    """Nested records (champion, promotion, ...) as ``name.key`` rows."""
    flat = {}
    for name, value in values.items():
        if isinstance(value, dict):
            flat |= {f"{name}.{key}": inner for key, inner in value.items()}
        else:
            flat[name] = value
    return flat


def _setting(value: object) -> str:
    """Settings as given (a learning rate of 1e-05 must not print as 0.0000)."""
    return str(value) if isinstance(value, float) else cell(value)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
