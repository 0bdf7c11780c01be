"""Earlier versions a run builds on (``--warm-start``) or is judged against (``--compare-with``).

Both are resolved (an alias as readers resolve it, else a version name), checked with the one
fairness rule of :mod:`recsys.data.lineage`, and read before the run is recorded, so a refusal
writes nothing. Each is read in one transaction that holds the earlier version's registry row
FOR SHARE, so ``prune`` cannot drop it halfway through; embeddings come by binary COPY and are
matched to this run's ids a block at a time (never one Python object per row).

- Warm start reads the earlier version's layer-0 rows (``layer0``) and refuses, exit 2, when it
  is unknown, unpublished, unfair, or of another embedding size.
- The champion's final embeddings (``embedding``) are read for the users this run evaluates and
  its candidate items. An unfair champion is skipped with the reason, not refused; a name given
  explicitly that resolves to nothing is refused, the default (``production``) is just absent.

Public API:
    read(engine, snapshot, parts, config, judging, report) -> Earlier(warm, champion, holder)
    WarmStart(version, state)             .stats()
    Champion(name, version, embeddings, skipped)   .stats()
    warm_start(engine, name, snapshot, parts, config) -> WarmStart
    champion(engine, name, snapshot, parts, config, required) -> Champion | None
    alias_holder(engine, alias) -> str | None
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from psycopg import sql

from recsys.data import lineage
from recsys.data.holdout import Holdout
from recsys.data.snapshot import Snapshot
from recsys.errors import InvalidInput, RecsysError
from recsys.evaluation.champion import ChampionEmbeddings
from recsys.model.warm_start import CarriedRows, InitialState, carry
from recsys.run_config import RunConfig
from recsys.storage import schema
from recsys.storage.binary_copy import read_vectors
from recsys.storage.bulk import schema_of
from recsys.versions import aliases, registry
from recsys.versions.promotion import Judging


@dataclass(frozen=True)
class WarmStart:
    """The version a run starts from, and the layer-0 rows it carries over."""

    version: str
    state: InitialState

    def stats(self) -> dict[str, Any]:
        return {
            "warm_start": {
                "version": self.version,
                "users_carried": len(self.state.users.index),
                "items_carried": len(self.state.items.index),
            }
        }


@dataclass(frozen=True)
class Champion:
    """The version ``name`` resolved to, with its embeddings, or None and the reason it was
    ``skipped``."""

    name: str
    version: str
    embeddings: ChampionEmbeddings | None
    skipped: str | None

    def stats(self) -> dict[str, Any]:
        record: dict[str, Any] = {"version": self.version, "compared_as": self.name}
        if self.embeddings is None:
            record["skipped"] = self.skipped
        else:
            record["users_known"] = len(self.embeddings.users)
            record["items_known"] = len(self.embeddings.items)
        return {"champion": record}


@dataclass(frozen=True)
class Earlier:
    """The earlier versions a run uses, read before it is recorded; ``holder``: the version the
    gate's alias was explicitly set to then (see :func:`alias_holder`)."""

    warm: WarmStart | None
    champion: Champion | None
    holder: str | None

    def stats(self) -> dict[str, Any]:
        """What the version's ``data_stats`` say about them."""
        stats: dict[str, Any] = {}
        for used in (self.warm, self.champion):
            stats |= used.stats() if used is not None else {}
        return stats


def read(
    engine: sa.Engine,
    snapshot: Snapshot,
    parts: Holdout,
    config: RunConfig,
    judging: Judging,
    report: Callable[[str], None],
) -> Earlier:
    """The warm-start source (``config.warm_start``) and the champion, each resolved, checked and
    read, saying so through ``report``; InvalidInput when one may not be used."""
    gate = judging.gate
    holder = alias_holder(engine, gate.alias) if gate else None
    warm = None
    if config.warm_start is not None:
        warm = warm_start(engine, config.warm_start, snapshot, parts, config)
        carried = warm.state
        report(
            f"warm start from {warm.version}: layer-0 rows of {len(carried.users.index):,} of "
            f"{snapshot.n_users:,} users and {len(carried.items.index):,} of "
            f"{snapshot.n_items:,} items carried over; the others start at random"
        )
    rival = None
    if judging.champion is not None:
        rival = champion(
            engine, judging.champion, snapshot, parts, config, required=judging.required
        )
        if rival is None:
            report(f"no champion: {judging.champion!r} points at no version yet")
        elif rival.skipped:
            report(f"champion {rival.version} not scored: {rival.skipped}")
        else:
            report(f"champion {rival.version} ({rival.name}) scored on the same test set")
    return Earlier(warm, rival, holder)


