"""The version lifecycle: a run claims a name, publishes its outputs, may be promoted, and is
pruned when old.

``registry`` owns a version's registry row (every read and write of it goes through there): the
claim and its lock, the status moves, what the row records. Around it: ``publish`` (a run's tables
attached with the flip to published, in one transaction), ``shard_ledger`` (Ray shards written
once), ``aliases`` (``production`` and the other names readers use), ``promotion`` (the gate that
moves an alias after a run), ``earlier_versions`` (what a run warm-starts from or is judged
against), ``listing`` (what ``versions``, ``show`` and ``compare`` print), ``prune`` and
``status``.
"""
