"""Sparse data (CSR) and sparse messages in gdfast.distributed: a push carries only the
coordinates a worker's batches touched, a fetch asks only for the coordinates of the next
batches, and the servers end with the dense protocol's bits."""

import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gdfast.distributed import LeastSquares, generated, sparse_logistic, train
from gdfast.distributed.config import check_arrays
from gdfast.distributed.recorder import Batches, columns
from gdfast.distributed.transport import pack_push, unpack_push

sparse = pytest.importorskip("scipy.sparse")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k,rows", [(0, 1), (1, 1), (5, 4)])
@pytest.mark.parametrize("form", ["dense", "sparse"])
def test_a_push_message_round_trips(dtype, k, rows, form):
    indices = np.arange(k, dtype=np.int32) * 3 if form == "sparse" else None  # CSR: int32
    values = np.arange(rows * k, dtype=dtype).reshape(rows, k)
    reads = np.arange(rows) + 7
    message = pack_push(reads, values, indices)
    header = 8 * (1 + rows) + (8 + 8 * k if form == "sparse" else 0)
    assert message.nbytes == header + rows * k * np.dtype(dtype).itemsize
    got_reads, got_indices, got_values = unpack_push(message, np.dtype(dtype), form == "sparse")
    assert np.array_equal(got_reads, reads)
    if form == "sparse":
        assert got_indices.dtype == np.int64 and np.array_equal(got_indices, indices)
    else:
        assert got_indices is None
    assert got_values.dtype == dtype and got_values.shape == (rows, k)
    assert np.array_equal(got_values, values)
    # into a larger buffer (a worker's reused one): its first bytes are the message
    buffer = np.zeros(message.nbytes + 64, np.uint8)
    assert np.array_equal(pack_push(reads, values, indices, out=buffer), message)


