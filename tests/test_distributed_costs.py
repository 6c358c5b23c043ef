"""The job-time model of gdfast.distributed.costs: its arithmetic and its compute probe."""

import numpy as np
import pytest

from gdfast.distributed import generated
from gdfast.distributed.costs import Costs, predict, probe_compute


def test_each_bound_of_the_model_binds_where_it_should():
    costs = Costs(gradient=1e-3, local_step=1e-5, server_update=1e-4, rule=1e-5)
    assert costs.messages() == pytest.approx(9e-5)
    assert costs.worker_step() == pytest.approx(1.09e-3)
    one = predict(costs, 1, 1000, cores=64)
    assert one["time"] == one["workers"] == pytest.approx(1.09)  # one worker: its steps
    assert one["one_process"] == pytest.approx(1.01)  # so one process wins
    many = predict(costs, 10, 1000, cores=64)  # ten workers: 0.109 s each, server 0.1 s
    assert many["time"] == pytest.approx(0.109) and many["time"] < many["one_process"]
    assert predict(costs, 100, 1000, cores=64)["time"] == pytest.approx(0.1)  # the server
    crowded = predict(costs, 10, 1000, cores=2)  # 11 ranks on 2 cores: the CPU bound
    assert crowded["time"] == crowded["cores"] == pytest.approx(crowded["cpu"] / 2)
    assert crowded["cpu"] == pytest.approx(1000 * (1e-4 + 1.09e-3))


def test_a_server_slower_than_a_whole_step_never_pays():
    costs = Costs(gradient=1e-4, local_step=1e-5, server_update=5e-4, rule=1e-5)
    for workers in (1, 4, 1000):
        p = predict(costs, workers, 100, cores=10_000)
        assert p["time"] > p["one_process"]


@pytest.mark.parametrize("algorithm", ["downpour", "adaptive_revision"])
def test_compute_probe_measures_positive_cpu_times(algorithm):
    data = generated("least_squares", 256, 15)
    g, a, r = probe_compute(algorithm, data.objective, np.zeros(16), (data.X, data.y), 64, 3)
    assert g > 0 and a > 0 and r > 0
    if algorithm == "downpour":
        assert r == a  # the Downpour server's rule is one process's Adagrad step
