"""recsys's CSR kernel on disk: the portable build and its shipping, the runtime build's lock,
memory of failures, repairs and cleaning, and the checks of who could have written what is loaded.

Each case runs in fresh processes with a cache folder of its own. Most builds use a stand-in
compiler (a script that counts its runs and copies a real build of this TensorFlow's kernel), so
they show how often a build ran; ``test_build_command_ships_a_kernel_loaded_without_a_compiler``
compiles for real.
"""

import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recsys.model import native_kernel
from tests.conftest import require_native_kernel

SHOW = "from recsys.model.native_kernel import csr_kernel; print(csr_kernel().description)"


@pytest.fixture(autouse=True)
def _no_build_in_the_package() -> None:
    """A build shipped in the package's folder is found before any cache (a checkout where
    `build recsys/model/kernels` was run for a wheel): the cache is not reached then."""
    if (native_kernel.KERNELS / native_kernel.library_name()).exists():
        pytest.skip("a kernel is built into recsys/model/kernels, found before the cache")


@pytest.fixture(scope="module")
def real_build() -> Path:
    """This TensorFlow's kernel, as this test process built or found it."""
    require_native_kernel()
    path = native_kernel.csr_kernel().path
    assert path is not None and path.name == native_kernel.library_name()
    return path


def _python(
    code: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
        check=False,
    )


def _described(env: dict[str, str], timeout: float = 300) -> tuple[str, str]:
    """(description, the recsys lines of stderr) of the kernel a fresh process gets."""
    shown = _python(SHOW, env, timeout)
    assert shown.returncode == 0, shown.stderr
    noise = ("WARNING: All log messages", "oneDNN custom operations", "I0000", "W0000", "E0000")
    lines = [line for line in shown.stderr.splitlines() if line and not line.startswith(noise)]
    return shown.stdout.strip(), "\n".join(lines)


def _stand_in_compiler(folder: Path, copies: Path | None, sleep: float = 0, fail: bool = False):
    """A compiler that appends a line to ``runs`` for each build, waits ``sleep`` seconds, then
    fails or copies ``copies`` (a real build, or any file) to its ``-o`` output."""
    runs = folder / "runs"
    script = folder / ("failing-c++" if fail else "stand-in-c++")
    action = "echo 'fatal error: stand-in' >&2; exit 1" if fail else f'cp "{copies}" "$out"'
    script.write_text(
        "#!/bin/sh\n"
        f'echo build >> "{runs}"\n'
        f"sleep {sleep}\n"
        'out=""; previous=""\n'
        'for arg in "$@"; do [ "$previous" = "-o" ] && out="$arg"; previous="$arg"; done\n'
        f"{action}\n"
    )
    script.chmod(0o755)
    return script, runs


def _count(runs: Path) -> int:
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def _cached(cache: Path) -> Path:
    return cache / native_kernel.library_name()


