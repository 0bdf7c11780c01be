"""recsys's own CSR × dense product for the CPU: one portable build per TensorFlow version, found
prebuilt or built on first use, and loaded only from files that no other user could have written.

Public API:
    csr_kernel() -> CsrKernel          loaded (or built, then loaded) once per process
    CsrKernel.available, .description  whether products use it, and what `run` prints about it
    CsrKernel.matmul(indptr, indices, values, table, addend=None) -> addend + M @ table
    library_name() -> str              this TensorFlow's build: csr_matmul-tf<version>-<key>.so
    build(directory) -> Path           builds it into a folder (an image's, a wheel's)
    cache_dir() -> Path                where the runtime build goes
    python -m recsys.model.native_kernel build DIR | show

TensorFlow's CPU CSR product spends most of a training step. ``kernels/csr_matmul.cc`` keeps an
output row's columns in vector registers while it walks the row's nonzeros, so each gathered
table row is read once and the output is written once. On the 810K-interaction graph of
bench/train_speed.py one R̂·E_items product took 3.2 ms against TensorFlow's 5.4 ms (the same
process, dim 64), with the same float32 arithmetic: it differed from scipy's product by
2.4e-7 at most, as TensorFlow's does. The op checks its input (offsets and column numbers) and
fails with InvalidArgument instead of reading outside its tensors: one pass over the offsets and
column numbers, 0.3 ms of a 6.6-8 ms product of 810K nonzeros on one thread (measured by a call
whose last column number is out of range, which checks everything and multiplies nothing). Its
gradient is registered here: Mᵀ·g for the table, g for the addend, and the rows' dot products
for the values.

**One build.** The source is compiled without ``-march=native``: its row code is compiled for
AVX-512, AVX2 with FMA and SSE2, and the op picks the best the CPU supports when it first runs
(``RECSYS_NATIVE_KERNEL_ISA=avx2`` or ``sse2`` caps it). So a build depends only on the source,
the flags and TensorFlow (its version and C++ ABI), which ``library_name()`` hashes: no compiler
is asked anything to find one, and a file built once serves every x86-64 machine with that
TensorFlow.

**Where it is looked for**, in order: each folder of ``RECSYS_NATIVE_KERNEL_PATH`` (separated by
``:``), the package's own ``kernels/`` folder (a wheel or an image may ship it there), then the
cache folder (``RECSYS_CACHE_DIR``, else ``$XDG_CACHE_HOME/recsys``, else ``~/.cache/recsys``),
where it is built when it is in none of them (``g++`` or ``$CXX``; about 6 s).

**Checked before it is loaded.** The folder and the file must belong to this user (root also for
the prebuilt folders, which an image installs as root) and be writable by no group or other user;
the file is opened without following links and loaded through that open file, so what was checked
is what is loaded. Anything else is refused: one warning says why, and TensorFlow's kernel runs.
The cache folder is created 0700.

**The runtime build** runs under a lock on the cache folder (``fcntl.flock``), so processes that
start together build once and the others load that build. It compiles into a temporary file and
publishes it with a hard link that never replaces an existing file. A failed build is remembered
in ``csr_matmul-…failed`` beside it (with the compiler that failed), so later processes do not
compile again: delete it, change ``$CXX``, or ``build`` into the cache folder, to try again. A
cached file that cannot be loaded (empty or cut short after a full disk) is rebuilt once. A
build that runs past ``RECSYS_NATIVE_KERNEL_BUILD_TIMEOUT`` seconds (600) fails like any other.
Temporary files left by killed builds, and builds of other versions unused for 30 days, are
removed at the next build.
``RECSYS_NATIVE_KERNEL=0`` chooses TensorFlow's kernel on purpose.
"""

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import platform
import re
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tensorflow as tf

