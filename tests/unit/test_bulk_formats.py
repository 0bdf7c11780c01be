"""Values built with numpy: CSV lines of integers, staged timestamps, distinct ids."""

import numpy as np
import pandas as pd

from recsys.ingest.load.distinct_ids import DistinctIds, sorted_distinct
from recsys.ingest.load.staging import MINUS_INFINITY, timestamps
from recsys.synthetic.csv_format import csv_lines


def test_csv_lines_match_python_formatting() -> None:
    rng = np.random.default_rng(1)
    columns = [rng.integers(0, 10**k, 1000) for k in (1, 2, 3, 5, 10, 12)] + [
        np.array([0, 1, 9, 10, 99, 100, 2**32 - 1, 2**32, 2**63 - 1, 2**64 - 1] * 100, np.uint64)
    ]
    expected = "".join(",".join(str(int(c[i])) for c in columns) + "\n" for i in range(1000))
    assert csv_lines(columns).decode() == expected
    assert csv_lines([np.zeros(0, np.int64)]) == b""


def test_timestamps_in_postgresql_microseconds_rounded_half_to_even() -> None:
    times = pd.Series(
        pd.to_datetime(
            ["2000-01-01T00:00:00.0000005", "2000-01-01T00:00:00.0000015",
             "2000-01-01T00:00:00.0000014999", "1970-01-01", None],
            utc=True, format="ISO8601",
        )
    )  # fmt: skip
    assert timestamps(times).tolist() == [0, 2, 1, -946_684_800_000_000, MINUS_INFINITY]


def test_distinct_ids_across_many_chunks() -> None:
    rng = np.random.default_rng(2)
    chunks = [rng.integers(0, 5000, 3000) for _ in range(40)]
    ids = DistinctIds()
    for chunk in chunks:
        ids.add(chunk)
    np.testing.assert_array_equal(ids.result(), np.unique(np.concatenate(chunks)))
    np.testing.assert_array_equal(sorted_distinct(np.array([3, 1, 3, 2])), [1, 2, 3])
    assert len(DistinctIds().result()) == 0
