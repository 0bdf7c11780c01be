"""Bad input stops ``recsys-job ingest`` and ``recsys-job run`` with a message naming the problem
and a non-zero exit, before anything is written: every table's row count and checksum stay as
they were, so no version is registered either.

The installed console script runs in subprocesses for every ingest case (ingest never imports
TensorFlow: about 1.5 s each), for run options that click rejects (as cheap), and for three run
cases that reach the pipeline's own checks (an option, a version name, the data), which pay
TensorFlow's ~7 s import each. All of them start together at module set-up, as many at a time as
there are CPUs, against one schema holding ratings (and one whose ratings have no times). The
other run-option cases use click's CliRunner in this process: the same code from option parsing
to the pipeline's checks, without a process start per case. Accepted variants (byte-order marks,
CRLF, a latin-1 release re-saved as UTF-8) must load exactly what the clean release loads.
"""

import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from recsys.errors import InvalidInput
from tests.integration._hardening_inputs import Process, error_lines, job_args, run_processes
from tests.integration._ingest_files import (
    ingest,
    release_files,
    table_checksums,
    write_file,
    write_release,
    zip_release,
)
from tests.integration._run_data import N_ITEMS, cli, populated_schema

Writer = Callable[[Path], list[str | Path]]
Checksums = dict[str, tuple[int, str]]


@dataclass(frozen=True)
class Rejected:
    """A bad input: how to write it, the file its message must name, and what it must say."""

    write: Writer
    culprit: str
    message: str


def _csv(message: str, culprit: str = "ratings", **files: str | bytes) -> Rejected:
    """``recsys-job ingest csv`` with ``--<option> <option>.csv`` for each file given."""

    def write(folder: Path) -> list[str | Path]:
        args: list[str | Path] = ["ingest", "csv"]
        for option, content in files.items():
            args += [f"--{option}", write_file(folder / f"{option}.csv", content)]
        return args

    return Rejected(write, f"{culprit}.csv", message)


def _release(
    layout: str, message: str, zipped: bool = False, culprit: str = "", **files: str | None
) -> Rejected:
    """A ``layout`` release with ``files`` replaced (None: left out), as a folder or a zip; the
    message names ``culprit``, else the first file given."""

    def write(folder: Path) -> list[str | Path]:
        path = write_release(folder / layout, layout, dict(files))
        return ["ingest", "movielens", zip_release(path, folder / "r.zip") if zipped else path]

    return Rejected(write, culprit or next(iter(files)), message)


def _edited(layout: str, name: str, old: str, new: str) -> dict[str, str]:
    """The release's file ``name`` with ``old`` replaced by ``new`` everywhere."""
    text = release_files(layout)[name]
    assert old in text
    return {name: text.replace(old, new)}


def _zip_of_notes(folder: Path) -> list[str | Path]:
    archive = folder / "notes.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ml-1m/README.txt", "ratings are elsewhere\n")
    return ["ingest", "movielens", archive]


def _damaged_zip(folder: Path) -> list[str | Path]:
    """An ML-1M zip whose central directory (the index at the end) has a broken signature."""
    archive = zip_release(write_release(folder / "ml-1m", "ml-1m"), folder / "damaged.zip")
    data = bytearray(archive.read_bytes())
    index = data.rfind(b"PK\x01\x02")
    data[index : index + 4] = b"XXXX"
    archive.write_bytes(bytes(data))
    return ["ingest", "movielens", archive]


