"""TensorFlow's start-up lines left out of a process's output, by level, and only those; a
user's own ``TF_CPP_MIN_LOG_LEVEL`` wins (0 shows what TensorFlow prints without recsys)."""

import os
import subprocess
import sys

from recsys.model.tensorflow_logs import start_up_lines_removed

NOTICE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
ONEDNN = b"I0000 00:00:1796627704.423528    9400 port.cc:153] oneDNN custom operations are on.\n"
GUARD = (
    b"I0000 00:00:1796627704.52 9400 cpu_feature_guard.cc:227] This binary is optimized\n",
    b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild.\n",
)
WARNING = b"W0000 00:00:1796627704.6 9400 env.cc:1] a warning\n"
ERROR = b"E0000 00:00:1796627704.7 9400 env.cc:2] an error\n"
OLD_INFO = b"2024-08-10 09:16:11.569780: I tensorflow/core/util/port.cc:153] oneDNN ...\n"
PYTHON = (b"/x.py:1: UserWarning: something of the program's own\n", b"  warnings.warn(\n")
TO_ENABLE = b"To enable the following instructions: not after a record, so kept\n"
OUTPUT = [NOTICE, ONEDNN, *GUARD, *PYTHON, TO_ENABLE, WARNING, ERROR, OLD_INFO]


def test_the_default_level_keeps_errors_and_everything_that_is_not_a_record() -> None:
    assert start_up_lines_removed(OUTPUT, 2) == [*PYTHON, TO_ENABLE, ERROR]


def test_each_level_hides_the_severities_below_it() -> None:
    assert start_up_lines_removed(OUTPUT, 0) == OUTPUT
    assert start_up_lines_removed(OUTPUT, 1) == [*PYTHON, TO_ENABLE, WARNING, ERROR]
    assert start_up_lines_removed(OUTPUT, 3) == [*PYTHON, TO_ENABLE]


IMPORT = "import tensorflow, sys; print('imported', file=sys.stderr)"
QUIET_IMPORT = f"from recsys.model import tensorflow_logs; tensorflow_logs.quiet_start(); {IMPORT}"


def _stderr(code: str, **environment: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"} | environment
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stderr.splitlines()


def test_importing_tensorflow_after_quiet_start_prints_nothing_of_its_own() -> None:
    assert _stderr(QUIET_IMPORT) == ["imported"]


def test_a_users_own_level_wins() -> None:
    # The same lines as TensorFlow prints at that level with nothing of recsys (times, pids and
    # the order of the two libraries' lines aside).
    plain = _stderr(IMPORT, TF_CPP_MIN_LOG_LEVEL="0")
    assert len(_stderr(QUIET_IMPORT, TF_CPP_MIN_LOG_LEVEL="0")) == len(plain)
