"""How much memory a run will need, checked before it trains, and how much it used.

A data set too large for the machine should stop with a message, not be killed by the operating
system an hour into training. The estimate counts what grows with the data after the snapshot
is read (which is already resident when the check runs): the graph and its TensorFlow copies,
the BPR sampler's arrays, the model's tables (layer-0 embeddings, Adam's moments, the forward
and backward propagations' intermediates), the evaluation's sets, one scoring block, a warm
start's carried rows (held until the refit has used them), a step's negative candidates (the
sampler's draws and the step's scored block), and the GF-CF baseline (its
SVD's Lanczos vectors, its low-pass factors, its sparse products and the dense block its linear
term adds), which runs while the trained model is still held. bench/scale.py and
bench/memory_estimate.py print it beside the measured peak at each size.

Public API:
    estimate_bytes(n_users, n_items, train_interactions, ratings, dim, *, warm_start=False,
                   spectral_rank=0, batch=0, negative_candidates=1) -> int
    estimate_terms(...) -> dict[str, int]   the same, term by term
    estimate_run_bytes(snapshot, parts, config) -> int   estimate_bytes of a run's data and settings
    available_bytes() -> int           what this process may still take (cgroup limit, or RAM)
    check_fits(estimate, limit=None)   raises InvalidInput when the estimate exceeds the limit
    peak_rss_bytes() -> int            this process's peak resident memory so far
    parse_size("8G") -> int
"""

import os
import re
import resource
from pathlib import Path
from typing import TYPE_CHECKING

from recsys.errors import InvalidInput

if TYPE_CHECKING:
    from recsys.data.holdout import Holdout
    from recsys.data.snapshot import Snapshot
    from recsys.run_config import RunConfig

#: Bytes per training interaction: R̂ and R̂ᵀ in scipy and as TensorFlow CSR (with the COO
#: tensors they are built from), the sampler's sorted keys, and the exclusion and relevance sets.
_PER_INTERACTION = 160
#: Bytes per rating read (counted or not): the every-rated-item exclusion of the final lists.
_PER_RATING = 24
#: Node tables of n_nodes × dim float32 alive at the peak of a training step: the two layer-0
#: tables, Adam's two moments, and the forward and backward passes' layers and running sums.
_TABLES = 16
#: TensorFlow's runtime and the scoring block (a [chunk, n_items] float32 block of ~256 MB).
_FIXED = 1 << 30
#: Bytes per carried row besides its dim float32 values: its int64 node index.
_CARRIED_INDEX = 8
#: Bytes per training interaction of GF-CF: R and R̂ and their transposes, and the products of
#: a chunk's rows.
_PER_FILTER_INTERACTION = 64
#: ARPACK's Lanczos vectors: 2 · rank + 1 of the smaller side, in float64.
_LANCZOS_BYTES = 8
#: GF-CF's linear term: the dense score block it adds (as large as the scoring block) and a
#: group's two sparse products of at most 2^24 entries at 12 bytes an entry.
_FILTER_BLOCK = (1 << 28) + 2 * (1 << 24) * 12
#: Bytes per negative candidate of a batch's triple: the sampler's int64 draws, their sort keys
#: and positions while it finds them.
_PER_CANDIDATE = 40
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def estimate_bytes(*sizes: int, **options: bool | int) -> int:
    """Memory a run needs beyond its snapshot, for a graph of this size: the sum of
    :func:`estimate_terms`, which takes the same arguments."""
    return sum(estimate_terms(*sizes, **options).values())


def estimate_run_bytes(snapshot: "Snapshot", parts: "Holdout", config: "RunConfig") -> int:
    """:func:`estimate_bytes` of a run: its data, its split and its settings (a refit trains on
    every interaction; GF-CF's rank is the one its filter will take on this split)."""
    from recsys.evaluation.spectral import filter_rank
    from recsys.model.setting_choice import NEGATIVES

    rank = 0
    if config.gf_cf:
        rank = filter_rank(config.spectral_rank, int(parts.trained.sum()), len(parts.candidates))
    train = config.train
    interactions = len(snapshot.user) if config.refit else len(parts.train)
    return estimate_bytes(
        snapshot.n_users,
        snapshot.n_items,
        interactions,
        len(snapshot.rated_user),
        train.dim,
        warm_start=config.warm_start is not None,
        spectral_rank=rank,
        batch=train.batching(interactions)[0],
        negative_candidates=NEGATIVES.highest
        if train.choose_negatives
        else train.negative_candidates,
    )


def estimate_terms(
    n_users: int,
    n_items: int,
    train_interactions: int,
    ratings: int,
    dim: int,
    *,
    warm_start: bool = False,
    spectral_rank: int = 0,
    batch: int = 0,
    negative_candidates: int = 1,
) -> dict[str, int]:
    """:func:`estimate_bytes` by what needs it. A warm start is counted at its most, a row for
    every user and item: the check runs before the earlier version is read; ``spectral_rank`` is
    the GF-CF baseline's (0 without it); ``batch`` a step's triples, each with
    ``negative_candidates`` (with more than one, the step also holds a batch × dim block of the
    candidates' rows and their scores)."""
    scored = batch * (dim + negative_candidates) * 4 if negative_candidates > 1 else 0
    nodes = n_users + n_items
    return {
        "fixed": _FIXED,
        "tables": nodes * dim * 4 * _TABLES,
        "interactions": train_interactions * _PER_INTERACTION,
        "ratings": ratings * _PER_RATING,
        "warm_start": nodes * (dim * 4 + _CARRIED_INDEX) if warm_start else 0,
        "gf_cf": _gf_cf_bytes(n_users, n_items, train_interactions, spectral_rank),
        "negatives": batch * negative_candidates * _PER_CANDIDATE + scored,
    }


def _gf_cf_bytes(n_users: int, n_items: int, train_interactions: int, rank: int) -> int:
    """The GF-CF baseline's SVD (ARPACK's Lanczos vectors and both sides' singular vectors),
    low-pass factors, sparse products and added dense block."""
    if rank == 0:
        return 0
    svd = (2 * rank + 1) * min(n_users, n_items) * _LANCZOS_BYTES + (n_users + n_items) * rank * 4
    factors = (n_users + 2 * n_items) * rank * 4
    return svd + factors + train_interactions * _PER_FILTER_INTERACTION + _FILTER_BLOCK


def available_bytes() -> int:
    """Memory this process may still use: the cgroup's limit less its use where one is set
    (a container), else what the kernel reports as available."""
    cgroup = Path("/sys/fs/cgroup")
    limit, used = cgroup / "memory.max", cgroup / "memory.current"
    if limit.exists() and used.exists() and limit.read_text().strip() != "max":
        return max(0, int(limit.read_text()) - int(used.read_text()))
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def check_fits(estimate: int, limit: int | None = None) -> None:
    """Refuse a run whose estimate exceeds ``limit`` (default: what is available now)."""
    available = available_bytes() if limit is None else limit
    if estimate > available:
        where = "the memory limit given" if limit is not None else "the memory available"
        raise InvalidInput(
            f"this data set needs about {_gib(estimate)} for training and scoring, more than "
            f"{where} ({_gib(available)}); use a machine with more memory, a smaller --dim, or "
            "fewer users and items (e.g. --min-rating)"
        )


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def parse_size(text: str) -> int:
    """``8G``, ``512M``, ``1.5T`` or a number of bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(f"expected a size such as 8G or 512M, got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def _gib(size: int) -> str:
    return f"{size / (1 << 30):.1f} GiB"
