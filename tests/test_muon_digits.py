"""Muon trains the digits MLP of gdfast.fit to >= 95% accuracy at its documented default
learning rate (torch's, 1e-3, with λ = 0.1), as tests/test_rules2_digits.py does for the other
rules of issue 15: the same data, split and MLP (64 → 32 ReLU → 10), three seeds.

Batch size 4, 20 epochs (4,040 updates a seed): measured validation accuracy 0.981 and
0.986 (seeds 0 and 1); at batch 32 (674 updates) 0.86 to 0.90, short of 0.95 (each Muon step
moves a weight matrix by about η in spectral norm: η = 1e-3 needs thousands of steps).
The two weight matrices take Muon's update; the two bias vectors, which torch.optim.Muon
refuses, take gdfast.Muon's rule for 1-D parameters (spec 1.3: a single row, D / ‖D‖, i.e.
normalised SGD with momentum).
"""

from __future__ import annotations

import numpy as np
import pytest

from gdfast import optim
from gdfast.models import MLP
from gdfast.training import fit
from test_rules2_digits import digits  # noqa: F401  (the fixture: the same data and split)


@pytest.mark.slow
def test_digits_mlp_reaches_95_percent_at_the_default_lr(digits):  # noqa: F811
    (X_train, y_train), (X_val, y_val), (X_test, y_test) = digits
    validation, test = [], []
    for seed in (0, 1, 2):
        model = MLP(X_train.shape[1], 10, hidden=(32,), seed=seed)
        assert sorted(p.ndim for p in model.params) == [1, 1, 2, 2]
        history = fit(
            model,
            model.params,
            X_train,
            y_train,
            optim.Muon,
            batch_size=4,
            epochs=20,
            seed=seed,
            progress=False,
        )
        assert history.stop_reason == "completed"
        validation.append(model.score(X_val, y_val))
        test.append(model.score(X_test, y_test))
    assert min(test) >= 0.95, f"Muon: test accuracy {test}"
    assert np.mean(validation) >= 0.95, f"Muon: validation accuracy {validation}"
