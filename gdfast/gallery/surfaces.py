"""Two-dimensional test functions with their gradients, for watching optimizers move.

Each `Surface` is a loss J(x, y) with its analytic gradient, a standard start point,
the window to draw, and a *target*: the loss value below which a run counts as
arrived (at the minimum, or, for the saddle, away from it).

    beale       Beale's function: flat plateaus, steep walls, minimum 0 at (3, 0.5)
    rosenbrock  Rosenbrock's banana valley (a=1, b=100): minimum 0 at (1, 1)
    saddle      x² − y²: a saddle point at the origin, unbounded below along y
    ravine      ½(x²/10 + 5y²): a long narrow quadratic ravine, condition number 50,
                the case momentum was made for

`value` works on a single point or on whole grids (for contour plots); `gradient`
takes one point, shape (2,), and returns a new float64 array.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

ValueFunction = Callable[[np.ndarray, np.ndarray], np.ndarray]
GradientFunction = Callable[[float, float], tuple[float, float]]

__all__ = [
    "Surface",
    "BEALE",
    "ROSENBROCK",
    "SADDLE",
    "RAVINE",
    "RAVINE_CURVATURE",
    "SURFACES",
    "get",
]


@dataclasses.dataclass(frozen=True)
class Surface:
    """A loss J(x, y) with its gradient, a start point, a drawing window and a target.

    Attributes
    ----------
    name : str
        Short identifier, used by the CLI and in file names.
    formula : str
        The loss, for titles.
    start : (float, float)
        Where the gallery and the guide start every rule.
    xlim, ylim : (float, float)
        The window to draw.
    minimum : (float, float) or None
        The global minimizer, None if the surface is unbounded below.
    min_value : float
        J at `minimum` (0 for the bounded surfaces; -inf for the saddle).
    target : float
        A run has arrived once J ≤ target: within a tolerance of the minimum value,
        or, on the saddle, escaped to where y² ≥ x² + 1.
    log_contours : bool
        Draw contour levels log-spaced (for losses spanning many decades).
    loss_function : callable
        J(x, y), element-wise: on two floats or on two arrays of the same shape.
    gradient_function : callable
        (x, y) -> (∂J/∂x, ∂J/∂y) on two floats.  With `loss_function`, all a new
        surface needs: `Surface(name=..., ..., loss_function=f, gradient_function=g)`.
    """

    name: str
    formula: str
    start: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    minimum: tuple[float, float] | None
    min_value: float
    target: float
    log_contours: bool
    loss_function: ValueFunction = dataclasses.field(repr=False)
    gradient_function: GradientFunction = dataclasses.field(repr=False)

    def value(self, point: np.ndarray | tuple[float, float]) -> float | np.ndarray:
        """J at one point (shape (2,)) or at many (shape (2, ...), e.g. two meshgrids stacked).

        Returns a float for one point, else an array of shape point.shape[1:].
        """
        point = np.asarray(point, dtype=np.float64)
        if point.ndim == 0 or point.shape[0] != 2:
            raise ValueError(f"point: expected shape (2,) or (2, ...), got {point.shape}")
        with np.errstate(over="ignore", invalid="ignore"):
            result = self.loss_function(point[0], point[1])
        return float(result) if point.ndim == 1 else result

    def gradient(self, point: np.ndarray | tuple[float, float]) -> np.ndarray:
        """∇J at one point (shape (2,)), as a new float64 array of shape (2,)."""
        point = np.asarray(point, dtype=np.float64)
        if point.shape != (2,):
            raise ValueError(f"point: expected shape (2,), got {point.shape}")
        with np.errstate(over="ignore", invalid="ignore"):
            grad = self.gradient_function(float(point[0]), float(point[1]))
        return np.array(grad, dtype=np.float64)

    def grid(self, resolution: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X, Y, J) on a resolution × resolution grid covering the window, for contours."""
        if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2:
            raise ValueError(f"resolution: expected an int >= 2, got {resolution!r}")
        xs = np.linspace(*self.xlim, resolution)
        ys = np.linspace(*self.ylim, resolution)
        grid_x, grid_y = np.meshgrid(xs, ys)
        return grid_x, grid_y, np.asarray(self.value(np.stack([grid_x, grid_y])))