KERNELS = Path(__file__).with_name("kernels")
SOURCES = (KERNELS / "csr_matmul.cc", KERNELS / "csr_matmul_rows.inc")
#: The compiler's flags besides TensorFlow's. No -march: the source picks its instructions.
FLAGS = ("-O3", "-fPIC", "-shared", "-ffp-contract=off", "-Wall", "-Wextra")
#: Builds of other keys (TensorFlow versions, sources) unused this long are removed.
STALE_SECONDS = 30 * 24 * 3600
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CsrKernel:
    """The loaded product op, or None with the reason it is not used."""

    op: Any
    description: str
    path: Path | None = None

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
        values), each row summed in a fixed order starting from its addend. Malformed offsets or
        columns outside the table raise ``tf.errors.InvalidArgumentError``."""
        if addend is None:
            addend = tf.zeros([0, tf.shape(table)[1]], tf.float32)
        return self.op.recsys_csr_matmul(indptr, indices, values, table, addend)


class _Unbuildable(Exception):
    """Why the kernel cannot be built here, in words for the device line."""


class _Refused(Exception):
    """Why a file found for the kernel is not loaded."""


def cache_dir() -> Path:
    """Where built kernels are kept (``RECSYS_CACHE_DIR`` overrides)."""
    configured = os.environ.get("RECSYS_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "recsys"


@functools.cache
def library_name() -> str:
    """The file name of this TensorFlow's build: what the source, the flags and TensorFlow's
    version and ABI make of it. Asks no compiler."""
    parts = [path.read_bytes() for path in SOURCES]
    parts += [
        tf.__version__,
        tf.version.GIT_VERSION,
        str(tf.sysconfig.CXX11_ABI_FLAG),
        str(tf.sysconfig.MONOLITHIC_BUILD),
        platform.machine(),
        " ".join(FLAGS),
    ]
    key = hashlib.sha256(
        b"\0".join(part if isinstance(part, bytes) else part.encode() for part in parts)
    ).hexdigest()[:16]
    version = re.sub(r"[^0-9A-Za-z.]+", "_", tf.__version__)
    return f"csr_matmul-tf{version}-{key}.so"


def csr_kernel() -> CsrKernel:
    """The kernel for this process: prebuilt, cached, or built into the cache first (once,
    whichever threads ask)."""
    with _loading:
        return _kernel()


_loading = threading.Lock()


@functools.cache
def _kernel() -> CsrKernel:
    if os.environ.get("RECSYS_NATIVE_KERNEL", "1") == "0":
        return CsrKernel(None, "TensorFlow's CSR kernel (RECSYS_NATIVE_KERNEL=0)")
    try:
        op, path = _load()
    except (_Unbuildable, _Refused) as error:
        _log.warning("recsys CSR kernel not used, TensorFlow's instead: %s", error)
        why = "not loaded" if isinstance(error, _Refused) else "could not be built"
        return CsrKernel(None, f"TensorFlow's CSR kernel (recsys's {why}: {error})")
    isa = op.recsys_csr_matmul_isa().numpy().decode()
    _log.info("recsys CSR kernel (%s) loaded from %s", isa, path)
    return CsrKernel(op, f"recsys CSR kernel ({isa})", path)


def prebuilt_dirs() -> list[Path]:
    """Folders searched for a prebuilt kernel before the cache, in order."""
    configured = os.environ.get("RECSYS_NATIVE_KERNEL_PATH", "")
    return [Path(part).expanduser() for part in configured.split(os.pathsep) if part] + [KERNELS]


def _load() -> tuple[Any, Path]:
    name = library_name()
    trusted = {os.geteuid(), 0}
    for folder in prebuilt_dirs():
        if (folder / name).exists():
            try:
                return _load_checked(folder / name, trusted), folder / name
            except _Corrupt as error:
                raise _Refused(str(error)) from error
    cached = cache_dir() / name
    _make_private_dir(cache_dir())
    # Nothing is built into a folder whose build would then be refused.
    os.close(_open_checked(cache_dir(), {os.geteuid()}, os.O_RDONLY | os.O_DIRECTORY, stat.S_ISDIR))
    if not cached.exists():
        _build_into(cache_dir(), remember_failure=True)
    try:
        op = _load_checked(cached, {os.geteuid()})
    except _Corrupt as error:
        _log.warning("rebuilding the recsys CSR kernel: %s", error)
        _build_into(cache_dir(), remember_failure=True, replacing=error.inode)
        try:
            op = _load_checked(cached, {os.geteuid()})
        except _Corrupt as again:
            raise _Unbuildable(f"a fresh build cannot be loaded either: {again}") from again
    _touch(cached)
    return op, cached


class _Corrupt(_Refused):
    """A file that passed the checks of who may have written it but cannot be loaded."""

    def __init__(self, message: str, inode: int) -> None:
        super().__init__(message)
        self.inode = inode


def _load_checked(path: Path, owners: set[int]) -> Any:
    """``tf.load_op_library`` of ``path`` once the folder and the file pass the checks, loaded
    through the descriptor that was checked."""
    directory = _open_checked(path.parent, owners, os.O_RDONLY | os.O_DIRECTORY, stat.S_ISDIR)
    try:
        handle = _open_checked(
            path.name, owners, os.O_RDONLY | os.O_NOFOLLOW, stat.S_ISREG, directory, path
        )
    finally:
        os.close(directory)
    try:
        inode = os.fstat(handle).st_ino
        damage = _elf_damage(handle)
        if damage:
            raise _Corrupt(f"{path} is not a loadable library: {damage}", inode)
        through = f"/proc/self/fd/{handle}"
        try:
            return tf.load_op_library(through if os.path.exists(through) else str(path))
        except (OSError, tf.errors.OpError) as error:
            message = getattr(error, "message", None) or str(error)
            raise _Corrupt(f"{path} cannot be loaded: {message.splitlines()[0]}", inode) from error
    finally:
        os.close(handle)


def _open_checked(
    name: Path | str,
    owners: set[int],
    flags: int,
    kind: Any,
    directory: int | None = None,
    shown: Path | None = None,
) -> int:
    shown = shown or Path(name)
    try:
        handle = os.open(name, flags | os.O_CLOEXEC, dir_fd=directory)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _Refused(f"{shown} is a symbolic link") from error
        raise _Refused(f"cannot open {shown}: {error.strerror}") from error
    info = os.fstat(handle)
    problem = None
    if not kind(info.st_mode):
        problem = "is not a regular file" if kind is stat.S_ISREG else "is not a folder"
    elif info.st_uid not in owners:
        problem = f"belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})"
    elif info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problem = f"is writable by its group or others (mode {stat.S_IMODE(info.st_mode):o})"
    if problem:
        os.close(handle)
        raise _Refused(f"{shown} {problem}")
    return handle


def _elf_damage(handle: int) -> str | None:
    """Why the open file is not a whole ELF library (empty, another format, cut short), if it
    is not one: ld writes the section headers last, so a file cut short loses them."""
    size = os.fstat(handle).st_size
    header = os.pread(handle, 64, 0)
    if size == 0:
        return "the file is empty"
    if len(header) < 64 or header[:4] != b"\x7fELF" or header[4] != 2:
        return "not a 64-bit ELF file"
    order = "<" if header[5] == 1 else ">"
    (shoff,) = struct.unpack_from(order + "Q", header, 0x28)
    shentsize, shnum = struct.unpack_from(order + "HH", header, 0x3A)
    if shoff + shentsize * shnum > size:
        return f"cut short ({size} bytes; its section headers end at {shoff + shentsize * shnum})"
    return None


def _make_private_dir(folder: Path) -> None:
    """Creates the cache folder 0700 where it does not exist (its parents as usual)."""
    if folder.is_dir():
        return
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            return  # made by another process meanwhile: checked like any other
        os.chmod(folder, 0o700)  # whatever the umask
    except OSError as error:
        raise _Unbuildable(f"cannot write to {folder}: {error.strerror}") from error


def _touch(path: Path) -> None:
    """Marks a cached build as used (at most daily), so that cleaning keeps it."""
    with contextlib.suppress(OSError):
        if time.time() - path.stat().st_mtime > 24 * 3600:
            os.utime(path)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """The folder's build lock, held by one process at a time (waits for it)."""
    try:
        handle = os.open(
            folder / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except OSError as error:
        raise _Unbuildable(f"cannot write to {folder}: {error.strerror}") from error
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock


def _build_into(folder: Path, *, remember_failure: bool, replacing: int | None = None) -> Path:
    """Builds ``library_name()`` into ``folder`` unless it is there (or a failure is remembered
    there); ``replacing``: the inode of a file found unloadable, removed first if still there."""
    target = folder / library_name()
    marker = target.with_suffix(".failed")
    compiler = os.environ.get("CXX", "g++")
    with _locked(folder):
        _clean(folder)
        if replacing is not None:
            with contextlib.suppress(FileNotFoundError):
                if target.stat().st_ino == replacing:
                    target.unlink()
        if target.exists():
            return target  # built by another process while this one waited
        if remember_failure:
            remembered = _remembered_failure(marker, compiler)
            if remembered:
                raise _Unbuildable(f"{remembered} (remembered in {marker}; delete it to retry)")
        try:
            _compile(folder, target, compiler)
        except _Unbuildable as error:
            if remember_failure:
                _remember_failure(marker, compiler, str(error))
            raise
        marker.unlink(missing_ok=True)
    return target


def _compile(folder: Path, target: Path, compiler: str) -> None:
    try:
        handle, partial = tempfile.mkstemp(prefix=".csr_matmul-", suffix=".tmp", dir=folder)
        os.close(handle)
    except OSError as error:
        raise _Unbuildable(f"cannot write to {folder}: {error.strerror}") from error
    command = [compiler, *FLAGS, *_tensorflow_flags(), str(SOURCES[0]), "-o", partial]
    command += tf.sysconfig.get_link_flags()
    timeout = float(os.environ.get("RECSYS_NATIVE_KERNEL_BUILD_TIMEOUT", "600"))
    started = time.perf_counter()
    try:
        returncode, messages = _run_compiler(command, timeout)
        if returncode != 0:
            errors = [line for line in messages.splitlines() if "error" in line]
            raise _Unbuildable(f"{compiler} failed: {(errors or ['no message'])[0].strip()}")
        if messages.strip():
            _log.info("%s warned while building the CSR kernel:\n%s", compiler, messages)
        with open(partial, "rb") as written:
            os.fsync(written.fileno())  # on disk before it is published under its name
        os.chmod(partial, 0o755)  # whatever the umask: the loader refuses group-writable files
        _publish(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)
    _log.info("built %s in %.1f s", target, time.perf_counter() - started)


def _run_compiler(command: list[str], timeout: float) -> tuple[int, str]:
    """The compiler's exit status and messages; past ``timeout`` seconds the compiler and every
    process it started (cc1plus, ld) are killed."""
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, killed as one
        )
    except FileNotFoundError as error:
        raise _Unbuildable(f"no C++ compiler {command[0]!r}") from error
    except OSError as error:
        raise _Unbuildable(f"cannot run {command[0]!r}: {error.strerror}") from error
    with process:
        try:
            messages, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as error:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise _Unbuildable(f"{command[0]} took over {timeout:g} s; stopped") from error
    return process.returncode, messages or ""


