"""Evaluation and scoring: ranking metrics, the popularity baseline, top-k."""