# --------------------------------------------------------------------- the four


def _beale(x, y):
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def _beale_gradient(x: float, y: float) -> tuple[float, float]:
    r1 = 1.5 - x + x * y
    r2 = 2.25 - x + x * y * y
    r3 = 2.625 - x + x * y**3
    dx = 2 * (r1 * (y - 1) + r2 * (y * y - 1) + r3 * (y**3 - 1))
    dy = 2 * x * (r1 + r2 * 2 * y + r3 * 3 * y * y)
    return dx, dy


def _rosenbrock(x, y):
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


def _rosenbrock_gradient(x: float, y: float) -> tuple[float, float]:
    return -2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)


def _saddle(x, y):
    return x * x - y * y


def _saddle_gradient(x: float, y: float) -> tuple[float, float]:
    return 2 * x, -2 * y


# The ravine's curvatures: 0.1 along the valley, 5 across it (condition number 50).
RAVINE_CURVATURE = (0.1, 5.0)


def _ravine(x, y):
    return 0.5 * (RAVINE_CURVATURE[0] * x * x + RAVINE_CURVATURE[1] * y * y)


def _ravine_gradient(x: float, y: float) -> tuple[float, float]:
    return RAVINE_CURVATURE[0] * x, RAVINE_CURVATURE[1] * y


BEALE = Surface(
    name="beale",
    formula="(1.5−x+xy)² + (2.25−x+xy²)² + (2.625−x+xy³)²",
    start=(1.0, 1.4),
    xlim=(-0.5, 4.0),
    ylim=(-1.5, 2.0),
    minimum=(3.0, 0.5),
    min_value=0.0,
    target=1e-3,
    log_contours=True,
    loss_function=_beale,
    gradient_function=_beale_gradient,
)

ROSENBROCK = Surface(
    name="rosenbrock",
    formula="(1−x)² + 100(y−x²)²",
    start=(-1.2, 1.0),
    xlim=(-2.0, 2.0),
    ylim=(-1.0, 3.0),
    minimum=(1.0, 1.0),
    min_value=0.0,
    target=1e-3,
    log_contours=True,
    loss_function=_rosenbrock,
    gradient_function=_rosenbrock_gradient,
)

# Started a hair (1e-5) off the line y = 0, along which descent is drawn into the saddle
# point; there the gradient's y component is 1e5 times smaller than its x component.
SADDLE = Surface(
    name="saddle",
    formula="x² − y²",
    start=(1.0, 1e-5),
    xlim=(-1.5, 1.5),
    ylim=(-1.5, 1.5),
    minimum=None,
    min_value=-np.inf,
    target=-1.0,
    log_contours=False,
    loss_function=_saddle,
    gradient_function=_saddle_gradient,
)

RAVINE = Surface(
    name="ravine",
    formula="½(x²/10 + 5y²)",
    start=(-9.0, 1.0),
    xlim=(-10.0, 10.0),
    ylim=(-2.0, 2.0),
    minimum=(0.0, 0.0),
    min_value=0.0,
    target=1e-3,
    log_contours=False,
    loss_function=_ravine,
    gradient_function=_ravine_gradient,
)

SURFACES: dict[str, Surface] = {s.name: s for s in (BEALE, ROSENBROCK, SADDLE, RAVINE)}


def get(name: str | Surface) -> Surface:
    """The surface called `name` (one of SURFACES), or `name` itself if it is a Surface."""
    if isinstance(name, Surface):
        return name
    if not isinstance(name, str):
        raise TypeError(f"surface: expected a name or a Surface, got {type(name).__name__}")
    try:
        return SURFACES[name]
    except KeyError:
        raise ValueError(f"surface: expected one of {sorted(SURFACES)}, got {name!r}") from None