HEADER = "user_id,item_id,rating\n"
MOVIES_CSV = "item_id,title\n10,Café Society (1995)\n"
INGEST_CASES = {
    "separator-semicolon-csv": _csv(
        "fields look separated by ';'", ratings="user_id;item_id;rating\n1;10;4\n"
    ),
    "separator-comma-ml100k": _release(
        "ml-100k", "expected 4 fields, found 1", **_edited("ml-100k", "u.data", "\t", ",")
    ),
    "extra-column-csv": _csv("unknown column(s)", ratings=HEADER[:-1] + ",comment\n1,10,4,ok\n"),
    "extra-field-ml1m": _release(
        "ml-1m", "expected 4 fields, found 5", **_edited("ml-1m", "ratings.dat", "\n", "::x\n")
    ),
    "missing-column-movies-csv": _csv(
        "missing column(s) title", "movies", ratings=HEADER + "1,10,4\n", movies="item_id\n10\n"
    ),
    "missing-field-csv": _csv("expected 3 fields, found 2", ratings=HEADER + "1,10,4\n2,10\n"),
    "negative-id-ml100k": _release(
        "ml-100k", "user id is negative", **_edited("ml-100k", "u.data", "3\t20\t", "-3\t20\t")
    ),
    "huge-id-ml-latest": _release(
        "ml-latest",
        "movie id is larger than 9223372036854775807",
        **_edited("ml-latest", "ratings.csv", "3,20,", "3,9223372036854775808,"),
    ),
    "boolean-ids-csv": _csv("user id is not a number", ratings=HEADER + "True,10,4\nFalse,10,3\n"),
    "rating-nan-ml-latest": _release(
        "ml-latest",
        "rating is not a number",
        **_edited("ml-latest", "ratings.csv", "3,20,2.0,", "3,20,NaN,"),
    ),
    "rating-zero-ml100k": _release(
        "ml-100k", "rating is outside 0.5..5.0", **_edited("ml-100k", "u.data", "\t1\t", "\t0\t")
    ),
    "conflicting-duplicate-rating-csv": _csv(
        "repeats line 2 with different values", ratings=HEADER + "1,10,4\n1,10,5\n"
    ),
    "conflicting-duplicate-user-ml1m": _release(
        "ml-1m", "user id repeats line 1", **_edited("ml-1m", "users.dat", "2::M::56", "1::M::56")
    ),
    "unknown-movie-csv": _csv("movie is not in", ratings=HEADER + "1,11,4\n", movies=MOVIES_CSV),
    "timestamp-out-of-range-csv": _csv(
        "timestamp is out of range", ratings="user_id,item_id,timestamp\n1,10,99999999999999\n"
    ),
    "empty-file-zip": _release("ml-latest", "file is empty", zipped=True, **{"ratings.csv": ""}),
    "header-only-users-csv": _csv(
        "file has no data rows", "users", ratings=HEADER + "1,10,4\n", users="user_id,gender\n"
    ),
    "latin-1-in-utf-8-csv": _csv(
        "bytes are not valid UTF-8",
        "movies",
        ratings=HEADER + "1,10,4\n",
        movies=MOVIES_CSV.encode("latin-1"),
    ),
    "utf-16-csv": _csv("UTF-16", ratings=(HEADER + "1,10,4\n").encode("utf-16")),
    "old-mac-line-ends-csv": _csv(
        "carriage return without a line feed", ratings=(HEADER + "1,10,4\n").replace("\n", "\r")
    ),
    "truncated-last-line-ml1m": _release(
        "ml-1m",
        "expected 4 fields, found 2",
        **{"ratings.dat": release_files("ml-1m")["ratings.dat"][:-14]},
    ),
    "truncated-quoted-field-ml-latest": _release(
        "ml-latest",
        "bad CSV quoting",
        **{"movies.csv": release_files("ml-latest")["movies.csv"] + '40,"Heat (19'},
    ),
    "zip-without-release-files": Rejected(_zip_of_notes, "notes.zip", "no MovieLens release found"),
    "zip-release-lacking-a-file": _release(
        "ml-1m",
        "release lacks users.dat",
        zipped=True,
        culprit="r.zip!ml-1m:",
        **{"users.dat": None},
    ),
    "damaged-zip": Rejected(_damaged_zip, "damaged.zip", "damaged zip archive"),
}

