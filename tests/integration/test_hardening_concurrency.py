"""Runs at the same time, and readers during publishes and promotes, with the real ``recsys-job``.

One batch of processes: two runs of one version (the one that claims it first pauses, holding it,
so the other must stop at once rather than wait), two different versions (one paused with its
outputs written, just before it publishes, while a reader keeps reading), and a replacement of a
version, held at its start until those are done and then let go while the ``production`` alias
flips back and forth. A reader thread on a connection of its own reads the output tables throughout
and records every state it sees, as a checksum of each version's rows in each of the output tables:
each version absent or exactly as finally published, never a mix of the two.
"""

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.errors import VersionConflict
from recsys.pipeline import run
from recsys.storage import database, schema
from recsys.storage.bulk import schema_of
from recsys.versions import registry
from tests.integration._hardening_runs import (
    ABSENT,
    Job,
    contents,
    database_args,
    launch,
    output_checksums,
    production_recommendations,
)
from tests.integration._published_versions import cli, publish_outputs
from tests.integration._run_data import (
    FAST_OPTIONS,
    N_USERS,
    expect_published,
    fast_config,
    populated_schema,
    quiet,
    run_rows,
    version_row,
)

OLD, SAME, PAIR_A, PAIR_B = "old", "same", "pair-a", "pair-b"
#: Recommendations of a whole version (top 10), and of OLD's replacement (top 5).
WHOLE, REPLACED = 10 * N_USERS, 5 * N_USERS
#: Reads the reader must complete while PAIR_A's publish stands open, its outputs written.
READS_WHILE_OPEN = 20
#: In-process replacements of one version under a reader that never pauses.
REPLACEMENTS = 5
#: Versions published one after another under a reader that never pauses.
PUBLISHES = 40
#: Bounds of the reader loop and of the promote loop, whatever happens to the runs.
MAX_READS, MAX_SECONDS, MAX_PROMOTIONS = 100_000, 240.0, 300


class Reader(threading.Thread):
    """Reads until stopped (or MAX_READS, or MAX_SECONDS) on an autocommit connection of its own,
    as an analyst in psql would, recording each change of what it sees."""

    def __init__(
        self, database_url: URL, schema: str, versions: tuple[str, ...], interval: float
    ) -> None:
        super().__init__(daemon=True)
        self.engine = database.connect(database_url, schema, application_name="recsys-reader")
        self.interval = interval
        self.stop = threading.Event()
        self.reads = 0
        self.errors: list[Exception] = []
        #: Per version, each set of output checksums seen, once per change, in order.
        self.states: dict[str, list[tuple[str, ...]]] = {v: [] for v in versions}
        #: Every distinct answer of production_recommendations: ((version, rows), ...).
        self.production: set[tuple[tuple[str, int], ...]] = set()
        self.versions = list(versions)
        self.per_version = output_checksums(schema, "unnest(CAST(:names AS text[])) AS w (name)")
        served = production_recommendations
        self.served = sa.select(served.c.version, sa.func.count()).group_by(served.c.version)

    def run(self) -> None:
        deadline = time.monotonic() + MAX_SECONDS
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                while (
                    not self.stop.is_set()
                    and self.reads < MAX_READS
                    and time.monotonic() < deadline
                ):
                    for name, *sums in conn.execute(self.per_version, {"names": self.versions}):
                        seen = self.states[name]
                        if not seen or seen[-1] != tuple(sums):
                            seen.append(tuple(sums))
                    self.production.add(tuple(map(tuple, conn.execute(self.served))))
                    self.reads += 1
                    self.stop.wait(self.interval)
        except Exception as exc:  # recorded for the test to show, not swallowed
            self.errors.append(exc)
        finally:
            self.engine.dispose()


