"""Hogwild!: lock-free multi-threaded SGD on sparse data (SPEC.md section 3).

Niu, Recht, Ré and Wright (2011): several threads run SGD on one shared
parameter vector with no locks; each step touches only the coordinates of one
sparse example, so collisions are rare and cheap.  gdfast trains two models
this way, in C with the GIL released:

- :func:`fit_linear`: a linear model on a scipy.sparse CSR matrix, with the
  logistic, squared or hinge loss;
- :func:`fit_mf`: matrix factorization of (user, item, rating) triplets;

and wraps the first in a scikit-learn classifier, :class:`HogwildClassifier`.

The algorithm of one epoch e (counting from 0)::

    η_e = lr · decay**e                           (per-epoch step decay β = decay)
    the examples are visited in a fresh permutation of all n rows, shuffled by a
    generator seeded from (seed, e) (splitmix64); T threads take consecutive chunks
    of it, each the next unclaimed chunk when done (a dynamic schedule), and for
    each example i:
        z = b + Σ_k x_ik w_jk                        (stored order of the row's non-zeros)
        d = ∂loss(z, y_i)/∂z
        for each non-zero (j, x_ij):  g = d x_ij + λ w_j ;  step(w_j, g)
        if fit_intercept:             step(b, d)
    step, SGD:      w ← w − η_e g
    step, Adagrad:  G ← G + g² ;  w ← w − η_e g / √(G + ε)    (per coordinate, SPEC.md 1)

Losses, for y ∈ {−1, +1} (logistic, hinge) or real y (squared):
logistic log(1 + exp(−yz)), squared ½(z − y)², hinge max(0, 1 − yz).

The L2 term λ w_j is added to the gradient of the touched coordinates only,
as in the paper (its regularizer is split over the examples): SGD minimizes
(1/n) Σ_i [loss_i + (λ/2) Σ_{j ∈ x_i} w_j²], i.e. each feature's penalty is
weighted by the fraction of rows it occurs in.  The history reports this
`objective` next to the plain mean `loss`.  The intercept is not penalized.

Modes: ``"serial"`` (one thread; bitwise repeatable and equal to
:func:`reference_fit_linear`, the same algorithm in NumPy/Python, in the same
order), ``"locked"`` (T threads, each whole example update under one lock:
the paper's baseline), ``"hogwild"`` (T threads, no locks).  With T = 1 all
three visit the same order.  **Multi-threaded runs are not bitwise
repeatable**: a thread may read a coordinate another thread is writing, and
the interleaving depends on the machine's scheduling (as in gensim and
LightFM).  They converge to within a small tolerance of serial on sparse data.

Options (see docs/hogwild.md): ``sync_every``/``hot_features`` give each hogwild thread a
private replica of the intercept and the most frequent features, flushed into the shared
vector every ``sync_every`` examples (DimmWitted, HOGWILD!++), on by default
(``sync_every=1024, hot_features=4096``, the fastest setting measured; ``sync_every=None``
turns them off);
``sample_weight`` scales each row's loss and step (d above times s_i).

With more than one thread, features are renumbered internally by frequency
so that the few features most rows share sit in a few cache lines next to the
intercept (fewer lines bouncing between cores); every sum and update is the
same, at other addresses, and results come back in the caller's numbering.

Arithmetic is in double; float32 weights and accumulators are rounded to
float32 once per update.  Requires scipy (CSR input) and scikit-learn (the
estimator): the ``data`` extra.
"""

from ._checks import DEFAULTS, LOSSES, MODES, RULES  # noqa: F401 (the settings' names)
from ._estimator import HogwildClassifier
from ._native import openmp_enabled
from ._reference import reference_fit_linear, reference_fit_mf, reference_order
from ._results import LinearModel, MFModel
from ._training import fit_linear, fit_mf

__all__ = [
    "fit_linear",
    "fit_mf",
    "LinearModel",
    "MFModel",
    "HogwildClassifier",
    "reference_fit_linear",
    "reference_fit_mf",
    "reference_order",
    "openmp_enabled",
]