#: Run cases worth a process of their own: (arguments after ``run``, message).
RUN_PROCESSES = {
    "batch-size-zero": (["--model-version", "p1", "--batch-size", "0"], "batch_size must be"),
    "version-name-with-space": (["--model-version", "v 1"], "version name 'v 1' is not"),
    "temporal-without-timestamps": (
        ["--model-version", "p2", "--split", "temporal"],
        "the temporal split needs a timestamp on every rating",
    ),
    "eval-k-not-a-number": (["--model-version", "p3", "--eval-k", "a"], "got 'a'"),
    "eval-k-zero": (["--model-version", "p4", "--eval-k", "0"], "at least 1, got '0'"),
    "cutoff-not-a-time": (
        ["--model-version", "p5", "--cutoff", "yesterday"],
        "expected an ISO 8601 date or time such as 2020-01-02, 2020-01-02T00:00:00Z or "
        "2020-01-02T02:00:00+02:00, got 'yesterday'",
    ),
    "malformed-config": (
        ["--model-version", "p6", "--config", "{broken}"],
        "Invalid value (at line 1, column 10)",
    ),
    "fractional-epochs-in-config": (
        ["--model-version", "p7", "--config", "{fractional}"],
        "epochs must be a whole number, got 2.5",
    ),
}

#: Run cases checked in this process: (arguments after ``run``, message).
RUN_IN_PROCESS = {
    "negative-batch-size": (["--batch-size", "-5"], "batch_size must be positive, got -5"),
    "test-ratio-zero": (["--test-ratio", "0"], "test ratio must be between 0 and 1, got 0.0"),
    "test-ratio-one": (["--test-ratio", "1"], "test ratio must be between 0 and 1, got 1.0"),
    "temporal-test-ratio-one": (
        ["--split", "temporal", "--test-ratio", "1"],
        "test ratio must be between 0 and 1",
    ),
    "top-k-zero": (["--top-k", "0"], "top-k and every evaluation cut-off must be at least 1"),
    "similar-k-zero": (["--similar-k", "0"], "similar-k must be at least 1, got 0"),
    "dim-zero": (["--dim", "0"], "dim must be positive, got 0"),
    "negative-layers": (["--layers", "-1"], "n_layers must be positive, got -1"),
    "learning-rate-zero": (["--learning-rate", "0"], "learning rate must be positive"),
    "learning-rate-nan": (["--learning-rate", "nan"], "learning rate must be a finite number"),
    "l2-infinite": (["--l2", "inf"], "L2 weight must be a finite number, got inf"),
    "val-ratio-one": (["--val-ratio", "1"], "validation ratio must be in [0, 1), got 1.0"),
    "patience-zero": (["--patience", "0"], "patience must be positive, got 0"),
    "negative-seed": (["--seed", "-1"], "seed must not be negative, got -1"),
    "min-rating-nan": (["--min-rating", "nan"], "min-rating must be a finite number"),
    "min-rating-above-every-rating": (
        ["--min-rating", "5.5"],
        "no ratings with rating ≥ 5.5 to train on",
    ),
    "top-k-above-the-catalogue": (
        ["--top-k", str(N_ITEMS + 1)],
        f"top-k {N_ITEMS + 1} is larger than the {N_ITEMS} items",
    ),
    "cutoff-before-all-data": (
        ["--split", "temporal", "--cutoff", "1990-01-01"],
        "cut-off 1990-01-01T00:00:00+00:00 leaves an empty train or test set",
    ),
    "test-ratio-with-leave-last": (
        ["--split", "leave-last", "--test-ratio", "0.3"],
        "--test-ratio does not apply to --split leave-last",
    ),
    "cutoff-with-stratified": (
        ["--cutoff", "2000-01-01"],
        "--cutoff does not apply to --split stratified",
    ),
    "cutoff-and-test-ratio-in-config": (
        ["--split", "temporal", "--config", "{cutoff_and_ratio}"],
        "give --cutoff or --test-ratio, not both",
    ),
    "epochs-not-whole": (["--epochs", "1.5"], "'1.5' is not a valid integer"),
    "boolean-in-config": (["--config", "{boolean}"], "min-rating must be a number, got True"),
    "table-in-config": (["--config", "{table}"], "unknown keys run"),
    "config-not-utf-8": (["--config", "{latin1}"], "can't decode byte 0xe9"),
    "missing-config": (["--config", "{missing}"], "does not exist"),
    "batch-size-and-steps-per-epoch": (
        ["--batch-size", "64", "--steps-per-epoch", "4"],
        "give --batch-size or --steps-per-epoch, not both",
    ),
    "steps-per-epoch-zero": (["--steps-per-epoch", "0"], "steps_per_epoch must be positive"),
    "train-time-not-a-duration": (["--max-train-time", "ten minutes"], "such as 90s, 25m or 2h"),
    "train-time-zero": (["--max-train-time", "0s"], "the duration must be positive"),
    "memory-limit-not-a-size": (["--memory-limit", "lots"], "expected a size such as 8G"),
    "data-larger-than-the-memory-limit": (
        ["--memory-limit", "64M"],
        "more than the memory limit given (0.1 GiB)",
    ),
    "train-time-in-config-not-a-duration": (
        ["--config", "{bad_budget}"],
        "expected a duration such as 90s, 25m or 2h, got '10 min'",
    ),
}

