"""HogwildClassifier: fit_linear as a scikit-learn classifier."""

from __future__ import annotations

import numbers
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .. import _validation as check
from ._checks import DEFAULTS, LOSSES, _settings
from ._native import _c_linear_epoch, _margins
from ._results import LinearModel
from ._sparse import _CSR, any_sparse_to_csr, csr, model_array
from ._training import _train_linear


class HogwildClassifier(ClassifierMixin, BaseEstimator):
    """A linear classifier trained by :func:`fit_linear`, scikit-learn style.

    Binary problems train one model on labels mapped to -1/+1 (``classes_[1]`` is +1).
    More classes train one-vs-rest, one model per class; with more than one thread
    (``mode`` "locked" or "hogwild") the classes train side by side, each on one thread
    (so each is the serial algorithm: no contention, and repeatable), else one after
    the other.  Dense input is converted to CSR.  Parameters are :func:`fit_linear`'s;
    ``random_state`` (None, an int or a RandomState) gives the seed.  With the default
    ``mode="hogwild"`` and more than one thread, two binary fits with the same seed may
    differ slightly (see :mod:`gdfast.hogwild`); ``mode="serial"`` is repeatable.

    ``record_loss`` adds each epoch's training loss to ``history_`` (an extra pass over
    the data per epoch: off by default); ``progress`` shows a bar per model.
    ``warm_start=True`` makes :meth:`fit` continue from the fitted coefficients and
    Adagrad sums (same classes and features), and :meth:`partial_fit` trains one more
    epoch on the data it is given.  Epochs are counted on across calls, so the step
    decay carries on.  An epoch that leaves a non-finite weight raises a ValueError that
    says what to try, and leaves the estimator as it was.

    ``class_weight`` (None, ``"balanced"`` or a dict class -> weight) and ``sample_weight``
    (in :meth:`fit` and :meth:`partial_fit`) weigh each row's loss, hence its step, with
    scikit-learn's SGD semantics: a binary model weighs its positive rows by the weight
    of ``classes_[1]`` and its negative rows by that of ``classes_[0]``; one-vs-rest model
    k weighs its positive rows by class k's weight and the others by 1; sample weights
    multiply in.  ``"balanced"`` is n / (n_classes * count(class)) on the data given to
    :meth:`fit` (as in scikit-learn, not available to :meth:`partial_fit`).
    ``sync_every`` and ``hot_features`` are :func:`fit_linear`'s replicas.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    coef_ : ndarray of shape (1, n_features) for two classes, else (n_classes, n_features)
    intercept_ : ndarray of shape (1,) or (n_classes,)
    sum_sq_ : ndarray of shape (n_models, n_features + 1) or None
        Adagrad's accumulators of each binary model (intercept last); None for SGD.
    history_ : list of list of dict
        The :attr:`LinearModel.history` of each binary model, every epoch since the
        first fit.
    n_features_in_ : int
    n_iter_ : int
        Epochs run by the last call of fit or partial_fit.
    """

    def __init__(
        self,
        loss: str = "logistic",
        rule: str = DEFAULTS["rule"],
        lr: float = DEFAULTS["lr"],
        decay: float = DEFAULTS["decay"],
        l2: float = DEFAULTS["l2"],
        eps: float = DEFAULTS["eps"],
        epochs: int = DEFAULTS["epochs"],
        mode: str = DEFAULTS["mode"],
        n_threads: int | None = None,
        fit_intercept: bool = True,
        shuffle: bool = DEFAULTS["shuffle"],
        random_state: Any = None,
        dtype: Any = np.float64,
        record_loss: bool = False,
        warm_start: bool = False,
        progress: bool = False,
        class_weight: Any = None,
        sync_every: int | None = DEFAULTS["sync_every"],
        hot_features: int | str = DEFAULTS["hot_features"],
    ):
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
        self.record_loss = record_loss
        self.warm_start = warm_start
        self.progress = progress
        self.class_weight = class_weight
        self.sync_every = sync_every
        self.hot_features = hot_features

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = self.mode != "serial"
        return tags

    def _validate(self, X: Any, reset: bool, **y: Any):
        if sp.issparse(X):  # its structure checked on a private copy before scipy touches it
            X = any_sparse_to_csr("X", X)
        return validate_data(
            self,
            X,
            accept_sparse="csr",
            dtype=check.float_dtype("dtype", self.dtype),
            reset=reset,
            **y,
        )

    def _seed(self) -> int:
        if isinstance(self.random_state, numbers.Integral):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _fitted_models(self) -> list[LinearModel]:
        """The fitted binary models, as warm starts."""
        sums = self.sum_sq_ if self.sum_sq_ is not None else [None] * self.coef_.shape[0]
        return [
            LinearModel(
                coef=coef,
                intercept=float(intercept),
                sum_sq=sum_sq,
                history=history,
                loss=self.loss,
                fit_intercept=self.fit_intercept,
            )
            for coef, intercept, sum_sq, history in zip(
                self.coef_, self.intercept_, sums, self.history_
            )
        ]

    def _train(
        self,
        X: Any,
        encoded: np.ndarray,
        classes: np.ndarray,
        epochs: int,
        initial: list[LinearModel] | None,
        sample_weight: Any = None,
    ) -> "HogwildClassifier":
        """Train every binary model (from `initial` if given), then, only if all succeeded,
        set the fitted attributes."""
        check.one_of("loss", self.loss, LOSSES)
        sample_weight = check.row_weights("sample_weight", sample_weight, encoded.shape[0])
        class_weights = (
            compute_class_weight(self.class_weight, classes=np.arange(classes.shape[0]), y=encoded)
            if not isinstance(self.class_weight, dict)
            else self._dict_class_weights(classes)
        )
        settings = _settings(
            self.rule,
            self.lr,
            self.decay,
            self.l2,
            self.eps,
            epochs,
            self.mode,
            self.n_threads,
            self.shuffle,
            self._seed(),
            self.sync_every,
            self.hot_features,
        )
        data = csr("X", sp.csr_matrix(X))  # checked once, shared by every class
        positives = [1] if classes.shape[0] == 2 else list(range(classes.shape[0]))
        side_by_side = len(positives) > 1 and settings.n_threads > 1
        per_model = replace(settings, n_threads=1) if side_by_side else settings

        def train(index: int) -> LinearModel:
            positive = encoded == positives[index]
            row_weights = None
            if sample_weight is not None or self.class_weight is not None:
                # scikit-learn's SGD: binary, classes_[1] +1 and classes_[0] -1;
                # one-vs-rest, class k's weight on its rows, 1 on the others
                negative_weight = class_weights[0] if len(positives) == 1 else 1.0
                row_weights = np.where(positive, class_weights[positives[index]], negative_weight)
                if sample_weight is not None:
                    row_weights = row_weights * sample_weight
            return _train_linear(
                data,
                np.where(positive, 1.0, -1.0),
                self.loss,
                per_model,
                self.fit_intercept,
                None,
                self.record_loss,
                self.progress,
                _c_linear_epoch,
                initial[index] if initial is not None else None,
                row_weights,
            )

        if side_by_side:  # each call releases the GIL in C: the classes run in parallel
            with ThreadPoolExecutor(min(settings.n_threads, len(positives))) as pool:
                models = list(pool.map(train, range(len(positives))))
        else:
            models = [train(index) for index in range(len(positives))]
        self.classes_ = classes
        self.coef_ = np.stack([model.coef for model in models])
        self.intercept_ = np.array([model.intercept for model in models], dtype=self.coef_.dtype)
        self.sum_sq_ = (
            None if settings.rule == "sgd" else np.stack([model.sum_sq for model in models])
        )
        self.history_ = [model.history for model in models]
        self.n_iter_ = settings.epochs
        return self

    def _dict_class_weights(self, classes: np.ndarray) -> np.ndarray:
        """A weight per class from the dict class_weight (1 for a class it leaves out)."""
        unknown = [label for label in self.class_weight if label not in set(classes.tolist())]
        if unknown:
            raise ValueError(
                f"class_weight: the classes {unknown[:5]} are not in the data's classes "
                f"{classes.tolist()}"
            )
        weights = np.array([self.class_weight.get(label, 1.0) for label in classes.tolist()])
        return check.row_weights("class_weight", weights.astype(np.float64), classes.shape[0])

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "HogwildClassifier":
        """Train on X (dense or sparse, converted to CSR) and labels y of any type, each row
        weighted by ``sample_weight`` (None: 1) and ``class_weight``; with ``warm_start``,
        continue from the fitted model."""
        warm = self.warm_start and hasattr(self, "coef_")
        X, y = self._validate(X, not warm, y=y)
        check_classification_targets(y)
        encoder = LabelEncoder()
        encoded = encoder.fit_transform(y)
        classes = encoder.classes_
        if classes.shape[0] < 2:
            raise ValueError(
                f"y: needs samples of at least 2 classes, got one class ({classes[0]!r})"
            )
        if warm and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"y: warm_start needs the classes of the fitted model "
                f"{self.classes_.tolist()}, got {classes.tolist()}"
            )
        return self._train(
            X,
            encoded,
            classes,
            self.epochs,
            self._fitted_models() if warm else None,
            sample_weight,
        )

    def partial_fit(
        self, X: Any, y: Any, classes: Any = None, sample_weight: Any = None
    ) -> "HogwildClassifier":
        """One epoch over (X, y), from the fitted model if any, rows weighted as in
        :meth:`fit`.  The first call needs ``classes``, every label that will ever occur."""
        if isinstance(self.class_weight, str):
            raise ValueError(
                f"class_weight: {self.class_weight!r} is not available to partial_fit (one "
                f"batch's class counts are not the data's); pass a dict, e.g. from "
                f"sklearn.utils.class_weight.compute_class_weight('balanced', classes=..., "
                f"y=a large sample of the labels)"
            )
        first = not hasattr(self, "coef_")
        if first:
            if classes is None:
                raise ValueError(
                    "classes: the first call to partial_fit needs every class "
                    "label (e.g. classes=np.unique(y_all))"
                )
            classes = np.unique(np.asarray(classes))
            if classes.shape[0] < 2:
                raise ValueError(f"classes: expected at least 2 classes, got {classes.tolist()}")
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(
                f"classes: expected {self.classes_.tolist()} as in the first call, "
                f"got {np.unique(classes).tolist()}"
            )
        else:
            classes = self.classes_
        X, y = self._validate(X, first, y=y)
        check_classification_targets(y)
        unknown = np.setdiff1d(y, classes)
        if unknown.size:
            raise ValueError(
                f"y: labels {unknown[:5].tolist()} are not in classes {classes.tolist()}"
            )
        return self._train(
            X,
            np.searchsorted(classes, y),
            classes,
            1,
            None if first else self._fitted_models(),
            sample_weight,
        )

    def decision_function(self, X: Any) -> np.ndarray:
        """Margins: shape (n,) for two classes (> 0 means classes_[1]), else (n, n_classes),
        each class's column computed by the threaded C margin pass."""
        check_is_fitted(self)
        X = self._validate(X, False)
        data = csr("X", sp.csr_matrix(X))
        coef = model_array("coef_", self.coef_, 2)
        if data.dtype != coef.dtype:
            data = _CSR(data.indptr, data.indices, data.data.astype(coef.dtype), data.n_features)
        scores = np.empty((data.n_rows, coef.shape[0]), dtype=np.float64)
        for k in range(coef.shape[0]):
            weights = np.append(coef[k], coef.dtype.type(self.intercept_[k]))
            scores[:, k] = _margins(data, weights, True)
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
