"""Quality against seconds: LightGCN (any training settings, side by side) beside the baselines
a run scores, popularity and GF-CF, on the same split, users, exclusions and test items.

Three data sets: MovieLens-100K (``--data ml100k``: stratified per-user 75/25, every rating an
interaction, seeds 1-3, k = 10), the Amazon-Book sample (``--data amazon``: 603K implicit
interactions, stratified 80/20, seed 1, k = 20) and a synthetic graph with planted low-rank
structure (``--data synthetic``: recsys/synthetic/interactions.py, power-law users and
items drawn from latent topics, ``--size`` interactions, stratified 80/20, seed 1, k = 20). The
split, the candidates and the evaluated interactions are the pipeline's own
(recsys/data/holdout.py, recsys/evaluation/evaluate.py).

For each setting (``--variant``: TrainConfig changes over the defaults; ``defaults`` for none,
``cold`` for the defaults without the spectral start, ``one_negative`` for plain BPR instead of
negatives chosen from the data, ``old`` for the settings before the steps-per-epoch batching)
it prints the test metrics@k, the fit seconds (wall, and process CPU to show where other work
slowed the wall clock); with ``--curve``, NDCG@k and recall@k after every
epoch against the fit seconds spent so far (the evaluation after each epoch is not counted), the
baselines' figures and seconds beside them. ``--budget`` trains each setting under that time
budget (seconds) as ``run --max-train-time`` does (with ``--curve``, the evaluations after each
epoch run inside training and so take their share of the budget: compare budgets without it).

    python bench/quality.py [--data ml100k|amazon|synthetic] [--seeds 1 2 3] [--k 10]
        [--variant cold --variant defaults ...] [--budget SECONDS] [--curve] [--size N]

The claims of docs/quality.md, each with its command:
    python bench/quality.py --variant cold --variant defaults --curve        spectral start
    python bench/quality.py --data amazon --variant cold --variant defaults --budget 600
    python bench/quality.py --data synthetic --variant cold --variant defaults --curve
    python bench/quality.py --variant old --variant defaults                 steps per epoch
    python bench/quality.py --variant l2=1e-4 --variant defaults --curve     L2 1e-4 against 1e-3
    python bench/quality.py --variant defaults --variant val_ratio=0.1      validation off / on
    python bench/quality.py --variant defaults --variant choose_l2=1        --l2 auto
    python bench/quality.py --variant one_negative --variant defaults      --negatives auto
"""

import argparse
import dataclasses
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.holdout import Holdout, holdout
from recsys.data.snapshot import Snapshot
from recsys.evaluation.evaluate import EvaluationRow, evaluate_holdout, evaluate_spectral
from recsys.ingest.parse.movielens import parse_movielens
from recsys.model.lightgcn import LightGCN, configure_threads
from recsys.model.settings import TrainConfig
from recsys.model.train import fit
from recsys.run_config import RunConfig
from recsys.run_settings import resolve
from recsys.synthetic.interactions import default_shape, interaction_chunks, joined

REPO = Path(__file__).resolve().parents[1]
SHOWN = ("ndcg", "recall", "precision", "map")
FIELDS = {f.name for f in dataclasses.fields(TrainConfig) if f.name != "seed"}
WHOLE = {f.name for f in dataclasses.fields(TrainConfig) if "int" in str(f.type)}
#: Named settings: the defaults before steps per epoch (a fixed batch, the rate tuned for it),
#: and the defaults from noise instead of the spectrum.
NAMED = {"defaults": {}, "old": {"batch_size": 4096, "learning_rate": 0.05}}
NAMED["cold"] = {"spectral_start": False}
NAMED["one_negative"] = {"choose_negatives": False, "negative_candidates": 1}
DATA = {
    # name: (path under ../shared/data, test ratio, seeds, k)
    "ml100k": ("ml-100k", 0.25, [1, 2, 3], 10),
    "amazon": ("amazon-book-sample/interactions.csv", 0.2, [1], 20),
    "synthetic": (None, 0.2, [1], 20),
}
#: The baselines' rows in the evaluation and the names printed for them.
BASELINES = {"baseline": "popularity", "spectral": "gf-cf"}


@dataclass
class Variant:
    """One setting (TrainConfig changes over the defaults) and what its runs measured."""

    name: str
    changes: dict[str, float]
    figures: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    fit_wall: list[float] = field(default_factory=list)
    fit_cpu: list[float] = field(default_factory=list)
    epochs: list[float] = field(default_factory=list)
    #: Per seed, the settings the run chose from the data (TrainConfig field: value).
    chosen: list[dict[str, float]] = field(default_factory=list)
    #: Per seed, (fit seconds so far, ndcg@k, recall@k) after each epoch (with --curve).
    curves: list[list[tuple[float, float, float]]] = field(default_factory=list)

    def config(self, seed: int, budget: float | None) -> TrainConfig:
        """The training settings of ``run --seed SEED [--max-train-time BUDGET]`` (a budget
        sizes the epochs), with this variant's changes."""
        given = {"model_version": "bench", "seed": seed, "max_train_time": budget}
        return dataclasses.replace(resolve(given).config.train, **self.changes)


