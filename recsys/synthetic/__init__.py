"""Synthetic data with the structure of real feedback, for tests, the demo and the benchmarks:
``movielens_like`` a small MovieLens-shaped set of movies, users and ratings, ``interactions``
the large power-law interaction sets of the speed and memory benchmarks (written as CSV by
``csv_format``).
"""
