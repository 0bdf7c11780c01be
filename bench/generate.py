"""Write a synthetic interactions file that ``recsys-job ingest csv --ratings`` takes.

Power-law user activity and item popularity with latent tastes
(``recsys.synthetic.interactions``); users and items default to the sizes of the scale benchmarks
(1M interactions: 50K users x 20K items; 20M: 1M x 100K). Prints the rows written and the seconds.

    python bench/generate.py --interactions 20000000 --out /tmp/x.csv [--users N] [--items N]
        [--seed 0] [--no-ratings] [--no-timestamps]
"""

import argparse
import time
from pathlib import Path

from recsys.synthetic.interactions import default_shape, interaction_chunks, write_csv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--users", type=int, help="default: a twentieth of the interactions")
    parser.add_argument("--items", type=int, help="default: 20K at 1M interactions, 100K at 20M")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-ratings", dest="ratings", action="store_false")
    parser.add_argument("--no-timestamps", dest="timestamps", action="store_false")
    args = parser.parse_args()
    users, items = default_shape(args.interactions)
    users, items = args.users or users, args.items or items

    started = time.perf_counter()
    chunks = interaction_chunks(
        args.interactions, users, items, args.seed, args.ratings, args.timestamps
    )
    rows = write_csv(args.out, chunks)
    seconds = time.perf_counter() - started
    size = args.out.stat().st_size / 2**20
    print(
        f"{rows:,} interactions of {users:,} users x {items:,} items -> {args.out} "
        f"({size:,.0f} MiB) in {seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
