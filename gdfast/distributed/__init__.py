"""Distributed SGD (SPEC.md section 3): Downpour, AdaptiveRevision and Elastic Averaging SGD
on MPI through mpi4py (the optional `mpi` extra), and a deterministic staleness simulator.

    # on every rank:  mpiexec -n 4 python my_script.py
    from gdfast.distributed import train, LeastSquares
    result = train("downpour", LeastSquares(), w0, (X_mine, y_mine), n_servers=1, lr=0.1)

    # in one process, no MPI:
    from gdfast.distributed import simulate, sparse_logistic
    run = simulate("adaptive_revision", sparse_logistic(), workers=1000, updates=50_000)

The command line: `mpiexec -n 4 python -m gdfast.distributed train ...` and
`python -m gdfast.distributed simulate ...` (see `--help`).  mpi4py is imported only
when `train` runs, so the simulator works without it.
"""

from .config import ALGORITHMS, DistributedConfigError, TrainResult
from .job import train
from .objectives import (
    Dataset,
    LeastSquares,
    Logistic,
    Objective,
    generated,
    scikit_learn,
    sparse_logistic,
)
from .rules import adaptive_revision, adaptive_revision_state, easgd_synchronous, elastic_exchange
from .simulate import DELAY_MODELS, SimulationResult, simulate
from .transport import PeerSilentError

__all__ = [
    "train",
    "simulate",
    "TrainResult",
    "SimulationResult",
    "DistributedConfigError",
    "PeerSilentError",
    "ALGORITHMS",
    "DELAY_MODELS",
    "Objective",
    "LeastSquares",
    "Logistic",
    "Dataset",
    "generated",
    "scikit_learn",
    "sparse_logistic",
    "adaptive_revision",
    "adaptive_revision_state",
    "easgd_synchronous",
    "elastic_exchange",
]
