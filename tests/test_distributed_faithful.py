"""gdfast.distributed against literal NumPy renderings of the papers' algorithms.

With one worker an asynchronous job is deterministic (messages between two ranks keep
their order), so the MPI run must reproduce, to SPEC's 1e-12, a plain loop that
follows the paper line by line with the same mini-batches:
- EASGD and EAMSGD: Zhang, Choromanska & LeCun (2015) Algorithms 1 and 2 (the elastic
  force on x_i, the gradient at the x read before the exchange, plus Nesterov's δ v_i);
- synchronous EASGD with communication period τ (two ranks, Allreduce);
- AdaptiveRevision with n_fetch < n_push: one (g, ḡ_read) pair per fetch (McMahan &
  Streeter 2014; the engine's server keeps ḡ_read, the rendering passes it along), and
  Downpour's pipelined fetch (sent before the step it overlaps);
- an EAMSGD job resumed from a checkpoint finishes bit for bit like the uninterrupted one
  (velocities, x_i and the batch stream restored).
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("mpi4py")

pytestmark = pytest.mark.mpi  # starts MPI processes: -m "not mpi" leaves them out
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))
if MPIEXEC is None:  # pragma: no cover - depends on the machine
    pytest.skip("no mpiexec on PATH (pip install mpich)", allow_module_level=True)

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

SCRIPT = r"""
import json, math, sys
import numpy as np
from mpi4py import MPI
from gdfast.distributed import adaptive_revision, adaptive_revision_state, generated, train

case, out = sys.argv[1], sys.argv[2]
options = json.loads(sys.argv[3])
comm = MPI.COMM_WORLD
data = generated("least_squares", 256, 5, seed=2)
objective, w0, batch, seed = data.objective, np.zeros(6), 16, 0
grad = objective.gradient


def batches(rank, X, y):
    rng = np.random.default_rng([seed, rank, 0])
    while True:
        rows = rng.integers(len(y), size=min(batch, len(y)))
        yield X[rows], y[rows]


def elastic(momentum, lr, rho, tau, steps):
    # Zhang et al. (2015) Algorithm 2 (Algorithm 1 when momentum = 0), one worker
    alpha = lr * rho
    center, x_i, v = w0.copy(), w0.copy(), np.zeros_like(w0)
    draw = batches(1, data.X, data.y)
    last = math.ceil(steps / tau) * tau      # the servers' budget: ceil(steps/tau) exchanges
    for t in range(last + 1):
        x = x_i.copy()
        if t % tau == 0:
            x_i = x_i - alpha * (x - center)
            center = center + alpha * (x - center)
            if t == last:
                break
        X, y = next(draw)
        v = momentum * v - lr * grad(x + momentum * v, X, y)
        x_i = x_i + v
    return center, x_i


def synchronous(lr, rho, tau, steps):
    alpha = lr * rho
    xs, center = [w0.copy(), w0.copy()], w0.copy()
    draws = [batches(r, *data.shard(r, 2)[:2]) for r in range(2)]
    for t in range(steps):
        grads = [grad(x, *next(draw)) for x, draw in zip(xs, draws)]
        if t % tau == 0:
            diffs = [x - center for x in xs]
            xs = [x - lr * (g + rho * d) for x, g, d in zip(xs, grads, diffs)]
            center = center + alpha * (diffs[0] + diffs[1])
        else:
            xs = [x - lr * g for x, g in zip(xs, grads)]
    return center, xs[comm.rank]


def revision(lr, eps, n_push, steps):
    # one worker fetching every step (the fetch sent before the step it overlaps, so it
    # misses that step's push) and pushing every n_push steps one (Σ g, ḡ_read) per fetch
    x_s, state = w0.copy(), adaptive_revision_state(w0, eps)
    budget, pushes, done = math.ceil(steps / n_push), 0, 0
    x, read = x_s.copy(), state["gbar"].copy()
    pairs = []
    draw = batches(1, data.X, data.y)
    while True:
        fetched = (x_s.copy(), state["gbar"].copy(), pushes >= budget)
        pairs.append((grad(x, *next(draw)), read))
        done += 1
        if done % n_push == 0:
            if pushes < budget:
                for g, r in pairs:
                    adaptive_revision(x_s, g, r, state["gbar"], state["sum_sq"],
                                      state["sqrt_sum_sq_max"], lr=lr, eps=eps)
                pushes += 1
            pairs = []
        x, read, stop = fetched
        if stop:
            return x_s, x


if case == "elastic":
    algorithm = options.pop("algorithm")
    result = train(algorithm, objective, w0.copy(), (data.X, data.y) if comm.rank else None,
                   batch_size=batch, seed=seed, **options)
    momentum = options["momentum"] if algorithm == "eamsgd" else 0.0
    expected = elastic(momentum, options["lr"], options["rho"], options["tau"],
                       options["steps"])