def _split(test_ratio: float, seed: int) -> RunConfig:
    """The settings of ``run --test-ratio RATIO --seed SEED``, which decide its split."""
    return resolve({"model_version": "bench", "test_ratio": test_ratio, "seed": seed}).config


def variant(text: str) -> Variant:
    """``name=value[,name=value...]`` over the TrainConfig defaults; an item named in
    ``NAMED`` stands for its changes."""
    changes: dict[str, float] = {}
    for item in text.split(","):
        if item in NAMED:
            changes |= NAMED[item]
            continue
        name, _, value = item.partition("=")
        if name not in FIELDS:
            raise argparse.ArgumentTypeError(f"{name!r} is not one of {', '.join(FIELDS)}")
        changes[name] = int(value) if name in WHOLE else float(value)
    return Variant(text, changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=DATA, default="ml100k")
    parser.add_argument("--path", type=Path, help="the data set (default: under ../shared/data)")
    parser.add_argument("--size", type=int, default=500_000, help="synthetic interactions")
    parser.add_argument("--seeds", type=int, nargs="+", help="default: 1 2 3 (ml100k), else 1")
    parser.add_argument("--k", type=int, help="default: 10 (ml100k), else 20")
    parser.add_argument("--variant", type=variant, action="append", dest="variants")
    parser.add_argument("--budget", type=float, help="training time budget, seconds")
    parser.add_argument("--curve", action="store_true", help="quality after every epoch")
    args = parser.parse_args()
    where, test_ratio, seeds, k = DATA[args.data]
    seeds, k = args.seeds or seeds, args.k or k
    variants = args.variants or [variant("defaults")]
    configure_threads()

    snapshot = _snapshot(
        args.data, args.path or (REPO.parent / "shared" / "data" / str(where)), args.size
    )
    size = f"{snapshot.n_users} users, {snapshot.n_items} items, {len(snapshot.user)} interactions"
    print(f"{args.data}: {size}")
    print(f"defaults: {TrainConfig()}")
    print(f"load average before: {_load()}")

    baselines: dict[tuple[str, str], list[float]] = {}
    gf_cf_seconds: list[float] = []
    for seed in seeds:
        parts = holdout(snapshot, _split(test_ratio, seed))
        started = time.perf_counter()
        spectral, settings = evaluate_spectral(snapshot, parts, (k,))
        gf_cf_seconds.append(time.perf_counter() - started)
        print(
            f"seed {seed} gf-cf (rank {settings['rank']}, alpha {settings['alpha']}): "
            f"{_shown(spectral, 'spectral')} | {gf_cf_seconds[-1]:.1f} s"
        )
        for v in variants:
            rows = _train(snapshot, parts, v, seed, args.budget, args.curve, k)
            for row in rows + spectral:
                name = BASELINES.get(row.model, "model")
                target = v.figures if name == "model" else baselines
                if name == "model" or v is variants[0]:
                    target.setdefault((name, row.metric), []).append(row.value)
            print(
                f"seed {seed} {v.name}: {_shown(rows, 'model')} | popularity "
                f"{_shown(rows, 'baseline')} | fit {v.fit_wall[-1]:.1f} s wall, "
                f"{v.fit_cpu[-1]:.1f} s CPU, {v.epochs[-1]:.0f} epochs"
                + "".join(f", {name} chosen {value:.3g}" for name, value in v.chosen[-1].items())
            )

    print(f"\nmean ± sd over seeds {seeds}, k={k}, users counted {rows[0].n_users}:")
    _side_by_side(variants, baselines, statistics.mean(gf_cf_seconds), k)
    if args.curve:
        _curves(variants, baselines, k)
    print(f"load average after: {_load()}")


def _snapshot(data: str, path: Path, size: int) -> Snapshot:
    """The data set as a run reads it: every user and item with an interaction, by index."""
    if data == "ml100k":
        ratings = parse_movielens(path).ratings
        user_ids, item_ids = ratings["user_id"].to_numpy(), ratings["movie_id"].to_numpy()
    elif data == "amazon":
        frame = pd.read_csv(path, dtype="int64")
        user_ids, item_ids = frame["user_id"].to_numpy(), frame["item_id"].to_numpy()
    else:
        drawn = joined(
            interaction_chunks(size, *default_shape(size), ratings=False, timestamps=False)
        )
        user_ids, item_ids = drawn.user_id, drawn.item_id
    users, user = np.unique(user_ids, return_inverse=True)
    items, item = np.unique(item_ids, return_inverse=True)
    missing = np.full(len(user), np.nan)
    return Snapshot(
        users, items, user.astype(np.int32), item.astype(np.int32), missing.astype(np.float32),
        missing, user.astype(np.int32), item_ids.astype(np.int64), len(items),
    )  # fmt: skip


