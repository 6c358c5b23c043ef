"""Models with analytic, vectorized gradients, ready for `gdfast.fit`.

    model = gdfast.models.MLP(64, 10, hidden=(128,), batch_norm=True, l2=1e-4)
    history = gdfast.fit(model, model.params, X, y, "adam", lr=1e-3,
                         validation=(X_val, y_val))
    model.score(X_val, y_val)          # accuracy (R² for LinearRegression)

Every model is its own objective: ``model(params, X, y) -> (loss, grads)``, with
the parameters passed in (so `fit` and `check_grad` can use any arrays of the
right shapes; they are normally ``model.params``).  ``model.evaluate(params, X,
y)`` is the same loss without gradients, in evaluation mode (batch normalization
with its running statistics); `fit` uses it for the validation loss.

The loss is the mean over the batch plus (l2/2)·Σ‖W‖² over the weight matrices
(not the biases, nor batch normalization's γ, β).  X is a dense array or a
scipy.sparse matrix (CSR is best) of shape (n, n_features), converted to the
model's dtype (convert X once beforehand: otherwise every batch is copied);
matrix products go to BLAS (or to scipy.sparse).

Models: LinearRegression (squared loss), LogisticRegression (binary),
SoftmaxRegression (multinomial), MLP (dense layers, ReLU, optional batch
normalization, softmax cross-entropy).  BatchNorm is also usable on its own.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import _validation as check

__all__ = [
    "Model",
    "LinearRegression",
    "LogisticRegression",
    "SoftmaxRegression",
    "MLP",
    "BatchNorm",
]

Grads = list[np.ndarray]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """σ(z) = 1/(1 + e^−z) without overflow, and with full relative precision for z ≪ 0."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1, e) / (1 + e)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def _cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient with respect to the logits."""
    m = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1)
    rows = np.arange(m)
    loss = float(np.mean(np.log(total) - shifted[rows, y])) if m else 0.0
    dlogits = exp / total[:, None]
    dlogits[rows, y] -= 1
    dlogits /= max(m, 1)
    return loss, dlogits