def test_columns_of_a_batch_dense_and_csr():
    X = np.array([[0.0, 1.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])
    assert columns(X).tolist() == [0, 1]
    assert columns(sparse.csr_matrix(X)).tolist() == [0, 1]
    assert columns(sparse.csr_matrix(X)).dtype == np.int64


def test_peeking_ahead_does_not_change_the_batch_stream():
    data = sparse_logistic(200, 30, seed=1)
    X = sparse.csr_matrix(data.X)
    plain, peeking = Batches((X, data.y), 4, 0, 1, 0), Batches((X, data.y), 4, 0, 1, 0)
    for step in range(20):
        if step % 3 == 0:
            peeking.peek(3)
        a, b = plain.next(), peeking.next()
        assert (a[0] != b[0]).nnz == 0 and np.array_equal(a[1], b[1])


def test_csr_data_is_checked_and_copied():
    data = generated("least_squares", 16, 3)
    X = sparse.csr_matrix(data.X)
    _, (copied, _), _ = check_arrays(np.zeros(4), (X, data.y), "worker")
    assert copied is not X and copied.format == "csr"
    X.data[:] = 7.0  # the caller's matrix changes; the job's copy does not
    assert not np.array_equal(copied.toarray(), X.toarray())
    with pytest.raises(ValueError, match="CSR format"):
        check_arrays(np.zeros(4), (X.tocsc(), data.y), "worker")
    broken = sparse.csr_matrix(data.X)
    broken.indices[0] = 99  # a column beyond the matrix
    with pytest.raises(ValueError):
        check_arrays(np.zeros(4), (broken, data.y), "worker")
    with pytest.raises(ValueError, match="3 columns but params has 5"):
        check_arrays(np.zeros(5), (sparse.csr_matrix(np.ones((2, 3))), np.ones(2)), "worker")


def test_sparse_messages_need_an_algorithm_that_pushes_gradients():
    class OneRank:
        rank, size = 0, 2

        def allgather(self, value):
            return [value, value]

    with pytest.raises(ValueError, match="sparse: sparse messages are for"):
        train("easgd", LeastSquares(), np.zeros(3), None, comm=OneRank(), sparse=True)


# ------------------------------------------------------------------ under MPI
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

SAME_MODEL = """
import numpy as np
from scipy import sparse
from mpi4py import MPI
from gdfast.distributed import train, sparse_logistic
from gdfast.distributed.recorder import Batches, columns
comm = MPI.COMM_WORLD
n_servers, n_push, batch_size, steps = 2, 2, 4, 120
data = sparse_logistic(1000, 300, seed=2)
X = sparse.csr_matrix(data.X)
worker = comm.rank - n_servers
mine = (X[worker::1], data.y[worker::1]) if worker >= 0 else None
dense_mine = (data.X, data.y) if worker >= 0 else None
for algorithm in ("downpour", "adaptive_revision"):
    results = {}
    for name, part, messages in (("dense", mine, False), ("sparse", mine, True),
                                 ("dense data", dense_mine, False)):
        results[name] = train(algorithm, data.objective, np.zeros(301), part,
                              n_servers=n_servers, lr=0.5, steps=steps, n_push=n_push,
                              batch_size=batch_size, sparse=messages, seed=4, log=print)
    same = results["dense"].params.tobytes() == results["sparse"].params.tobytes()
    close = np.allclose(results["dense data"].params, results["dense"].params, rtol=1e-9, atol=0)
    moved = np.abs(results["sparse"].params).max()
    if comm.rank == n_servers:
        traffic = results["sparse"].traffic
        # the bytes a sparse push must carry: per push, per server a header (r, r fetch
        # numbers, k) and each touched coordinate's index and values (r rows: Downpour 1,
        # AdaptiveRevision one per fetch the period's gradients used, here n_push)
        stream = Batches(mine, batch_size, 4, comm.rank, 0)
        expected = 0
        for push in range(traffic["pushes"]):
            touched = np.unique(np.concatenate([columns(stream.next()[0]) for _ in range(n_push)]))
            rows = 1 if algorithm == "downpour" else n_push
            expected += 8 * (2 + rows) * n_servers + touched.size * (8 + rows * 8)
        dense_bytes = results["dense"].traffic["push_bytes"] / results["dense"].traffic["pushes"]
        print(f"{algorithm}: same {same} close {close} moved {moved:.3f} push bytes "
              f"{traffic['push_bytes']} expected {expected} dense per push {dense_bytes:.0f} "
              f"sparse per push {traffic['push_bytes'] / traffic['pushes']:.0f}", flush=True)
"""


@pytest.mark.mpi
@pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec on PATH (pip install mpich)")
def test_sparse_and_dense_messages_give_the_same_model_bit_for_bit(tmp_path):
    """1 worker, 2 servers (deterministic: one sender), n_push = 2 (AdaptiveRevision: two
    gradients per push, each with the number of the fetch whose ḡ the server kept): CSR data with dense and with sparse messages end with the
    same bits; the same data as a dense ndarray agrees to rounding (BLAS sums in another
    order); a sparse push carries exactly its touched coordinates."""
    pytest.importorskip("mpi4py")
    script = tmp_path / "same_model.py"
    script.write_text(textwrap.dedent(SAME_MODEL))
    run = subprocess.run(
        [MPIEXEC, "-n", "3", sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert run.returncode == 0, run.stderr
    for algorithm in ("downpour", "adaptive_revision"):
        line = next(line for line in run.stdout.splitlines() if line.startswith(algorithm + ":"))
        print(line)
        found = dict(
            re.findall(
                r"(same|close|moved|bytes|expected|dense per push|sparse per push) (\S+)", line
            )
        )
        assert found["same"] == "True" and found["close"] == "True", line
        assert float(found["moved"]) > 0.05, line  # the model did move
        assert found["bytes"] == found["expected"], line  # exactly the touched coordinates
        assert float(found["sparse per push"]) < float(found["dense per push"]) / 2, line
