"""recsys's own CSR × dense product for the CPU, built on first use by the machine's C++ compiler.

Public API:
    csr_kernel() -> CsrKernel          built (or found built) once per process
    CsrKernel.available, .description  whether products use it, and what `run` prints about it
    CsrKernel.matmul(indptr, indices, values, table, addend=None) -> addend + M @ table

TensorFlow's CPU CSR product spends most of a training step. ``kernels/csr_matmul.cc`` keeps an
output row's columns in vector registers while it walks the row's nonzeros, so each gathered
table row is read once and the output is written once. On the 810K-interaction graph of
bench/train_speed.py one R̂·E_items product took 3.2 ms against TensorFlow's 5.4 ms (the same
process, dim 64), with the same float32 arithmetic: it differed from scipy's product by
2.4e-7 at most, as TensorFlow's does.

The source is compiled against the installed TensorFlow's headers (``tf.sysconfig``) with
``-march=native`` into a cache folder (``RECSYS_CACHE_DIR``, else ``$XDG_CACHE_HOME/recsys``, else
``~/.cache/recsys``), under a name that hashes the source, TensorFlow's version, the compiler and
the CPU's flags, so a change to any of them builds anew (about 6 s). Where it cannot be built
(no compiler, a CPU without AVX2 and FMA, a cache folder it cannot write) products use
TensorFlow's kernel and the description says why; ``RECSYS_NATIVE_KERNEL=0`` chooses
TensorFlow's kernel on purpose.
"""

import functools
import hashlib
import logging
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tensorflow as tf

SOURCE = Path(__file__).with_name("kernels") / "csr_matmul.cc"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CsrKernel:
    """The loaded product op, or None with the reason it is not used."""

    op: Any
    description: str

    @property
    def available(self) -> bool:
        return self.op is not None

    def matmul(
        self,
        indptr: tf.Tensor,
        indices: tf.Tensor,
        values: tf.Tensor,
        table: tf.Tensor,
        addend: tf.Tensor | None = None,
    ) -> tf.Tensor:
        """``addend + M @ table`` for M in CSR form (int64 offsets, int32 columns, float32
        values), each row summed in a fixed order starting from its addend."""
        if addend is None:
            addend = tf.zeros([0, tf.shape(table)[1]], tf.float32)
        return self.op.recsys_csr_matmul(indptr, indices, values, table, addend)


class _Unbuildable(Exception):
    """Why the kernel cannot be built here, in words for the device line."""


def cache_dir() -> Path:
    """Where built kernels are kept (``RECSYS_CACHE_DIR`` overrides)."""
    configured = os.environ.get("RECSYS_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "recsys"


@functools.cache
def csr_kernel() -> CsrKernel:
    """The kernel for this process: loaded from the cache, built into it first if need be."""
    if os.environ.get("RECSYS_NATIVE_KERNEL", "1") == "0":
        return CsrKernel(None, "TensorFlow's CSR kernel (RECSYS_NATIVE_KERNEL=0)")
    try:
        library = _built_library()
        op = tf.load_op_library(str(library))
    except (_Unbuildable, OSError, tf.errors.NotFoundError) as error:
        _log.warning("recsys CSR kernel not used, TensorFlow's instead: %s", error)
        return CsrKernel(None, f"TensorFlow's CSR kernel (recsys's could not be built: {error})")
    return CsrKernel(op, f"recsys CSR kernel ({_vector_isa()})")


def _built_library() -> Path:
    compiler = os.environ.get("CXX", "g++")
    flags = ["-O3", "-march=native", "-fPIC", "-shared", "-w"]
    if "avx512_fp16" in _cpu_flags():
        # TensorFlow's bundled Eigen does not compile with GCC 12's AVX-512 FP16 types.
        flags.append("-mno-avx512fp16")
    key = hashlib.sha256(
        b"\0".join(
            part.encode() if isinstance(part, str) else part
            for part in (
                SOURCE.read_bytes(),
                tf.__version__,
                _compiler_version(compiler),
                _cpu_flags(),
                " ".join(flags),
            )
        )
    ).hexdigest()[:16]
    target = cache_dir() / f"csr_matmul-{key}.so"
    if target.exists():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(suffix=".so", dir=target.parent)
        os.close(handle)
    except OSError as error:
        raise _Unbuildable(f"cannot write to {target.parent}: {error.strerror}") from error
    command = [
        compiler,
        *flags,
        *tf.sysconfig.get_compile_flags(),
        str(SOURCE),
        "-o",
        partial,
        *tf.sysconfig.get_link_flags(),
    ]
    started = time.perf_counter()
    try:
        built = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        if built.returncode != 0:
            errors = [line for line in built.stderr.splitlines() if "error" in line]
            raise _Unbuildable(f"{compiler} failed: {(errors or ['no message'])[0].strip()}")
        os.replace(partial, target)  # atomic: a process building beside this one loses nothing
    finally:
        Path(partial).unlink(missing_ok=True)
    _log.info("built %s in %.1f s", target, time.perf_counter() - started)
    return target


def _compiler_version(compiler: str) -> str:
    try:
        shown = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise _Unbuildable(f"no C++ compiler {compiler!r}: {error}") from error
    return shown.stdout.splitlines()[0] if shown.stdout else compiler


@functools.cache
def _cpu_flags() -> str:
    """The CPU's feature flags (Linux), else the processor's name: what ``-march=native`` sees."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("flags"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _vector_isa() -> str:
    return "AVX-512" if " avx512f " in f" {_cpu_flags()} " else "AVX2"
