"""recsys's CSR kernel: its product, its build and cache, and when TensorFlow's is used instead."""

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from recsys.model import native_kernel
from recsys.model.lightgcn import BlockedProduct
from tests.conftest import require_native_kernel


def _parts(matrix: sp.csr_matrix) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    return (
        tf.constant(matrix.indptr.astype(np.int64)),
        tf.constant(matrix.indices.astype(np.int32)),
        tf.constant(matrix.data.astype(np.float32)),
    )


@pytest.fixture
def kernel() -> native_kernel.CsrKernel:
    require_native_kernel()
    return native_kernel.csr_kernel()


# Widths below, at and above a vector (8 or 16 floats) and a pass (64), with and without a tail.
@pytest.mark.parametrize("dim", [1, 3, 8, 16, 20, 48, 64, 100, 130])
def test_product_matches_scipy(kernel: native_kernel.CsrKernel, dim: int) -> None:
    rng = np.random.default_rng(dim)
    matrix = sp.random(300, 200, density=0.05, format="csr", random_state=rng, dtype=np.float32)
    matrix = (sp.diags(np.arange(300) >= 40, dtype=np.float32) @ matrix).tocsr()
    matrix.eliminate_zeros()  # rows 0-39 without nonzeros
    table = rng.normal(size=(200, dim)).astype(np.float32)
    product = kernel.matmul(*_parts(matrix), tf.constant(table)).numpy()
    assert product.shape == (300, dim)
    np.testing.assert_allclose(product, matrix @ table.astype(np.float64), rtol=1e-5, atol=1e-5)
    assert not product[:40].any()
    assert np.array_equal(product, kernel.matmul(*_parts(matrix), tf.constant(table)).numpy())


def test_product_starts_each_row_from_its_addend(kernel: native_kernel.CsrKernel) -> None:
    rng = np.random.default_rng(7)
    matrix = sp.random(50, 40, density=0.1, format="csr", random_state=rng, dtype=np.float32)
    table, addend = rng.normal(size=(40, 20)), rng.normal(size=(50, 20))
    summed = kernel.matmul(
        *_parts(matrix), tf.constant(table, tf.float32), tf.constant(addend, tf.float32)
    )
    np.testing.assert_allclose(summed.numpy(), addend + matrix @ table, rtol=1e-5, atol=1e-5)
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="addend must have the product's shape"
    ):
        kernel.matmul(*_parts(matrix), tf.constant(table, tf.float32), tf.ones([49, 20]))


def test_matrix_without_rows_or_nonzeros(kernel: native_kernel.CsrKernel) -> None:
    table = tf.ones([5, 64])
    assert kernel.matmul(*_parts(sp.csr_matrix((0, 5), dtype=np.float32)), table).shape == (0, 64)
    empty = kernel.matmul(*_parts(sp.csr_matrix((4, 5), dtype=np.float32)), table).numpy()
    assert empty.shape == (4, 64) and not empty.any()


