"""The test surfaces: values, gradients against finite differences, minima, geometry."""

from __future__ import annotations

import numpy as np
import pytest

from gdfast.gallery import surfaces

ALL = list(surfaces.SURFACES.values())


def central_difference(surface: surfaces.Surface, point: np.ndarray, h: float = 1e-6):
    grad = np.empty(2)
    for axis in range(2):
        step = np.zeros(2)
        step[axis] = h
        grad[axis] = (surface.value(point + step) - surface.value(point - step)) / (2 * h)
    return grad


@pytest.mark.parametrize("surface", ALL, ids=lambda s: s.name)
def test_gradient_matches_central_differences(surface):
    rng = np.random.default_rng(1)
    for _ in range(25):
        point = np.array([rng.uniform(*surface.xlim), rng.uniform(*surface.ylim)])
        analytic = surface.gradient(point)
        numeric = central_difference(surface, point)
        scale = max(np.max(np.abs(analytic)), 1.0)
        assert np.max(np.abs(analytic - numeric)) / scale < 1e-6, (surface.name, point)


def test_known_values():
    # Beale at the origin: 1.5² + 2.25² + 2.625²; Rosenbrock at its classic start: 4.84 + 19.36.
    assert surfaces.BEALE.value((0.0, 0.0)) == pytest.approx(14.203125, rel=1e-15)
    assert surfaces.ROSENBROCK.value((-1.2, 1.0)) == pytest.approx(24.2, rel=1e-14)
    assert surfaces.SADDLE.value((2.0, 3.0)) == -5.0
    assert surfaces.RAVINE.value((2.0, 1.0)) == pytest.approx(0.5 * (0.1 * 4 + 5.0))


@pytest.mark.parametrize("surface", [s for s in ALL if s.minimum is not None], ids=lambda s: s.name)
def test_minimum_is_stationary_and_lowest(surface):
    minimum = np.array(surface.minimum)
    assert surface.value(minimum) == surface.min_value == 0.0
    np.testing.assert_allclose(surface.gradient(minimum), 0.0, atol=1e-12)
    _, _, values = surface.grid(101)
    assert np.min(values) >= surface.min_value
    assert surface.value(surface.start) > surface.target > surface.min_value


def test_saddle_is_a_saddle():
    origin = np.zeros(2)
    np.testing.assert_array_equal(surfaces.SADDLE.gradient(origin), 0.0)
    hessian = np.array(
        [
            (surfaces.SADDLE.gradient(e) - surfaces.SADDLE.gradient(-e)) / 2e-3
            for e in np.eye(2) * 1e-3
        ]
    )
    eigenvalues = np.linalg.eigvalsh(hessian)
    np.testing.assert_allclose(eigenvalues, [-2.0, 2.0], rtol=1e-6)
    # The start is a hair off the line y = 0 that leads into the saddle point.
    x, y = surfaces.SADDLE.start
    assert x == 1.0 and 0 < y <= 1e-4
    assert surfaces.SADDLE.minimum is None and surfaces.SADDLE.min_value == -np.inf


def test_ravine_is_long_and_narrow():
    hessian = np.array([surfaces.RAVINE.gradient(e) for e in np.eye(2)])
    eigenvalues = np.linalg.eigvalsh(hessian)
    assert eigenvalues[1] / eigenvalues[0] == pytest.approx(50.0)
    # The long axis of the ravine is x: the window is five times wider than tall.
    assert np.ptp(surfaces.RAVINE.xlim) == 5 * np.ptp(surfaces.RAVINE.ylim)


def test_value_on_grids_matches_pointwise():
    grid_x, grid_y, values = surfaces.BEALE.grid(7)
    assert values.shape == (7, 7)
    for i, j in [(0, 0), (3, 5), (6, 6)]:
        assert values[i, j] == surfaces.BEALE.value((grid_x[i, j], grid_y[i, j]))


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="point"):
        surfaces.BEALE.value(np.zeros(3))
    with pytest.raises(ValueError, match="point"):
        surfaces.BEALE.gradient(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="resolution"):
        surfaces.BEALE.grid(1)
    with pytest.raises(ValueError, match="surface: expected one of"):
        surfaces.get("himmelblau")
    with pytest.raises(TypeError, match="surface"):
        surfaces.get(3)
    assert surfaces.get(surfaces.SADDLE) is surfaces.SADDLE
    assert surfaces.get("ravine") is surfaces.RAVINE