def _train(
    snapshot: Snapshot,
    parts: Holdout,
    v: Variant,
    seed: int,
    budget: float | None,
    curve: bool,
    k: int,
) -> list[EvaluationRow]:
    """Fit one setting and evaluate it; with ``curve``, record quality after each epoch."""
    points: list[tuple[float, float, float]] = []
    wall, cpu = time.perf_counter(), time.process_time()
    judging = [0.0]  # seconds spent evaluating after epochs, left out of the fit's
    result = fit(
        snapshot.user[parts.train],
        snapshot.item[parts.train],
        snapshot.n_users,
        snapshot.n_items,
        v.config(seed, budget),
        after_epoch=_recorder(points, snapshot, parts, k, wall, judging) if curve else None,
    )
    v.fit_wall.append(time.perf_counter() - wall - judging[0])
    v.fit_cpu.append(time.process_time() - cpu)
    v.epochs.append(len(result.history))
    v.chosen.append(result.chosen)
    v.curves.append(points)
    return _evaluate(result.model, snapshot, parts, k)


def _evaluate(model: LightGCN, snapshot: Snapshot, parts: Holdout, k: int) -> list[EvaluationRow]:
    user_emb, item_emb = model.embeddings()
    return evaluate_holdout(user_emb, item_emb, snapshot, parts, (k,))


def _recorder(
    points: list[tuple[float, float, float]],
    snapshot: Snapshot,
    parts: Holdout,
    k: int,
    started: float,
    judging: list[float],
) -> Callable[[LightGCN], None]:
    """An ``after_epoch`` hook appending (fit seconds so far, ndcg@k, recall@k)."""

    def record(model: LightGCN) -> None:
        at = time.perf_counter()
        rows = {
            r.metric: r.value for r in _evaluate(model, snapshot, parts, k) if r.model == "model"
        }
        points.append((at - started - judging[0], rows["ndcg"], rows["recall"]))
        judging[0] += time.perf_counter() - at

    return record


def _shown(rows: list[EvaluationRow], model: str) -> str:
    return " ".join(
        f"{r.metric} {r.value:.4f}" for r in rows if r.model == model and r.metric in SHOWN
    )


def _side_by_side(
    variants: list[Variant], baselines: dict[tuple[str, str], list[float]], gf_cf: float, k: int
) -> None:
    table = [["", *(v.name for v in variants), "gf-cf", "popularity"]]
    for m in SHOWN:
        cells = [_mean_sd(v.figures[("model", m)]) for v in variants]
        table.append(
            [f"{m}@{k}", *cells, *(_mean_sd(baselines[b, m]) for b in ("gf-cf", "popularity"))]
        )
    table.append(
        ["seconds (wall)", *(_mean_sd(v.fit_wall, 1) for v in variants), f"{gf_cf:.1f}", "-"]
    )
    table.append(["seconds (CPU)", *(_mean_sd(v.fit_cpu, 1) for v in variants), "", ""])
    table.append(["epochs trained", *(_mean_sd(v.epochs, 1) for v in variants), "", ""])
    _print_table(table)


def _curves(variants: list[Variant], baselines: dict[tuple[str, str], list[float]], k: int) -> None:
    """Mean test quality after each epoch against mean fit seconds so far; a run that stopped
    early leaves blanks. The baselines' figures are the last line."""
    print(f"\nafter each epoch (mean over seeds): fit seconds, ndcg@{k}, recall@{k}")
    longest = max(len(curve) for v in variants for curve in v.curves)
    table = [["epoch", *(v.name for v in variants)]]
    for epoch in range(longest):
        cells = []
        for v in variants:
            points = [curve[epoch] for curve in v.curves if len(curve) > epoch]
            if not points:
                cells.append("")
                continue
            seconds, ndcg, recall = (
                statistics.mean(column) for column in zip(*points, strict=True)
            )
            cells.append(f"{seconds:6.1f} s  {ndcg:.4f}  {recall:.4f}")
        table.append([str(epoch + 1), *cells])
    for name in ("gf-cf", "popularity"):
        ndcg, recall = (statistics.mean(baselines[name, m]) for m in ("ndcg", "recall"))
        table.append([name, *(f"          {ndcg:.4f}  {recall:.4f}" for _ in variants)])
    _print_table(table)


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def _mean_sd(values: list[float], digits: int = 4) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