#: Version names refused whatever the options: too long, unicode, empty, leading dash.
BAD_NAMES = ("v" * 64, "vé", "", "-v1", "v1\n")

CONFIGS = {
    "broken": "epochs = \n",
    "fractional": "epochs = 2.5\n",
    "boolean": "min-rating = true\n",
    "table": "[run]\nepochs = 2\n",
    "latin1": 'split = "caf\xe9"\n',
    "cutoff_and_ratio": 'cutoff = "2000-01-01"\ntest-ratio = 0.2\n',
    "bad_budget": 'max-train-time = "10 min"\n',
}


@dataclass(frozen=True)
class Batch:
    """The subprocess results, and the schemas they ran against with their checksums before."""

    engine: sa.Engine  # on ``schema``, which holds rated and timed ratings
    schema: str
    before: dict[str, tuple[sa.Engine, Checksums]]  # per schema: its engine, checksums before
    ingests: dict[str, Process]
    runs: dict[str, Process]
    configs: dict[str, Path]

    def unchanged(self) -> bool:
        """Whether every table of every schema holds what it held before the cases ran."""
        return all(
            table_checksums(engine, name) == checksums
            for name, (engine, checksums) in self.before.items()
        )


def _configs(folder: Path) -> dict[str, Path]:
    """The TOML files the run cases name (``missing`` is never written)."""
    paths = {name: folder / f"{name}.toml" for name in (*CONFIGS, "missing")}
    for name, text in CONFIGS.items():
        paths[name].write_bytes(text.encode("latin-1"))
    return paths


@pytest.fixture(scope="module")
def batch(database_url: URL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Batch]:
    """Every subprocess case, run together over a schema holding ratings (and, for the temporal
    split, a second one whose ratings have no time)."""
    folder = tmp_path_factory.mktemp("bad-input")
    configs = _configs(folder)
    with (
        populated_schema(database_url) as (engine, name),
        populated_schema(database_url) as (untimed, untimed_name),
    ):
        with untimed.begin() as conn:
            conn.execute(sa.text(f'UPDATE "{untimed_name}".ratings SET rated_at = NULL'))
        before = {
            n: (e, table_checksums(e, n)) for e, n in ((engine, name), (untimed, untimed_name))
        }
        commands: dict[str, list[str]] = {}
        for case, rejected in INGEST_CASES.items():
            (folder / case).mkdir()
            commands[f"ingest {case}"] = job_args(
                database_url, name, *rejected.write(folder / case)
            )
        for case, (args, _) in RUN_PROCESSES.items():
            target = untimed_name if case == "temporal-without-timestamps" else name
            run_args = [arg.format(**configs) for arg in args]
            commands[f"run {case}"] = job_args(database_url, target, "run", *run_args)
        results = run_processes(commands)
        yield Batch(
            engine,
            name,
            before,
            {case: results[f"ingest {case}"] for case in INGEST_CASES},
            {case: results[f"run {case}"] for case in RUN_PROCESSES},
            configs,
        )


def _refused(stderr: str, message: str) -> None:
    """One error line, saying ``message``, and no traceback."""
    (line,) = error_lines(stderr)
    assert message in line, stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("case", INGEST_CASES)
