"""Evaluation: a run's model scored on its held-out interactions beside the popularity and GF-CF
baselines (and a champion, when one is given), with the ranking metrics every figure uses. The
ranking itself is :mod:`recsys.scoring.topk`'s, the one the published lists come from."""
