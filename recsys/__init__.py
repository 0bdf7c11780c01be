"""recsys: train LightGCN on ratings held in PostgreSQL and publish versioned recommendations."""

__version__ = "0.1.0"