def test_bad_ingest_input_exits_2_naming_the_file_and_the_problem(batch: Batch, case: str) -> None:
    result, rejected = batch.ingests[case], INGEST_CASES[case]
    assert result.returncode == InvalidInput.exit_code, result.stderr
    _refused(result.stderr, rejected.message)
    assert rejected.culprit in error_lines(result.stderr)[0]
    assert result.stdout == ""
    assert batch.unchanged()


@pytest.mark.parametrize("case", RUN_PROCESSES)
def test_bad_run_input_in_a_process_fails_before_anything_is_written(
    batch: Batch, case: str
) -> None:
    result = batch.runs[case]
    _, message = RUN_PROCESSES[case]
    assert result.returncode == InvalidInput.exit_code, result.stderr
    _refused(result.stderr, message)
    assert batch.unchanged()


@pytest.mark.parametrize("case", RUN_IN_PROCESS)
def test_bad_run_option_fails_before_anything_is_written(
    batch: Batch, database_url: URL, case: str
) -> None:
    args, message = RUN_IN_PROCESS[case]
    args = [arg.format(**batch.configs) for arg in args]
    result = cli(database_url, batch.schema, "--model-version", "bad", *args)
    assert result.exit_code == InvalidInput.exit_code, result.output
    _refused(result.stderr, message)
    assert batch.unchanged()


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_bad_version_name_fails_before_anything_is_written(
    batch: Batch, database_url: URL, name: str
) -> None:
    result = cli(database_url, batch.schema, "--model-version", name)
    assert result.exit_code == InvalidInput.exit_code, result.output
    _refused(result.stderr, f"version name {name!r} is not allowed")
    assert batch.unchanged()


BOM = b"\xef\xbb\xbf"
#: How each accepted variant rewrites the text of every ML-1M file.
RELEASE_VARIANTS: dict[str, Callable[[str], str | bytes]] = {
    "ml-1m-byte-order-marks": lambda text: BOM + text.encode(),
    "ml-1m-utf-8": str.encode,  # no mark: the accents alone tell UTF-8 from latin-1
    "ml-1m-crlf": lambda text: text.replace("\n", "\r\n"),
}
ACCEPTED = ("csv-with-byte-order-marks", *RELEASE_VARIANTS)


def _accepted_input(case: str, folder: Path, clean: bool) -> list[str | Path]:
    """The ``ingest`` arguments of an accepted variant, or of the same input written plainly."""
    folder.mkdir()
    if case == "csv-with-byte-order-marks":
        mark = b"" if clean else BOM
        ratings = write_file(folder / "ratings.csv", mark + (HEADER + "1,10,4\n2,10,3\n").encode())
        movies = write_file(folder / "movies.csv", mark + MOVIES_CSV.encode())
        return ["csv", "--ratings", ratings, "--movies", movies]
    files = release_files("ml-1m")
    changes = {} if clean else {name: RELEASE_VARIANTS[case](text) for name, text in files.items()}
    release = write_release(folder / "ml-1m", "ml-1m", changes)
    return ["movielens", zip_release(release, folder / "ml-1m.zip")]


@pytest.mark.parametrize("case", ACCEPTED)
def test_accepted_variant_loads_exactly_the_clean_input(
    engine: sa.Engine, database_url: URL, schema: str, tmp_path: Path, case: str
) -> None:
    """The variant loads (installed script); ingesting the clean input over it then changes
    nothing, so the two hold the same rows, accents included."""
    variant = _accepted_input(case, tmp_path / "variant", clean=False)
    (result,) = run_processes({case: job_args(database_url, schema, "ingest", *variant)}).values()
    assert result.returncode == 0, result.stderr
    loaded = table_checksums(engine, schema)
    assert loaded["movies"][0] > 0 and loaded["ratings"][0] > 0

    clean = ingest(database_url, schema, *_accepted_input(case, tmp_path / "clean", clean=True))
    assert clean.exit_code == 0, clean.output
    assert "nothing changed" in clean.stdout
    assert table_checksums(engine, schema) == loaded
