"""The model: LightGCN, its training loop and its settings."""
