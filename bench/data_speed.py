"""Seconds to make the input data in memory: the synthetic demo set and a parsed ML-100K.

The unit tests check what these produce; how fast is printed here, not asserted there (a test
that times itself fails on a busy machine without anything being wrong).

    python bench/data_speed.py [PATH] [--repeat 5]
"""

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from recsys.ingest.parse.movielens import parse_movielens
from recsys.synthetic.movielens_like import generate

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=REPO.parent / "shared/data/ml-100k")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    _time("synthetic.generate() defaults (600 users, 1,000 movies)", generate, args.repeat)
    if args.path.exists():
        _time(f"parse_movielens({args.path.name})", lambda: parse_movielens(args.path), args.repeat)
    else:
        print(f"no MovieLens data at {args.path}; pass PATH")


def _time(name: str, make: Callable[[], object], repeat: int) -> None:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        make()
        seconds.append(time.perf_counter() - started)
    print(
        f"{name}: median {statistics.median(seconds):.3f} s, "
        f"best {min(seconds):.3f} s over {repeat} runs"
    )


if __name__ == "__main__":
    main()
