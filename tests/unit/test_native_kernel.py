"""recsys's CSR kernel: its product, its build and cache, and when TensorFlow's is used instead."""

import os
import subprocess
import sys

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
    described, _ = _kernel_in_a_new_process({"RECSYS_CACHE_DIR": str(tmp_path)})
    assert described.startswith("recsys CSR kernel")
    (built,) = tmp_path.glob("csr_matmul-*.so")
    first = built.stat().st_mtime_ns
    assert _kernel_in_a_new_process({"RECSYS_CACHE_DIR": str(tmp_path)})[0] == described
    assert built.stat().st_mtime_ns == first
    assert [path.name for path in tmp_path.iterdir()] == [built.name]  # no partial files left


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
