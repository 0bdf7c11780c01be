"""What a published model learnt from, and whether an earlier version may be used beside this
run's test set without having seen any of it.

Warm start (``--warm-start``) and the champion comparison (``--compare-with``) both put an earlier
version next to this run's evaluation. If that version trained on interactions that are in this
run's test set, the evaluation flatters it (a warm start carries what it memorised into the new
model; a champion is scored on items it learnt as positives). One rule decides both:

    fair  ⇔  the earlier version recorded the latest ``rated_at`` of everything its published
             model learnt from, every one of those interactions had a timestamp, and every test
             interaction of this run is strictly later than that.

Under a temporal split this means a cut-off after the earlier version's ``trained_until``;
stratified and leave-last splits draw test interactions from the whole history, so they fail it
unless the whole snapshot is newer than the earlier version. A rating that a re-ingest moved to a
later ``rated_at`` counts as a new interaction (its earlier time is not kept anywhere).

Times are compared as whole microseconds (PostgreSQL's resolution), never as float seconds.

Public API:
    learnt_from(timestamps) -> dict    the record kept in each version's ``data_stats``
    unfair_reason(version, stats, test_timestamps, split) -> str | None
"""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from recsys.run_config import Split

#: ``data_stats`` keys: the latest ``rated_at`` the published model learnt from (ISO 8601, UTC,
#: microseconds; None when it learnt from nothing timed), and how many of its interactions had
#: no timestamp.
TRAINED_UNTIL, TRAINED_UNTIMED = "trained_until", "trained_untimed"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def learnt_from(timestamps: np.ndarray) -> dict[str, Any]:
    """The record of what a published model learnt from: ``timestamps`` (unix seconds, NaN when
    unknown) of the interactions it was trained on."""
    timed = timestamps[~np.isnan(timestamps)]
    until = _iso(int(_microseconds(timed).max())) if len(timed) else None
    return {TRAINED_UNTIL: until, TRAINED_UNTIMED: int(len(timestamps) - len(timed))}


def unfair_reason(
    version: str, stats: Mapping[str, Any], test_timestamps: np.ndarray, split: Split
) -> str | None:
    """Why ``version`` (whose ``data_stats`` are ``stats``) may have learnt from this run's test
    interactions; None when it cannot have."""
    if TRAINED_UNTIL not in stats:
        return (
            f"version {version!r} was published before recsys recorded what a version learnt "
            "from, so whether it saw this run's test interactions is unknown"
        )
    untimed, until = stats[TRAINED_UNTIMED], stats[TRAINED_UNTIL]
    if untimed or until is None:
        return (
            f"{untimed:,} of the interactions version {version!r} learnt from have no timestamp, "
            "so whether it saw this run's test interactions is unknown"
        )
    missing = int(np.isnan(test_timestamps).sum())
    if missing:
        return (
            f"{missing:,} of this run's test interactions have no timestamp, so they cannot be "
            f"shown to be later than what version {version!r} learnt from"
        )
    limit = (datetime.fromisoformat(until) - _EPOCH) // _MICROSECOND
    seen = int((_microseconds(test_timestamps) <= limit).sum())
    if not seen:
        return None
    why = (
        "it draws test interactions from the whole history"
        if split != Split.TEMPORAL
        else f"use a cut-off after {until}"
    )
    return (
        f"version {version!r} learnt from interactions up to {until}, and {seen:,} of this run's "
        f"{len(test_timestamps):,} test interactions ({split} split) are not later than that, so "
        f"it may have trained on them ({why})"
    )


def _microseconds(seconds: np.ndarray) -> np.ndarray:
    """Unix seconds as whole microseconds: exact for the stored times (±1 ulp of a float64)."""
    return np.round(np.asarray(seconds, np.float64) * 1e6).astype(np.int64)


def _iso(microseconds: int) -> str:
    return (_EPOCH + microseconds * _MICROSECOND).isoformat(timespec="microseconds")