def test_offsets_that_do_not_span_the_nonzeros_are_refused(kernel: native_kernel.CsrKernel) -> None:
    indptr, indices, values = _parts(sp.eye(3, format="csr", dtype=np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="indptr does not span"):
        kernel.matmul(indptr[:-1], indices, values, tf.ones([3, 8]))


# Malformed CSR input, each case: offsets, column numbers, the table's rows, and the error. The
# cases run in one child process (_malformed_outcomes) so that a kernel which crashes on one
# shows as failed tests instead of killing pytest.
MALFORMED = {
    "column past the table": (
        [0, 1, 2],
        [0, 3],
        3,
        r"indices\[1\] = 3 is outside the table's 3 rows",
    ),
    "column of 2e9": ([0, 1, 2], [0, 2_000_000_000], 3, r"indices\[1\] = 2000000000 is outside"),
    "negative column": ([0, 1, 2], [0, -1], 3, r"indices\[1\] = -1 is outside"),
    "most negative column": ([0, 1, 2], [-(2**31), 0], 3, r"indices\[0\] = -2147483648 is outside"),
    "table without rows": ([0, 1], [0], 0, r"indices\[0\] = 0 is outside the table's 0 rows"),
    "decreasing offsets": (
        [0, 2, 1, 2],
        [0, 1],
        3,
        r"indptr\[1\] = 2 and indptr\[2\] = 1: offsets",
    ),
    "offset past the nonzeros": ([0, 9, 2], [0, 1], 3, r"indptr\[0\] = 0 and indptr\[1\] = 9"),
    "negative offset": ([0, -5, 2], [0, 1], 3, r"indptr\[0\] = 0 and indptr\[1\] = -5"),
    "indptr[0] not 0": (
        [1, 1, 2],
        [0, 1],
        3,
        r"indptr does not span the nonzeros: indptr\[0\] = 1",
    ),
    "indptr[-1] not nnz": ([0, 1, 3], [0, 1], 3, r"indptr\[2\] = 3, not 0 and 2"),
    "empty indptr": ([], [], 3, r"indptr must be a vector of rows \+ 1 offsets"),
    "values and indices differ": ([0, 1, 2], [0, 1, 2], 3, r"indices and values differ in length"),
    # 20,000 rows shared among threads: the fault lies in the last thread's rows.
    "late column past the table": (
        list(range(20_001)),
        [*range(19_999), 20_000],
        20_000,
        r"indices\[19999\] = 20000 is outside the table's 20000 rows",
    ),
    "scalar indptr at trace time": (None, None, 3, r"Shape must be rank 1 but is rank 0"),
    "vector table at trace time": (None, None, 3, r"Shape must be rank 2 but is rank 1"),
}

_MALFORMED_RUNNER = r"""
import json, sys
import numpy as np
import tensorflow as tf
from recsys.model.native_kernel import csr_kernel

kernel = csr_kernel()
assert kernel.available, kernel.description
for name, (indptr, indices, table_rows, _) in json.loads(sys.stdin.read()).items():
    print(json.dumps({"case": name, "started": True}), flush=True)
    try:
        if name == "scalar indptr at trace time":
            tf.function(lambda: kernel.matmul(
                tf.constant(0, tf.int64), tf.constant([0]), tf.constant([1.0]), tf.ones([3, 8])
            )).get_concrete_function()
        elif name == "vector table at trace time":
            tf.function(lambda: kernel.op.recsys_csr_matmul(
                tf.constant([0, 1], tf.int64), tf.constant([0]), tf.constant([1.0]),
                tf.ones([3]), tf.zeros([0, 8])
            )).get_concrete_function()
        else:
            n_values = 2 if name == "values and indices differ" else len(indices)
            kernel.matmul(
                tf.constant(np.array(indptr, np.int64)),
                tf.constant(np.array(indices, np.int32)),
                tf.ones([n_values]),
                tf.ones([table_rows, 8]),
            ).numpy()
        outcome = "no error"
    except tf.errors.InvalidArgumentError as error:
        outcome = "InvalidArgumentError: " + error.message
    except ValueError as error:
        outcome = "ValueError: " + str(error)
    print(json.dumps({"case": name, "outcome": outcome}), flush=True)
"""


@pytest.fixture(scope="module")
def malformed_outcomes() -> dict[str, str]:
    """Each malformed case's outcome, all in one child process while none crashes it; after a
    crash a new process goes on from the next case."""
    require_native_kernel()
    outcomes: dict[str, str] = {}
    while len(outcomes) < len(MALFORMED):
        remaining = {name: case for name, case in MALFORMED.items() if name not in outcomes}
        shown = subprocess.run(
            [sys.executable, "-c", _MALFORMED_RUNNER],
            input=json.dumps(remaining),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        started = None
        for line in shown.stdout.splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                started = record["case"]
                if "outcome" in record:
                    outcomes[started] = record["outcome"]
                    started = None
        if started is None:
            assert shown.returncode == 0, shown.stderr
            continue
        outcomes[started] = f"the process died (exit status {shown.returncode})"
    return outcomes


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_csr_is_refused_with_an_error_not_a_crash(
    malformed_outcomes: dict[str, str], case: str
) -> None:
    outcome = malformed_outcomes[case]
    assert outcome.startswith(("InvalidArgumentError", "ValueError")), outcome
    assert re.search(MALFORMED[case][3], outcome), outcome


def test_the_product_has_a_gradient(kernel: native_kernel.CsrKernel) -> None:
    rng = np.random.default_rng(11)
    matrix = sp.random(40, 30, density=0.2, format="csr", random_state=rng, dtype=np.float32)
    table = tf.Variable(rng.normal(size=(30, 12)), dtype=tf.float32)
    addend = tf.Variable(rng.normal(size=(40, 12)), dtype=tf.float32)
    indptr, indices, values = _parts(matrix)
    values = tf.Variable(values)
    weights = rng.normal(size=(40, 12)).astype(np.float32)
    with tf.GradientTape() as tape:
        product = kernel.matmul(indptr, indices, values, table, addend)
        loss = tf.reduce_sum(product * weights)
    grad_values, grad_table, grad_addend = tape.gradient(loss, [values, table, addend])
    np.testing.assert_allclose(grad_table.numpy(), matrix.T @ weights, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(grad_addend.numpy(), weights)
    rows = np.repeat(np.arange(40), np.diff(matrix.indptr))
    expected = (weights[rows] * table.numpy()[matrix.indices]).sum(axis=1)
    np.testing.assert_allclose(grad_values.numpy(), expected, rtol=1e-5, atol=1e-5)
    with tf.GradientTape() as tape:  # no addend
        loss = tf.reduce_sum(kernel.matmul(indptr, indices, values, table) * weights)
    np.testing.assert_allclose(
        tape.gradient(loss, table).numpy(), matrix.T @ weights, rtol=1e-5, atol=1e-5
    )


def test_blocked_product_taped_on_its_own(kernel: native_kernel.CsrKernel) -> None:
    rng = np.random.default_rng(12)
    matrix = sp.random(200, 300, density=0.03, format="csr", random_state=rng, dtype=np.float32)
    table = tf.Variable(rng.normal(size=(300, 16)), dtype=tf.float32)
    weights = rng.normal(size=(200, 16)).astype(np.float32)
    for native in (True, False):
        product = BlockedProduct(matrix, 16, 100 * 4 * 16, native=native)  # 3 blocks
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(product(table) * weights)
        np.testing.assert_allclose(
            tape.gradient(loss, table).numpy(), matrix.T @ weights, rtol=1e-4, atol=1e-4
        )
        with pytest.raises(ValueError, match="a table of 299 rows for a matrix of 300 columns"):
            product(table[:299])


def _isa_products(cap: str) -> tuple[str, np.ndarray]:
    """The ISA a fresh process runs the product on under RECSYS_NATIVE_KERNEL_ISA=cap, and its
    products of ISA_DIMS widths, concatenated."""
    script = (
        "import sys, numpy as np, scipy.sparse as sp, tensorflow as tf\n"
        "from recsys.model.native_kernel import csr_kernel\n"
        "from tests.unit.test_native_kernel import isa_products\n"
        "kernel = csr_kernel()\n"
        "np.save(sys.argv[1], isa_products(kernel))\n"
        "print(kernel.description)\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / "products.npy"
        shown = subprocess.run(
            [sys.executable, "-c", script, str(saved)],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "RECSYS_NATIVE_KERNEL_ISA": cap},
            check=True,
        )
        return shown.stdout.strip(), np.load(saved)


def isa_products(kernel: native_kernel.CsrKernel) -> np.ndarray:
    rng = np.random.default_rng(3)
    matrix = sp.random(120, 90, density=0.1, format="csr", random_state=rng, dtype=np.float32)
    products = []
    for dim in (3, 20, 64, 100):  # a tail only; vectors and a tail; one pass; passes and a tail
        table = tf.constant(rng.normal(size=(90, dim)), tf.float32)
        addend = tf.constant(rng.normal(size=(120, dim)), tf.float32)
        products.append(kernel.matmul(*_parts(matrix), table, addend).numpy().ravel())
    return np.concatenate(products)


def _cpu_flags() -> set[str]:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(next(line for line in info.splitlines() if line.startswith("flags")).split())


def test_one_build_runs_each_instruction_set(kernel: native_kernel.CsrKernel) -> None:
    """The build picks AVX-512, AVX2 or SSE2 at run time: capped, a process runs the lower
    set, AVX2 gives AVX-512's bits (a fused multiply-add per nonzero and column in both) and
    SSE2 the same products within float32 rounding."""
    flags = _cpu_flags()
    best = kernel.description
    assert "march=native" not in " ".join(native_kernel.FLAGS)
    if {"avx512f", "avx2", "fma"} <= flags:
        assert best == "recsys CSR kernel (AVX-512)"
    ours = isa_products(kernel)
    sse2_described, sse2 = _isa_products("sse2")
    assert sse2_described == "recsys CSR kernel (SSE2)"
    np.testing.assert_allclose(sse2, ours, rtol=1e-5, atol=1e-5)
    if {"avx2", "fma"} <= flags:
        avx2_described, avx2 = _isa_products("avx2")
        assert avx2_described == "recsys CSR kernel (AVX2)"
        assert np.array_equal(avx2, ours)


def test_blocked_product_on_the_kernel_equals_tensorflows(kernel: native_kernel.CsrKernel) -> None:
    rng = np.random.default_rng(5)
    matrix = sp.random(500, 900, density=0.02, format="csr", random_state=rng, dtype=np.float32)
    table = tf.constant(rng.normal(size=(900, 64)), tf.float32)
    for block_bytes in (None, 100 * 4 * 64):  # one block; nine blocks of 100 table rows
        ours = BlockedProduct(matrix, 64, block_bytes, native=True)
        theirs = BlockedProduct(matrix, 64, block_bytes, native=False)
        assert len(ours.blocks) == len(theirs.blocks)
        np.testing.assert_allclose(ours(table).numpy(), theirs(table).numpy(), atol=1e-5)


def _kernel_in_a_new_process(env: dict[str, str]) -> tuple[str, str]:
    """(description, error output) of the kernel a fresh process gets under ``env``."""
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "from recsys.model.native_kernel import csr_kernel; print(csr_kernel().description)",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
        check=True,
    )
    return shown.stdout.strip(), shown.stderr


def test_built_once_into_the_cache_and_reused(tmp_path) -> None:
    require_native_kernel()
    if (native_kernel.KERNELS / native_kernel.library_name()).exists():
        pytest.skip("a kernel is built into recsys/model/kernels, found before the cache")
    described, _ = _kernel_in_a_new_process({"RECSYS_CACHE_DIR": str(tmp_path)})
    assert described.startswith("recsys CSR kernel")
    (built,) = tmp_path.glob("csr_matmul-*.so")
    first = built.stat().st_mtime_ns
    assert _kernel_in_a_new_process({"RECSYS_CACHE_DIR": str(tmp_path)})[0] == described
    assert built.stat().st_mtime_ns == first
    # No partial files left; the build's lock stays.
    assert sorted(path.name for path in tmp_path.iterdir()) == [".lock", built.name]


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"RECSYS_NATIVE_KERNEL": "0"}, "RECSYS_NATIVE_KERNEL=0"),
        ({"CXX": "/nonexistent/c++"}, "no C++ compiler '/nonexistent/c++'"),
        ({"CXX": "false"}, "false failed"),
        ({"RECSYS_CACHE_DIR": "/dev/null/recsys"}, "cannot write to /dev/null/recsys"),
    ],
)
def test_tensorflows_kernel_and_the_reason_where_it_cannot_be_built(
    tmp_path, env: dict[str, str], reason: str
) -> None:
    described, _ = _kernel_in_a_new_process({"RECSYS_CACHE_DIR": str(tmp_path), **env})
    assert described.startswith("TensorFlow's CSR kernel")
    assert reason in described
    assert not list(tmp_path.glob("*.so"))