def _publish(partial: str, target: Path) -> None:
    """Gives ``partial`` its final name without replacing a file of that name."""
    try:
        os.link(partial, target)  # fails where the name exists: never overwrites
    except FileExistsError:
        return
    except OSError:
        if target.exists():  # a file system without hard links; the lock is held
            return
        os.rename(partial, target)
    with contextlib.suppress(OSError):
        directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _tensorflow_flags() -> list[str]:
    """TensorFlow's compile flags, its headers as system headers: their warnings are its own."""
    flags = []
    for flag in tf.sysconfig.get_compile_flags():
        flags += ["-isystem", flag[2:]] if flag.startswith("-I") else [flag]
    return flags


def _remembered_failure(marker: Path, compiler: str) -> str | None:
    try:
        remembered = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(remembered, dict) or remembered.get("compiler") != compiler:
        return None
    return str(remembered.get("reason", "an earlier build failed"))


def _remember_failure(marker: Path, compiler: str, reason: str) -> None:
    with contextlib.suppress(OSError):
        partial = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps({"compiler": compiler, "reason": reason}))
        os.replace(partial, marker)


def _clean(folder: Path) -> None:
    """Under the lock: temporary files of killed builds (a build holds the lock while it writes
    one), and other versions' builds and failure markers unused for STALE_SECONDS."""
    now = time.time()
    current = Path(library_name()).stem
    for path in folder.iterdir():
        try:
            age = now - path.lstat().st_mtime
            if path.name.startswith(".csr_matmul-") and path.name.endswith(".tmp"):
                path.unlink()
            elif re.fullmatch(r"tmp\w+\.so", path.name) and age > 3600:
                path.unlink()  # left by the builds before this lock
            elif (
                path.name.startswith("csr_matmul-")
                and path.suffix in (".so", ".failed")
                and path.stem != current
                and age > STALE_SECONDS
            ):
                path.unlink()
        except OSError:
            continue