@dataclass
class Concurrent:
    engine: sa.Engine
    schema: str
    reader: Reader
    results: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    #: The run of SAME that stopped, and whether the other still held the version then.
    same_loser: subprocess.CompletedProcess[str] | None = None
    same_winner_alive_then: bool = False
    #: Reads completed while PAIR_A's publish was open, and PAIR_A's states meanwhile.
    reads_while_open: int = 0
    states_while_open: list[tuple[str, ...]] = field(default_factory=list)
    promotions: int = 0
    #: Output checksums of OLD as first published, and of every version once all had ended.
    old_before: tuple[str, ...] = ()
    final: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _wait_for(condition: Callable[[], bool], timeout: float = 120.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(scope="module")
def concurrent(database_url: URL) -> Iterator[Concurrent]:
    with populated_schema(database_url) as (engine, name):
        run(engine, OLD, fast_config(), report=quiet)
        versions = (OLD, SAME, PAIR_A, PAIR_B)
        reader = Reader(database_url, name, versions, interval=0.005)
        reader.start()
        found = Concurrent(engine, name, reader, old_before=contents(engine, [OLD])[OLD])

        def start(version: str, fault: str = "", *options: str) -> Job:
            args = [*database_args(database_url, name), "run", "--model-version", version]
            return launch([*args, *FAST_OPTIONS, *options], fault=fault)

        try:
            same = [start(SAME, "started:pause") for _ in range(2)]
            replacing = start(OLD, "started:pause", "--replace", "--top-k", "5", "--eval-k", "10")
            pair = {PAIR_A: start(PAIR_A, "publish:before:pause"), PAIR_B: start(PAIR_B)}

            assert _wait_for(lambda: any(job.process.poll() is not None for job in same))
            loser, winner = sorted(same, key=lambda job: job.process.poll() is None)
            found.same_winner_alive_then = winner.process.poll() is None
            found.same_loser = loser.finish()
            winner.wait_paused()
            winner.resume()

            pair[PAIR_A].wait_paused()
            opened_at = reader.reads
            assert _wait_for(lambda: reader.reads >= opened_at + READS_WHILE_OPEN, timeout=30)
            found.states_while_open = list(reader.states[PAIR_A])
            found.reads_while_open = reader.reads - opened_at
            pair[PAIR_A].resume()
            found.results = {SAME: winner.finish()} | {v: job.finish() for v, job in pair.items()}

            replacing.wait_paused()
            replacing.resume()
            while replacing.process.poll() is None and found.promotions < MAX_PROMOTIONS:
                target = (OLD, PAIR_A)[found.promotions % 2]
                promoted = cli(database_url, name, "promote", target)
                assert promoted.exit_code == 0, promoted.output
                found.promotions += 1
            found.results[OLD] = replacing.finish()
            for target in (PAIR_A, OLD):  # and once more each after the replacement
                assert cli(database_url, name, "promote", target).exit_code == 0
            promoted_at = reader.reads
            assert _wait_for(lambda: reader.reads > promoted_at + 1, timeout=30)
        finally:
            reader.stop.set()
            reader.join()
        found.final = contents(engine, versions)
        yield found


def test_two_runs_of_one_version_one_proceeds_the_other_stops_at_once(
    concurrent: Concurrent,
) -> None:
    loser = concurrent.same_loser
    assert loser is not None and loser.returncode == VersionConflict.exit_code, loser.stderr
    errors = [line for line in loser.stderr.splitlines() if line.startswith("error: ")]
    assert errors and errors[0].startswith(f"error: version {SAME!r} is being written by another")
    assert "Traceback" not in loser.stderr
    assert concurrent.same_winner_alive_then  # it did not wait for the other run to end
    assert concurrent.results[SAME].returncode == 0, concurrent.results[SAME].stderr
    expect_published(concurrent.engine, SAME)
    with concurrent.engine.connect() as conn:
        assert [attempt.status for attempt in run_rows(conn, SAME)] == ["succeeded"]


def test_two_versions_at_once_both_publish(concurrent: Concurrent) -> None:
    for version in (PAIR_A, PAIR_B):
        assert concurrent.results[version].returncode == 0, concurrent.results[version].stderr
        expect_published(concurrent.engine, version)


def test_readers_see_each_version_whole_or_not_at_all_during_publishes(
    concurrent: Concurrent,
) -> None:
    reader, final = concurrent.reader, concurrent.final
    assert reader.errors == []
    assert concurrent.reads_while_open >= READS_WHILE_OPEN
    assert concurrent.states_while_open == [ABSENT]
    # Each state once, in this order: nothing half-written, nothing that went back.
    assert reader.states == {
        OLD: [concurrent.old_before, final[OLD]],
        SAME: [ABSENT, final[SAME]],
        PAIR_A: [ABSENT, final[PAIR_A]],
        PAIR_B: [ABSENT, final[PAIR_B]],
    }
    # Every table of every version has rows, and OLD's replacement is told from the original
    # (same seed, so the same embeddings, but other recommendations and evaluation rows).
    assert all(ABSENT[0] not in sums for sums in [*final.values(), concurrent.old_before])
    assert concurrent.old_before != final[OLD]


def test_production_always_serves_one_whole_version_during_promotes(
    concurrent: Concurrent,
) -> None:
    assert concurrent.results[OLD].returncode == 0, concurrent.results[OLD].stderr
    assert concurrent.promotions >= 2
    whole = {WHOLE}
    expected = {OLD: whole | {REPLACED}, SAME: whole, PAIR_A: whole, PAIR_B: whole}
    for answer in concurrent.reader.production:
        ((version, rows),) = answer  # exactly one version at a time
        assert rows in expected[version], answer
    served = {version for ((version, _),) in concurrent.reader.production}
    assert {OLD, PAIR_A} <= served
    assert (OLD, REPLACED) in {answer[0] for answer in concurrent.reader.production}


def test_replacing_a_version_never_deadlocks_a_reader_of_the_views(
    concurrent: Concurrent, database_url: URL
) -> None:
    """Dropping the replaced partitions takes ACCESS EXCLUSIVE on each output table; a reader
    reading two of them in one query (as the views do) must not be cancelled as a deadlock."""
    engine = concurrent.engine
    before = contents(engine, [PAIR_B])[PAIR_B]
    reader = Reader(database_url, concurrent.schema, (PAIR_B,), interval=0)
    reader.start()
    published = []
    try:
        for seed in range(1, REPLACEMENTS + 1):
            run(engine, PAIR_B, fast_config(seed=seed), replace=True, report=quiet)
            published.append(contents(engine, [PAIR_B])[PAIR_B])
    finally:
        reader.stop.set()
        reader.join()
    assert reader.errors == []
    assert reader.reads > REPLACEMENTS
    assert len({before, *published}) == REPLACEMENTS + 1  # each seed published other content
    # Only whole versions, in the order they were published (a fast reader may miss some).
    first, *later = reader.states[PAIR_B]
    assert first == before
    positions = [published.index(sums) for sums in later]  # ValueError: a state never published
    assert positions == sorted(set(positions))


def test_a_published_version_is_never_seen_without_its_rows(engine: sa.Engine) -> None:
    """Attaching a partition does not make readers wait, so a reader could plan its query before
    a publish commits (no partition for the version yet) and take its snapshot after it (the
    registry says published): the version would read as published and empty. Before the fix
    about one publish in five was seen so. The readers here read, without a pause and in one
    statement, the registry's published versions and each one's rows in the output tables."""
    with engine.connect() as conn:
        schema_name = schema_of(conn)
    published = f"\"{schema_name}\".model_versions AS w WHERE w.status = 'published'"
    query = output_checksums(schema_name, published)
    stop, seen, reads, errors = threading.Event(), set(), [0], []

    def read() -> None:
        try:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                while not stop.is_set():
                    seen.update((name, tuple(sums)) for name, *sums in conn.execute(query))
                    reads[0] += 1
        except Exception as exc:  # recorded for the test to show, not swallowed
            errors.append(exc)

    readers = [threading.Thread(target=read, daemon=True) for _ in range(2)]
    versions = [f"tiny-{number}" for number in range(PUBLISHES)]
    for reader in readers:
        reader.start()
    try:
        for version in versions:
            publish_outputs(engine, version)
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert errors == []
    assert reads[0] > PUBLISHES
    final = contents(engine, versions)
    assert ABSENT[0] not in {checksum for sums in final.values() for checksum in sums}
    assert seen and seen <= set(final.items())  # a published version is always seen whole


def test_a_run_finding_its_version_published_meanwhile_stops_before_writing(
    engine: sa.Engine,
) -> None:
    """The last line of defence for a run whose lock died just before its publish committed:
    a run that claimed the name meanwhile must not take the published version back."""
    claim = registry.acquire(engine, "raced", replace=False)
    try:
        with engine.begin() as conn:  # what that publish commits, as the registry sees it
            conn.execute(sa.insert(schema.model_versions).values(name="raced", status="published"))
        with pytest.raises(VersionConflict, match="published meanwhile"):
            registry.start(engine, claim, {})
    finally:
        claim.release()
    with engine.connect() as conn:
        assert version_row(conn, "raced").status == "published"
        assert run_rows(conn, "raced") == []