def warm_start(
    engine: sa.Engine, name: str, snapshot: Snapshot, parts: Holdout, config: RunConfig
) -> WarmStart:
    """The layer-0 rows of the version ``name`` names, matched to this snapshot's users and
    items; InvalidInput (nothing written) when it may not or cannot be used."""
    option = f"--warm-start {name!r}"
    with _reading(engine) as conn:
        version, stats = _published(conn, name, option)
        reason = lineage.unfair_reason(version, stats, snapshot.timestamp[parts.test], config.split)
        if reason:
            raise InvalidInput(f"{option}: refused, the evaluation would flatter it: {reason}")
        users = carry(snapshot.user_ids, _rows(conn, schema.user_embeddings, "layer0", version))
        items = carry(snapshot.item_ids, _rows(conn, schema.item_embeddings, "layer0", version))
    if not len(users.index) and not len(items.index):
        raise InvalidInput(
            f"{option}: version {version!r} shares no user or item with this data set, or "
            "stores no layer-0 state"
        )
    for carried in (users, items):
        if len(carried.index) and carried.width != config.train.dim:
            raise InvalidInput(
                f"{option}: version {version!r} has embeddings of size {carried.width}, this run "
                f"{config.train.dim}; warm start needs the same --dim"
            )
    return WarmStart(version, InitialState(users, items))


def champion(
    engine: sa.Engine,
    name: str,
    snapshot: Snapshot,
    parts: Holdout,
    config: RunConfig,
    *,
    required: bool,
) -> Champion | None:
    """The champion ``name`` resolves to, with its embeddings for this run's evaluated users and
    candidate items, or skipped with the reason when it is unfair; None when ``name`` resolves to
    nothing and was not ``required`` (InvalidInput when it was)."""
    option = f"--compare-with {name!r}"
    with _reading(engine) as conn:
        if aliases.lookup(conn, name) is None and not required:
            return None
        version, stats = _published(conn, name, option)
        reason = lineage.unfair_reason(version, stats, snapshot.timestamp[parts.test], config.split)
        if reason:
            return Champion(name, version, None, reason)
        evaluated = np.zeros(snapshot.n_users, bool)
        evaluated[snapshot.user[parts.evaluated]] = True
        users = carry(
            snapshot.user_ids, _rows(conn, schema.user_embeddings, "embedding", version), evaluated
        )
        items = carry(
            snapshot.item_ids,
            _rows(conn, schema.item_embeddings, "embedding", version),
            parts.position >= 0,
        )
    users = _sorted(users.index, users)
    items = _sorted(parts.position[items.index], items)
    embeddings = ChampionEmbeddings(users.index, users.rows, items.index, items.rows)
    return Champion(name, version, embeddings, None)


@contextmanager
def _reading(engine: sa.Engine) -> Iterator[sa.Connection]:
    """One REPEATABLE READ transaction: the registry and the rows as of one moment."""
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def alias_holder(engine: sa.Engine, alias: str) -> str | None:
    """The version ``alias`` is explicitly set to now (:func:`recsys.versions.aliases.holder`).

    A promotion gate reads it before the champion, and moves the alias only if it still holds
    at commit: read in the other order, a move in between would go unnoticed.
    """
    with engine.connect() as conn:
        return aliases.holder(conn, alias)


def _published(conn: sa.Connection, name: str, option: str) -> tuple[str, dict[str, Any]]:
    """The published version ``name`` resolves to and its ``data_stats``; its registry row is
    held FOR SHARE until the transaction ends, so it cannot be pruned meanwhile."""
    found = aliases.lookup(conn, name)
    if found is None:
        raise InvalidInput(f"{option}: no alias or version of that name")
    try:
        stats = registry.published_stats(conn, found.version)
    except RecsysError as refused:
        raise InvalidInput(f"{option}: {refused}") from refused
    return found.version, stats


def _rows(
    conn: sa.Connection, table: sa.Table, column: str, version: str
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, vectors) blocks of one of ``version``'s embedding columns, NULLs left out."""
    key = "user_id" if "user_id" in table.c else "movie_id"
    query = sql.SQL("SELECT {key}, {column} FROM {table} WHERE version = {version}").format(
        key=sql.Identifier(key),
        column=sql.Identifier(column),
        table=sql.Identifier(schema_of(conn), table.name),
        version=sql.Literal(version),
    )
    query += sql.SQL(" AND {} IS NOT NULL").format(sql.Identifier(column))
    return read_vectors(conn, query)


def _sorted(index: np.ndarray, carried: CarriedRows) -> CarriedRows:
    order = np.argsort(index, kind="stable")
    return CarriedRows(index[order], carried.rows[order])