elif case == "synchronous":
    result = train("easgd", objective, w0.copy(), data.shard(comm.rank, 2)[:2],
                   synchronous=True, batch_size=batch, seed=seed, **options)
    expected = synchronous(options["lr"], options["rho"], options["tau"], options["steps"])
elif case == "revision":
    result = train("adaptive_revision", objective, w0.copy(),
                   (data.X, data.y) if comm.rank else None, batch_size=batch, seed=seed,
                   **options)
    expected = revision(options["lr"], options["eps"], options["n_push"], options["steps"])
elif case == "run":
    result = train(options.pop("algorithm"), objective, w0.copy(),
                   (data.X, data.y) if comm.rank else None, batch_size=batch, seed=seed,
                   **options)
    expected = (result.params, result.local_params)
rank = comm.size - 1
if comm.rank == rank:
    np.savez(out, params=result.params, local=result.local_params, expected_params=expected[0],
             expected_local=expected[1])
"""


def run(tmp_path, ranks, case, **options):
    script = tmp_path / "faithful.py"
    script.write_text(SCRIPT)
    out = tmp_path / f"{case}-{len(list(tmp_path.glob('*.npz')))}.npz"
    job = subprocess.run(
        [
            MPIEXEC,
            "-n",
            str(ranks),
            sys.executable,
            str(script),
            case,
            str(out),
            json.dumps(options),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=ENV,
    )
    assert job.returncode == 0, job.stderr
    with np.load(out) as saved:
        return {name: saved[name] for name in saved.files}


def relative_error(a, b):
    return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(b))), 1e-300)


@pytest.mark.parametrize("algorithm", ["easgd", "eamsgd"])
def test_elastic_averaging_is_zhang_et_al_algorithm(tmp_path, algorithm):
    got = run(
        tmp_path, 2, "elastic", algorithm=algorithm, lr=0.05, rho=2.0, tau=3, momentum=0.8, steps=60
    )
    assert relative_error(got["params"], got["expected_params"]) < 1e-12
    assert relative_error(got["local"], got["expected_local"]) < 1e-12
    assert not np.allclose(got["params"], 0)  # the center did move


def test_synchronous_easgd_honours_tau(tmp_path):
    results = {
        tau: run(tmp_path, 2, "synchronous", lr=0.05, rho=2.0, tau=tau, steps=40) for tau in (1, 5)
    }
    for got in results.values():
        assert relative_error(got["params"], got["expected_params"]) < 1e-12
        assert relative_error(got["local"], got["expected_local"]) < 1e-12
    # τ changes the trajectory (it was accepted and ignored)
    assert relative_error(results[1]["params"], results[5]["params"]) > 1e-3


def test_adaptive_revision_pushes_one_gbar_read_per_fetch(tmp_path):
    got = run(tmp_path, 2, "revision", lr=0.3, eps=1e-8, n_fetch=1, n_push=3, steps=60)
    assert relative_error(got["params"], got["expected_params"]) < 1e-12
    assert relative_error(got["local"], got["expected_local"]) < 1e-12


def test_eamsgd_resumes_bit_for_bit_with_velocities_and_x_i(tmp_path):
    common = dict(
        algorithm="eamsgd", lr=0.05, rho=2.0, tau=4, momentum=0.8, steps=200, checkpoint_every=10
    )
    full = run(tmp_path, 2, "run", checkpoint_dir=str(tmp_path / "full"), **common)
    # the same job "killed" after 30 updates: only the checkpoints up to 30 are left
    cut = tmp_path / "cut"
    shutil.copytree(tmp_path / "full", cut)
    for path in cut.glob("*.npz"):
        if int(path.stem.split("-")[-1]) > 30:
            path.unlink()
    assert sorted(p.name for p in cut.glob("worker-*")) == [
        "worker-1-000000000020.npz",
        "worker-1-000000000030.npz",
    ]
    resumed = run(tmp_path, 2, "run", checkpoint_dir=str(cut), resume=True, **common)
    assert np.array_equal(resumed["params"], full["params"])
    assert np.array_equal(resumed["local"], full["local"])
    # without the worker's file (velocity 0, x_i = x̃) the run differs: the test can fail
    for path in cut.glob("worker-*"):
        path.unlink()
    for path in cut.glob("server-*"):
        if int(path.stem.split("-")[-1]) > 30:
            path.unlink()
    fresh = run(tmp_path, 2, "run", checkpoint_dir=str(cut), resume=True, **common)
    assert not np.array_equal(fresh["local"], full["local"])