def build(folder: Path | str) -> Path:
    """Builds this TensorFlow's kernel into ``folder`` (created) for shipping: an image's
    ``RECSYS_NATIVE_KERNEL_PATH`` or a wheel's ``recsys/model/kernels``. Remembers no failure."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return _build_into(folder, remember_failure=False)


def _register_gradient() -> None:
    """The op's gradient, so that a product on it can be differentiated by a tape: Mᵀ·g for the
    table, g for the addend (where one was given), ⟨g_row, table_col⟩ for each value."""

    @tf.RegisterGradient("RecsysCsrMatmul")
    def _gradient(op: Any, grad: tf.Tensor) -> list[tf.Tensor | None]:
        indptr, indices, values, table, addend = op.inputs
        rows = tf.shape(indptr, out_type=tf.int64)[0] - 1
        row_of = tf.repeat(tf.range(rows), indptr[1:] - indptr[:-1])
        skip = set(getattr(op, "skip_input_indices", None) or ())
        grad_table = grad_values = None
        if 3 not in skip:
            grad_table = tf.math.unsorted_segment_sum(
                values[:, None] * tf.gather(grad, row_of), indices, tf.shape(table)[0]
            )
        if 2 not in skip:
            grad_values = tf.reduce_sum(tf.gather(grad, row_of) * tf.gather(table, indices), 1)
        grad_addend = tf.cond(
            tf.size(addend) > 0, lambda: grad, lambda: tf.zeros_like(addend, tf.float32)
        )
        return [None, None, grad_values, grad_table, grad_addend]


with contextlib.suppress(KeyError):  # registered already (this file run as a script too)
    _register_gradient()


def main(argv: list[str] | None = None) -> int:
    """``build DIR``: build this TensorFlow's kernel into DIR and print its path; ``show``: say
    which kernel this process would use and from where."""
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the build's, and its warnings
    if len(args) == 2 and args[0] == "build":
        try:
            print(build(args[1]))
        except _Unbuildable as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return 0
    if args == ["show"]:
        kernel = csr_kernel()
        print(kernel.description)
        if kernel.path:
            print(kernel.path)
        return 0
    print("usage: python -m recsys.model.native_kernel build DIR | show", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