def test_build_command_ships_a_kernel_loaded_without_a_compiler(tmp_path) -> None:
    """`python -m recsys.model.native_kernel build DIR` compiles without -march and without a
    warning (-Wall -Wextra); a process whose RECSYS_NATIVE_KERNEL_PATH names DIR loads that
    file with no compiler at all and builds nothing into its cache."""
    require_native_kernel()
    shipped = tmp_path / "image" / "kernels"
    built = subprocess.run(
        [sys.executable, "-m", "recsys.model.native_kernel", "build", str(shipped)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        check=False,
    )
    assert built.returncode == 0, built.stderr
    assert Path(built.stdout.strip()) == shipped / native_kernel.library_name()
    assert "warning:" not in built.stderr, built.stderr
    assert "march" not in " ".join(native_kernel.FLAGS)
    cache = tmp_path / "cache"
    described, said = _described(
        {
            "RECSYS_NATIVE_KERNEL_PATH": str(shipped),
            "RECSYS_CACHE_DIR": str(cache),
            "CXX": "/nonexistent/c++",
            "PATH": "/nonexistent",  # no g++ either
        }
    )
    assert described.startswith("recsys CSR kernel ("), said
    assert not cache.exists() or not list(cache.glob("*.so"))


def test_concurrent_first_use_builds_once(tmp_path, real_build: Path) -> None:
    compiler, runs = _stand_in_compiler(tmp_path, real_build, sleep=3)
    cache = tmp_path / "cache"
    env = {**os.environ, "RECSYS_CACHE_DIR": str(cache), "CXX": str(compiler)}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    starters = [
        subprocess.Popen(
            [sys.executable, "-c", SHOW], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        for _ in range(4)
    ]
    described = [starter.communicate(timeout=300)[0].decode().strip() for starter in starters]
    assert [starter.returncode for starter in starters] == [0] * 4
    assert all(line.startswith("recsys CSR kernel (") for line in described), described
    assert _count(runs) == 1
    assert sorted(path.name for path in cache.iterdir()) == [".lock", real_build.name]


def test_a_failed_build_is_remembered_per_compiler(tmp_path) -> None:
    compiler, runs = _stand_in_compiler(tmp_path, None, fail=True)
    env = {"RECSYS_CACHE_DIR": str(tmp_path / "cache"), "CXX": str(compiler)}
    first, said = _described(env)
    assert first.startswith("TensorFlow's CSR kernel") and "fatal error: stand-in" in first
    assert len(said.splitlines()) == 1 and "fatal error: stand-in" in said
    second, _ = _described(env)
    assert second.startswith("TensorFlow's CSR kernel") and "remembered in" in second
    assert _count(runs) == 1  # the second process did not compile
    other = tmp_path / "other-c++"
    shutil.copy(compiler, other)
    _described({**env, "CXX": str(other)})  # another compiler is tried
    assert _count(runs) == 2


def test_a_corrupt_cached_file_is_rebuilt_once(tmp_path, real_build: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    _cached(cache).write_bytes(b"")  # what a full disk leaves
    _cached(cache).chmod(0o755)
    compiler, runs = _stand_in_compiler(tmp_path, real_build)
    described, said = _described({"RECSYS_CACHE_DIR": str(cache), "CXX": str(compiler)})
    assert described.startswith("recsys CSR kernel ("), said
    assert "is empty" in said
    assert _count(runs) == 1
    assert _cached(cache).read_bytes() == real_build.read_bytes()

    # A build that cannot be loaded either is given up after one try.
    cut = real_build.read_bytes()[: real_build.stat().st_size // 2]
    _cached(cache).unlink()
    _cached(cache).write_bytes(cut)
    _cached(cache).chmod(0o755)
    (tmp_path / "cut.so").write_bytes(cut)
    compiler, runs = _stand_in_compiler(tmp_path, tmp_path / "cut.so")
    described, _ = _described({"RECSYS_CACHE_DIR": str(cache), "CXX": str(compiler)})
    assert described.startswith("TensorFlow's CSR kernel") and "cut short" in described
    assert _count(runs) == 2  # one more run of the stand-in: one rebuild


def test_a_build_past_its_time_is_stopped(tmp_path) -> None:
    compiler, runs = _stand_in_compiler(tmp_path, tmp_path / "never", sleep=120)
    cache = tmp_path / "cache"
    started = time.monotonic()
    described, _ = _described(
        {
            "RECSYS_CACHE_DIR": str(cache),
            "CXX": str(compiler),
            "RECSYS_NATIVE_KERNEL_BUILD_TIMEOUT": "2",
        },
        timeout=100,
    )
    assert time.monotonic() - started < 100
    assert described.startswith("TensorFlow's CSR kernel") and "took over 2 s" in described
    assert _count(runs) == 1
    left = sorted(path.name for path in cache.iterdir())
    assert left == [".lock", Path(native_kernel.library_name()).stem + ".failed"]


def test_leftovers_and_unused_old_builds_are_cleaned(tmp_path, real_build: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    long_ago = time.time() - 40 * 24 * 3600
    planted = {
        ".csr_matmul-k2l3.tmp": None,  # a killed build's output
        "tmpa8f3k2.so": time.time() - 7200,  # the same, from before the lock
        "csr_matmul-tf2.16.1-0123456789abcdef.so": long_ago,  # unused for 40 days
        "csr_matmul-tf2.16.1-0123456789abcdef.failed": long_ago,
        "csr_matmul-tf2.20.0-fedcba9876543210.so": None,  # another install's, in use
    }
    for name, modified in planted.items():
        (cache / name).write_bytes(b"x")
        if modified:
            os.utime(cache / name, (modified, modified))
    compiler, _ = _stand_in_compiler(tmp_path, real_build)
    described, _ = _described({"RECSYS_CACHE_DIR": str(cache), "CXX": str(compiler)})
    assert described.startswith("recsys CSR kernel (")
    left = sorted(path.name for path in cache.iterdir())
    assert left == [".lock", "csr_matmul-tf2.20.0-fedcba9876543210.so", real_build.name]


def test_the_cache_folder_is_created_private(tmp_path, real_build: Path) -> None:
    compiler, _ = _stand_in_compiler(tmp_path, real_build)
    cache = tmp_path / "fresh" / "recsys"
    old_umask = os.umask(0o002)  # a umask that would leave it group-writable
    try:
        described, _ = _described({"RECSYS_CACHE_DIR": str(cache), "CXX": str(compiler)})
    finally:
        os.umask(old_umask)
    assert described.startswith("recsys CSR kernel (")
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert not _cached(cache).stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _plant(cache: Path, real_build: Path, file_mode: int = 0o755, dir_mode: int = 0o700) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    planted = _cached(cache)
    shutil.copy(real_build, planted)
    planted.chmod(file_mode)
    cache.chmod(dir_mode)
    return planted


@pytest.mark.parametrize(
    ("file_mode", "dir_mode", "reason"),
    [
        (0o775, 0o700, "csr_matmul-.* is writable by its group or others \\(mode 775\\)"),
        (0o757, 0o700, "csr_matmul-.* is writable by its group or others \\(mode 757\\)"),
        (0o755, 0o770, "cache is writable by its group or others \\(mode 770\\)"),
        (0o755, 0o1777, "cache is writable by its group or others \\(mode 1777\\)"),
    ],
    ids=["file 775", "file 757", "folder 770", "folder 1777"],
)
def test_a_kernel_others_could_have_written_is_not_loaded(
    tmp_path, real_build: Path, file_mode: int, dir_mode: int, reason: str
) -> None:
    cache = tmp_path / "cache"
    _plant(cache, real_build, file_mode, dir_mode)
    compiler, runs = _stand_in_compiler(tmp_path, real_build)
    described, said = _described({"RECSYS_CACHE_DIR": str(cache), "CXX": str(compiler)})
    assert described.startswith("TensorFlow's CSR kernel (recsys's not loaded:"), described
    assert re.search(reason, described), described
    assert len(said.splitlines()) == 1 and re.search(reason, said), said
    assert _count(runs) == 0  # nothing built over it or beside it


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_kernel_planted_by_another_user_is_not_loaded(tmp_path, real_build: Path) -> None:
    """Root can give files away, so these tests can plant one as another user would."""
    cache = tmp_path / "cache"
    planted = _plant(cache, real_build)
    os.chown(planted, 12345, 12345)
    compiler, runs = _stand_in_compiler(tmp_path, real_build)
    env = {"RECSYS_CACHE_DIR": str(cache), "CXX": str(compiler)}
    described, said = _described(env)
    assert described.startswith("TensorFlow's CSR kernel (recsys's not loaded:"), described
    assert "belongs to uid 12345, not to this user (uid 0)" in said
    os.chown(planted, 0, 0)
    os.chown(cache, 12345, 12345)  # the folder as well
    described, _ = _described(env)
    assert "cache belongs to uid 12345" in described
    assert _count(runs) == 0


def test_a_link_in_place_of_the_kernel_is_not_loaded(tmp_path, real_build: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    _cached(cache).symlink_to(real_build)
    described, _ = _described({"RECSYS_CACHE_DIR": str(cache)})
    assert "is a symbolic link" in described


def test_a_prebuilt_folder_others_can_write_is_not_trusted(tmp_path, real_build: Path) -> None:
    shipped = tmp_path / "shared-kernels"
    _plant(shipped, real_build, dir_mode=0o777)
    compiler, runs = _stand_in_compiler(tmp_path, real_build)
    described, _ = _described(
        {
            "RECSYS_NATIVE_KERNEL_PATH": str(shipped),
            "RECSYS_CACHE_DIR": str(tmp_path / "cache"),
            "CXX": str(compiler),
        }
    )
    assert "shared-kernels is writable by its group or others (mode 777)" in described
    assert _count(runs) == 0