class Model:
    """Base class: parameters, input checks, and the loss/predict/score API.

    Subclasses define `loss_and_grad(params, X, y, training)` on checked
    inputs, `_output(params, X)` (evaluation mode) and `predict`.

    Attributes
    ----------
    params : list of ndarray
        The parameters, C-contiguous arrays of `dtype`, in the order of `param_names`.
    param_names : tuple of str
    n_features : int
    l2 : float
    dtype : numpy.dtype
    """

    param_names: tuple[str, ...] = ()
    weight_names: tuple[str, ...] = ()  # the parameters the L2 penalty covers
    classifier = False

    def __init__(self, n_features: int, l2: float, dtype: Any, seed: int):
        self.n_features = check.integer("n_features", n_features, 1)
        self.l2 = check.nonnegative("l2", l2)
        self.dtype = check.float_dtype("dtype", dtype)
        self.seed = check.integer("seed", seed, 0)
        self.params: list[np.ndarray] = []

    # -------------------------------------------------------------- inputs
    def _inputs(self, X: Any, name: str = "X") -> Any:
        if check.is_sparse(X):
            if X.ndim != 2 or X.shape[1] != self.n_features:
                raise ValueError(f"{name}: expected shape (n, {self.n_features}), got {X.shape}")
            return X if X.dtype == self.dtype else X.astype(self.dtype)
        X = np.asarray(X, dtype=self.dtype)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"{name}: expected shape (n, {self.n_features}), got {X.shape}")
        return X

    def _targets(self, y: Any, n: int) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (n,):
            raise ValueError(f"y: expected shape ({n},) (one target per row of X), got {y.shape}")
        return y

    def _params(self, params: Sequence[np.ndarray]) -> Sequence[np.ndarray]:
        if len(params) != len(self.param_names):
            raise ValueError(
                f"params: expected {len(self.param_names)} arrays "
                f"({', '.join(self.param_names)}), got {len(params)}"
            )
        return params

    def _penalty(self, params: Sequence[np.ndarray]) -> float:
        if not self.l2:
            return 0.0
        return (
            0.5 * self.l2 * sum(float(np.vdot(params[i], params[i])) for i in self._weight_indices)
        )

    def _add_penalty_grads(self, params: Sequence[np.ndarray], grads: Grads) -> None:
        if self.l2:
            for i in self._weight_indices:
                grads[i] += self.l2 * params[i]

    @property
    def _weight_indices(self) -> list[int]:
        if getattr(self, "_weights", None) is None:
            self._weights = [self.param_names.index(name) for name in self.weight_names]
        return self._weights

    # ------------------------------------------------------------ objective
    def __call__(self, params: Sequence[np.ndarray], X: Any, y: Any) -> tuple[float, Grads]:
        """The training objective: (loss, grads) on the batch (X, y)."""
        return self.loss_and_grad(params, X, y)

    def loss_and_grad(
        self,
        params: Sequence[np.ndarray],
        X: Any,
        y: Any,
        training: bool = True,
        update_running: bool = True,
    ) -> tuple[float, Grads]:
        """(loss, one gradient per parameter) at `params` on the batch (X, y).

        `training` and `update_running` matter only with batch normalization:
        the batch's statistics (True) or the running ones (False), and whether
        a training-mode call moves the running statistics (False for gradient
        checks, which evaluate many times).
        """
        params = self._params(params)
        X = self._inputs(X)
        y = self._targets(y, X.shape[0])
        loss, grads = self._loss_and_grad(params, X, y, training, update_running)
        self._add_penalty_grads(params, grads)
        return loss + self._penalty(params), grads

    def evaluate(self, params: Sequence[np.ndarray], X: Any, y: Any) -> float:
        """The loss at `params` in evaluation mode, without gradients or side effects."""
        params = self._params(params)
        X = self._inputs(X)
        y = self._targets(y, X.shape[0])
        return self._data_loss(self._output(params, X), y) + self._penalty(params)

    def loss(self, X: Any, y: Any) -> float:
        """The loss of the model's own parameters on (X, y), evaluation mode."""
        return self.evaluate(self.params, X, y)

    def score(self, X: Any, y: Any) -> float:
        """Accuracy for classifiers, R² (coefficient of determination) for regression."""
        X = self._inputs(X)
        y = self._targets(y, X.shape[0])
        prediction = self.predict(X)
        if self.classifier:
            return float(np.mean(prediction == y)) if y.size else float("nan")
        residual = float(np.sum((y - prediction) ** 2))
        spread = float(np.sum((y - y.mean()) ** 2))
        return 1.0 - residual / spread if spread > 0 else float("nan")

    def _new(
        self, shape: tuple[int, ...], scale: float = 0.0, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        if scale == 0.0 or rng is None:
            return np.zeros(shape, dtype=self.dtype)
        return (rng.standard_normal(shape) * scale).astype(self.dtype)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_features={self.n_features}, l2={self.l2}, "
            f"dtype={self.dtype.name})"
        )

    # subclasses -----------------------------------------------------------
    def _loss_and_grad(self, params, X, y, training, update_running):  # pragma: no cover
        raise NotImplementedError

    def _output(self, params, X):  # pragma: no cover
        raise NotImplementedError

    def _data_loss(self, output, y):  # pragma: no cover
        raise NotImplementedError

    def predict(self, X: Any) -> np.ndarray:  # pragma: no cover
        """Predictions for the rows of X."""
        raise NotImplementedError


class LinearRegression(Model):
    """Least squares: J = mean(½ (x·w + b − y)²) + (l2/2)‖w‖².

    Parameters
    ----------
    n_features : int
    l2 : float, default 0
    dtype : float32 or float64, default float64
    seed : int, default 0 (unused: the parameters start at zero)

    Notes
    -----
    params: w (n_features,), b (1,).
    """

    param_names = ("w", "b")
    weight_names = ("w",)

    def __init__(self, n_features: int, l2: float = 0.0, dtype: Any = np.float64, seed: int = 0):
        super().__init__(n_features, l2, dtype, seed)
        self.params = [self._new((self.n_features,)), self._new((1,))]

    def _targets(self, y: Any, n: int) -> np.ndarray:
        y = super()._targets(y, n)
        return y if y.dtype == self.dtype else y.astype(self.dtype)

    def _output(self, params, X):
        return X @ params[0] + params[1]

    def _data_loss(self, output, y):
        return 0.5 * float(np.mean((output - y) ** 2)) if y.size else 0.0

    def _loss_and_grad(self, params, X, y, training, update_running):
        residual = self._output(params, X) - y
        m = max(X.shape[0], 1)
        loss = 0.5 * float(np.dot(residual, residual)) / m
        residual /= m
        return loss, [np.asarray(X.T @ residual), np.array([residual.sum()], dtype=self.dtype)]

    def predict(self, X: Any) -> np.ndarray:
        """x·w + b for each row."""
        return self._output(self.params, self._inputs(X))


