"""HogwildClassifier: scikit-learn's own estimator checks, cross-validation, probabilities."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from gdfast import hogwild
from gdfast.hogwild import HogwildClassifier


# Checks that compare two fits can fail (not always: it depends on how the two threads
# interleave) when two threads run without locks; the serial instance passes them all.
TWO_FITS_COMPARED = ["check_fit_idempotent", "check_supervised_y_2d",
                     "check_classifier_data_not_an_array"]


@parametrize_with_checks(
    [HogwildClassifier(mode="serial"), HogwildClassifier(mode="hogwild", n_threads=2)],
    expected_failed_checks=lambda estimator: (
        {} if estimator.mode == "serial" else
        {name: "two threads without locks are not bitwise repeatable"
         for name in TWO_FITS_COMPARED}))
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def make_data(n_classes: int = 2):
    return make_classification(n_samples=600, n_features=30, n_informative=10,
                               n_classes=n_classes, class_sep=1.5, random_state=0)


@pytest.fixture(scope="module")
def data():
    return make_data()


def best_linear_accuracy(X, y) -> float:
    """Training accuracy of scikit-learn's exact solver: the bar for a linear model here."""
    return LogisticRegression().fit(X, y).score(X, y)


def test_cross_val_score(data):
    X, y = data
    scores = cross_val_score(HogwildClassifier(epochs=10), sp.csr_matrix(X), y, cv=3)
    exact = cross_val_score(LogisticRegression(), X, y, cv=3)
    assert scores.shape == (3,) and scores.mean() >= exact.mean() - 0.03


def test_matches_fit_linear_on_mapped_labels(data):
    """The binary estimator is fit_linear on classes_[1] -> +1, the rest -> -1."""
    X, y = data
    labels = np.array(["spam", "ham"])[y]
    estimator = HogwildClassifier(mode="serial", random_state=3, rule="sgd", l2=0.01).fit(
        X, labels)
    assert list(estimator.classes_) == ["ham", "spam"]
    model = hogwild.fit_linear(sp.csr_matrix(X), np.where(labels == "spam", 1.0, -1.0),
                               mode="serial", seed=3, rule="sgd", l2=0.01)
    np.testing.assert_array_equal(estimator.coef_[0], model.coef)
    assert estimator.intercept_[0] == model.intercept
    np.testing.assert_allclose(estimator.decision_function(X), X @ model.coef + model.intercept,
                               rtol=1e-12)
    margin = X @ model.coef + model.intercept
    assert estimator.score(X, labels) == np.mean(np.where(margin > 0, "spam", "ham") == labels)


def test_dense_and_sparse_input_agree(data):
    X, y = data
    dense = HogwildClassifier(mode="serial", random_state=0).fit(X, y)
    sparse = HogwildClassifier(mode="serial", random_state=0).fit(sp.csr_matrix(X), y)
    np.testing.assert_array_equal(dense.coef_, sparse.coef_)


def test_probabilities(data):
    X, y = data
    estimator = HogwildClassifier(mode="serial", random_state=0).fit(X, y)
    proba = estimator.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba[:, 1], 1.0 / (1.0 + np.exp(-estimator.decision_function(X))))
    np.testing.assert_array_equal(estimator.predict(X), estimator.classes_[proba.argmax(axis=1)])


def test_hinge_has_no_probabilities(data):
    X, y = data
    estimator = HogwildClassifier(loss="hinge", mode="serial").fit(X, y)
    assert not hasattr(estimator, "predict_proba")
    assert estimator.score(X, y) >= best_linear_accuracy(X, y) - 0.03


def test_multiclass_one_vs_rest():
    X, y = make_data(n_classes=3)
    estimator = HogwildClassifier(mode="serial", epochs=10, random_state=0).fit(X, y)
    assert estimator.coef_.shape == (3, 30) and estimator.intercept_.shape == (3,)
    assert len(estimator.history_) == 3
    assert estimator.decision_function(X).shape == (600, 3)
    np.testing.assert_allclose(estimator.predict_proba(X).sum(axis=1), 1.0)
    assert estimator.score(X, y) >= best_linear_accuracy(X, y) - 0.03


def test_float32_training(data):
    X, y = data
    estimator = HogwildClassifier(dtype=np.float32, mode="serial").fit(X, y)
    assert estimator.coef_.dtype == np.float32
    assert estimator.score(X, y) >= best_linear_accuracy(X, y) - 0.03


def test_bad_parameters_are_named(data):
    X, y = data
    with pytest.raises(ValueError, match="loss: expected one of"):
        HogwildClassifier(loss="log_loss").fit(X, y)
    with pytest.raises(ValueError, match="lr: expected a finite number >= 0"):
        HogwildClassifier(lr=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        HogwildClassifier().fit(X, np.zeros_like(y))


def test_clone_keeps_parameters():
    estimator = HogwildClassifier(lr=0.3, mode="locked", rule="sgd", decay=0.9)
    assert clone(estimator).get_params() == estimator.get_params()
    assert estimator.set_params(lr=0.5).lr == 0.5
