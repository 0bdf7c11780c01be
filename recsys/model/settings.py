"""LightGCN training settings, in a module of their own so the CLI can show the defaults
without importing TensorFlow (which takes seconds). Why these defaults: see recsys/train.py."""

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """LightGCN training settings.

    dim, n_layers: embedding size and propagation depth (paper: 64, 3).
    l2: weight of the layer-0 L2 penalty on each batch's embeddings.
    learning_rate: Adam's initial rate, decayed by a half cosine to 0 at ``max_epochs``.
    batch_size: triples per step; an epoch has as many triples as training interactions.
    max_epochs: epochs to train (fewer if early stopping fires).
    val_ratio: share of each user's training interactions held out for validation;
        0 disables validation and early stopping.
    patience: epochs without a better validation NDCG@eval_k before stopping.
    eval_k: cut-off of the validation NDCG.
    seed: seeds the validation split, the initial embeddings and the sampler.
    """

    dim: int = 64
    n_layers: int = 3
    l2: float = 1e-3
    learning_rate: float = 0.05
    batch_size: int = 4096
    max_epochs: int = 40
    val_ratio: float = 0.0
    patience: int = 10
    eval_k: int = 10
    seed: int = 0
