"""The version lifecycle: a run claims a name, publishes its outputs, may be promoted, and is
pruned when old.

``registry`` is the one owner of the registry rows (``model_versions``, ``version_runs``): the
claim and its lock, the status moves, and every other module's reads and writes of a version's
row. Around it: ``publish`` (a run's tables attached with the flip to published, in one
transaction), ``shard_ledger`` (Ray shards written once), ``aliases`` (``production`` and the
other names readers use), ``promotion`` (the gate that moves an alias after a run),
``earlier_versions`` (what a run warm-starts from or is judged against), ``listing`` (what
``versions``/``show``/``compare`` print), ``prune`` and ``status``.
"""