class LogisticRegression(Model):
    """Binary logistic regression, labels 0/1.

    J = mean(log(1 + e^z) − y z) + (l2/2)‖w‖², z = x·w + b; ∂J/∂z = σ(z) − y.

    Parameters and params as LinearRegression.
    """

    param_names = ("w", "b")
    weight_names = ("w",)
    classifier = True

    def __init__(self, n_features: int, l2: float = 0.0, dtype: Any = np.float64, seed: int = 0):
        super().__init__(n_features, l2, dtype, seed)
        self.params = [self._new((self.n_features,)), self._new((1,))]

    def _targets(self, y: Any, n: int) -> np.ndarray:
        y = super()._targets(y, n)
        if y.size and not np.all((y == 0) | (y == 1)):
            raise ValueError("y: LogisticRegression expects labels 0 and 1")
        return y.astype(self.dtype, copy=False)

    def _output(self, params, X):
        return X @ params[0] + params[1]

    def _data_loss(self, output, y):
        return float(np.mean(np.logaddexp(0, output) - y * output)) if y.size else 0.0

    def _loss_and_grad(self, params, X, y, training, update_running):
        z = self._output(params, X)
        loss = self._data_loss(z, y)
        m = max(X.shape[0], 1)
        dz = _sigmoid(z) - y
        dz /= m
        return loss, [np.asarray(X.T @ dz), np.array([dz.sum()], dtype=self.dtype)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """P(y = 1 | x) for each row."""
        return _sigmoid(self._output(self.params, self._inputs(X)))

    def predict(self, X: Any) -> np.ndarray:
        """The label (0 or 1) of each row: 1 where P(y = 1 | x) > ½."""
        return (self._output(self.params, self._inputs(X)) > 0).astype(np.int64)


class BatchNorm:
    """Batch normalization (Ioffe & Szegedy, 2015) of the features of a batch.

    Training mode, per feature over the m rows of the batch:
        μ_B = mean(x), σ²_B = mean((x − μ_B)²), x̂ = (x − μ_B)/√(σ²_B + ε), y = γ x̂ + β
    and the running averages r ← (1 − momentum)·r + momentum·s, with s = μ_B for
    the mean and the unbiased m/(m−1)·σ²_B for the variance (as PyTorch does).
    Evaluation mode uses the running mean and variance in place of μ_B, σ²_B.

    Parameters
    ----------
    n_features : int
    eps : float, default 1e-5
    momentum : float, default 0.1
        Weight of the new batch in the running averages, in [0, 1].
    dtype : float32 or float64, default float64

    Attributes
    ----------
    running_mean, running_var : ndarray, shape (n_features,)
        Start at 0 and 1.
    """

    def __init__(
        self, n_features: int, eps: float = 1e-5, momentum: float = 0.1, dtype: Any = np.float64
    ):
        self.n_features = check.integer("n_features", n_features, 1)
        self.eps = check.positive("eps", eps)
        self.momentum = check.decay_rate("momentum", momentum)
        dtype = check.float_dtype("dtype", dtype)
        self.running_mean = np.zeros(self.n_features, dtype=dtype)
        self.running_var = np.ones(self.n_features, dtype=dtype)

    def forward(
        self,
        x: np.ndarray,
        gamma: np.ndarray,
        beta: np.ndarray,
        training: bool = True,
        update_running: bool = True,
    ) -> tuple[np.ndarray, tuple]:
        """y = γ x̂ + β and the cache `backward` needs.

        In training mode with `update_running`, also moves the running averages.
        """
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"x: expected shape (m, {self.n_features}), got {x.shape}")
        if training:
            m = x.shape[0]
            if m == 0:
                raise ValueError("x: batch normalization in training mode needs at least one row")
            mean = x.mean(axis=0)
            centered = x - mean
            var = np.mean(centered * centered, axis=0)
            if update_running:
                r = self.momentum
                self.running_mean *= 1 - r
                self.running_mean += r * mean
                if m > 1:  # one row has no variance estimate
                    self.running_var *= 1 - r
                    self.running_var += (r * m / (m - 1)) * var
        else:
            centered = x - self.running_mean
            var = self.running_var
        inv_std = 1.0 / np.sqrt(var + x.dtype.type(self.eps))
        x_hat = centered * inv_std
        return gamma * x_hat + beta, (x_hat, inv_std, gamma, training)

    @staticmethod
    def backward(dy: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(∂J/∂x, ∂J/∂γ, ∂J/∂β) from ∂J/∂y and the forward cache.

        Training mode differentiates through μ_B and σ²_B:
            ∂J/∂x = (1/m)·(1/√(σ²_B+ε))·(m·g − Σg − x̂·Σ(g·x̂)),  g = γ·∂J/∂y.
        """
        x_hat, inv_std, gamma, training = cache
        dgamma = np.sum(dy * x_hat, axis=0)
        dbeta = dy.sum(axis=0)
        g = dy * gamma
        if not training:
            return g * inv_std, dgamma, dbeta
        m = dy.shape[0]
        dx = g - g.mean(axis=0) - x_hat * (np.sum(g * x_hat, axis=0) / m)
        dx *= inv_std
        return dx, dgamma, dbeta


class MLP(Model):
    """A multilayer perceptron classifier: dense layers, ReLU, optional batch norm.

    Hidden layer l: h_l = ReLU(BN(h_{l−1} W_l)) with batch normalization, else
    ReLU(h_{l−1} W_l + b_l); output logits h_L W_out + b_out; loss the mean
    softmax cross-entropy + (l2/2)·Σ‖W‖².  (With batch norm the hidden layers
    have no bias: β plays its part.)  Weights start as He-normal N(0, 2/fan_in)
    (N(0, 1/fan_in) for the output layer), biases and β at 0, γ at 1.

    Parameters
    ----------
    n_features, n_classes : int
    hidden : sequence of int, default (64,)
        Width of each hidden layer; () is softmax regression.
    batch_norm : bool, default False
    l2 : float, default 0
    dtype : float32 or float64, default float64
    seed : int, default 0
    bn_momentum, bn_eps : float
        The BatchNorm settings (0.1 and 1e-5).

    Attributes
    ----------
    params, param_names : W0, b0 (or gamma0, beta0), W1, ..., W_out, b_out.
    norms : list of BatchNorm (empty without batch norm), one per hidden layer.
    """

    classifier = True

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        hidden: Sequence[int] = (64,),
        batch_norm: bool = False,
        l2: float = 0.0,
        dtype: Any = np.float64,
        seed: int = 0,
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-5,
    ):
        super().__init__(n_features, l2, dtype, seed)
        self.n_classes = check.integer("n_classes", n_classes, 2)
        if isinstance(hidden, (int, np.integer)) or not isinstance(hidden, (list, tuple)):
            raise TypeError(f"hidden: expected a sequence of layer widths, got {hidden!r}")
        self.hidden = tuple(
            check.integer(f"hidden[{i}]", width, 1) for i, width in enumerate(hidden)
        )
        self.batch_norm = check.flag("batch_norm", batch_norm)
        rng = np.random.default_rng(self.seed)
        names, weights = [], []
        self.norms: list[BatchNorm] = []
        fan_in = self.n_features
        for layer, width in enumerate(self.hidden):
            names.append(f"W{layer}")
            weights.append(f"W{layer}")
            self.params.append(self._new((fan_in, width), np.sqrt(2.0 / fan_in), rng))
            if self.batch_norm:
                names += [f"gamma{layer}", f"beta{layer}"]
                self.params += [np.ones(width, dtype=self.dtype), self._new((width,))]
                self.norms.append(BatchNorm(width, bn_eps, bn_momentum, self.dtype))
            else:
                names.append(f"b{layer}")
                self.params.append(self._new((width,)))
            fan_in = width
        names += ["W_out", "b_out"]
        weights.append("W_out")
        self.params += [
            self._new((fan_in, self.n_classes), np.sqrt(1.0 / fan_in), rng),
            self._new((self.n_classes,)),
        ]
        self.param_names = tuple(names)
        self.weight_names = tuple(weights)

    def _targets(self, y: Any, n: int) -> np.ndarray:
        y = super()._targets(y, n)
        if y.dtype.kind not in "iu":
            if y.dtype.kind == "f" and y.size and np.all(y == np.round(y)):
                y = y.astype(np.int64)
            else:
                raise TypeError(f"y: expected integer class labels, got dtype {y.dtype}")
        if y.size and (y.min() < 0 or y.max() >= self.n_classes):
            raise ValueError(
                f"y: class labels must be in [0, {self.n_classes}), got [{y.min()}, {y.max()}]"
            )
        return y

    def _layers(self, params: Sequence[np.ndarray]):
        """(W, b or None, gamma, beta) per hidden layer, and (W_out, b_out)."""
        per_layer = 3 if self.batch_norm else 2
        layers = []
        for layer in range(len(self.hidden)):
            group = params[per_layer * layer : per_layer * (layer + 1)]
            layers.append(
                (group[0], None, group[1], group[2])
                if self.batch_norm
                else (group[0], group[1], None, None)
            )
        return layers, (params[-2], params[-1])

    def _forward(self, params, X, training, update_running=True):
        layers, (w_out, b_out) = self._layers(params)
        h, caches = X, []
        for layer, (w, b, gamma, beta) in enumerate(layers):
            z = np.asarray(h @ w)
            if self.batch_norm:
                a, norm_cache = self.norms[layer].forward(z, gamma, beta, training, update_running)
            else:
                a, norm_cache = z + b, None
            np.maximum(a, 0, out=a)
            caches.append((h, a, norm_cache))
            h = a
        return np.asarray(h @ w_out) + b_out, h, caches

    def _output(self, params, X):
        return self._forward(params, X, training=False)[0]

    def _data_loss(self, output, y):
        return _cross_entropy(output, y)[0]

    def _loss_and_grad(self, params, X, y, training, update_running):
        logits, h_last, caches = self._forward(params, X, training, update_running)
        loss, dlogits = _cross_entropy(logits, y)
        layers, (w_out, _) = self._layers(params)
        grads_out = [np.asarray(h_last.T @ dlogits), dlogits.sum(axis=0)]
        grads: list[np.ndarray] = []
        dh = dlogits @ w_out.T if layers else None  # softmax regression needs no ∂J/∂X
        for layer in range(len(layers) - 1, -1, -1):
            w = layers[layer][0]
            h_in, a, norm_cache = caches[layer]
            da = dh * (a > 0)
            if self.batch_norm:
                dz, dgamma, dbeta = BatchNorm.backward(da, norm_cache)
                tail = [dgamma, dbeta]
            else:
                dz, tail = da, [da.sum(axis=0)]
            grads[:0] = [np.asarray(h_in.T @ dz)] + tail
            if layer:
                dh = dz @ w.T
        return loss, grads + grads_out

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), evaluation mode."""
        return _softmax(self._output(self.params, self._inputs(X)))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row, evaluation mode."""
        return np.argmax(self._output(self.params, self._inputs(X)), axis=1)

    def __repr__(self) -> str:
        return (
            f"MLP(n_features={self.n_features}, n_classes={self.n_classes}, "
            f"hidden={self.hidden}, batch_norm={self.batch_norm}, l2={self.l2}, "
            f"dtype={self.dtype.name})"
        )


class SoftmaxRegression(MLP):
    """Multinomial logistic regression: logits x W + b, mean softmax cross-entropy.

    The MLP with no hidden layer.  params: W_out (n_features, n_classes), b_out (n_classes,).
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        l2: float = 0.0,
        dtype: Any = np.float64,
        seed: int = 0,
    ):
        super().__init__(n_features, n_classes, hidden=(), l2=l2, dtype=dtype, seed=seed)
        self.params[0][...] = 0

    def __repr__(self) -> str:
        return (
            f"SoftmaxRegression(n_features={self.n_features}, n_classes={self.n_classes}, "
            f"l2={self.l2}, dtype={self.dtype.name})"
        )
