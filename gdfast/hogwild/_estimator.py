"""HogwildClassifier: fit_linear as a scikit-learn classifier."""
from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._checks import DEFAULTS, LOSSES, _choice, _dtype, _settings
from ._native import _c_linear_epoch
from ._sparse import any_sparse_to_csr
from ._training import _train_linear



class HogwildClassifier(ClassifierMixin, BaseEstimator):
    """A linear classifier trained by :func:`fit_linear`, scikit-learn style.

    Binary problems train one model on labels mapped to -1/+1 (``classes_[1]`` is +1);
    more classes train one-vs-rest, one model per class, one after the other (each with
    all threads).  Dense input is converted to CSR.  Parameters are :func:`fit_linear`'s;
    ``random_state`` (None, an int or a RandomState) gives the seed.  With the default
    ``mode="hogwild"`` and more than one thread, two fits with the same seed may differ
    slightly (see :mod:`gdfast.hogwild`); ``mode="serial"`` is repeatable.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) for two classes, else (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    history_ : list of list of dict
        The :attr:`LinearModel.history` of each binary model.
    n_features_in_ : int
    n_iter_ : int
        Epochs run.
    """

    def __init__(self, loss: str = "logistic", rule: str = DEFAULTS["rule"],
                 lr: float = DEFAULTS["lr"], decay: float = DEFAULTS["decay"],
                 l2: float = DEFAULTS["l2"], eps: float = DEFAULTS["eps"],
                 epochs: int = DEFAULTS["epochs"], mode: str = DEFAULTS["mode"],
                 n_threads: int | None = None, fit_intercept: bool = True,
                 shuffle: bool = DEFAULTS["shuffle"], random_state: Any = None,
                 dtype: Any = np.float64, progress: bool = False):
        self.loss = loss
        self.rule = rule
        self.lr = lr
        self.decay = decay
        self.l2 = l2
        self.eps = eps
        self.epochs = epochs
        self.mode = mode
        self.n_threads = n_threads
        self.fit_intercept = fit_intercept
        self.shuffle = shuffle
        self.random_state = random_state
        self.dtype = dtype
        self.progress = progress

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = self.mode != "serial"
        return tags

    def _validate(self, X: Any, reset: bool, **y: Any):
        if sp.issparse(X):  # its structure checked on a private copy before scipy touches it
            X = any_sparse_to_csr("X", X)
        return validate_data(self, X, accept_sparse="csr", dtype=_dtype(self.dtype),
                             reset=reset, **y)

    def fit(self, X: Any, y: Any) -> "HogwildClassifier":
        """Train on X (dense or sparse, converted to CSR) and labels y of any type."""
        _choice("loss", self.loss, LOSSES)
        X, y = self._validate(X, True, y=y)
        check_classification_targets(y)
        encoder = LabelEncoder()
        encoded = encoder.fit_transform(y)
        classes = encoder.classes_
        if classes.shape[0] < 2:
            raise ValueError(f"y: needs samples of at least 2 classes, got one class "
                             f"({classes[0]!r})")
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max)) \
            if not isinstance(self.random_state, numbers.Integral) else self.random_state
        X = sp.csr_matrix(X)
        settings = _settings(self.rule, self.lr, self.decay, self.l2, self.eps, self.epochs,
                             self.mode, self.n_threads, self.shuffle, seed)
        positives = [1] if classes.shape[0] == 2 else list(range(classes.shape[0]))
        models = [_train_linear(X, np.where(encoded == k, 1.0, -1.0), self.loss, settings,
                                self.fit_intercept, None, True, self.progress, _c_linear_epoch)
                  for k in positives]
        self.classes_ = classes
        self.coef_ = np.stack([model.coef for model in models])
        self.intercept_ = np.array([model.intercept for model in models], dtype=self.coef_.dtype)
        self.history_ = [model.history for model in models]
        self.n_iter_ = settings.epochs
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Margins: shape (n,) for two classes (> 0 means classes_[1]), else (n, n_classes)."""
        check_is_fitted(self)
        X = self._validate(X, False)
        scores = X @ self.coef_.T.astype(np.float64) + self.intercept_.astype(np.float64)
        scores = np.asarray(scores, dtype=np.float64)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict(self, X: Any) -> np.ndarray:
        """The class of largest margin (binary: classes_[1] where the margin is > 0)."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def _has_probabilities(self) -> bool:
        if self.loss != "logistic":
            raise AttributeError(f"predict_proba needs loss='logistic', not {self.loss!r}")
        return True

    @available_if(_has_probabilities)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities: the logistic sigmoid of the margins, normalized one-vs-rest."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            positive = 0.5 * (1.0 + np.tanh(0.5 * scores))  # the sigmoid without overflow
            return np.column_stack([1.0 - positive, positive])
        probabilities = 0.5 * (1.0 + np.tanh(0.5 * scores))
        totals = probabilities.sum(axis=1, keepdims=True)
        uniform = totals[:, 0] == 0.0
        probabilities[uniform] = 1.0
        return probabilities / np.where(uniform[:, None], scores.shape[1], totals)

    @available_if(_has_probabilities)
    def predict_log_proba(self, X: Any) -> np.ndarray:
        return np.log(self.predict_proba(X))
