"""Scaling out (``run --ray``): the recommendations scored and written in shards by Ray workers.

``ray_cluster`` joins (or starts) the cluster and imports the optional ``ray`` package;
``sharded_scoring`` is the driver's side, ``shard_writer`` a worker's.
"""
