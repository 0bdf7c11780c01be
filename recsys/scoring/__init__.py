"""What a run publishes as lists, and how they are read back.

``topk`` scores users (or items) against items a chunk at a time, never users × items; the
evaluation ranks with it too. ``recommender`` turns a trained model into every user's list,
``similar_items`` into every item's nearest items, and ``outputs`` streams those and the run's
other records into its own tables for the publish. ``published_recommendations`` and
``published_similar_items`` read one user's or one movie's list back through the analysts' views.
"""
